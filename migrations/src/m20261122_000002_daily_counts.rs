//! Counters per day (UTC) for the admin dashboard's charts: tokens issued
//! and successful token validations, so the dashboard never counts rows of
//! the (large) tokens table.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_daily_counts"
    }
}

#[derive(DeriveIden)]
enum DailyCounts {
    Table,
    Day,
    Validations,
    Issued,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyCounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DailyCounts::Day)
                            .string_len(10)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DailyCounts::Validations)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(DailyCounts::Issued)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DailyCounts::Table).to_owned())
            .await
    }
}
