//! An index behind every foreign key.
//!
//! Deleting a row makes the database find the rows that refer to it, for
//! `ON DELETE SET NULL` or `CASCADE` and for the check itself. Without an
//! index on the referring column that is a scan of the whole referring table
//! per deleted row: retention pruning deleted 500 expired token records by
//! scanning `tokens` twice each (`tokens.replaced_by`), holding SQLite's write
//! lock for seconds at 20,000 rows and for minutes at millions, long enough
//! for the token endpoint's writer to give up. Deleting a person scanned
//! `tokens` for `created_by` and `revoked_by` likewise.
//!
//! Every column here is empty on most rows (a recorded client-credentials
//! token has no creator, replacement or revoker), so each index is partial:
//! it holds only the rows that refer to something, and issuing a token
//! writes to none of them. `x = ?` implies `x IS NOT NULL`, so both backends
//! use them for the look-ups a delete makes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_foreign_key_indexes"
    }
}

/// (index, table, column): the referring columns that had no index.
const INDEXES: [(&str, &str, &str); 8] = [
    ("idx_tokens_replaced_by", "tokens", "replaced_by"),
    ("idx_tokens_created_by", "tokens", "created_by"),
    ("idx_tokens_revoked_by", "tokens", "revoked_by"),
    ("idx_principals_created_by", "principals", "created_by"),
    (
        "idx_client_secrets_created_by",
        "client_secrets",
        "created_by",
    ),
    ("idx_client_jwks_updated_by", "client_jwks", "updated_by"),
    (
        "idx_resource_servers_created_by",
        "resource_servers",
        "created_by",
    ),
    ("idx_outbox_webhook", "outbox", "webhook_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, table, column) in INDEXES {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON {table} ({column}) WHERE {column} IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
