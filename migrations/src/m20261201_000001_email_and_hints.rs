//! Users gain an e-mail address and the way they sign in (`auth`); tokens and
//! client secrets gain a `hint`, a few characters of the secret recorded at
//! creation so they can be told apart without it.
//!
//! Existing users sign in with a password, so `auth` is filled in for them.
//! Rows made before this migration keep a null `hint`: the secret is gone,
//! and nothing can be derived from the stored digest.
//!
//! One column per statement: SQLite alters one column at a time.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_email_and_hints"
    }
}

#[derive(DeriveIden)]
enum Principals {
    Table,
    Kind,
    Email,
    Auth,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Hint,
}

#[derive(DeriveIden)]
enum ClientSecrets {
    Table,
    Hint,
}

fn add(table: impl IntoTableRef, col: ColumnDef) -> TableAlterStatement {
    Table::alter().table(table).add_column(col).to_owned()
}

fn drop(table: impl IntoTableRef, col: impl IntoIden) -> TableAlterStatement {
    Table::alter().table(table).drop_column(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(add(
                Principals::Table,
                ColumnDef::new(Principals::Email).text().null().to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                Principals::Table,
                ColumnDef::new(Principals::Auth)
                    .string_len(16)
                    .null()
                    .to_owned(),
            ))
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Principals::Table)
                    .value(Principals::Auth, "password")
                    .and_where(Expr::col(Principals::Kind).eq("user"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(add(
                Tokens::Table,
                ColumnDef::new(Tokens::Hint)
                    .string_len(32)
                    .null()
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                ClientSecrets::Table,
                ColumnDef::new(ClientSecrets::Hint)
                    .string_len(32)
                    .null()
                    .to_owned(),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(drop(ClientSecrets::Table, ClientSecrets::Hint))
            .await?;
        manager
            .alter_table(drop(Tokens::Table, Tokens::Hint))
            .await?;
        manager
            .alter_table(drop(Principals::Table, Principals::Auth))
            .await?;
        manager
            .alter_table(drop(Principals::Table, Principals::Email))
            .await
    }
}
