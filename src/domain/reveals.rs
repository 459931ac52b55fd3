//! One-time form nonces and shown-once reveals (for the web pages, but kept
//! in the database so every instance behind a load balancer agrees).
//!
//! A form that creates something carries a nonce bound to the session.
//! Posting claims it: a second post of the same form (Reload, Back and
//! resubmit, a double click) finds it used and creates nothing. When the
//! creation made a secret, the secret is sealed under the master key in the
//! nonce's row for `REVEAL_LIFETIME`; the page the 303 leads to opens it
//! once and clears it, so reloading that page cannot show it again.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use time::Duration;

use super::{Error, clock, sessions};
use crate::{
    jwt::keys::{open, seal},
    secret::{MasterKey, Secret},
    storage::{Db, entities::form_nonce},
};

/// A form stays postable as long as its session can live.
pub const NONCE_LIFETIME: Duration = sessions::ABSOLUTE_TIMEOUT;
/// Nonces of one session not yet posted, at most: the oldest go first (a
/// form left open that long is sent again from a fresh page).
const PER_SESSION: u64 = 50;

/// A secret waits this long for the page that shows it.
pub const REVEAL_LIFETIME: Duration = Duration::minutes(5);

/// The associated data a sealed secret is bound to: its nonce, so a sealed
/// value cannot be moved to another row.
fn aad(nonce: &str) -> String {
    format!("reveal:{nonce}")
}

/// A new nonce for a form shown to `session_key`. Expired rows (and secrets
/// past their reveal time) are cleared on the way, so the table stays small.
pub async fn issue(db: &Db, session_key: &str) -> Result<String, Error> {
    let now = clock::now();
    form_nonce::Entity::delete_many()
        .filter(form_nonce::Column::ExpiresAt.lte(now))
        .exec(&db.write)
        .await?;
    form_nonce::Entity::update_many()
        .col_expr(
            form_nonce::Column::Sealed,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .filter(form_nonce::Column::Sealed.is_not_null())
        .filter(form_nonce::Column::RevealUntil.lte(now))
        .exec(&db.write)
        .await?;
    // A session holds at most `PER_SESSION` nonces not yet posted: showing
    // forms in a loop must not grow the table (or the work above) without end.
    let surplus: Vec<String> = form_nonce::Entity::find()
        .select_only()
        .column(form_nonce::Column::Id)
        .filter(form_nonce::Column::SessionId.eq(session_key))
        .filter(form_nonce::Column::UsedAt.is_null())
        .order_by_desc(form_nonce::Column::CreatedAt)
        .offset(PER_SESSION - 1)
        .limit(PER_SESSION)
        .into_tuple()
        .all(&db.write)
        .await?;
    if !surplus.is_empty() {
        form_nonce::Entity::delete_many()
            .filter(form_nonce::Column::Id.is_in(surplus))
            .exec(&db.write)
            .await?;
    }
    let nonce = crate::secret::random_token();
    form_nonce::ActiveModel {
        id: Set(nonce.clone()),
        session_id: Set(session_key.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + NONCE_LIFETIME),
        used_at: Set(None),
        done_url: Set(None),
        page: Set(None),
        sealed: Set(None),
        reveal_until: Set(None),
    }
    .insert(&db.write)
    .await?;
    Ok(nonce)
}

/// What posting a nonce found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: go ahead.
    Fresh,
    /// Already posted and done: what it made lives at `done_url`, and its
    /// secret, if it made one, waits unseen on its page when `unseen`.
    Done { done_url: String, unseen: bool },
    /// Already posted and still being handled after [`CLAIM_WAIT`].
    Busy,
    /// Not a nonce of this session, or expired.
    Unknown,
}

/// How long a second post of a form waits for the first to finish (a
/// double click): then it can be answered with what the first made.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Claims `nonce` for `session_key`, atomically: of two posts at once, one
/// gets `Fresh`, and the other waits for it to finish (or be refused, which
/// frees the nonce for it), looking with reads rather than holding SQLite's
/// one writer.
pub async fn claim(db: &Db, session_key: &str, nonce: &str) -> Result<Claim, Error> {
    let deadline = std::time::Instant::now() + CLAIM_WAIT;
    loop {
        let now = clock::now();
        let claimed = form_nonce::Entity::update_many()
            .col_expr(form_nonce::Column::UsedAt, Expr::value(Some(now)))
            .filter(form_nonce::Column::Id.eq(nonce))
            .filter(form_nonce::Column::SessionId.eq(session_key))
            .filter(form_nonce::Column::UsedAt.is_null())
            .filter(form_nonce::Column::ExpiresAt.gt(now))
            .exec(&db.write)
            .await?;
        if claimed.rows_affected == 1 {
            return Ok(Claim::Fresh);
        }
        let mut store = &db.write;
        loop {
            let Some(row) = find(store, session_key, nonce).await? else {
                return Ok(Claim::Unknown);
            };
            if let Some(done_url) = row.done_url {
                let unseen = row.sealed.is_some() && row.reveal_until.is_some_and(|u| u > now);
                return Ok(Claim::Done { done_url, unseen });
            }
            if row.used_at.is_none() {
                // Released: the form was refused. Claim it for this post.
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Ok(Claim::Busy);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            store = &db.read;
        }
    }
}

/// Makes a claimed nonce postable again: the form was refused (bad input)
/// and nothing was made, so the corrected form may be sent with it.
pub async fn release(db: &Db, session_key: &str, nonce: &str) -> Result<(), Error> {
    form_nonce::Entity::update_many()
        .col_expr(
            form_nonce::Column::UsedAt,
            Expr::value(Option::<time::OffsetDateTime>::None),
        )
        .filter(form_nonce::Column::Id.eq(nonce))
        .filter(form_nonce::Column::SessionId.eq(session_key))
        .filter(form_nonce::Column::DoneUrl.is_null())
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Records where what the form made lives and, when it made a secret, keeps
/// the secret sealed for the one page that shows it.
pub async fn finish(
    db: &Db,
    master: &MasterKey,
    session_key: &str,
    nonce: &str,
    done_url: &str,
    reveal: Option<(String, &Secret<String>)>,
) -> Result<(), Error> {
    let now = clock::now();
    let (page, sealed, until) = match reveal {
        Some((page, secret)) => (
            Some(page),
            Some(seal(master, &aad(nonce), secret.expose().as_bytes())),
            Some(now + REVEAL_LIFETIME),
        ),
        None => (None, None, None),
    };
    form_nonce::Entity::update_many()
        .col_expr(form_nonce::Column::DoneUrl, Expr::value(Some(done_url)))
        .col_expr(form_nonce::Column::Page, Expr::value(page))
        .col_expr(form_nonce::Column::Sealed, Expr::value(sealed))
        .col_expr(form_nonce::Column::RevealUntil, Expr::value(until))
        .filter(form_nonce::Column::Id.eq(nonce))
        .filter(form_nonce::Column::SessionId.eq(session_key))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// What the reveal page finds.
pub enum Shown {
    /// The secret, now cleared from the database: this is its one showing.
    Now {
        page: String,
        secret: Secret<String>,
    },
    /// Shown before (or expired unseen); what was made lives at the URL.
    Gone {
        page: Option<String>,
        done_url: Option<String>,
    },
    Unknown,
}

/// Opens the secret kept for `nonce`, clearing it in the same step: of two
/// requests at once, only one shows it.
pub async fn take(
    db: &Db,
    master: &MasterKey,
    session_key: &str,
    nonce: &str,
) -> Result<Shown, Error> {
    // The primary store: a row just written must be seen.
    let Some(row) = find(&db.write, session_key, nonce).await? else {
        return Ok(Shown::Unknown);
    };
    let now = clock::now();
    let live = row.reveal_until.is_some_and(|u| u > now);
    if let (Some(sealed), true) = (row.sealed.as_ref(), live) {
        let cleared = form_nonce::Entity::update_many()
            .col_expr(
                form_nonce::Column::Sealed,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .filter(form_nonce::Column::Id.eq(nonce))
            .filter(form_nonce::Column::SessionId.eq(session_key))
            .filter(form_nonce::Column::Sealed.is_not_null())
            .exec(&db.write)
            .await?;
        if cleared.rows_affected == 1 {
            let plain = open(master, &aad(nonce), sealed).map_err(Error::Internal)?;
            let secret =
                String::from_utf8(plain).map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
            return Ok(Shown::Now {
                page: row.page.unwrap_or_default(),
                secret: Secret::new(secret),
            });
        }
    }
    Ok(Shown::Gone {
        page: row.page,
        done_url: row.done_url,
    })
}

async fn find(
    db: &impl ConnectionTrait,
    session_key: &str,
    nonce: &str,
) -> Result<Option<form_nonce::Model>, Error> {
    // Nonces are base64url: anything else (a NUL from `%00` above all, which
    // PostgreSQL cannot compare) is simply unknown.
    if nonce.is_empty()
        || nonce.len() > 64
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    Ok(form_nonce::Entity::find_by_id(nonce.to_owned())
        .filter(form_nonce::Column::SessionId.eq(session_key))
        .one(db)
        .await?
        .filter(|r| r.expires_at > clock::now()))
}
