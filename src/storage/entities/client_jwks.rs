use sea_orm::entity::prelude::*;

/// A machine user's registered public keys (`private_key_jwt`), as the JWK
/// Set JSON that was validated when it was stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_jwks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub machine_user_id: Uuid,
    pub jwks: String,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub updated_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
