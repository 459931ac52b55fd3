//! A counter of successful token validations per day (UTC), for the admin
//! dashboard's chart. Added by the web app; additive only.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_daily_validations"
    }
}

#[derive(DeriveIden)]
enum DailyValidations {
    Table,
    Day,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyValidations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DailyValidations::Day)
                            .string_len(10)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DailyValidations::Count)
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
            .drop_table(Table::drop().table(DailyValidations::Table).to_owned())
            .await
    }
}
