//! The indexes on `tokens` after m20261201_000003: retention pruning finds
//! expired client-credentials records through `(kind, expires_at)`, not by
//! walking every client-credentials row, and issuing a client-credentials
//! token touches none of the indexes kept for named or revoked tokens. Lists
//! of tokens find the rows they show through an index, never by reading every
//! client-credentials record.

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::common::{Backend, TestDb};

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
            "idx_tokens_created_by",
            "idx_tokens_kid_expires_at",
            "idx_tokens_kind",
            "idx_tokens_kind_expires_at",
            "idx_tokens_owner",
            "idx_tokens_replaced_by",
            "idx_tokens_revoked_at",
            "idx_tokens_revoked_by",
            "uq_tokens_owner_active_name",
        ]
    );
    for (name, partial) in [
        (
            "uq_tokens_owner_active_name",
            "WHERE active_name IS NOT NULL",
        ),
        ("idx_tokens_revoked_at", "WHERE revoked_at IS NOT NULL"),
        ("idx_tokens_created_by", "WHERE created_by IS NOT NULL"),
        ("idx_tokens_replaced_by", "WHERE replaced_by IS NOT NULL"),
        ("idx_tokens_revoked_by", "WHERE revoked_by IS NOT NULL"),
    ] {
        let sql = &indexes.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(sql.ends_with(partial), "{sql}");
    }
}

/// The admin's "All tokens" page, as `domain::token_browse::browse` asks
/// SQLite for it: the count, then the newest page, of every kind but client
/// credentials.
const NAMED_COUNT: &str = "SELECT COUNT(*) FROM tokens WHERE kind IN ('personal', 'machine')";
const NAMED_PAGE: &str = "SELECT id, name FROM tokens WHERE kind IN ('personal', 'machine') \
     ORDER BY created_at DESC, id DESC LIMIT 25 OFFSET 0";

#[tokio::test]
async fn the_admin_listing_searches_the_named_kinds_instead_of_reading_every_record() {
    let db = TestDb::new(Backend::Sqlite);
    db.cli_ok(&["migrate"], None);
    let conn = Database::connect(&db.url).await.unwrap();
    for sql in [NAMED_COUNT, NAMED_PAGE] {
        let plan = plan(&conn, sql).await;
        assert!(plan.contains("SEARCH tokens USING"), "{sql}: {plan}");
        assert!(plan.contains("(kind=?)"), "{sql}: {plan}");
    }
    // What it asked before: every record read.
    let before = plan(
        &conn,
        "SELECT COUNT(*) FROM tokens WHERE kind <> 'client_credentials'",
    )
    .await;
    assert!(before.contains("SCAN tokens"), "{before}");
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
