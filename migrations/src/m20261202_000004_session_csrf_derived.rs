//! A session's CSRF token is derived from its cookie under the master key
//! (as its id is), so the database no longer keeps it: whoever reads a copy
//! of the database learns no token that would let a forged form through.
//! Pages open when this runs carry their old token: their next form is
//! refused once, and the reloaded page works.

use sea_orm_migration::prelude::*;

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
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::CsrfToken)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(
                        ColumnDef::new(Sessions::CsrfToken)
                            .string()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await
    }
}
