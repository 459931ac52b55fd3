//! A session's CSRF token is derived from its cookie under the master key
//! (as its id is), so the database keeps it no longer: whoever reads a copy
//! of the database learns no token that would let a forged form through.
//!
//! SQLite (one server at a time) drops the column. On PostgreSQL, instances
//! of the build before may still be running beside this one during a
//! rolling upgrade and read the column on every page: it stays, with an
//! empty default for sessions made from now on, until a later release drops
//! it. The tokens stored before age out with their sessions (12 hours at
//! most). Pages open when this runs carry their old token: their next form
//! is refused once, and the reloaded page works.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000004_session_csrf_derived"
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    CsrfToken,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(Sessions::CsrfToken)
                        .to_owned(),
                )
                .await;
        }
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE sessions ALTER COLUMN csrf_token SET DEFAULT ''")
            .await
            .map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return manager
                .get_connection()
                .execute_unprepared("ALTER TABLE sessions ALTER COLUMN csrf_token DROP DEFAULT")
                .await
                .map(drop);
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(
                        ColumnDef::new(Sessions::CsrfToken)
                            .string_len(64)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await
    }
}
