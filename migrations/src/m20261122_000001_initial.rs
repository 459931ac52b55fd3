//! The initial schema: principals (users and machine users share one username
//! namespace), client secrets, scopes, tokens, signing keys, audit events,
//! browser sessions and setup codes.
//!
//! Timestamps are stored with whole-second precision in UTC (the application
//! truncates them), so that SQLite's text timestamps compare in time order.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Principals {
    Table,
    Id,
    Kind,
    Username,
    Enabled,
    Role,
    PasswordHash,
    DisplayName,
    Description,
    ContactEmail,
    Scopes,
    CcEnabled,
    CcTtlMinutes,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum ClientSecrets {
    Table,
    Id,
    MachineUserId,
    Digest,
    CreatedAt,
    CreatedBy,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Scopes {
    Table,
    Name,
    Description,
    Builtin,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Jti,
    Kind,
    OwnerId,
    Name,
    ActiveName,
    Description,
    Scopes,
    Digest,
    Kid,
    CreatedAt,
    CreatedBy,
    ExpiresAt,
    LastUsedAt,
    LastUsedIp,
    RevokedAt,
    RevokedBy,
    ReplacedBy,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    State,
    PublicJwk,
    PrivateKey,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorId,
    ActorUsername,
    Action,
    TargetType,
    TargetId,
    Ip,
    Details,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    PrincipalId,
    CsrfToken,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    Ip,
}

#[derive(DeriveIden)]
enum SetupCodes {
    Table,
    Digest,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

const BUILTIN_SCOPES: [(&str, &str); 6] = [
    ("profile", "Read your own profile"),
    ("tokens:read", "List and read your own tokens"),
    (
        "tokens:write",
        "Create, revoke and regenerate your own tokens",
    ),
    (
        "admin:read",
        "Read users, machine users, all tokens and the audit log",
    ),
    (
        "admin:write",
        "Manage users, machine users, scopes, tokens and keys",
    ),
    ("introspect", "Introspect any token (resource servers)"),
];

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn ts_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
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

fn index(name: &str, table: impl IntoTableRef, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Principals::Table)
                    .col(
                        ColumnDef::new(Principals::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Principals::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Principals::Username)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Principals::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Principals::Role).string_len(16).null())
                    .col(ColumnDef::new(Principals::PasswordHash).text().null())
                    .col(ColumnDef::new(Principals::DisplayName).text().not_null())
                    .col(ColumnDef::new(Principals::Description).text().not_null())
                    .col(ColumnDef::new(Principals::ContactEmail).text().not_null())
                    .col(ColumnDef::new(Principals::Scopes).text().not_null())
                    .col(ColumnDef::new(Principals::CcEnabled).boolean().not_null())
                    .col(
                        ColumnDef::new(Principals::CcTtlMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(ts(Principals::CreatedAt))
                    .col(ColumnDef::new(Principals::CreatedBy).uuid().null())
                    .col(ts(Principals::UpdatedAt))
                    .col(ts_null(Principals::LastLoginAt))
                    .foreign_key(&mut fk(
                        "fk_principals_created_by",
                        (Principals::Table, Principals::CreatedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_principals_kind",
                Principals::Table,
                &["kind", "id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClientSecrets::Table)
                    .col(
                        ColumnDef::new(ClientSecrets::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClientSecrets::MachineUserId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientSecrets::Digest)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ts(ClientSecrets::CreatedAt))
                    .col(ColumnDef::new(ClientSecrets::CreatedBy).uuid().null())
                    .col(ts_null(ClientSecrets::LastUsedAt))
                    .foreign_key(&mut fk(
                        "fk_client_secrets_machine_user",
                        (ClientSecrets::Table, ClientSecrets::MachineUserId),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_client_secrets_created_by",
                        (ClientSecrets::Table, ClientSecrets::CreatedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_client_secrets_machine_user",
                ClientSecrets::Table,
                &["machine_user_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Scopes::Table)
                    .col(
                        ColumnDef::new(Scopes::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Scopes::Description).text().not_null())
                    .col(ColumnDef::new(Scopes::Builtin).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert();
        seed.into_table(Scopes::Table).columns([
            Scopes::Name,
            Scopes::Description,
            Scopes::Builtin,
        ]);
        for (name, description) in BUILTIN_SCOPES {
            seed.values_panic([name.into(), description.into(), true.into()]);
        }
        manager.exec_stmt(seed).await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(
                        ColumnDef::new(SigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SigningKeys::Alg).string_len(16).not_null())
                    .col(ColumnDef::new(SigningKeys::State).string_len(16).not_null())
                    .col(ColumnDef::new(SigningKeys::PublicJwk).text().not_null())
                    .col(ColumnDef::new(SigningKeys::PrivateKey).blob().not_null())
                    .col(ts(SigningKeys::CreatedAt))
                    .col(ts_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(ColumnDef::new(Tokens::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Tokens::Jti)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Tokens::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Tokens::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(Tokens::Name).string_len(128).not_null())
                    .col(ColumnDef::new(Tokens::ActiveName).string_len(128).null())
                    .col(ColumnDef::new(Tokens::Description).text().not_null())
                    .col(ColumnDef::new(Tokens::Scopes).text().not_null())
                    // Looked up by `jti` (unique, append-only), then compared:
                    // an index on a random digest would cost a random page
                    // write per issued token.
                    .col(ColumnDef::new(Tokens::Digest).string_len(64).not_null())
                    .col(ColumnDef::new(Tokens::Kid).string_len(64).not_null())
                    .col(ts(Tokens::CreatedAt))
                    .col(ColumnDef::new(Tokens::CreatedBy).uuid().null())
                    .col(ts(Tokens::ExpiresAt))
                    .col(ts_null(Tokens::LastUsedAt))
                    .col(ColumnDef::new(Tokens::LastUsedIp).string_len(64).null())
                    .col(ts_null(Tokens::RevokedAt))
                    .col(ColumnDef::new(Tokens::RevokedBy).uuid().null())
                    .col(ColumnDef::new(Tokens::ReplacedBy).uuid().null())
                    .foreign_key(&mut fk(
                        "fk_tokens_owner",
                        (Tokens::Table, Tokens::OwnerId),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_tokens_created_by",
                        (Tokens::Table, Tokens::CreatedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_tokens_revoked_by",
                        (Tokens::Table, Tokens::RevokedBy),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_tokens_replaced_by",
                        (Tokens::Table, Tokens::ReplacedBy),
                        (Tokens::Table, Tokens::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_tokens_kid",
                        (Tokens::Table, Tokens::Kid),
                        (SigningKeys::Table, SigningKeys::Kid),
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        // Token names are unique per owner among live tokens: `active_name` is
        // cleared when a token is revoked or its name is released after expiry.
        manager
            .create_index(
                index(
                    "uq_tokens_owner_active_name",
                    Tokens::Table,
                    &["owner_id", "active_name"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_tokens_owner", &["owner_id", "id"][..]),
            ("idx_tokens_kind", &["kind", "id"][..]),
            ("idx_tokens_revoked_at", &["revoked_at"][..]),
            ("idx_tokens_expires_at", &["expires_at"][..]),
            ("idx_tokens_kid_expires_at", &["kid", "expires_at"][..]),
            ("idx_tokens_created_at", &["created_at"][..]),
        ] {
            manager
                .create_index(index(name, Tokens::Table, cols))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ts(AuditEvents::At))
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(
                        ColumnDef::new(AuditEvents::ActorUsername)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Action)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::TargetType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::TargetId).string_len(128).null())
                    .col(ColumnDef::new(AuditEvents::Ip).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::Details).text().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_audit_at", &["at"][..]),
            ("idx_audit_action", &["action", "at"][..]),
            ("idx_audit_actor", &["actor_username", "at"][..]),
            ("idx_audit_target", &["target_id", "action", "at"][..]),
        ] {
            manager
                .create_index(index(name, AuditEvents::Table, cols))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(
                        ColumnDef::new(Sessions::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sessions::PrincipalId).uuid().not_null())
                    .col(
                        ColumnDef::new(Sessions::CsrfToken)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ts(Sessions::CreatedAt))
                    .col(ts(Sessions::LastSeenAt))
                    .col(ts(Sessions::ExpiresAt))
                    .col(ColumnDef::new(Sessions::Ip).string_len(64).null())
                    .foreign_key(&mut fk(
                        "fk_sessions_principal",
                        (Sessions::Table, Sessions::PrincipalId),
                        (Principals::Table, Principals::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_sessions_principal",
                Sessions::Table,
                &["principal_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SetupCodes::Table)
                    .col(
                        ColumnDef::new(SetupCodes::Digest)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ts(SetupCodes::CreatedAt))
                    .col(ts(SetupCodes::ExpiresAt))
                    .col(ts_null(SetupCodes::UsedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SetupCodes::Table.into_iden(),
            Sessions::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            Tokens::Table.into_iden(),
            SigningKeys::Table.into_iden(),
            Scopes::Table.into_iden(),
            ClientSecrets::Table.into_iden(),
            Principals::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
