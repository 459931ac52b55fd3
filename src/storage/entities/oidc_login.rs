use sea_orm::entity::prelude::*;

/// A single sign-on in flight: created at the redirect to the identity
/// provider, deleted when its callback arrives (on any instance).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oidc_logins")]
pub struct Model {
    /// Hex SHA-256 of the `state` sent to the provider.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Hex HMAC-SHA-256 of the browser's flow cookie under the master key.
    pub browser: String,
    /// Base64 of the PKCE verifier and nonce, sealed under the master key.
    pub sealed: String,
    /// The local page to return to after signing in.
    pub return_to: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
