//! Form nonces are made on every form shown, and each time the secrets past
//! their reveal time are cleared and the session's oldest nonces beyond its
//! allowance are dropped (`domain::reveals::issue`). Both look-ups get an
//! index, so a page shown costs the same however many nonces the table holds.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000002_form_nonce_indexes"
    }
}

const UP: [&str; 2] = [
    "CREATE INDEX idx_form_nonces_reveal_until ON form_nonces (reveal_until) \
     WHERE sealed IS NOT NULL",
    "CREATE INDEX idx_form_nonces_session ON form_nonces (session_id, created_at)",
];

const DOWN: [&str; 2] = [
    "DROP INDEX idx_form_nonces_session",
    "DROP INDEX idx_form_nonces_reveal_until",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for sql in UP {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for sql in DOWN {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
