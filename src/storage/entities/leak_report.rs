use sea_orm::entity::prelude::*;

/// A token revoked or a client secret removed because it was reported leaked.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leak_reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner: a user, or a machine user.
    pub principal_id: Uuid,
    /// `token` or `client_secret`.
    pub kind: String,
    pub target_id: Uuid,
    pub hint: Option<String>,
    pub at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
