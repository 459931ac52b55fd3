//! Lifecycle notices (INTERFACE §9): webhooks, an outbox of messages to send
//! (webhook deliveries and e-mail, stored before they are sent, claimed by one
//! instance per attempt), the log of delivery attempts, and the reminder
//! schedule: one row per token and threshold, whose primary key makes each
//! reminder go out once however many instances look.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_120000_notifications"
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Events,
    Description,
    Enabled,
    SecretSealed,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Channel,
    WebhookId,
    Recipient,
    Event,
    Subject,
    Body,
    CreatedAt,
    Attempts,
    FirstAttemptAt,
    NextAttemptAt,
    ClaimedUntil,
    State,
    LastError,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    MessageId,
    WebhookId,
    Event,
    Attempt,
    Status,
    Error,
    At,
    NextAttemptAt,
}

#[derive(DeriveIden)]
enum TokenReminders {
    Table,
    TokenId,
    ThresholdSeconds,
    At,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Webhooks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Webhooks::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(Webhooks::Events).string_len(1024).not_null())
                    .col(
                        ColumnDef::new(Webhooks::Description)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Webhooks::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Webhooks::SecretSealed).binary().not_null())
                    .col(ts(Webhooks::CreatedAt).not_null())
                    .col(ColumnDef::new(Webhooks::CreatedBy).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Outbox::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Outbox::Channel).string_len(16).not_null())
                    .col(ColumnDef::new(Outbox::WebhookId).uuid().null())
                    .col(ColumnDef::new(Outbox::Recipient).string_len(320).null())
                    .col(ColumnDef::new(Outbox::Event).string_len(64).not_null())
                    .col(ColumnDef::new(Outbox::Subject).string_len(512).null())
                    .col(ColumnDef::new(Outbox::Body).text().not_null())
                    .col(ts(Outbox::CreatedAt).not_null())
                    .col(ColumnDef::new(Outbox::Attempts).integer().not_null())
                    .col(ts(Outbox::FirstAttemptAt).null())
                    .col(ts(Outbox::NextAttemptAt).null())
                    .col(ts(Outbox::ClaimedUntil).null())
                    .col(ColumnDef::new(Outbox::State).string_len(16).not_null())
                    .col(ColumnDef::new(Outbox::LastError).string_len(1024).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Outbox::Table, Outbox::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(WebhookDeliveries::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::MessageId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::WebhookId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Event)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Attempt)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Status).integer().null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Error)
                            .string_len(1024)
                            .null(),
                    )
                    .col(ts(WebhookDeliveries::At).not_null())
                    .col(ts(WebhookDeliveries::NextAttemptAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TokenReminders::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(TokenReminders::TokenId).uuid().not_null())
                    .col(
                        ColumnDef::new(TokenReminders::ThresholdSeconds)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ts(TokenReminders::At).not_null())
                    .primary_key(
                        Index::create()
                            .col(TokenReminders::TokenId)
                            .col(TokenReminders::ThresholdSeconds),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TokenReminders::Table, TokenReminders::TokenId)
                            .to(Tokens::Table, Tokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            ("idx_outbox_due", "outbox", &["next_attempt_at"][..]),
            (
                "idx_webhook_deliveries_webhook",
                "webhook_deliveries",
                &["webhook_id", "id"][..],
            ),
        ] {
            let mut stmt = Index::create();
            stmt.name(name).table(Alias::new(table)).if_not_exists();
            for col in cols {
                stmt.col(Alias::new(*col));
            }
            manager.create_index(stmt.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "token_reminders",
            "webhook_deliveries",
            "outbox",
            "webhooks",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
