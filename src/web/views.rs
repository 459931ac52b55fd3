//! Page pieces several rooms show: token rows, scope choices and lifetimes on
//! the token forms, the shown-once secret page and the confirmation page.

use askama::Template;

use super::{
    page::{FormData, Layout, ago, fmt_opt, fmt_time, relative},
    reveal::Reveal,
};
use crate::{
    domain::{
        self, TokenKind, TokenStatus, principals, scopes,
        tokens::{Lifetime, TokenView},
    },
    http::errors::WebError,
    secret::Secret,
    state::AppState,
    storage::entities::principal,
};

/// A token as a table row or detail page shows it: every value a string.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: &'static str,
    /// "personal", "machine", "client credentials".
    pub kind_label: &'static str,
    pub owner: String,
    pub owner_is_machine: bool,
    pub owner_id: String,
    pub scopes: String,
    pub status: &'static str,
    /// Like `status`, but a regenerated token reads "replaced".
    pub status_label: &'static str,
    pub status_class: &'static str,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub expires_rel: String,
    /// Active and expiring within 14 days.
    pub warn: bool,
    pub last_used: String,
    pub last_used_ip: String,
    pub revoked: String,
    pub revoked_by: String,
    pub replaced_by: String,
    pub revoked_flag: bool,
    /// When a regenerated token in its grace period stops working ("" otherwise).
    pub rotating: String,
    /// Active: it can be revoked or regenerated.
    pub active: bool,
    /// `…xQgw`, or empty for a token issued before hints were recorded.
    pub hint: String,
}

impl From<&TokenView> for TokenRow {
    fn from(t: &TokenView) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            description: t.description.clone(),
            kind: t.kind.as_str(),
            kind_label: match t.kind {
                TokenKind::Personal => "personal",
                TokenKind::Machine => "machine",
                TokenKind::ClientCredentials => "client credentials",
            },
            owner: t.owner.username.clone(),
            owner_is_machine: t.owner.kind == domain::PrincipalKind::Machine,
            owner_id: t.owner.id.to_string(),
            scopes: t.scopes.join(" "),
            status: t.status.as_str(),
            status_label: if t.replaced_by.is_some() {
                "replaced"
            } else {
                t.status.as_str()
            },
            status_class: if t.replaced_by.is_some() {
                "replaced"
            } else {
                t.status.as_str()
            },
            active: t.status == TokenStatus::Active,
            created: fmt_time(t.created_at),
            created_by: if t.kind == TokenKind::ClientCredentials {
                format!("the client credentials grant, {}", t.owner.username)
            } else {
                t.created_by
                    .as_ref()
                    .map(|p| p.username.clone())
                    .unwrap_or_else(|| "command line".into())
            },
            expires: fmt_time(t.expires_at),
            expires_rel: match t.status {
                TokenStatus::Active => format!("expires {}", relative(t.expires_at)),
                TokenStatus::Expired => format!("expired {}", relative(t.expires_at)),
                TokenStatus::Revoked => String::new(),
            },
            // Client-credentials tokens live minutes by design: no warning.
            warn: t.kind != TokenKind::ClientCredentials && t.expires_within(14 * 86400),
            last_used: t
                .last_used_at
                .map(|u| format!("{} ({})", fmt_time(u), ago(u)))
                .unwrap_or_else(|| "never".into()),
            last_used_ip: t.last_used_ip.clone().unwrap_or_default(),
            revoked: fmt_opt(t.revoked_at),
            revoked_by: t
                .revoked_by
                .as_ref()
                .map(|p| p.username.clone())
                .unwrap_or_default(),
            replaced_by: t.replaced_by.map(|u| u.to_string()).unwrap_or_default(),
            revoked_flag: t.status == TokenStatus::Revoked,
            rotating: t.grace_until().map(fmt_time).unwrap_or_default(),
            hint: t.hint.clone().unwrap_or_default(),
        }
    }
}

/// A scope checkbox.
pub struct ScopeChoice {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

/// The lifetime presets the policy allows, plus "custom".
pub fn presets(max_seconds: i64) -> Vec<u32> {
    [7u32, 30, 60, 90, 365]
        .into_iter()
        .filter(|d| i64::from(*d) * 86400 <= max_seconds)
        .collect()
}

/// The scopes `owner` may hold, ticked where `chosen` has them.
pub async fn scope_choices(
    state: &AppState,
    owner: &principal::Model,
    chosen: &[String],
) -> Result<Vec<ScopeChoice>, WebError> {
    Ok(scopes::list(&state.db.read)
        .await?
        .into_iter()
        .filter(|s| principals::permits(owner, &s.name))
        .map(|s| ScopeChoice {
            checked: chosen.contains(&s.name),
            name: s.name,
            description: s.description,
        })
        .collect())
}

/// The lifetime chosen in a token form: a preset number of days, or a custom
/// date (the token expires at 00:00 UTC that day).
pub fn lifetime_from(form: &FormData) -> Result<Lifetime, WebError> {
    match form.get("lifetime").unwrap_or("") {
        "custom" => {
            let raw = form.text("expires_on").ok_or_else(|| {
                domain::Error::invalid("expiry date", "choose a date for a custom lifetime")
            })?;
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(raw, &fmt)
                .map_err(|_| domain::Error::invalid("expiry date", "is not a date (YYYY-MM-DD)"))?;
            Ok(Lifetime::Until(date.midnight().assume_utc()))
        }
        days => {
            let days: i64 = days.parse().map_err(|_| {
                domain::Error::invalid("lifetime", "choose one of the lifetimes offered")
            })?;
            // A date typed while a preset stays chosen must not silently
            // give the preset's lifetime.
            if form.text("expires_on").is_some() {
                return Err(domain::Error::invalid(
                    "expiry date",
                    format!("you typed a date but chose {days} days: choose “Custom date” to use the date, or clear it"),
                )
                .into());
            }
            Ok(Lifetime::Seconds(days.saturating_mul(86400)))
        }
    }
}

/// The shown-once page for a token just made (or regenerated): what it is,
/// and the secret to keep sealed until that page opens it.
pub fn token_reveal(
    view: &TokenView,
    title: String,
    done_url: String,
    done_label: &str,
    section: &str,
) -> (Reveal, Secret<String>) {
    let page = Reveal {
        title,
        what: match view.kind {
            domain::TokenKind::Machine => "machine token".into(),
            _ => "personal access token".into(),
        },
        facts: vec![
            ("Name".into(), view.name.clone()),
            ("Scopes".into(), view.scopes.join(" ")),
            ("Expires".into(), fmt_time(view.expires_at)),
            ("Listed as".into(), view.hint.clone().unwrap_or_default()),
        ],
        done_url,
        done_label: done_label.into(),
        section: section.into(),
        item_url: None,
        example: None,
    };
    (page, Secret::new(view.exposed_token().to_owned()))
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub l: Layout,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
    /// The one-time nonce, when confirming makes something (regenerate).
    pub nonce: Option<String>,
    /// Hidden fields the confirmed form sends (e.g. `enabled=false`).
    pub fields: Vec<(String, String)>,
}

/// A client secret as a machine user's pages list it.
pub struct SecretRow {
    pub id: String,
    /// `tsc_DEBK…xQgw`, or empty for a secret made before hints were recorded.
    pub hint: String,
    pub created: String,
    pub last_used: String,
    /// When a replaced secret stops working ("" for a current one).
    pub expires: String,
}

impl From<&principals::SecretInfo> for SecretRow {
    fn from(s: &principals::SecretInfo) -> Self {
        Self {
            id: s.id.to_string(),
            hint: s.hint.clone().unwrap_or_default(),
            created: format!("{} ({})", fmt_time(s.created_at), ago(s.created_at)),
            last_used: fmt_opt(s.last_used_at),
            expires: s.expires_at.map(fmt_time).unwrap_or_default(),
        }
    }
}

impl ConfirmPage {
    /// Revoking a token is asked first, in the same words wherever it is offered.
    pub fn revoke(l: Layout, title: String, action: String, cancel: String) -> Self {
        Self {
            l,
            title,
            message: "Anything using this token loses access at once. This cannot be undone; the token stays listed as revoked.".into(),
            action,
            button: "Revoke token",
            cancel,
            danger: true,
            nonce: None,
            fields: vec![],
        }
    }

    /// Removing one of `machine`'s client secrets.
    pub fn remove_secret(
        l: Layout,
        machine: &str,
        secret: &principals::SecretInfo,
        action: String,
        cancel: String,
    ) -> Self {
        let name = secret.hint.clone().unwrap_or_else(|| "this secret".into());
        Self {
            l,
            title: format!("Remove client secret {name} of “{machine}”?"),
            message: format!(
                "Anything that authenticates with it (created {}) stops getting tokens at once. Tokens already issued keep working until they expire. This cannot be undone.",
                fmt_time(secret.created_at)
            ),
            action,
            button: "Remove secret",
            cancel,
            danger: true,
            nonce: None,
            fields: vec![],
        }
    }
}
