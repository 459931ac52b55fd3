//! Sign-in attempts, reserved before the password is checked so that
//! parallel guesses cannot exceed the throttle, on every instance sharing
//! the database. A row is written when an attempt starts; it is deleted when
//! the attempt succeeds (or is refused unchecked) and kept when it fails, so
//! the rows of a window are the attempts in flight plus the failures.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_login_attempts"
    }
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    Id,
    Username,
    Ip,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(LoginAttempts::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LoginAttempts::Username)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(ColumnDef::new(LoginAttempts::Ip).string_len(64).not_null())
                    .col(
                        ColumnDef::new(LoginAttempts::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_login_attempts_username", &["username", "at"][..]),
            ("idx_login_attempts_ip", &["ip", "at"][..]),
            ("idx_login_attempts_at", &["at"][..]),
        ] {
            let mut stmt = Index::create();
            stmt.name(name).table(LoginAttempts::Table).if_not_exists();
            for col in cols {
                stmt.col(Alias::new(*col));
            }
            manager.create_index(stmt.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginAttempts::Table).to_owned())
            .await
    }
}
