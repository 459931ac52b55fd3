//! `private_key_jwt` and resource indicators (INTERFACE §11):
//! - `client_jwks`: a machine user's registered public keys (a JWK Set);
//! - `client_assertion_jtis`: the `jti` of every accepted client assertion
//!   until it expires, unique per client, so a replay is refused on every
//!   instance sharing the database (pruned with the other records);
//! - `resource_servers` and `resource_server_scopes`: the APIs that consume
//!   tokens and the scopes each owns (a scope belongs to at most one: it is
//!   the primary key);
//! - `tokens.audience`: the resource a token was issued for (null: the
//!   default audience).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_150000_client_keys_and_resources"
    }
}

#[derive(DeriveIden)]
enum Principals {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Scopes {
    Table,
    Name,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Audience,
}

#[derive(DeriveIden)]
enum ClientJwks {
    Table,
    MachineUserId,
    Jwks,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum ClientAssertionJtis {
    Table,
    Id,
    MachineUserId,
    Jti,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ResourceServers {
    Table,
    Id,
    Identifier,
    Name,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ResourceServerScopes {
    Table,
    Scope,
    ResourceServerId,
}

fn fk(
    name: &str,
    from: (impl IntoTableRef, impl IntoIden),
    to: (impl IntoTableRef, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClientJwks::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ClientJwks::MachineUserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ClientJwks::Jwks).text().not_null())
                    .col(
                        ColumnDef::new(ClientJwks::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ClientJwks::UpdatedBy).uuid().null())
                    .foreign_key(&mut fk(
                        "fk_client_jwks_machine_user",
                        (ClientJwks::Table, ClientJwks::MachineUserId),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_client_jwks_updated_by",
                        (ClientJwks::Table, ClientJwks::UpdatedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientAssertionJtis::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ClientAssertionJtis::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClientAssertionJtis::MachineUserId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientAssertionJtis::Jti)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientAssertionJtis::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_client_assertion_jtis_machine_user",
                        (
                            ClientAssertionJtis::Table,
                            ClientAssertionJtis::MachineUserId,
                        ),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_client_assertion_jtis")
                    .table(ClientAssertionJtis::Table)
                    .col(ClientAssertionJtis::MachineUserId)
                    .col(ClientAssertionJtis::Jti)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_client_assertion_jtis_expires_at")
                    .table(ClientAssertionJtis::Table)
                    .col(ClientAssertionJtis::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ResourceServers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ResourceServers::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ResourceServers::Identifier)
                            .string_len(2048)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(ResourceServers::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ResourceServers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ResourceServers::CreatedBy).uuid().null())
                    .col(
                        ColumnDef::new(ResourceServers::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_resource_servers_created_by",
                        (ResourceServers::Table, ResourceServers::CreatedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ResourceServerScopes::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ResourceServerScopes::Scope)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ResourceServerScopes::ResourceServerId)
                            .uuid()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_resource_server_scopes_scope",
                        (ResourceServerScopes::Table, ResourceServerScopes::Scope),
                        (Scopes::Table, Scopes::Name),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_resource_server_scopes_server",
                        (
                            ResourceServerScopes::Table,
                            ResourceServerScopes::ResourceServerId,
                        ),
                        (ResourceServers::Table, ResourceServers::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_resource_server_scopes_server")
                    .table(ResourceServerScopes::Table)
                    .col(ResourceServerScopes::ResourceServerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tokens::Table)
                    .add_column(ColumnDef::new(Tokens::Audience).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tokens::Table)
                    .drop_column(Tokens::Audience)
                    .to_owned(),
            )
            .await?;
        for table in [
            ResourceServerScopes::Table.into_iden(),
            ResourceServers::Table.into_iden(),
            ClientAssertionJtis::Table.into_iden(),
            ClientJwks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
