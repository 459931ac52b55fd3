//! Single sign-ons in flight, kept in the database so that the callback may
//! land on any instance behind a load balancer. A flow is keyed by the
//! SHA-256 of its `state`, bound to the browser that started it (the HMAC of
//! a random cookie), holds the PKCE verifier and nonce sealed under the
//! master key, lives ten minutes and is taken exactly once.

use aws_lc_rs::{constant_time, hmac};
use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::{
    domain::{Error, clock},
    secret::{Digest, MasterKey},
    storage::{Db, entities::oidc_login},
};

/// How long a person has at the identity provider before the flow expires.
pub const FLOW_LIFETIME: Duration = Duration::minutes(10);

/// What the callback needs to finish a flow: secrets of the flow.
#[derive(Serialize, Deserialize)]
pub struct FlowSecrets {
    pub pkce_verifier: String,
    pub nonce: String,
}

impl std::fmt::Debug for FlowSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowSecrets(…)")
    }
}

/// A flow taken back at its callback.
#[derive(Debug)]
pub struct Flow {
    pub secrets: FlowSecrets,
    pub return_to: String,
}

/// Why a callback's `state` does not lead to a flow.
#[derive(Debug, PartialEq, Eq)]
pub enum FlowRefusal {
    /// No such flow: never started, already finished, or expired.
    Unknown,
    /// Started in another browser (or its cookie is gone).
    OtherBrowser,
}

impl std::fmt::Display for FlowRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => {
                "This sign-in is not known here: it was already completed, it expired (you have ten minutes at the identity provider), or its link was changed. Start again from the sign-in page."
            }
            Self::OtherBrowser => {
                "This sign-in was started in another browser, or this browser's cookies were cleared meanwhile. Start again from the sign-in page, in this browser."
            }
        })
    }
}

/// A local page to return to: a path on this site, never another site.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 512
                && !p.chars().any(|c| c.is_control() || c == '\\')
                && !p.starts_with("/login") =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn browser_key(master: &MasterKey, cookie: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &master.0);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"tessera oidc browser\0");
    ctx.update(cookie.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    Digest(out).to_hex()
}

fn flow_id(state: &str) -> String {
    Digest::of(state).to_hex()
}

/// Records a flow about to be sent to the provider; expired flows are
/// removed on the way.
pub async fn save_flow(
    db: &Db,
    master: &MasterKey,
    browser_cookie: &str,
    state: &str,
    secrets: &FlowSecrets,
    return_to: &str,
) -> Result<(), Error> {
    let now = clock::now();
    oidc_login::Entity::delete_many()
        .filter(oidc_login::Column::ExpiresAt.lt(now))
        .exec(&db.write)
        .await?;
    let id = flow_id(state);
    let plain = serde_json::to_vec(secrets).map_err(|e| Error::Internal(e.into()))?;
    let sealed = crate::jwt::keys::seal(master, &id, &plain);
    oidc_login::Entity::insert(oidc_login::ActiveModel {
        id: Set(id),
        browser: Set(browser_key(master, browser_cookie)),
        sealed: Set(STANDARD.encode(sealed)),
        return_to: Set(safe_return_to(Some(return_to))),
        created_at: Set(now),
        expires_at: Set(now + FLOW_LIFETIME),
    })
    .exec_without_returning(&db.write)
    .await?;
    Ok(())
}

/// Takes the flow of a callback's `state`, once: whichever instance gets
/// it first deletes it, and every later callback with that `state` is refused.
pub async fn take_flow(
    db: &Db,
    master: &MasterKey,
    browser_cookie: Option<&str>,
    state: &str,
) -> Result<Result<Flow, FlowRefusal>, Error> {
    if state.is_empty() || state.len() > 512 {
        return Ok(Err(FlowRefusal::Unknown));
    }
    let id = flow_id(state);
    let Some(row) = oidc_login::Entity::find_by_id(id.clone())
        .one(&db.write)
        .await?
    else {
        return Ok(Err(FlowRefusal::Unknown));
    };
    let taken = oidc_login::Entity::delete_many()
        .filter(oidc_login::Column::Id.eq(id.as_str()))
        .exec(&db.write)
        .await?;
    if taken.rows_affected != 1 || row.expires_at <= clock::now() {
        return Ok(Err(FlowRefusal::Unknown));
    }
    let same_browser = browser_cookie.is_some_and(|c| {
        constant_time::verify_slices_are_equal(
            browser_key(master, c).as_bytes(),
            row.browser.as_bytes(),
        )
        .is_ok()
    });
    if !same_browser {
        return Ok(Err(FlowRefusal::OtherBrowser));
    }
    let sealed = STANDARD
        .decode(&row.sealed)
        .map_err(|e| Error::Internal(e.into()))?;
    let plain = crate::jwt::keys::open(master, &id, &sealed).map_err(Error::Internal)?;
    let secrets = serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.into()))?;
    Ok(Ok(Flow {
        secrets,
        return_to: row.return_to,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_pages_are_returned_to() {
        for (raw, want) in [
            (Some("/tokens/abc?x=1"), "/tokens/abc?x=1"),
            (Some("/"), "/"),
            (None, "/"),
            (Some("https://evil.example/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("tokens"), "/"),
            (Some("/login/oidc"), "/"),
            (Some("/a\nb"), "/"),
        ] {
            assert_eq!(safe_return_to(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn browser_keys_depend_on_the_master_key_and_the_cookie() {
        let a = MasterKey([1; 32]);
        let b = MasterKey([2; 32]);
        assert_eq!(browser_key(&a, "x"), browser_key(&a, "x"));
        assert_ne!(browser_key(&a, "x"), browser_key(&b, "x"));
        assert_ne!(browser_key(&a, "x"), browser_key(&a, "y"));
        assert_ne!(
            browser_key(&a, "x"),
            crate::domain::sessions::session_key(&a, "x"),
            "not usable as a session key"
        );
    }
}
