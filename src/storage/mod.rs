//! The storage seam: connections to SQLite or PostgreSQL, migrations, write
//! transactions, and (in `changes`) the feed that tells every instance when
//! cached authorisation is stale.
//!
//! SQLite runs in WAL mode with a pool of readers and two writer connections:
//! sea-orm's, and the token recorder's own (`recorder`), which take turns
//! through SQLite's write lock ([`WriteTransactions`]). On PostgreSQL both
//! handles are the same pool.

mod changes;
pub mod counters;
pub mod entities;
pub mod outage;
pub mod recorder;

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqlxPostgresConnector, SqlxSqliteConnector, Statement, TransactionError, TransactionTrait,
};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use changes::{CHANGE_CHANNEL, Change, ChangeFeed, LISTENER_APPLICATION_NAME, announce};

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

/// Bytes the WAL file is cut back to when it starts over. It grows past its
/// usual 16 MiB only while a reader holds an old snapshot (a backup, say)
/// and would otherwise keep the largest size it ever reached.
pub(crate) const WAL_KEEP_BYTES: i64 = 32 * 1024 * 1024;

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
            .after_release(release_clean)
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
                    .pragma("journal_size_limit", WAL_KEEP_BYTES.to_string())
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
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            // The pool retried for `ACQUIRE_TIMEOUT` (a database still
            // starting comes up meanwhile) and kept only that it timed out:
            // one more attempt tells why ("connection refused", say).
            Err(sqlx::Error::PoolTimedOut) => {
                use sqlx::Connection as _;
                let why = match tokio::time::timeout(
                    ACQUIRE_TIMEOUT / 2,
                    sqlx::PgConnection::connect_with(&options),
                )
                .await
                {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        "it did not answer in time".to_owned()
                    }
                    Err(_) => "it does not answer".to_owned(),
                };
                anyhow::bail!(
                    "cannot connect to database (TESSERA_DATABASE_URL) within {} s: {why}",
                    ACQUIRE_TIMEOUT.as_secs()
                );
            }
            Err(e) => {
                anyhow::bail!("cannot connect to database (TESSERA_DATABASE_URL): {e}")
            }
        };
        let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        Ok(Self {
            read: conn.clone(),
            write: conn,
            changes: Arc::new(ChangeFeed::postgres(pool, options)),
            sqlite_file: None,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.changes.pg_pool().is_some()
    }

    /// A writer for the last writes, once the HTTP server has stopped. On
    /// PostgreSQL a connection of its own, opened now: the pool's were opened
    /// on whichever runtime first needed them, the HTTP workers' among them,
    /// and those are shut down by now, which fails any I/O on their
    /// connections ("a Tokio 1.x context was found, but it is being
    /// shutdown"). A SQLite connection runs on a thread of its own.
    pub async fn writer_after_server(&self) -> anyhow::Result<DatabaseConnection> {
        let Some(pool) = self.changes.pg_pool() else {
            return Ok(self.write.clone());
        };
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with((*pool.connect_options()).clone())
            .await
            .context("cannot connect to the database")?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    }

    /// Applies pending migrations. Processes that start together take
    /// turns, so each migration runs once and the others find nothing left
    /// to do: on PostgreSQL through a session advisory lock, on SQLite
    /// through a lock file beside the database.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let Some(pool) = self.changes.pg_pool() else {
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
            let applied = self
                .migrate_sqlite_atomically()
                .await
                .context("cannot apply database migrations");
            drop(turn);
            return applied;
        };
        let mut lock = pool
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

    /// SQLite's DDL is transactional, but sea-orm's migrator runs it
    /// statement by statement there: a migration cut short (a full disk, a
    /// crash) left tables behind and no record of them, and every start after
    /// failed on "table already exists". Here all pending migrations and
    /// their records commit together or not at all, as on PostgreSQL.
    async fn migrate_sqlite_atomically(&self) -> Result<(), DbErr> {
        // Nothing to do, nothing to lock: a command beside a busy server
        // does not wait for the write lock.
        if Migrator::get_pending_migrations(&self.write)
            .await?
            .is_empty()
        {
            return Ok(());
        }
        // The migrate lock keeps other migrators out; the first statement
        // takes the write lock (the tables `begin_write` touches may not
        // exist yet).
        #[allow(clippy::disallowed_methods)]
        let tx = self.write.begin().await?;
        tx.execute_unprepared("PRAGMA user_version = 0").await?;
        Migrator::up(&tx, None).await?;
        tx.commit().await
    }

    /// Whether the database serves reads and writes now: it answers, a
    /// PostgreSQL server is not a read-only standby (or set read-only), and
    /// no write failed lately for a full disk or a read-only database.
    pub async fn ready(&self) -> bool {
        let answers = if self.is_postgres() {
            let writable = self
                .read
                .query_one(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT current_setting('transaction_read_only') = 'off' AS writable",
                ))
                .await;
            matches!(writable, Ok(Some(row)) if row.try_get::<bool>("", "writable").unwrap_or(false))
        } else {
            self.read.execute_unprepared("SELECT 1").await.is_ok()
        };
        answers && !outage::writes_refused_lately()
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

/// Decides whether a SQLite connection given back may be kept: not when
/// SQLite still holds it in a transaction, or sqlx counts one it does not. A
/// COMMIT that fails (a full disk) leaves the two disagreeing, and the
/// connection, kept, took every later write into a transaction that never
/// committed: answered as done, never stored, the write lock held for good.
/// Closing it rolls back whatever is open and frees the lock; the pool opens
/// a fresh one. (Any rollback queued for a dropped transaction has run by
/// now: the connection's thread takes commands in order.)
pub fn release_clean(
    conn: &mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let autocommit = {
            let mut handle = conn.lock_handle().await?;
            // SAFETY: the handle is open and locked for this thread until
            // the guard drops; sqlite3_get_autocommit only reads its state.
            unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) != 0 }
        };
        let clean = autocommit && !sqlx::Connection::is_in_transaction(conn);
        if !clean {
            tracing::warn!(
                sqlite_autocommit = autocommit,
                "a database connection was given back inside a transaction (after a failed commit): closed, its transaction rolled back"
            );
        }
        Ok(clean)
    })
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
                // The error that ended it is the one to report: after a full
                // disk SQLite has rolled back already, and the ROLLBACK fails
                // ("no transaction is active"). The connection is checked
                // when it is given back (`release_clean`).
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(error = %rollback, "rollback after a failed transaction");
                }
                Err(TransactionError::Transaction(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
