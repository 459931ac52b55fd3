use sea_orm::entity::prelude::*;

/// One use of a token that Tessera saw (written in batches by the usage flush).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_uses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub token_id: Uuid,
    pub at: TimeDateTimeWithTimeZone,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `api` or `introspection`.
    pub via: String,
    /// The introspecting client, for introspections.
    pub client_id: Option<String>,
    /// `accepted` or `refused`.
    pub outcome: String,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
