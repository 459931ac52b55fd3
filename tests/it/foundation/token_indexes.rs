//! The indexes on `tokens` after m20261201_000003: retention pruning finds
//! expired client-credentials records through `(kind, expires_at)`, not by
//! walking every client-credentials row, and issuing a client-credentials
//! token touches none of the indexes kept for named or revoked tokens. After
//! m20261201_170000 the admin's listing of named tokens reads an index of
//! those alone, once the server has refreshed SQLite's statistics.

use sea_orm::{ConnectionTrait, Database, Statement};

use std::time::{Duration, Instant};

use crate::common::{self, Backend, TestDb};

/// The subquery of `domain::retention::prune` for tokens, as SQLite sees it.
const PRUNE_TOKENS: &str = "SELECT id FROM tokens WHERE kind = 'client_credentials' \
     AND expires_at < '2026-01-01T00:00:00Z' LIMIT 500";

async fn plan(db: &impl ConnectionTrait, sql: &str) -> String {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            format!("EXPLAIN QUERY PLAN {sql}"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "detail").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let rows = db
        .query_all(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    rows[0].try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn retention_finds_expired_client_credentials_by_kind_and_expiry() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let conn = Database::connect(&db.url).await.unwrap();
    let plan = plan(&conn, PRUNE_TOKENS).await;
    assert!(
        plan.contains("idx_tokens_kind_expires_at (kind=? AND expires_at<?)"),
        "{plan}"
    );
}

#[tokio::test]
async fn client_credentials_rows_skip_the_indexes_of_named_and_revoked_tokens() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let conn = Database::connect(&db.url).await.unwrap();
    let rows = conn
        .query_all(Statement::from_string(
            conn.get_database_backend(),
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tokens' \
             AND sql IS NOT NULL ORDER BY name",
        ))
        .await
        .unwrap();
    let indexes: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "name").unwrap(),
                r.try_get("", "sql").unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "idx_tokens_kid_expires_at",
            "idx_tokens_kind",
            "idx_tokens_kind_expires_at",
            "idx_tokens_named",
            "idx_tokens_owner",
            "idx_tokens_revoked_at",
            "uq_tokens_owner_active_name",
        ]
    );
    for (name, partial) in [
        (
            "uq_tokens_owner_active_name",
            "WHERE active_name IS NOT NULL",
        ),
        ("idx_tokens_revoked_at", "WHERE revoked_at IS NOT NULL"),
        ("idx_tokens_named", "WHERE kind <> 'client_credentials'"),
    ] {
        let sql = &indexes.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(sql.ends_with(partial), "{sql}");
    }
}

/// The admin's "All tokens" page, as `domain::token_browse::browse` asks it
/// of SQLite: the count, then the newest page.
const NAMED_COUNT: &str = "SELECT COUNT(*) FROM tokens WHERE kind <> 'client_credentials'";
const NAMED_PAGE: &str = "SELECT id, name FROM tokens WHERE kind <> 'client_credentials' \
     ORDER BY created_at DESC, id DESC LIMIT 25 OFFSET 0";

#[tokio::test]
async fn the_admin_listing_reads_named_tokens_alone_once_statistics_are_fresh() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    db.cli_ok(
        &[
            "machine-users",
            "create",
            "--username",
            "busy",
            "--scope",
            "profile",
        ],
        None,
    );
    for name in ["deploy", "backup", "report"] {
        db.cli_ok(
            &["tokens", "create", "--username", "busy", "--name", name],
            None,
        );
    }
    let conn = Database::connect(&db.url).await.unwrap();
    // Client-credentials records, as the recorder writes them.
    conn.execute_unprepared(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
         INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid,
                             created_at, expires_at, hint)
         SELECT randomblob(16), 'cc-' || i, 'client_credentials',
                (SELECT id FROM principals WHERE username = 'busy'), 'client_credentials', '',
                'profile', lower(hex(randomblob(32))), (SELECT kid FROM signing_keys LIMIT 1),
                '2026-12-01T00:00:00Z', '2026-12-01T01:00:00Z', '…abcd'
         FROM s",
    )
    .await
    .unwrap();
    let stats_table = "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'";
    assert_eq!(
        scalar(&conn, stats_table).await,
        0,
        "a fresh database has no statistics"
    );

    // The server refreshes them with its first retention pass.
    let (mut server, _addr) = common::start_server(&db, &[]).expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&conn, stats_table).await == 0
        || scalar(
            &conn,
            "SELECT count(*) AS n FROM sqlite_stat1 WHERE idx = 'idx_tokens_named'",
        )
        .await
            == 0
    {
        assert!(
            Instant::now() < deadline,
            "the server refreshes SQLite's statistics"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = server.kill();
    let _ = server.wait();

    // A new connection reads the statistics with the schema.
    let conn = Database::connect(&db.url).await.unwrap();
    for sql in [NAMED_COUNT, NAMED_PAGE] {
        let plan = plan(&conn, sql).await;
        assert!(
            plan.contains("USING INDEX idx_tokens_named"),
            "{sql}: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
    }
}

/// The same page for the client-credentials records, which are listed by
/// id (their creation order): `(kind, id)` holds them in that order.
#[tokio::test]
async fn client_credentials_records_are_listed_in_index_order() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let conn = Database::connect(&db.url).await.unwrap();
    for sql in [
        "SELECT id, name FROM tokens WHERE kind = 'client_credentials' \
         ORDER BY id DESC LIMIT 25 OFFSET 0",
        "SELECT id, name FROM tokens WHERE kind = 'client_credentials' \
         AND owner_id = x'00' ORDER BY id ASC LIMIT 25 OFFSET 25",
    ] {
        let plan = plan(&conn, sql).await;
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
    }
    let by_created = plan(
        &conn,
        "SELECT id FROM tokens WHERE kind = 'client_credentials' \
         ORDER BY created_at DESC, id DESC LIMIT 25",
    )
    .await;
    assert!(by_created.contains("TEMP B-TREE"), "{by_created}");
}
