use sea_orm::entity::prelude::*;

/// A sign-in attempt in flight or failed, for throttling (rows of successful
/// attempts are deleted).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The username as typed, lower-cased, at most 64 characters.
    pub username: String,
    /// The client address, or empty when unknown.
    pub ip: String,
    pub at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
