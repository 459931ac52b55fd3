//! Single sign-on (OpenID Connect, INTERFACE §10).
//!
//! `oidc_logins` holds sign-ins in flight between the redirect to the
//! identity provider and its callback, so the callback may land on any
//! instance: keyed by the SHA-256 of `state`, bound to the browser that
//! started it (HMAC of a cookie), with the PKCE verifier and the nonce sealed
//! under the master key. Rows are single-use and live ten minutes.
//!
//! `oidc_identities` links the provider's subject (`iss`, `sub`) to the user
//! it created, so a rename at the provider follows the same user.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_140000_single_sign_on"
    }
}

#[derive(DeriveIden)]
enum OidcLogins {
    Table,
    Id,
    Browser,
    Sealed,
    ReturnTo,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OidcIdentities {
    Table,
    Issuer,
    Subject,
    PrincipalId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcLogins::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OidcLogins::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OidcLogins::Browser)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(OidcLogins::Sealed).text().not_null())
                    .col(ColumnDef::new(OidcLogins::ReturnTo).text().not_null())
                    .col(
                        ColumnDef::new(OidcLogins::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OidcLogins::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oidc_logins_expires_at")
                    .table(OidcLogins::Table)
                    .col(OidcLogins::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcIdentities::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OidcIdentities::Issuer)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OidcIdentities::Subject)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OidcIdentities::PrincipalId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OidcIdentities::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(OidcIdentities::Issuer)
                            .col(OidcIdentities::Subject),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oidc_identities_principal")
                    .table(OidcIdentities::Table)
                    .col(OidcIdentities::PrincipalId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OidcIdentities::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OidcLogins::Table).to_owned())
            .await
    }
}
