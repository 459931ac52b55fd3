//! The token service: validates presented tokens (signature through the
//! `jwt` signer, then revocation and the owner's current permissions),
//! authenticates clients, and keeps the signer's keys fresh. It sits above the
//! domain; issuing is the domain's (`domain::tokens`).
//!
//! Hot paths: validation is served from a cache keyed by the token's digest
//! and invalidated through the change feed; `last used` is coalesced in memory
//! (`usage`); client-credentials tokens are recorded by group commit
//! (`recorder`).

mod assertion;
pub mod history;
pub mod usage;

use std::{sync::Arc, time::Duration};

use moka::sync::Cache;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::jwt::{CLOCK_LEEWAY_SECS, Minted};
use crate::{
    config::{MasterKey, Settings},
    domain::{PrincipalKind, Role, ScopeSet, TokenKind, principals, signing_keys},
    jwt::{Claims, Signer, VerifyError, keys::LoadedKey},
    secret::Digest,
    storage::{
        Db,
        entities::{principal, token},
        recorder::JtiClaim,
    },
};

/// A validated token and what its owner may do with it right now.
#[derive(Debug)]
pub struct AuthInfo {
    pub token_id: Uuid,
    pub jti: String,
    pub kind: TokenKind,
    pub owner_id: Uuid,
    pub username: String,
    pub owner_kind: PrincipalKind,
    pub role: Option<Role>,
    /// The token's scopes intersected with the owner's current permissions.
    pub scopes: ScopeSet,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    /// The end of the grace period of a regenerated token: refused from then
    /// on, also when served from a cache.
    pub revokes_at: Option<OffsetDateTime>,
    /// The token's `aud`: the default audience or a resource server's.
    pub audience: String,
}

impl AuthInfo {
    /// Whether the token may still be used at `now`, and why not.
    fn usable_at(&self, now: OffsetDateTime) -> Result<(), Rejection> {
        if self.exp <= now.unix_timestamp() {
            Err(Rejection::Expired)
        } else if self.revokes_at.is_some_and(|t| t <= now) {
            Err(Rejection::Revoked)
        } else {
            Ok(())
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    pub fn is_admin(&self) -> bool {
        self.owner_kind == PrincipalKind::User && self.role == Some(Role::Admin)
    }
}

/// Why a token was refused. Callers show one generic message; the variant is
/// for logs and metrics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("malformed token")]
    Malformed,
    #[error("signature or claims invalid")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("token unknown")]
    Unknown,
    #[error("owner disabled or deleted")]
    OwnerInactive,
    /// The database cannot serve now: no verdict on the token (a 503).
    #[error("temporarily unavailable")]
    Unavailable,
    /// Reading the token's record failed otherwise: no verdict either (a 500).
    #[error("internal error")]
    Internal,
}

impl Rejection {
    /// What a failed read of the token's record or keys makes of it.
    fn failed(e: &anyhow::Error) -> Self {
        let outage = e
            .downcast_ref::<sea_orm::DbErr>()
            .is_some_and(crate::storage::outage::is_outage)
            || matches!(
                e.downcast_ref::<crate::domain::Error>(),
                Some(crate::domain::Error::Unavailable(_))
            );
        if outage {
            Self::Unavailable
        } else {
            Self::Internal
        }
    }
}

impl Rejection {
    /// The reason a refused use is recorded with, for refusals of a token
    /// that was identified (its signature verified).
    pub fn reason(&self) -> Option<history::Refused> {
        match self {
            Self::Expired => Some(history::Refused::Expired),
            Self::Revoked => Some(history::Refused::Revoked),
            Self::OwnerInactive => Some(history::Refused::OwnerInactive),
            _ => None,
        }
    }
}

/// A refused token, and which one it was when that is known.
#[derive(Debug)]
pub struct Refusal {
    pub rejection: Rejection,
    pub token: Option<usage::Seen>,
}

impl Refusal {
    fn anonymous(rejection: Rejection) -> Self {
        Self {
            rejection,
            token: None,
        }
    }

    /// Records this refusal as a use of the token, when it is identifiable.
    pub fn record(&self, tracker: &usage::UsageTracker, how: usage::UseOf<'_>) {
        if let (Some(token), Some(reason)) = (&self.token, self.rejection.reason()) {
            tracker.record(
                token,
                usage::UseOf {
                    refused: Some(reason),
                    ..how
                },
            );
        }
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Malformed => Self::Malformed,
            VerifyError::Expired => Self::Expired,
            VerifyError::Invalid | VerifyError::UnknownKid(_) => Self::Invalid,
        }
    }
}

/// The last key reload: when it started and whether it succeeded.
#[derive(Clone, Copy)]
struct LastReload {
    started: tokio::time::Instant,
    ok: bool,
}

struct CacheEntry {
    epoch: u64,
    info: Arc<AuthInfo>,
}

/// A client that authenticated with the secret whose digest keys the entry.
struct CachedClient {
    epoch: u64,
    machine: Arc<principal::Model>,
    secret_id: Uuid,
    /// A replaced secret stops working at the end of its grace period.
    expires_at: Option<OffsetDateTime>,
}

pub struct TokenService {
    db: Db,
    master: MasterKey,
    pub signer: Signer,
    keys_loaded_epoch: std::sync::atomic::AtomicU64,
    /// Held while keys reload, so there is one reload at a time and requests
    /// for an unknown kid wait for it (single flight).
    reload: tokio::sync::Mutex<Option<LastReload>>,
    /// Reloads done, for tests of the reload bound.
    reloads: std::sync::atomic::AtomicU64,
    cache: Cache<Digest, Arc<CacheEntry>>,
    clients: Cache<Digest, Arc<CachedClient>>,
    /// `private_key_jwt`: clients' parsed public keys, cached by client id.
    assertions: assertion::AssertionAuth,
    pub usage: usage::UsageTracker,
    /// Seconds between writes of buffered uses.
    flush_every: u64,
    flushing: tokio::sync::Mutex<()>,
    pub recorder: crate::storage::recorder::Recorder,
}

/// How long a signature verification may be reused before the token is
/// checked against the database again, even without a change notification.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// How often keys are reloaded from the database, so a rotation made
/// elsewhere (CLI, another instance) shows up well within INTERFACE's 60 s;
/// on PostgreSQL a notification makes it immediate.
pub const KEY_RELOAD_EVERY: Duration = Duration::from_secs(10);
/// Unknown kids make at most one reload per this interval, whatever their
/// number: requests wait for the next reload rather than being refused.
pub const MIN_KEY_RELOAD_GAP: Duration = Duration::from_millis(200);

impl TokenService {
    pub async fn start(
        db: Db,
        settings: &Settings,
        master: MasterKey,
    ) -> anyhow::Result<Arc<Self>> {
        signing_keys::ensure_active(&db, &master, settings.signing_alg).await?;
        let ring = signing_keys::load_ring(&db.read, &master, None).await?;
        let service = Arc::new(Self {
            recorder: crate::storage::recorder::Recorder::new(&db.write)?,
            usage: usage::UsageTracker::default(),
            flush_every: settings.usage_flush_interval.seconds.max(1) as u64,
            flushing: tokio::sync::Mutex::new(()),
            assertions: assertion::AssertionAuth::new(db.clone(), settings.public_url.clone()),
            db,
            master,
            signer: Signer::new(settings.public_url.clone(), settings.audience.clone(), ring),
            keys_loaded_epoch: std::sync::atomic::AtomicU64::new(0),
            reload: tokio::sync::Mutex::new(None),
            reloads: std::sync::atomic::AtomicU64::new(0),
            cache: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(CACHE_TTL)
                .build(),
            clients: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
        });
        Ok(service)
    }

    /// Background upkeep: key reloads and `last used` flushes. Returns at once.
    pub fn spawn_upkeep(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut seconds = 0u64;
            loop {
                tick.tick().await;
                let Some(service) = me.upgrade() else { return };
                seconds += 1;
                let keys_stale = service
                    .keys_loaded_epoch
                    .load(std::sync::atomic::Ordering::Acquire)
                    != service.db.changes.keys_epoch();
                if (keys_stale || seconds.is_multiple_of(KEY_RELOAD_EVERY.as_secs()))
                    && let Err(e) = service.reload_keys().await
                {
                    tracing::error!(error = %format!("{e:#}"), "cannot reload signing keys");
                }
                if seconds.is_multiple_of(service.flush_every) {
                    service.flush_usage().await;
                }
            }
        });
    }

    pub async fn flush_usage(&self) {
        self.flush_usage_to(&self.db.write).await;
    }

    /// The last flush, once the HTTP server has stopped.
    pub async fn flush_usage_at_exit(&self) {
        match self.db.writer_after_server().await {
            Ok(db) => self.flush_usage_to(&db).await,
            Err(e) => tracing::error!(error = %e, "cannot record token usage"),
        }
    }

    async fn flush_usage_to(&self, db: &sea_orm::DatabaseConnection) {
        // One flush at a time: the last one at shutdown must wait for a
        // periodic one under way, whose uses it would otherwise not see
        // (taken from the buffer, not yet written) and which ends with the
        // process.
        let _one = self.flushing.lock().await;
        if let Err(e) = self.usage.flush(db).await {
            tracing::error!(error = %e, "cannot record token usage");
        }
    }

    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let mut last = self.reload.lock().await;
        self.reload_locked(&mut last).await
    }

    /// Reloads the key ring; the caller holds `self.reload`.
    async fn reload_locked(&self, last: &mut Option<LastReload>) -> anyhow::Result<()> {
        let started = tokio::time::Instant::now();
        let epoch = self.db.changes.keys_epoch();
        let previous = self.signer.ring();
        let loaded = signing_keys::load_ring(&self.db.read, &self.master, Some(&previous)).await;
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *last = Some(LastReload {
            started,
            ok: loaded.is_ok(),
        });
        self.signer.replace_ring(loaded?);
        self.keys_loaded_epoch
            .store(epoch, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    pub fn ring(&self) -> Arc<crate::jwt::keys::KeyRing> {
        self.signer.ring()
    }

    pub fn issuer(&self) -> &str {
        self.signer.issuer()
    }

    pub fn audience(&self) -> &str {
        self.signer.audience()
    }

    /// Client authentication (RFC 6749 §2.3.1): the enabled machine user
    /// whose secret this is. Successful checks are cached by the secret's
    /// digest until anything about machine users or secrets changes, so the
    /// token endpoint reads nothing from the database on its hot path.
    /// `digest` is `Digest::of(secret)`, which the caller has taken already.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
        digest: Digest,
    ) -> Result<Option<Arc<principal::Model>>, crate::domain::Error> {
        debug_assert!(digest == Digest::of(secret));
        let feed = &self.db.changes;
        if feed.cache_usable()
            && let Some(hit) = self.clients.get(&digest)
            && hit.epoch == feed.epoch()
            && hit.machine.username == client_id
            && hit.expires_at.is_none_or(|t| t > OffsetDateTime::now_utc())
        {
            self.usage.touch_secret(hit.secret_id);
            return Ok(Some(hit.machine.clone()));
        }
        let epoch = feed.epoch();
        let Some(client) =
            principals::authenticate_client(&self.db.read, client_id, secret).await?
        else {
            return Ok(None);
        };
        let (machine, secret_id) = (client.machine, client.secret_id);
        let machine = Arc::new(machine);
        self.usage.touch_secret(secret_id);
        if feed.cache_usable() {
            self.clients.insert(
                digest,
                Arc::new(CachedClient {
                    epoch,
                    machine: machine.clone(),
                    secret_id,
                    expires_at: client.expires_at,
                }),
            );
        }
        Ok(Some(machine))
    }

    /// Client authentication with a signed assertion (`private_key_jwt`):
    /// the enabled machine user `client_id` if `assertion` is fresh and
    /// signed by one of its keys for `endpoint` (its URL) or the issuer, with
    /// the assertion's `jti`, to be recorded before the request is done: a
    /// replay is refused then, on any instance (see `assertion`).
    pub async fn authenticate_assertion(
        &self,
        client_id: &str,
        assertion: &str,
        endpoint: &str,
    ) -> Result<Option<(Arc<principal::Model>, JtiClaim)>, crate::domain::Error> {
        self.assertions
            .authenticate(client_id, assertion, endpoint)
            .await
    }

    /// Validates a presented token and records an accepted API call.
    pub async fn authenticate(
        &self,
        token: &str,
        ip: Option<&str>,
    ) -> Result<Arc<AuthInfo>, Rejection> {
        let info = self.validate(token).await?;
        self.usage.touch_token(info.token_id, ip);
        Ok(info)
    }

    /// Validates without recording use.
    pub async fn validate(&self, token: &str) -> Result<Arc<AuthInfo>, Rejection> {
        self.check(token).await.map_err(|r| r.rejection)
    }

    /// Validates without recording use; a refusal names the token when its
    /// signature verified, so the caller can record the refused use.
    pub async fn check(&self, token: &str) -> Result<Arc<AuthInfo>, Refusal> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err(Refusal::anonymous(Rejection::Malformed));
        }
        let digest = Digest::of(token);
        let feed = &self.db.changes;
        if feed.cache_usable()
            && let Some(entry) = self.cache.get(&digest)
            && entry.epoch == feed.epoch()
        {
            return match entry.info.usable_at(OffsetDateTime::now_utc()) {
                Ok(()) => Ok(entry.info.clone()),
                Err(rejection) => Err(Refusal {
                    rejection,
                    token: Some(usage::Seen::Id(entry.info.token_id)),
                }),
            };
        }
        // Read the epoch before the database, so a change racing with these
        // reads leaves the entry stale rather than wrong.
        let epoch = feed.epoch();
        let info = Arc::new(self.validate_uncached(token, digest).await?);
        if feed.cache_usable() {
            self.cache.insert(
                digest,
                Arc::new(CacheEntry {
                    epoch,
                    info: info.clone(),
                }),
            );
        }
        Ok(info)
    }

    async fn validate_uncached(&self, token: &str, digest: Digest) -> Result<AuthInfo, Refusal> {
        let claims = match self.verify(token).await {
            Ok(claims) => claims,
            // Expired before it was ever cached: its use is pinned on it by
            // `jti`, resolved when uses are written, not by a lookup here.
            Err(Rejection::Expired) => {
                return Err(Refusal {
                    rejection: Rejection::Expired,
                    token: self
                        .signer
                        .expired_claims(token)
                        .map(|c| usage::Seen::Jti(c.jti)),
                });
            }
            Err(e) => return Err(Refusal::anonymous(e)),
        };
        let row = token::Entity::find()
            .filter(token::Column::Jti.eq(claims.jti.as_str()))
            .one(&self.db.read)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token lookup failed");
                Refusal::anonymous(Rejection::failed(&e.into()))
            })?
            .ok_or(Refusal::anonymous(Rejection::Unknown))?;
        let audience = row.audience.as_deref().unwrap_or(self.audience());
        if !digest.matches_hex(&row.digest)
            || row.owner_id.to_string() != claims.sub
            || claims.aud != audience
        {
            return Err(Refusal::anonymous(Rejection::Invalid));
        }
        let audience = claims.aud;
        let seen = |rejection| Refusal {
            rejection,
            token: Some(usage::Seen::Id(row.id)),
        };
        // A future `revoked_at` is a grace period: valid until then.
        if row
            .revoked_at
            .is_some_and(|t| t <= OffsetDateTime::now_utc())
        {
            return Err(seen(Rejection::Revoked));
        }
        let owner = principals::find(&self.db.read, row.owner_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token owner lookup failed");
                Refusal::anonymous(Rejection::failed(&e.into()))
            })?
            .filter(|o| o.enabled)
            .ok_or_else(|| seen(Rejection::OwnerInactive))?;
        let mut scopes = ScopeSet::from_stored(&row.scopes);
        scopes.retain(|s| principals::permits(&owner, s));
        Ok(AuthInfo {
            token_id: row.id,
            jti: row.jti,
            kind: row.kind,
            owner_id: owner.id,
            username: owner.username,
            owner_kind: owner.kind,
            role: owner.role,
            scopes,
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            revokes_at: row.revoked_at,
            audience,
        })
    }

    /// Signature and claims (`jwt::Signer::verify`); a kid the signer does
    /// not know waits for one key reload before it is refused.
    pub async fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        match self.signer.verify(token) {
            Err(VerifyError::UnknownKid(kid)) => {
                self.key_after_reload(&kid).await?;
                self.signer.verify(token).map_err(Rejection::from)
            }
            other => other.map_err(Rejection::from),
        }
    }

    /// A kid we do not know may be a key created a moment ago (CLI, another
    /// instance), so a valid token is never refused for it: the request waits
    /// for one reload that starts after it arrived. Concurrent requests share
    /// that reload (single flight), and reloads start at most once per
    /// [`MIN_KEY_RELOAD_GAP`], so random kids cannot make the server reload
    /// more often; a kid still unknown after such a reload is refused.
    async fn key_after_reload(&self, kid: &str) -> Result<Arc<LoadedKey>, Rejection> {
        let arrived = tokio::time::Instant::now();
        let mut last = self.reload.lock().await;
        if let Some(key) = self.ring().by_kid.get(kid) {
            return Ok(key.clone());
        }
        if let Some(previous) = *last {
            if previous.started >= arrived {
                // That reload saw every key created before this request.
                return Err(if previous.ok {
                    Rejection::Invalid
                } else {
                    Rejection::Unavailable
                });
            }
            tokio::time::sleep_until(previous.started + MIN_KEY_RELOAD_GAP).await;
        }
        if let Err(e) = self.reload_locked(&mut last).await {
            tracing::error!(error = %format!("{e:#}"), "cannot reload signing keys");
            return Err(Rejection::failed(&e));
        }
        self.ring()
            .by_kid
            .get(kid)
            .cloned()
            .ok_or(Rejection::Invalid)
    }
}

#[cfg(test)]
mod tests;
