//! One-time form nonces and shown-once reveals for the web pages. Each form
//! that creates something carries a nonce bound to the session; posting it
//! claims the row, so a resubmission (Reload, Back) is recognised. When the
//! creation made a secret, the row holds it sealed under the master key for a
//! few minutes, until the page after the 303 shows it once and clears it.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_110000_form_nonces"
    }
}

#[derive(DeriveIden)]
enum FormNonces {
    Table,
    Id,
    SessionId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    DoneUrl,
    Page,
    Sealed,
    RevealUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FormNonces::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(FormNonces::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(FormNonces::SessionId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(FormNonces::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(FormNonces::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(FormNonces::UsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(FormNonces::DoneUrl).string_len(512))
                    .col(ColumnDef::new(FormNonces::Page).text())
                    .col(ColumnDef::new(FormNonces::Sealed).binary())
                    .col(ColumnDef::new(FormNonces::RevealUntil).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_form_nonces_expires_at")
                    .table(FormNonces::Table)
                    .col(FormNonces::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FormNonces::Table).to_owned())
            .await
    }
}
