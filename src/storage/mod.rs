//! The storage seam: connections to SQLite or PostgreSQL, migrations, and the
//! change feed that tells every instance when cached authorisation is stale.
//!
//! SQLite runs in WAL mode with one writer connection and a pool of readers;
//! on PostgreSQL both handles are the same pool.

pub mod entities;

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector};
use sqlx::{
    postgres::{PgListener, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub const CHANGE_CHANNEL: &str = "tessera_changes";

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

#[derive(Clone)]
pub struct Db {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    pub changes: Arc<ChangeFeed>,
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
        if url.contains("mode=rwc") && !url.contains(":memory:") {
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // The writer keeps the hot index pages of the tokens table cached.
            .connect_with(options.clone().pragma("cache_size", "-16384"))
            .await
            .map_err(open_err)?;
        // Fail now, not on the first write, when the file is read-only.
        sqlx::query("PRAGMA user_version = 0")
            .execute(&writer)
            .await
            .map_err(open_err)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(open_err)?;
        Ok(Self {
            read: SqlxSqliteConnector::from_sqlx_sqlite_pool(readers),
            write: SqlxSqliteConnector::from_sqlx_sqlite_pool(writer),
            changes: Arc::new(ChangeFeed::default()),
        })
    }

    async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot connect to database (TESSERA_DATABASE_URL): {e}")
            })?;
        let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        Ok(Self {
            read: conn.clone(),
            write: conn,
            changes: Arc::new(ChangeFeed {
                pg: Some(pool),
                ..ChangeFeed::default()
            }),
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.changes.pg.is_some()
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("cannot apply database migrations")
    }

    pub async fn ping(&self) -> bool {
        self.read.execute_unprepared("SELECT 1").await.is_ok()
    }
}

/// Tells this instance (and, on PostgreSQL, every other one via
/// `LISTEN/NOTIFY`) that revocations or principals changed, so cached
/// authorisation must be recomputed. Each change bumps an epoch; cache entries
/// from an older epoch are ignored.
#[derive(Default)]
pub struct ChangeFeed {
    epoch: AtomicU64,
    keys_epoch: AtomicU64,
    /// False while the PostgreSQL listener is reconnecting: then nothing may be
    /// served from cache, since a change on another instance could be missed.
    listening: AtomicBool,
    pg: Option<sqlx::PgPool>,
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

    /// A token was revoked or a principal changed.
    pub async fn auth_changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.notify("auth").await;
    }

    /// Signing keys changed (rotation).
    pub async fn keys_changed(&self) {
        self.keys_epoch.fetch_add(1, Ordering::AcqRel);
        self.notify("keys").await;
    }

    async fn notify(&self, what: &str) {
        if let Some(pool) = &self.pg
            && let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGE_CHANNEL)
                .bind(what)
                .execute(pool)
                .await
        {
            // The other instances stop trusting their caches when their
            // listener fails; here we can only report.
            tracing::error!(error = %e, "cannot notify other instances of a change");
        }
    }

    /// Listens for other instances' changes until the process ends.
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(pool) = self.pg.clone() else { return };
        let feed = self.clone();
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANGE_CHANNEL).await {
                            tracing::warn!(error = %e, "cannot LISTEN for changes; retrying");
                        } else {
                            // Anything may have changed while we were not listening.
                            feed.epoch.fetch_add(1, Ordering::AcqRel);
                            feed.keys_epoch.fetch_add(1, Ordering::AcqRel);
                            feed.listening.store(true, Ordering::Release);
                            // `Ok(None)` or an error: the connection is gone.
                            while let Ok(Some(n)) = listener.try_recv().await {
                                if n.payload() == "keys" {
                                    feed.keys_epoch.fetch_add(1, Ordering::AcqRel);
                                } else {
                                    feed.epoch.fetch_add(1, Ordering::AcqRel);
                                }
                            }
                            feed.listening.store(false, Ordering::Release);
                            tracing::warn!(
                                "change listener disconnected; caches are bypassed until it reconnects"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot connect the change listener; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}
