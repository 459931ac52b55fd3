//! Issue 14: each token's recent uses (written in batches by the usage
//! flush, at most 100 kept per token), leak reports (what was revoked or
//! removed because someone reported it, for the owners' notice) and machine
//! users' delegated managers.
//!
//! No column is added for a machine user's creator: `principals.created_by`
//! exists since the first migration (null when the command line made it, or
//! when its creator's row is gone).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_160000_usage_leaks_managers"
    }
}

#[derive(DeriveIden)]
enum TokenUses {
    Table,
    Id,
    TokenId,
    At,
    Ip,
    UserAgent,
    Via,
    ClientId,
    Outcome,
    Reason,
}

#[derive(DeriveIden)]
enum LeakReports {
    Table,
    Id,
    PrincipalId,
    Kind,
    TargetId,
    Hint,
    At,
}

#[derive(DeriveIden)]
enum MachineUserManagers {
    Table,
    MachineUserId,
    UserId,
    AddedAt,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Principals {
    Table,
    Id,
}

fn fk(
    name: &str,
    from: (impl IntoTableRef, impl IntoIden),
    to: (impl IntoTableRef, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TokenUses::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(TokenUses::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TokenUses::TokenId).uuid().not_null())
                    .col(
                        ColumnDef::new(TokenUses::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TokenUses::Ip).string_len(64).null())
                    .col(ColumnDef::new(TokenUses::UserAgent).string_len(256).null())
                    .col(ColumnDef::new(TokenUses::Via).string_len(16).not_null())
                    .col(ColumnDef::new(TokenUses::ClientId).string_len(256).null())
                    .col(ColumnDef::new(TokenUses::Outcome).string_len(16).not_null())
                    .col(ColumnDef::new(TokenUses::Reason).string_len(32).null())
                    .foreign_key(&mut fk(
                        "fk_token_uses_token",
                        (TokenUses::Table, TokenUses::TokenId),
                        (Tokens::Table, Tokens::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_token_uses_token_at")
                    .table(TokenUses::Table)
                    .col(TokenUses::TokenId)
                    .col(TokenUses::At)
                    .col(TokenUses::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeakReports::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(LeakReports::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LeakReports::PrincipalId).uuid().not_null())
                    .col(ColumnDef::new(LeakReports::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(LeakReports::TargetId).uuid().not_null())
                    .col(ColumnDef::new(LeakReports::Hint).string_len(64).null())
                    .col(
                        ColumnDef::new(LeakReports::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_leak_reports_principal",
                        (LeakReports::Table, LeakReports::PrincipalId),
                        (Principals::Table, Principals::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_leak_reports_principal_at")
                    .table(LeakReports::Table)
                    .col(LeakReports::PrincipalId)
                    .col(LeakReports::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MachineUserManagers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(MachineUserManagers::MachineUserId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MachineUserManagers::UserId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MachineUserManagers::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(MachineUserManagers::MachineUserId)
                            .col(MachineUserManagers::UserId),
                    )
                    .foreign_key(&mut fk(
                        "fk_machine_user_managers_machine",
                        (
                            MachineUserManagers::Table,
                            MachineUserManagers::MachineUserId,
                        ),
                        (Principals::Table, Principals::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_machine_user_managers_user",
                        (MachineUserManagers::Table, MachineUserManagers::UserId),
                        (Principals::Table, Principals::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_machine_user_managers_user")
                    .table(MachineUserManagers::Table)
                    .col(MachineUserManagers::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TokenUses::Table.into_iden(),
            LeakReports::Table.into_iden(),
            MachineUserManagers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
