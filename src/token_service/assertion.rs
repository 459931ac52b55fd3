//! Client authentication with a signed assertion (`private_key_jwt`, RFC 7523
//! §2.2): the client's registered keys are parsed once and cached per client
//! (invalidated through the change feed, like the secret cache), the
//! assertion is checked by `jwt::client_keys`, and its `jti` is handed back
//! to be recorded — with the token it buys, or alone — so that it is accepted
//! once, on every instance.

use std::sync::Arc;

use std::time::Duration;

use moka::sync::Cache;
use time::OffsetDateTime;

use crate::{
    domain::{Error, client_keys},
    jwt::client_keys::{ClientKeys, verify_assertion},
    storage::{Db, entities::principal, recorder::JtiClaim},
};

/// The longest assertion looked at.
const MAX_ASSERTION_LEN: usize = 16 * 1024;
/// How long parsed keys are reused without a change notification.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// A client's keys as last read, or that it has none (so unknown clients do
/// not cost a database read each).
struct CachedKeys {
    epoch: u64,
    found: Option<Arc<ClientKeyEntry>>,
}

struct ClientKeyEntry {
    machine: Arc<principal::Model>,
    keys: ClientKeys,
}

/// Authenticates clients by assertion; `TokenService` holds one.
pub struct AssertionAuth {
    db: Db,
    issuer: String,
    cache: Cache<String, Arc<CachedKeys>>,
}

impl AssertionAuth {
    pub fn new(db: Db, issuer: String) -> Self {
        Self {
            db,
            issuer,
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }

    /// The enabled machine user `client_id` if `assertion` is a fresh
    /// assertion signed by one of its keys for `endpoint` (its URL) or the
    /// issuer, with its `jti`, which is not accepted until recorded. `None`
    /// for every refusal, whatever the reason, which is logged at debug
    /// level without the assertion.
    pub async fn authenticate(
        &self,
        client_id: &str,
        assertion: &str,
        endpoint: &str,
    ) -> Result<Option<(Arc<principal::Model>, JtiClaim)>, Error> {
        if assertion.len() > MAX_ASSERTION_LEN {
            tracing::debug!(client_id, "client assertion refused: too long");
            return Ok(None);
        }
        let Some(entry) = self.keys_of(client_id).await? else {
            tracing::debug!(
                client_id,
                "client assertion refused: no such client or no keys"
            );
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let audiences = [endpoint, self.issuer.as_str()];
        let verified = match verify_assertion(assertion, &entry.keys, client_id, &audiences, now) {
            Ok(verified) => verified,
            Err(why) => {
                tracing::debug!(client_id, reason = ?why, "client assertion refused");
                return Ok(None);
            }
        };
        if !entry.machine.enabled {
            tracing::debug!(client_id, "client assertion refused: client disabled");
            return Ok(None);
        }
        // `verify_assertion` bounds `exp` to an hour ahead; a refusal all the same.
        let Ok(expires_at) = OffsetDateTime::from_unix_timestamp(verified.exp) else {
            tracing::debug!(client_id, "client assertion refused: exp out of range");
            return Ok(None);
        };
        let claim = JtiClaim::new(entry.machine.id, verified.jti, expires_at);
        Ok(Some((entry.machine.clone(), claim)))
    }

    async fn keys_of(&self, client_id: &str) -> Result<Option<Arc<ClientKeyEntry>>, Error> {
        let feed = &self.db.changes;
        if feed.cache_usable()
            && let Some(hit) = self.cache.get(client_id)
            && hit.epoch == feed.epoch()
        {
            return Ok(hit.found.clone());
        }
        // Read the epoch before the database, so a change racing with the
        // read leaves the entry stale rather than wrong.
        let epoch = feed.epoch();
        let found = match client_keys::for_client(&self.db.read, client_id).await? {
            None => None,
            Some((machine, jwks)) => Some(Arc::new(ClientKeyEntry {
                machine: Arc::new(machine),
                keys: ClientKeys::parse(&jwks).map_err(Error::Internal)?,
            })),
        };
        if feed.cache_usable() {
            self.cache.insert(
                client_id.to_owned(),
                Arc::new(CachedKeys {
                    epoch,
                    found: found.clone(),
                }),
            );
        }
        Ok(found)
    }
}
