//! Rotation without an outage: a client secret may carry the end of its
//! grace period (`expires_at`), and a signing key published ahead of time
//! (state `next`) carries the moment it starts signing (`activates_at`).
//! A token's grace period needs no column: its `revoked_at` lies in the future.
//!
//! One column per statement: SQLite alters one column at a time.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_130000_rotation"
    }
}

#[derive(DeriveIden)]
enum ClientSecrets {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    ActivatesAt,
}

fn add(table: impl IntoTableRef, col: impl IntoIden) -> TableAlterStatement {
    Table::alter()
        .table(table)
        .add_column(
            ColumnDef::new(col)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .to_owned()
}

fn drop(table: impl IntoTableRef, col: impl IntoIden) -> TableAlterStatement {
    Table::alter().table(table).drop_column(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(add(ClientSecrets::Table, ClientSecrets::ExpiresAt))
            .await?;
        manager
            .alter_table(add(SigningKeys::Table, SigningKeys::ActivatesAt))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(drop(SigningKeys::Table, SigningKeys::ActivatesAt))
            .await?;
        manager
            .alter_table(drop(ClientSecrets::Table, ClientSecrets::ExpiresAt))
            .await
    }
}
