//! The storage layer's own tests: SQLite settings, write transactions, a
//! full disk, migrations cut short.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A database in a file of its own (the directory lives as long as it).
async fn temp_db() -> (tempfile::TempDir, PathBuf, Db) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    (dir, file, db)
}

/// The one integer `query` returns, read as the server's readers read.
async fn scalar(db: &Db, query: &str) -> i64 {
    db.read
        .query_one(Statement::from_string(DbBackend::Sqlite, query))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

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
    assert_eq!(
        pragma(&db.write, "journal_size_limit").await,
        WAL_KEEP_BYTES.to_string()
    );
    assert_eq!(pragma(&db.write, "foreign_keys").await, "1");
}

/// A write transaction that reads before it writes, while another
/// connection (as the token recorder's) wants to write: the other waits
/// for the commit instead of committing in between, which would make
/// the transaction's write fail (`SQLITE_BUSY_SNAPSHOT`).
#[tokio::test]
async fn a_write_transaction_holds_off_the_other_sqlite_writer_from_its_first_read() {
    let (_dir, file, db) = temp_db().await;
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

    assert_eq!(scalar(&db, "SELECT count(*) FROM daily_counts").await, 2);
}

/// A full disk fails a write's COMMIT, after which SQLite and sqlx
/// disagreed on whether a transaction was open: every later write on the
/// connection was answered as done and never stored. `PRAGMA
/// max_page_count` makes the file "full" without filling a disk.
#[tokio::test]
async fn after_a_full_disk_the_writer_holds_no_transaction_and_writes_are_stored() {
    let (_dir, _, db) = temp_db().await;
    db.migrate().await.unwrap();
    db.write
        .execute_unprepared("CREATE TABLE t (x BLOB)")
        .await
        .unwrap();
    let write = async |db: &Db| {
        db.write
            .write_transaction::<_, (), DbErr>(|tx| {
                Box::pin(async move {
                    tx.execute_unprepared("INSERT INTO t VALUES (zeroblob(3000))")
                        .await
                        .map(|_| ())
                })
            })
            .await
    };
    // The writer's one connection may grow the file by a few pages only.
    db.write
        .execute_unprepared("PRAGMA max_page_count = 8")
        .await
        .unwrap();
    let mut full = false;
    for _ in 0..20 {
        if let Err(e) = write(&db).await {
            assert!(e.to_string().contains("full"), "{e}");
            full = true;
            break;
        }
    }
    assert!(full, "the file never filled");
    // The connection the pool hands out next is in no transaction, by
    // SQLite's count or sqlx's (they disagreed: sqlx counted one open).
    {
        let mut conn = db
            .write
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .unwrap();
        assert!(!sqlx::Connection::is_in_transaction(&*conn));
        let mut handle = conn.lock_handle().await.unwrap();
        // SAFETY: as in `release_clean`.
        let autocommit =
            unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
        assert_ne!(autocommit, 0, "SQLite holds a transaction open");
    }
    let stored = scalar(&db, "SELECT count(*) FROM t").await;
    // Room again (a connection kept from before still has the limit).
    db.write
        .execute_unprepared("PRAGMA max_page_count = 1000000")
        .await
        .unwrap();
    write(&db).await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM t").await,
        stored + 1,
        "the write after is stored"
    );
}

/// A migration cut short leaves nothing behind: the next start applies
/// them all (it failed for good on "table already exists").
#[tokio::test]
async fn migrations_cut_short_by_a_full_disk_leave_nothing_half_done() {
    let (_dir, _, db) = temp_db().await;
    // Room for a few tables and indexes, not for all of them.
    db.write
        .execute_unprepared("PRAGMA max_page_count = 16")
        .await
        .unwrap();
    let cut = db.migrate().await.unwrap_err();
    assert!(format!("{cut:#}").contains("full"), "{cut:#}");
    db.write
        .execute_unprepared("PRAGMA max_page_count = 1000000")
        .await
        .unwrap();
    db.migrate().await.unwrap();
    assert!(scalar(&db, "SELECT count(*) FROM seaql_migrations").await > 10);
}
