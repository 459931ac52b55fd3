//! Browser sessions, sign-in (with throttling) and the one-time first-admin
//! setup code. The cookie value is a random secret; the database keeps only
//! its HMAC-SHA-256 under the master key, so a copy of the database cannot be
//! turned into a working cookie.

use aws_lc_rs::{constant_time, hmac};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Actor, Error, PrincipalKind, PrincipalRef, Role, Username, audit, clock, principals};
use crate::{
    secret::{MasterKey, Secret},
    storage::{
        Db, WriteTransactions, advisory_xact_lock,
        entities::{login_attempt, principal, session, setup_code},
    },
};

/// A session ends after this long without a request…
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// …and this long after sign-in, whatever happens.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// A first-admin setup code works this long.
pub const SETUP_CODE_LIFETIME: Duration = Duration::hours(1);
/// `last_seen_at` is written at most this often.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);
/// Failed sign-ins counted over this window…
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);
/// …lock one account for one address after this many (the account still
/// works from everywhere else)…
pub const MAX_FAILURES_PER_ACCOUNT_AND_IP: u64 = 5;
/// …lock one address for every account after this many…
pub const MAX_FAILURES_PER_IP: u64 = 20;
/// …and past this many for one account from all addresses together, slow
/// every attempt at it down by a second per further failure…
pub const ACCOUNT_SLOWDOWN_AFTER: u64 = 10;
/// …up to this long: an attacker with many addresses cannot lock anyone out.
pub const MAX_ACCOUNT_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// The database key of a session: hex HMAC-SHA-256 of the cookie value.
pub fn session_key(master: &MasterKey, cookie: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &master.0);
    let tag = hmac::sign(&key, cookie.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    crate::secret::Digest(out).to_hex()
}

/// The CSRF token of the session behind `cookie`: derived, not stored, so a
/// copy of the database holds none (the prefix keeps it apart from the
/// session's id, the HMAC of the cookie alone).
fn csrf_token(master: &MasterKey, cookie: &str) -> String {
    session_key(master, &format!("csrf\0{cookie}"))
}

/// Constant-time comparison of two CSRF tokens.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    !expected.is_empty()
        && constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes()).is_ok()
}

/// A live session and the person it belongs to.
#[derive(Clone)]
pub struct Session {
    pub key: String,
    pub csrf_token: String,
    pub principal: principal::Model,
}

/// The CSRF token is a secret of the page; logs get the person only.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal_id", &self.principal.id)
            .field("username", &self.principal.username)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn is_admin(&self) -> bool {
        principals::is_admin(&self.principal)
    }

    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor {
            principal: Some(PrincipalRef {
                id: self.principal.id,
                username: self.principal.username.clone(),
            }),
            is_admin: self.is_admin(),
            ip,
            token_id: None,
        }
    }
}

/// A session just created: the cookie value appears here only.
pub struct NewSession {
    pub cookie: String,
    pub principal_id: Uuid,
}

pub(in crate::domain) async fn insert_session(
    db: &impl ConnectionTrait,
    master: &MasterKey,
    principal_id: Uuid,
    ip: Option<String>,
) -> Result<NewSession, Error> {
    let cookie = crate::secret::random_token();
    let now = clock::now();
    session::ActiveModel {
        id: Set(session_key(master, &cookie)),
        principal_id: Set(principal_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ABSOLUTE_TIMEOUT),
        ip: Set(ip),
    }
    .insert(db)
    .await?;
    Ok(NewSession {
        cookie,
        principal_id,
    })
}

/// The session behind a cookie, if it is live and its owner may still sign
/// in. Expired sessions are deleted on sight; `last_seen_at` slides at most
/// once a minute.
pub async fn lookup(db: &Db, master: &MasterKey, cookie: &str) -> Result<Option<Session>, Error> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let key = session_key(master, cookie);
    let Some(row) = session::Entity::find_by_id(key.clone())
        .one(&db.read)
        .await?
    else {
        return Ok(None);
    };
    let now = clock::now();
    if row.expires_at <= now || row.last_seen_at + IDLE_TIMEOUT <= now {
        session::Entity::delete_by_id(key).exec(&db.write).await?;
        return Ok(None);
    }
    let Some(principal) = principals::find(&db.read, row.principal_id)
        .await?
        .filter(|p| p.kind == PrincipalKind::User && p.enabled)
    else {
        session::Entity::delete_by_id(key).exec(&db.write).await?;
        return Ok(None);
    };
    if now - row.last_seen_at >= TOUCH_EVERY {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, Expr::value(now))
            .filter(session::Column::Id.eq(key.as_str()))
            .exec(&db.write)
            .await?;
    }
    Ok(Some(Session {
        key,
        csrf_token: csrf_token(master, cookie),
        principal,
    }))
}

/// Why a sign-in was refused. The message never says which of username and
/// password was wrong.
#[derive(Debug)]
pub enum LoginError {
    BadCredentials,
    /// The password was right but the account is disabled: said only to
    /// someone who knows the password, so it reveals nothing to a guesser.
    Disabled,
    Throttled,
    /// Every password check is busy: try again in a moment.
    Busy,
    Other(Error),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

/// An attempt reserved in `login_attempts` before its password is checked.
struct Reservation {
    id: Uuid,
    /// Attempts at this account in the window, from every address, this one included.
    account_attempts: u64,
}

/// The throttle's key for what was typed: case and NUL cannot dodge it.
fn attempt_username(typed: &str) -> String {
    typed.to_lowercase().replace('\0', "\u{FFFD}")
}

/// Counts this attempt before the password is checked. The row is written
/// (and committed) first and the window counted after: of any number of
/// parallel attempts, on any instance, the last one to write sees every
/// other, so no more than the limit ever reach the password check.
async fn reserve_attempt(
    db: &impl ConnectionTrait,
    username: &str,
    ip: &str,
) -> Result<Option<Reservation>, Error> {
    use sea_orm::PaginatorTrait;
    let now = clock::now();
    let since = now - THROTTLE_WINDOW;
    login_attempt::Entity::delete_many()
        .filter(login_attempt::Column::At.lt(since))
        .exec(db)
        .await?;
    let id = Uuid::now_v7();
    login_attempt::Entity::insert(login_attempt::ActiveModel {
        id: Set(id),
        username: Set(username.to_owned()),
        ip: Set(ip.to_owned()),
        at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let recent = || login_attempt::Entity::find().filter(login_attempt::Column::At.gte(since));
    let pair = recent()
        .filter(login_attempt::Column::Username.eq(username))
        .filter(login_attempt::Column::Ip.eq(ip))
        .count(db)
        .await?;
    let from_ip = if ip.is_empty() {
        0
    } else {
        recent()
            .filter(login_attempt::Column::Ip.eq(ip))
            .count(db)
            .await?
    };
    if pair > MAX_FAILURES_PER_ACCOUNT_AND_IP || from_ip > MAX_FAILURES_PER_IP {
        release_attempt(db, id).await?;
        return Ok(None);
    }
    let account_attempts = recent()
        .filter(login_attempt::Column::Username.eq(username))
        .count(db)
        .await?;
    Ok(Some(Reservation {
        id,
        account_attempts,
    }))
}

/// Forgets an attempt that succeeded or was never checked.
async fn release_attempt(db: &impl ConnectionTrait, id: Uuid) -> Result<(), Error> {
    login_attempt::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The wait before checking a password for an account under attack from
/// many addresses: it grows with the failures, but never locks the account.
pub fn account_delay(attempts: u64) -> std::time::Duration {
    let over = attempts.saturating_sub(ACCOUNT_SLOWDOWN_AFTER);
    std::time::Duration::from_secs(over).min(MAX_ACCOUNT_DELAY)
}

/// Checks the password of a user (never a machine user; never a disabled
/// one), throttled per account and address, per address, and (slowed down,
/// never locked) per account. On success the previous session (if any) is
/// deleted and a fresh one created: the session id changes at sign-in.
pub async fn sign_in(
    db: &Db,
    master: &MasterKey,
    username: &str,
    password: &str,
    ip: Option<String>,
    previous_cookie: Option<&str>,
) -> Result<NewSession, LoginError> {
    let username = username.trim();
    // Audit records keep at most 64 characters of what was typed.
    let typed: String = username.chars().take(64).collect();
    // Under a flood, refuse before touching the database.
    if principals::password_checks_saturated() {
        return Err(LoginError::Busy);
    }
    // Counted by /64 for IPv6, as client authentication is: one host holds
    // the whole block.
    let from = ip
        .as_deref()
        .map(|ip| crate::address::limit_key(Some(ip)).to_string());
    let Some(attempt) = reserve_attempt(
        &db.write,
        &attempt_username(&typed),
        from.as_deref().unwrap_or(""),
    )
    .await?
    else {
        return Err(LoginError::Throttled);
    };
    let delay = account_delay(attempt.account_attempts);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // A request dropped from here on keeps its reservation: counted as a failure.
    let found = principals::find_by_username(&db.read, username)
        .await?
        .filter(|p| p.kind == PrincipalKind::User);
    let hash = found.as_ref().and_then(|p| p.password_hash.clone());
    let Ok(password_ok) = principals::verify_password(hash, password.to_owned()).await else {
        release_attempt(&db.write, attempt.id).await?;
        return Err(LoginError::Busy);
    };
    let user = match found {
        Some(p) if password_ok && p.enabled => p,
        other => {
            let actor = Actor {
                ip: ip.clone(),
                ..Actor::system()
            };
            let reason = match &other {
                None => "unknown user",
                Some(p) if !p.enabled && password_ok => "disabled",
                Some(_) => "wrong password",
            };
            let mut details = json!({ "method": "password", "reason": reason });
            // The account, as single sign-on records it. What was typed for
            // an unknown account may be a password put in the wrong box: it
            // is not kept.
            let target = other.map(|p| {
                details["username"] = json!(typed);
                p.id.to_string()
            });
            audit::record(
                &db.write,
                &actor,
                "session.login_failed",
                "user",
                target,
                details,
            )
            .await?;
            return Err(if reason == "disabled" {
                LoginError::Disabled
            } else {
                LoginError::BadCredentials
            });
        }
    };
    let master = master.clone();
    let previous = previous_cookie.map(|c| session_key(&master, c));
    let actor = Actor {
        principal: Some(PrincipalRef {
            id: user.id,
            username: user.username.clone(),
        }),
        is_admin: principals::is_admin(&user),
        ip: ip.clone(),
        token_id: None,
    };
    let attempt_id = attempt.id;
    let new = db
        .write
        .write_transaction::<_, NewSession, Error>(|tx| {
            Box::pin(async move {
                if let Some(previous) = previous {
                    session::Entity::delete_by_id(previous).exec(tx).await?;
                }
                release_attempt(tx, attempt_id).await?;
                let new = insert_session(tx, &master, user.id, ip).await?;
                principals::record_login(tx, user.id).await?;
                audit::record(
                    tx,
                    &actor,
                    "session.login",
                    "user",
                    Some(user.id.to_string()),
                    json!({"method": "password"}),
                )
                .await?;
                Ok(new)
            })
        })
        .await
        .map_err(Error::from)?;
    Ok(new)
}

/// Ends a session on the server: the cookie stops working at once.
pub async fn sign_out(db: &Db, session: &Session, ip: Option<String>) -> Result<(), Error> {
    let key = session.key.clone();
    let actor = session.actor(ip);
    let user_id = session.principal.id;
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                session::Entity::delete_by_id(key).exec(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "session.logout",
                    "user",
                    Some(user_id.to_string()),
                    json!({}),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- first admin

/// With no administrator yet, a new one-time setup code, valid for an hour
/// (its digest is stored); `None` once an administrator exists.
pub async fn new_setup_code(db: &Db) -> Result<Option<Secret<String>>, Error> {
    if principals::any_admin(&db.read).await? {
        return Ok(None);
    }
    let code = crate::secret::random_token();
    let now = clock::now();
    setup_code::Entity::insert(setup_code::ActiveModel {
        digest: Set(crate::secret::Digest::of(&code).to_hex()),
        created_at: Set(now),
        expires_at: Set(now + SETUP_CODE_LIFETIME),
        used_at: Set(None),
    })
    .exec_without_returning(&db.write)
    .await?;
    Ok(Some(Secret::new(code)))
}

/// Whether a setup code can still be used: it exists, is unused and
/// unexpired, and there is no administrator yet.
pub async fn setup_code_usable(db: &impl ConnectionTrait, code: &str) -> Result<bool, Error> {
    if code.is_empty() || code.len() > 128 {
        return Ok(false);
    }
    let digest = crate::secret::Digest::of(code).to_hex();
    let row = setup_code::Entity::find_by_id(digest).one(db).await?;
    let live = row.is_some_and(|r| r.used_at.is_none() && r.expires_at > clock::now());
    Ok(live && !principals::any_admin(db).await?)
}

/// Creates the first administrator with a one-time setup code, marks the
/// code used and signs the new admin in, all in one transaction.
pub async fn complete_setup(
    db: &Db,
    master: &MasterKey,
    code: &str,
    username: &str,
    password: &str,
    ip: Option<String>,
) -> Result<NewSession, Error> {
    let username = Username::parse(username.trim())?;
    principals::check_password_rules(password)?;
    let hash = principals::hash_password(password.to_owned()).await?;
    let digest = crate::secret::Digest::of(code).to_hex();
    let master = master.clone();
    let new = db
        .write
        .write_transaction::<_, NewSession, Error>(|tx| {
            Box::pin(async move {
                // Two setups with different codes (each instance prints its
                // own) take turns, so the second sees the first's admin.
                advisory_xact_lock(tx, principals::ADMIN_CHANGE_LOCK).await?;
                let now = clock::now();
                let used = setup_code::Entity::update_many()
                    .col_expr(setup_code::Column::UsedAt, Expr::value(now))
                    .filter(setup_code::Column::Digest.eq(digest))
                    .filter(setup_code::Column::UsedAt.is_null())
                    .filter(setup_code::Column::ExpiresAt.gt(now))
                    .exec(tx)
                    .await?;
                if used.rows_affected != 1 {
                    return Err(Error::Forbidden(
                        "this setup link is invalid, expired or already used".into(),
                    ));
                }
                if principals::any_admin(tx).await? {
                    return Err(Error::Forbidden(
                        "an administrator already exists: sign in instead".into(),
                    ));
                }
                let mut model = principals::blank(PrincipalKind::User, username, &Actor::system());
                model.role = Set(Some(Role::Admin));
                model.password_hash = Set(Some(hash));
                let created = model
                    .insert(tx)
                    .await
                    .map_err(principals::duplicate_username)?;
                let actor = Actor {
                    principal: Some(PrincipalRef {
                        id: created.id,
                        username: created.username.clone(),
                    }),
                    is_admin: true,
                    ip: ip.clone(),
                    token_id: None,
                };
                audit::record(
                    tx,
                    &Actor {
                        ip: ip.clone(),
                        ..Actor::system()
                    },
                    "user.create",
                    "user",
                    Some(created.id.to_string()),
                    json!({"username": created.username, "role": "admin", "via": "setup"}),
                )
                .await?;
                let new = insert_session(tx, &master, created.id, ip).await?;
                principals::record_login(tx, created.id).await?;
                audit::record(
                    tx,
                    &actor,
                    "session.login",
                    "user",
                    Some(created.id.to_string()),
                    json!({"method": "password"}),
                )
                .await?;
                Ok(new)
            })
        })
        .await?;
    Ok(new)
}

/// When a timestamp lies relative to now, in words ("in 3 days", "2 hours ago").
pub fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().abs();
    let (n, unit) = if secs < 60 {
        return if d.is_positive() {
            "in less than a minute".into()
        } else {
            "just now".into()
        };
    } else if secs < 3600 {
        ((secs + 30) / 60, "minute")
    } else if secs < 86400 {
        ((secs + 1800) / 3600, "hour")
    } else {
        // Rounded: a 7-day token created a moment ago expires "in 7 days".
        ((secs + 43200) / 86400, "day")
    };
    let plural = if n == 1 { "" } else { "s" };
    if d.is_negative() {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_depend_on_the_master_key_and_the_cookie() {
        let a = MasterKey([1; 32]);
        let b = MasterKey([2; 32]);
        assert_eq!(session_key(&a, "x").len(), 64);
        assert_eq!(session_key(&a, "x"), session_key(&a, "x"));
        assert_ne!(session_key(&a, "x"), session_key(&b, "x"));
        assert_ne!(session_key(&a, "x"), session_key(&a, "y"));
    }

    #[test]
    fn csrf_tokens_are_the_sessions_own_and_not_its_id() {
        let a = MasterKey([1; 32]);
        let b = MasterKey([2; 32]);
        assert_eq!(csrf_token(&a, "x"), csrf_token(&a, "x"));
        assert_ne!(csrf_token(&a, "x"), csrf_token(&a, "y"));
        assert_ne!(csrf_token(&a, "x"), csrf_token(&b, "x"));
        assert_ne!(csrf_token(&a, "x"), session_key(&a, "x"));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", ""));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn relative_times_read_as_words() {
        let now = clock::now();
        assert_eq!(relative(now + Duration::days(3), now), "in 3 days");
        assert_eq!(relative(now - Duration::hours(1), now), "1 hour ago");
        assert_eq!(
            relative(now + Duration::days(7) - Duration::seconds(2), now),
            "in 7 days"
        );
        assert_eq!(
            relative(now + Duration::seconds(5), now),
            "in less than a minute"
        );
        assert_eq!(
            relative(now, now),
            "just now",
            "a secret created this second"
        );
    }
}
