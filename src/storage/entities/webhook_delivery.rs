use sea_orm::entity::prelude::*;

/// One attempt to deliver a webhook message, and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub message_id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub attempt: i32,
    /// The receiver's HTTP status; null when none came (timeout, refused).
    pub status: Option<i32>,
    pub error: Option<String>,
    pub at: TimeDateTimeWithTimeZone,
    pub next_attempt_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
