//! The change feed: tells this instance (and, on PostgreSQL, every other one
//! through `LISTEN/NOTIFY`) that cached authorisation is stale.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use uuid::Uuid;

pub const CHANGE_CHANNEL: &str = "tessera_changes";
/// The `application_name` of each instance's change-listener connection.
pub const LISTENER_APPLICATION_NAME: &str = "tessera-listener";

/// What changed, as announced on [`CHANGE_CHANNEL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A token was revoked, or a principal or client secret changed.
    Auth,
    /// Signing keys changed (rotation).
    Keys,
}

impl Change {
    fn payload(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Keys => "keys",
        }
    }
}

/// Tells the other instances about `change`, from inside the transaction that
/// makes it: PostgreSQL delivers the notification at commit and drops it on
/// rollback, so a committed change is never left unannounced. An error fails
/// the transaction. SQLite has a single instance: nothing to send.
///
/// After the commit, call [`ChangeFeed::changed`] for this instance's caches.
pub async fn announce(tx: &impl ConnectionTrait, change: Change) -> Result<(), sea_orm::DbErr> {
    if tx.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    tx.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANGE_CHANNEL.into(), change.payload().into()],
    ))
    .await?;
    Ok(())
}

/// How often each instance sends itself a heartbeat through the channel.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A listener that has not heard its own heartbeat for this long is taken as
/// dead (a firewall or proxy may drop a connection without closing it).
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(3);

struct PgFeed {
    pool: sqlx::PgPool,
    listen_options: PgConnectOptions,
}

/// Tells this instance (and, on PostgreSQL, every other one via
/// `LISTEN/NOTIFY`) that revocations, principals or keys changed, so cached
/// authorisation must be recomputed. Each change bumps an epoch; cache entries
/// from an older epoch are ignored.
///
/// On PostgreSQL the listener proves itself with a heartbeat: while it has not
/// heard its own within [`HEARTBEAT_DEADLINE`], the feed reports the caches as
/// unusable and the listener reconnects.
pub struct ChangeFeed {
    epoch: AtomicU64,
    keys_epoch: AtomicU64,
    /// False until the listener has heard its own heartbeat, and again as soon
    /// as it fails: then nothing may be served from cache, since a change on
    /// another instance could be missed.
    listening: AtomicBool,
    /// When this instance last heard its own heartbeat (ms since `started`).
    last_beat_ms: AtomicU64,
    started: Instant,
    instance: Uuid,
    pg: Option<PgFeed>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            keys_epoch: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            last_beat_ms: AtomicU64::new(0),
            started: Instant::now(),
            instance: Uuid::new_v4(),
            pg: None,
        }
    }
}

impl ChangeFeed {
    /// The feed of an instance on PostgreSQL, listening with `options`.
    pub fn postgres(pool: sqlx::PgPool, options: PgConnectOptions) -> Self {
        Self {
            pg: Some(PgFeed {
                pool,
                // Named so operators (and tests) can find the listener.
                listen_options: options.application_name(LISTENER_APPLICATION_NAME),
            }),
            ..Self::default()
        }
    }

    /// The pool of an instance on PostgreSQL.
    pub(super) fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        self.pg.as_ref().map(|pg| &pg.pool)
    }
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn keys_epoch(&self) -> u64 {
        self.keys_epoch.load(Ordering::Acquire)
    }

    /// Whether cached authorisation may be trusted right now.
    pub fn cache_usable(&self) -> bool {
        self.pg.is_none() || self.listening.load(Ordering::Acquire)
    }

    /// This instance's caches are stale: call after committing a transaction
    /// that [`announce`]d the change (the other instances hear of it at the
    /// commit), and only when something really changed.
    pub fn changed(&self, change: Change) {
        match change {
            Change::Auth => self.epoch.fetch_add(1, Ordering::AcqRel),
            Change::Keys => self.keys_epoch.fetch_add(1, Ordering::AcqRel),
        };
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn heartbeat_payload(&self) -> String {
        format!("hb:{}", self.instance)
    }

    fn receive(&self, payload: &str, own_heartbeat: &str) {
        if payload == Change::Keys.payload() {
            self.changed(Change::Keys);
        } else if payload.starts_with("hb:") {
            if payload != own_heartbeat {
                return;
            }
            self.last_beat_ms.store(self.now_ms(), Ordering::Release);
            if !self.listening.load(Ordering::Acquire) {
                // Anything may have changed while we were not listening.
                self.changed(Change::Auth);
                self.changed(Change::Keys);
                self.listening.store(true, Ordering::Release);
                tracing::info!("change listener is up; caches are in use");
            }
        } else {
            self.changed(Change::Auth);
        }
    }

    /// Listens for other instances' changes, and sends this instance's
    /// heartbeat, until the process ends.
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(pg) = &self.pg else { return };
        // A connection of its own: through the request pool, a heartbeat
        // waits behind a saturated pool, and load alone would turn the
        // caches off (and flush them at every reconnect) just when they
        // matter most.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(HEARTBEAT_EVERY)
            .connect_lazy_with(pg.listen_options.clone());
        let feed = self.clone();
        tokio::spawn(async move {
            let beat = feed.heartbeat_payload();
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let send = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANGE_CHANNEL)
                    .bind(&beat)
                    .execute(&pool);
                // A lost heartbeat is the listener's business: it stops
                // trusting the caches when it hears none.
                match tokio::time::timeout(HEARTBEAT_EVERY, send).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "cannot send heartbeat"),
                    Err(_) => tracing::debug!("heartbeat timed out"),
                }
            }
        });
        let feed = self.clone();
        tokio::spawn(async move { feed.supervise_listener().await });
    }

    /// Runs one listening session after another; a session ends when its
    /// connection fails or when its heartbeat is overdue.
    async fn supervise_listener(self: Arc<Self>) {
        let Some(pg) = &self.pg else { return };
        loop {
            let since = self.now_ms();
            let mut session = tokio::spawn(listen(self.clone(), pg.listen_options.clone()));
            let mut check = tokio::time::interval(Duration::from_millis(200));
            let deadline = u64::try_from(HEARTBEAT_DEADLINE.as_millis()).unwrap_or(u64::MAX);
            let reason = loop {
                tokio::select! {
                    ended = &mut session => break match ended {
                        Ok(Err(e)) => format!("{e:#}"),
                        Ok(Ok(())) => "connection closed".to_owned(),
                        Err(e) => e.to_string(),
                    },
                    _ = check.tick() => {
                        let heard = self.last_beat_ms.load(Ordering::Acquire).max(since);
                        if self.now_ms().saturating_sub(heard) > deadline {
                            // The whole session goes, connection and all.
                            session.abort();
                            break "no heartbeat heard".to_owned();
                        }
                    }
                }
            };
            if self.listening.swap(false, Ordering::AcqRel) {
                tracing::warn!(%reason, "change listener lost; caches are bypassed until it is back");
            } else {
                tracing::warn!(%reason, "cannot listen for changes; retrying");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One listening session on its own connection, until that connection fails.
async fn listen(feed: Arc<ChangeFeed>, options: PgConnectOptions) -> anyhow::Result<()> {
    // A pool of one that is dropped with the session, so a dead connection is
    // never handed back to anyone.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(HEARTBEAT_DEADLINE)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool)
        .await
        .context("cannot connect the change listener")?;
    listener.eager_reconnect(false);
    listener
        .listen(CHANGE_CHANNEL)
        .await
        .context("cannot LISTEN for changes")?;
    let own = feed.heartbeat_payload();
    // `None`: the connection is gone.
    while let Some(n) = listener.try_recv().await? {
        feed.receive(n.payload(), &own);
    }
    Ok(())
}
