//! The storage seam: connections to SQLite or PostgreSQL, migrations, and the
//! change feed that tells every instance when cached authorisation is stale.
//!
//! SQLite runs in WAL mode with a pool of readers and two writer connections:
//! sea-orm's, and the token recorder's own (`recorder`), which take turns
//! through SQLite's write lock ([`WriteTransactions`]). On PostgreSQL both
//! handles are the same pool.

pub mod counters;
pub mod entities;
pub mod outage;
pub mod recorder;

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqlxPostgresConnector, SqlxSqliteConnector, Statement, TransactionError, TransactionTrait,
};
use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

pub const CHANGE_CHANNEL: &str = "tessera_changes";
/// The `application_name` of each instance's change-listener connection.
pub const LISTENER_APPLICATION_NAME: &str = "tessera-listener";
/// `pg_advisory_lock` key held while migrations run ("tessera" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// Creates a directory (and its missing parents) readable by the server's
/// user only: it holds the database and the master key.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates an empty file readable by the server's user only, unless it exists.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The WAL size, in frames, at which a SQLite writer copies the WAL into the
/// database itself: a ceiling, eight times the size at which the recorder's
/// checkpointer thread (`recorder/checkpoint.rs`) has it start over.
pub(crate) const WAL_CEILING: i64 = 32_768;

#[derive(Clone)]
pub struct Db {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    pub changes: Arc<ChangeFeed>,
    /// The SQLite database's file; `None` on PostgreSQL.
    sqlite_file: Option<PathBuf>,
}

/// An exclusive lock on a file beside the SQLite database (`flock`), held
/// until dropped or until the process ends, however it ends. SQLite's own
/// locks guard transactions; these guard what spans them.
#[must_use = "the lock is released when dropped"]
pub struct FileLock(#[allow(dead_code)] std::fs::File);

/// Held by `tessera serve` on SQLite for as long as it runs, taken before
/// anything touches the database: a second server on the same file is
/// refused at start-up. It would cache what the first changes (a revoked
/// token, a deleted secret) for up to a minute, since only PostgreSQL tells
/// instances of each other's changes; and a newer one would migrate the
/// schema under the running server.
pub fn serve_alone(db_file: &Path) -> anyhow::Result<FileLock> {
    if let Some(dir) = db_file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (path, file) = lock_file(db_file, "serve")?;
    match file.try_lock() {
        Ok(()) => Ok(FileLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `tessera serve` is running on {} (it holds {}): SQLite serves one instance; run several on PostgreSQL",
            db_file.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))
        }
    }
}

/// The lock file `{database}-{purpose}.lock`, created private.
/// The lock file is beside the file SQLite really opens, so another spelling
/// of its path (a symlink, `..`) finds the same lock.
fn lock_file(db_file: &Path, purpose: &str) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let real = std::fs::canonicalize(db_file).or_else(|_| {
        // Not created yet: its directory is real, its name is as given.
        let dir = db_file.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = std::fs::canonicalize(dir.unwrap_or(Path::new(".")))?;
        Ok::<_, std::io::Error>(dir.join(db_file.file_name().unwrap_or_default()))
    });
    let db_file = real.as_deref().unwrap_or(db_file);
    let mut path = db_file.as_os_str().to_owned();
    path.push(format!("-{purpose}.lock"));
    let path = PathBuf::from(path);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    Ok((path, file))
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await
        } else {
            Self::connect_postgres(url).await
        }
    }

    async fn connect_sqlite(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid database URL (TESSERA_DATABASE_URL): {e}"))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let file = options.get_filename();
        // The token recorder writes through a connection of its own, which
        // needs a file to share with sea-orm's (and a token service that
        // forgets its keys and tokens at every restart is no use anyway).
        if file.as_os_str().is_empty() {
            anyhow::bail!(
                "the SQLite URL names no file (TESSERA_DATABASE_URL): \
                 give one, e.g. sqlite://data/tessera.db?mode=rwc"
            );
        }
        if url.contains(":memory:")
            || url.contains("mode=memory")
            || file.to_string_lossy().starts_with("file:sqlx-in-memory")
        {
            anyhow::bail!(
                "an in-memory SQLite database is not supported (TESSERA_DATABASE_URL): \
                 give a file, e.g. sqlite://data/tessera.db?mode=rwc"
            );
        }
        if url.contains("mode=rwc") {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.exists()
            {
                create_private_dir(dir).with_context(|| {
                    format!(
                        "cannot create database directory {} (TESSERA_DATABASE_URL)",
                        dir.display()
                    )
                })?;
            }
            // Created here, empty and private, so SQLite never makes it with
            // the umask's mode; its -wal and -shm files copy this file's mode.
            create_private_file(file).with_context(|| {
                format!(
                    "cannot create database {} (TESSERA_DATABASE_URL)",
                    file.display()
                )
            })?;
        }
        let open_err = |e: sqlx::Error| {
            anyhow::anyhow!(
                "cannot open database {} (TESSERA_DATABASE_URL): {e}",
                options.get_filename().display()
            )
        };
        // No ping before each use: a SQLite connection is a file and a thread
        // in this process, never stale, and the ping was a second round trip
        // to that thread for every write batch and every read.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            // The writer keeps the hot index pages of the tokens table cached
            // (so does the recorder's connection, with the same settings).
            // A commit that crosses the WAL threshold checkpoints before it
            // returns, syncing both files while its caller waits. The
            // recorder's checkpointer thread copies the WAL instead
            // (`recorder/checkpoint.rs`); the threshold is a ceiling, should
            // that thread fall behind.
            // Temporary tables and statement journals stay in memory: on disk
            // every batch created, wrote and deleted a file of its own.
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-16384")
                    .pragma("wal_autocheckpoint", WAL_CEILING.to_string())
                    .pragma("temp_store", "memory"),
            )
            .await
            .map_err(open_err)?;
        // Fail now, not on the first write, when the file is read-only.
        sqlx::query("PRAGMA user_version = 0")
            .execute(&writer)
            .await
            .map_err(open_err)?;
        let readers = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(open_err)?;
        Ok(Self {
            read: SqlxSqliteConnector::from_sqlx_sqlite_pool(readers),
            write: SqlxSqliteConnector::from_sqlx_sqlite_pool(writer),
            changes: Arc::new(ChangeFeed::default()),
            sqlite_file: Some(file.to_path_buf()),
        })
    }

    async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid database URL (TESSERA_DATABASE_URL): {e}"))?;
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone().application_name("tessera"))
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot connect to database (TESSERA_DATABASE_URL): {e}")
            })?;
        let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        Ok(Self {
            read: conn.clone(),
            write: conn,
            changes: Arc::new(ChangeFeed {
                pg: Some(PgFeed {
                    pool,
                    // Named so operators (and tests) can find the listener.
                    listen_options: options.application_name(LISTENER_APPLICATION_NAME),
                }),
                ..ChangeFeed::default()
            }),
            sqlite_file: None,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.changes.pg.is_some()
    }

    /// A writer for the last writes, once the HTTP server has stopped. On
    /// PostgreSQL a connection of its own, opened now: the pool's were opened
    /// on whichever runtime first needed them, the HTTP workers' among them,
    /// and those are shut down by now, which fails any I/O on their
    /// connections ("a Tokio 1.x context was found, but it is being
    /// shutdown"). A SQLite connection runs on a thread of its own.
    pub async fn writer_after_server(&self) -> anyhow::Result<DatabaseConnection> {
        let Some(pg) = &self.changes.pg else {
            return Ok(self.write.clone());
        };
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with((*pg.pool.connect_options()).clone())
            .await
            .context("cannot connect to the database")?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    }

    /// Applies pending migrations. Processes that start together take
    /// turns, so each migration runs once and the others find nothing left
    /// to do: on PostgreSQL through a session advisory lock, on SQLite
    /// through a lock file beside the database.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let Some(pg) = &self.changes.pg else {
            let turn = match &self.sqlite_file {
                Some(file) => {
                    let (path, lock) = lock_file(file, "migrate")?;
                    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
                        .await?
                        .with_context(|| format!("cannot lock {}", path.display()))?;
                    Some(FileLock(lock))
                }
                None => None,
            };
            let applied = Migrator::up(&self.write, None)
                .await
                .context("cannot apply database migrations");
            drop(turn);
            return applied;
        };
        let mut lock = pg
            .pool
            .acquire()
            .await
            .context("cannot connect to apply database migrations")?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await
            .context("cannot take the migration lock")?;
        let applied = Migrator::up(&self.write, None)
            .await
            .context("cannot apply database migrations");
        // Closing the connection would release the lock too; unlock so the
        // connection can go back to the pool.
        if let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await
        {
            tracing::warn!(error = %e, "cannot release the migration lock; closing its connection");
            lock.detach();
        }
        applied
    }

    pub async fn ping(&self) -> bool {
        self.read.execute_unprepared("SELECT 1").await.is_ok()
    }
}

/// How long a query waits for a PostgreSQL connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL connections idle for longer than this are pinged before use.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// Pings a PostgreSQL connection before use only when it has been idle for
/// a while, so that one left dead by a failover or a dropped TCP connection
/// is replaced before a query fails on it. One that answered within the last
/// second is taken as up: pinging it too (sqlx's default) was a second round
/// trip for every query and every batch of tokens.
pub fn ping_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for >= STALE_AFTER {
            sqlx::Connection::ping(conn).await?;
        }
        Ok(true)
    })
}

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

/// Makes transactions that take the same `key` run one after another
/// (`pg_advisory_xact_lock`, released at commit or rollback). On SQLite every
/// write transaction takes the write lock first ([`WriteTransactions`]), which
/// serialises them already.
pub async fn advisory_xact_lock(tx: &impl ConnectionTrait, key: i64) -> Result<(), sea_orm::DbErr> {
    if tx.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    tx.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Transactions that may write: use these instead of sea-orm's `begin` and
/// `transaction` (clippy refuses those).
///
/// SQLite has two writer connections, sea-orm's and the token recorder's.
/// sea-orm begins with a plain `BEGIN`, which takes no lock until the first
/// write; a transaction that reads before it writes then fails at once
/// (`SQLITE_BUSY_SNAPSHOT`, no busy timeout) if the other writer committed
/// in between. Taking the write lock first, as `BEGIN IMMEDIATE` would,
/// makes it wait its turn instead. PostgreSQL needs nothing more.
pub trait WriteTransactions {
    fn begin_write(&self) -> impl Future<Output = Result<DatabaseTransaction, DbErr>> + Send;

    /// Runs `callback` in a write transaction, committed if it returns `Ok`
    /// and rolled back otherwise (as sea-orm's `transaction`).
    fn write_transaction<F, T, E>(
        &self,
        callback: F,
    ) -> impl Future<Output = Result<T, TransactionError<E>>> + Send
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send;
}

/// A statement that writes nothing but takes SQLite's write lock.
const TAKE_WRITE_LOCK: &str = "UPDATE daily_counts SET day = day WHERE false";

impl WriteTransactions for DatabaseConnection {
    #[allow(clippy::disallowed_methods)] // the one place that may
    async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let tx = self.begin().await?;
        if tx.get_database_backend() == DbBackend::Sqlite {
            tx.execute_unprepared(TAKE_WRITE_LOCK).await?;
        }
        Ok(tx)
    }

    async fn write_transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let tx = self
            .begin_write()
            .await
            .map_err(TransactionError::Connection)?;
        match callback(&tx).await {
            Ok(value) => {
                tx.commit().await.map_err(TransactionError::Connection)?;
                Ok(value)
            }
            Err(e) => {
                tx.rollback().await.map_err(TransactionError::Connection)?;
                Err(TransactionError::Transaction(e))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn pragma(db: &DatabaseConnection, name: &str) -> String {
        let row = db
            .query_one(Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .unwrap()
            .unwrap();
        match row.try_get_by_index::<i64>(0) {
            Ok(n) => n.to_string(),
            Err(_) => row.try_get_by_index::<String>(0).unwrap(),
        }
    }

    /// The writer's settings are what the Performance section measured.
    #[tokio::test]
    async fn sqlite_writer_runs_in_wal_mode_with_temporary_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(pragma(&db.write, "journal_mode").await, "wal");
        assert_eq!(pragma(&db.write, "synchronous").await, "1"); // NORMAL
        assert_eq!(pragma(&db.write, "temp_store").await, "2"); // MEMORY
        assert_eq!(
            pragma(&db.write, "wal_autocheckpoint").await,
            WAL_CEILING.to_string()
        );
        assert_eq!(pragma(&db.write, "foreign_keys").await, "1");
    }

    /// A write transaction that reads before it writes, while another
    /// connection (as the token recorder's) wants to write: the other waits
    /// for the commit instead of committing in between, which would make
    /// the transaction's write fail (`SQLITE_BUSY_SNAPSHOT`).
    #[tokio::test]
    async fn a_write_transaction_holds_off_the_other_sqlite_writer_from_its_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let insert = |day: &str| {
            format!("INSERT INTO daily_counts (day, validations, issued) VALUES ('{day}', 0, 1)")
        };

        let tx = db.write.begin_write().await.unwrap();
        tx.execute_unprepared("SELECT count(*) FROM daily_counts")
            .await
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let other = std::thread::spawn({
            let (done, sql) = (done.clone(), insert("2026-01-02"));
            move || {
                let conn = rusqlite::Connection::open(&file).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                conn.execute(&sql, []).unwrap();
                done.store(true, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!done.load(Ordering::SeqCst), "the other writer went first");
        tx.execute_unprepared(&insert("2026-01-01")).await.unwrap();
        tx.commit().await.unwrap();
        other.join().unwrap();

        let count = db
            .read
            .query_one(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT count(*) FROM daily_counts",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(count.try_get_by_index::<i64>(0).unwrap(), 2);
    }
}
