//! The SQLite store: a connection of the writer thread's own, called
//! directly on that thread. Through sqlx's connection, whose calls run on a
//! thread of sqlx's, every batch crossed threads twice more (there and back),
//! each crossing a wake-up of a sleeping thread. On tmpfs, where the disk
//! does not set the pace, the token endpoint now spends 76-81 µs of server
//! CPU a token against 93-101 µs before (alternating runs; see the README).
//!
//! SQLite then has two writers, this one and sea-orm's. Each takes the write
//! lock before it reads (this one with `BEGIN IMMEDIATE`, sea-orm's through
//! [`crate::storage::WriteTransactions`]), so neither finds its snapshot
//! stale when it comes to write; each waits its turn through the busy
//! timeout instead.

use std::{path::Path, sync::Arc, time::Duration};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use sea_orm::DatabaseConnection;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    batch::{Entry, Failure, Outcome, Store},
    checkpoint::{self, Pause},
};
use crate::{
    clock,
    storage::{WAL_CEILING, WAL_KEEP_BYTES, entities::daily_count, outage},
};

pub(super) struct Sqlite {
    conn: Connection,
    /// The checkpointer's: the writer pauses when it asks.
    pause: Arc<Pause>,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.pause.stop();
    }
}

impl Sqlite {
    /// Opens a connection to the file behind `db`'s pool.
    pub(super) fn new(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let options = db.get_sqlite_connection_pool().connect_options();
        let path = options.get_filename();
        let conn = open(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {} for writing (TESSERA_DATABASE_URL): {e}",
                path.display()
            )
        })?;
        let pause = checkpoint::spawn(path, checkpoint::RESTART_AT)?;
        Ok(Self { conn, pause })
    }
}

/// The writer's settings (see `Db::connect_sqlite` for why each).
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -16384)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CEILING)?;
    conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

impl Store for Sqlite {
    fn between_batches(&mut self) {
        self.pause.between_batches();
    }

    fn write(&mut self, entries: &[Entry]) -> Result<Vec<Outcome>, Failure> {
        write(&mut self.conn, entries).map_err(|e| {
            if let rusqlite::Error::SqliteFailure(f, _) = &e {
                outage::note_sqlite_code(f.extended_code);
            }
            Failure {
            // (A constraint is never an outage code, so the two exclude.)
            by_row: matches!(
                &e,
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation
            ) || matches!(e, rusqlite::Error::ToSqlConversionFailure(_)),
            outage: matches!(
                &e,
                rusqlite::Error::SqliteFailure(f, _) if outage::is_sqlite_outage(f.extended_code)
            ),
            owner_gone: matches!(
                &e,
                rusqlite::Error::SqliteFailure(f, _) if f.extended_code == FOREIGN_KEY_REFUSED
            ),
            message: e.to_string(),
        }
        })
    }
}

/// `SQLITE_CONSTRAINT_FOREIGNKEY`.
const FOREIGN_KEY_REFUSED: i32 = 787;

// The same forms sqlx binds: UUIDs as 16-byte blobs, times as RFC 3339 text.
const CLAIM: &str = "INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at)
    VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
const TOKEN: &str = "INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes,
        digest, kid, created_at, expires_at, hint, audience)
    VALUES (?1, ?2, 'client_credentials', ?3, 'client_credentials', '', ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const COUNT: &str = "INSERT INTO daily_counts (day, validations, issued) VALUES (?1, 0, ?2)
    ON CONFLICT (day) DO UPDATE SET issued = issued + excluded.issued";

/// Writes `entries` in one transaction: each `jti` that is new (a claim
/// conflicting with one recorded before, or earlier in the batch, is a
/// replay and its token is skipped), the tokens, and today's issued count.
fn write(conn: &mut Connection, entries: &[Entry]) -> rusqlite::Result<Vec<Outcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut issued = 0_i64;
    {
        let mut claims = tx.prepare_cached(CLAIM)?;
        let mut tokens = tx.prepare_cached(TOKEN)?;
        for entry in entries {
            let (claim, token) = entry.parts();
            if let Some(c) = claim {
                let inserted = claims.execute(params![
                    c.id.as_bytes(),
                    c.machine_user_id.as_bytes(),
                    c.jti,
                    text(&c.expires_at)?,
                ])?;
                if inserted == 0 {
                    outcomes.push(Outcome::Replayed);
                    continue;
                }
            }
            if let Some(t) = token {
                tokens.execute(params![
                    t.id.as_bytes(),
                    t.jti,
                    t.owner_id.as_bytes(),
                    t.scopes,
                    t.digest,
                    t.kid,
                    text(&t.created_at)?,
                    text(&t.expires_at)?,
                    t.hint,
                    t.audience,
                ])?;
                issued += 1;
            }
            outcomes.push(Outcome::Committed);
        }
    }
    if issued > 0 {
        let today = daily_count::day_key(clock::now().date());
        tx.prepare_cached(COUNT)?.execute(params![today, issued])?;
    }
    tx.commit()?;
    Ok(outcomes)
}

fn text(t: &OffsetDateTime) -> rusqlite::Result<String> {
    t.format(&Rfc3339)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_connection_has_the_writer_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        let conn = open(&path).unwrap();
        let pragma = |name: &str| -> String {
            conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "1"); // NORMAL
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("temp_store"), "2"); // MEMORY
        assert_eq!(pragma("wal_autocheckpoint"), WAL_CEILING.to_string());
        assert_eq!(pragma("journal_size_limit"), WAL_KEEP_BYTES.to_string());
        assert_eq!(pragma("busy_timeout"), "10000");
    }
}
