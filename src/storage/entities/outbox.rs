use sea_orm::entity::prelude::*;

/// A message to send: a webhook delivery or an e-mail. Stored in the
/// transaction of what caused it; one instance claims each attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// For webhooks, the `webhook-id` (`msg_` + this id), the same on every retry.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `webhook` or `email`.
    pub channel: String,
    pub webhook_id: Option<Uuid>,
    pub recipient: Option<String>,
    pub event: String,
    pub subject: Option<String>,
    /// The webhook's JSON body, or the e-mail's text.
    pub body: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub attempts: i32,
    pub first_attempt_at: Option<TimeDateTimeWithTimeZone>,
    /// Null once delivered or given up.
    pub next_attempt_at: Option<TimeDateTimeWithTimeZone>,
    /// An instance is sending the current attempt until then.
    pub claimed_until: Option<TimeDateTimeWithTimeZone>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub last_error: Option<String>,
    /// For a reminder: the token it is about (dropped unsent once that
    /// token is revoked, replaced or gone).
    pub token_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
