use sea_orm::entity::prelude::*;

/// A one-time form nonce, and the shown-once secret its form produced.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "form_nonces")]
pub struct Model {
    /// The nonce: 256 random bits, base64url.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The session key (`sessions.id`) the nonce belongs to.
    pub session_id: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
    /// When the form was posted; a second post finds it set.
    pub used_at: Option<TimeDateTimeWithTimeZone>,
    /// Where what the form made lives (a resubmission is sent there).
    pub done_url: Option<String>,
    /// JSON of the reveal page's non-secret parts.
    pub page: Option<String>,
    /// The secret, AES-256-GCM under the master key (the nonce as associated
    /// data); cleared when shown or when `reveal_until` passes.
    pub sealed: Option<Vec<u8>>,
    pub reveal_until: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
