//! Fewer B-trees per recorded client-credentials token.
//!
//! Every issued token writes one row, and every index on `tokens` is one more
//! B-tree to update in that write. Each index is kept only for a query that
//! needs it, and covers only the rows that query can find:
//!
//! - `created_at`: no query filters or orders tokens by it. Dropped.
//! - `(owner_id, active_name)`: only tokens holding a name are in it (the
//!   uniqueness is the same: a null never collides), and the one query that
//!   reads it asks for `active_name = ?`. Client-credentials rows never hold
//!   a name.
//! - `revoked_at`: only revoked tokens; the listing filter reads it as
//!   `revoked_at IS NOT NULL`. Tokens are recorded unrevoked.
//! - `expires_at` becomes `(kind, expires_at)`: retention pruning deletes by
//!   `kind = 'client_credentials' AND expires_at < ?`, which otherwise walked
//!   every client-credentials row in `(kind, id)` order to find the expired
//!   ones, holding the writer for seconds once the table is large.
//!
//! Left as they are: the primary key, `jti` (validation), `(owner_id, id)`
//! (listings by owner, the owner foreign key's cascade), `(kind, id)`
//! (listings by kind), `(kid, expires_at)` (key retirement, the key's
//! foreign key).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_token_indexes"
    }
}

/// The same statements on both backends.
const UP: [&str; 7] = [
    "DROP INDEX idx_tokens_created_at",
    "DROP INDEX uq_tokens_owner_active_name",
    "CREATE UNIQUE INDEX uq_tokens_owner_active_name ON tokens (owner_id, active_name) \
     WHERE active_name IS NOT NULL",
    "DROP INDEX idx_tokens_revoked_at",
    "CREATE INDEX idx_tokens_revoked_at ON tokens (revoked_at) WHERE revoked_at IS NOT NULL",
    "DROP INDEX idx_tokens_expires_at",
    "CREATE INDEX idx_tokens_kind_expires_at ON tokens (kind, expires_at)",
];

const DOWN: [&str; 7] = [
    "DROP INDEX idx_tokens_kind_expires_at",
    "CREATE INDEX idx_tokens_expires_at ON tokens (expires_at)",
    "DROP INDEX idx_tokens_revoked_at",
    "CREATE INDEX idx_tokens_revoked_at ON tokens (revoked_at)",
    "DROP INDEX uq_tokens_owner_active_name",
    "CREATE UNIQUE INDEX uq_tokens_owner_active_name ON tokens (owner_id, active_name)",
    "CREATE INDEX idx_tokens_created_at ON tokens (created_at)",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &DOWN).await
    }
}
