use sea_orm::entity::prelude::*;

use crate::kinds::TokenKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub jti: String,
    pub kind: TokenKind,
    pub owner_id: Uuid,
    pub name: String,
    /// `name` while the token holds it; cleared on revocation or when an
    /// expired token's name is taken again (a unique index enforces it).
    pub active_name: Option<String>,
    pub description: String,
    /// Space separated, as in the `scope` claim.
    pub scopes: String,
    /// Hex SHA-256 of the JWT; the token itself is never stored. A presented
    /// token is found by its (verified) `jti` and must match this digest.
    pub digest: String,
    pub kid: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub created_by: Option<Uuid>,
    pub expires_at: TimeDateTimeWithTimeZone,
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
    pub revoked_by: Option<Uuid>,
    pub replaced_by: Option<Uuid>,
    /// A few characters of the token that identify it (never enough to use
    /// it); null for tokens recorded before hints existed.
    pub hint: Option<String>,
    /// The resource server the token was issued for (its `aud`); null for
    /// the default audience.
    pub audience: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
