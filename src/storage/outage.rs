//! Which database errors are an outage: the database unreachable, a
//! connection lost, the pool exhausted, a lock held past the busy timeout,
//! the disk full, a read-only standby. Those are worth a 503 and a retry;
//! anything else (a refused statement, a bug) stays a 500.

use std::sync::atomic::{AtomicI64, Ordering};

use sea_orm::{DbErr, RuntimeErr};
use sqlx::{error::DatabaseError, postgres::PgDatabaseError, sqlite::SqliteError};

/// When a write last failed because the database takes none (its disk full,
/// read-only), in milliseconds since the Unix epoch; 0: not since start.
/// Reads still work then, so `/readyz`'s own read cannot tell.
static WRITES_REFUSED_AT: AtomicI64 = AtomicI64::new(0);

/// How long after such a failure `/readyz` says the database is not ready.
const WRITES_REFUSED_FOR_MS: i64 = 10_000;

fn now_ms() -> i64 {
    i64::try_from(crate::clock::now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Notes `e` when it says the database takes no writes now.
pub fn note(e: &DbErr) {
    if refuses_writes(e) {
        note_writes_refused();
    }
}

/// Notes a SQLite result code (from the recorder's own connection).
pub fn note_sqlite_code(code: i32) {
    if sqlite_refuses_writes(code) {
        note_writes_refused();
    }
}

/// SQLite's FULL and plain READONLY (the file or its directory not
/// writable), as extended codes: READONLY_RECOVERY and its kin are a
/// read-only reader's own business, not the database's.
fn sqlite_refuses_writes(code: i32) -> bool {
    const READONLY: i32 = 8;
    const FULL: i32 = 13;
    matches!(code, READONLY | FULL)
}

fn note_writes_refused() {
    WRITES_REFUSED_AT.store(now_ms(), Ordering::Relaxed);
}

/// Whether a write failed for want of space or write access lately.
pub fn writes_refused_lately() -> bool {
    let at = WRITES_REFUSED_AT.load(Ordering::Relaxed);
    at != 0 && now_ms() - at < WRITES_REFUSED_FOR_MS
}

/// A full disk (PostgreSQL's 53100, SQLite's FULL) or a read-only database
/// (25006, READONLY).
fn refuses_writes(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db)))) = e
    else {
        return false;
    };
    match code_of(db.as_ref()) {
        Some(Code::Postgres(sqlstate)) => matches!(sqlstate, "53100" | "25006"),
        Some(Code::Sqlite(code)) => sqlite_refuses_writes(code),
        None => false,
    }
}

/// A database error's code, as its backend names it.
enum Code<'a> {
    Postgres(&'a str),
    Sqlite(i32),
}

fn code_of(db: &dyn DatabaseError) -> Option<Code<'_>> {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        Some(Code::Postgres(pg.code()))
    } else {
        let sqlite = db.try_downcast_ref::<SqliteError>()?;
        sqlite.code()?.parse::<i32>().ok().map(Code::Sqlite)
    }
}

/// True when `e` says the database cannot serve now, not that this
/// statement was wrong.
pub fn is_outage(e: &DbErr) -> bool {
    match e {
        // Acquiring or opening a connection: nothing was asked yet.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            is_sqlx_outage(e)
        }
        _ => false,
    }
}

pub fn is_sqlx_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match code_of(db.as_ref()) {
            Some(Code::Postgres(sqlstate)) => is_pg_outage(sqlstate),
            Some(Code::Sqlite(code)) => is_sqlite_outage(code),
            None => false,
        },
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs of an outage: a connection exception (class 08),
/// insufficient resources (class 53: disk full, out of memory, too many
/// connections), the server shutting down or starting (57P01–57P03), a
/// statement cancelled by its timeout (57014), a read-only standby (25006).
fn is_pg_outage(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "57014" | "25006")
}

/// SQLite result codes (primary or extended) of an outage: busy or locked
/// past the busy timeout, an I/O error, the disk full, the file read-only
/// or not to be opened.
pub fn is_sqlite_outage(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    matches!(
        code & 0xff,
        BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_of_an_outage() {
        for code in [
            "08006", "08001", "53100", "53300", "57P01", "57P03", "25006",
        ] {
            assert!(is_pg_outage(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", "P0001", "40001"] {
            assert!(!is_pg_outage(code), "{code}");
        }
    }

    #[test]
    fn sqlite_codes_of_an_outage() {
        // SQLITE_BUSY, SQLITE_IOERR_WRITE (778), SQLITE_FULL, SQLITE_READONLY_DBMOVED (1032).
        for code in [5, 778, 13, 1032] {
            assert!(is_sqlite_outage(code), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_MISMATCH.
        for code in [2067, 1, 20] {
            assert!(!is_sqlite_outage(code), "{code}");
        }
    }

    #[test]
    fn pool_and_connection_errors_are_an_outage() {
        assert!(is_outage(&DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout
        )));
        assert!(is_outage(&DbErr::Query(RuntimeErr::SqlxError(
            sqlx::Error::PoolTimedOut
        ))));
        assert!(!is_outage(&DbErr::RecordNotFound("x".into())));
        assert!(!is_outage(&DbErr::Query(RuntimeErr::SqlxError(
            sqlx::Error::RowNotFound
        ))));
    }
}
