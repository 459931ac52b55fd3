//! An e-mail reminder names the token it is about (`outbox.token_id`), so a
//! reminder still queued when its token is revoked or replaced (SMTP down for
//! hours, say) is dropped rather than sent late about a dead token. Rows made
//! before keep a null `token_id` and are sent as before. No foreign key: a
//! reminder about a token since deleted is dropped the same way.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000003_outbox_token"
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    TokenId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::TokenId).uuid().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::TokenId)
                    .to_owned(),
            )
            .await
    }
}
