//! Every foreign key has an index on its referring column (m20261202_000001).
//! A delete looks up the rows that refer to the deleted one; without that
//! index it scans the whole referring table once per deleted row, so
//! retention pruning (500 token records at a time, each looked up in
//! `tokens.replaced_by`) held SQLite's write lock for seconds to minutes.

use sqlx::{Connection, Row};

use crate::{
    both_backends,
    common::{Backend, TestDb},
};

/// `table.column` of every foreign key no index starts with.
const SQLITE_UNINDEXED: &str = r#"SELECT m.name || '.' || f."from"
    FROM sqlite_master m, pragma_foreign_key_list(m.name) f
    WHERE m.type = 'table' AND NOT EXISTS (
        SELECT 1 FROM pragma_index_list(m.name) il, pragma_index_info(il.name) ii
        WHERE ii.seqno = 0 AND ii.name = f."from")
    ORDER BY 1"#;
const POSTGRES_UNINDEXED: &str = "SELECT c.conrelid::regclass::text || '.' || a.attname
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.contype = 'f' AND NOT EXISTS (
        SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
    ORDER BY 1";

/// How the database would find the tokens a deleted token replaced.
const REFERRERS: &str = "SELECT id FROM tokens WHERE replaced_by = x'0123'";

async fn every_foreign_key_has_an_index(backend: Backend) {
    let db = TestDb::new(backend);
    db.cli_ok(&["migrate"], None);
    let (foreign_keys, unindexed): (i64, Vec<String>) = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            (
                sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
                     WHERE m.type = 'table'",
                )
                .fetch_one(&mut c)
                .await
                .unwrap(),
                sqlx::query_scalar(SQLITE_UNINDEXED)
                    .fetch_all(&mut c)
                    .await
                    .unwrap(),
            )
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            (
                sqlx::query_scalar("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
                    .fetch_one(&mut c)
                    .await
                    .unwrap(),
                sqlx::query_scalar(POSTGRES_UNINDEXED)
                    .fetch_all(&mut c)
                    .await
                    .unwrap(),
            )
        }
    };
    // The query sees the schema's foreign keys (tokens alone has five).
    assert!(foreign_keys >= 20, "{foreign_keys} foreign keys");
    assert_eq!(unindexed, Vec::<String>::new());
}

async fn a_deleted_token_finds_its_replacements_through_an_index(backend: Backend) {
    let db = TestDb::new(backend);
    db.cli_ok(&["migrate"], None);
    let plan: Vec<String> = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(&format!("EXPLAIN QUERY PLAN {REFERRERS}"))
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            // An empty table is scanned whatever its indexes; what matters is
            // that the partial index can serve `replaced_by = ?`.
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query_scalar(
                "EXPLAIN SELECT id FROM tokens \
                 WHERE replaced_by = '00000000-0000-0000-0000-000000000000'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
    };
    let plan = plan.join("\n");
    assert!(plan.contains("idx_tokens_replaced_by"), "{plan}");
}

both_backends!(
    every_foreign_key_has_an_index,
    a_deleted_token_finds_its_replacements_through_an_index
);
