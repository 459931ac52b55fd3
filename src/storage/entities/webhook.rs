use sea_orm::entity::prelude::*;

/// A subscribed receiver. Its signing secret is kept sealed under the master
/// key (it must be recoverable to sign), so `Debug` shows only sealed bytes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub url: String,
    /// Space separated event names.
    pub events: String,
    pub description: String,
    pub enabled: bool,
    /// The 32 secret bytes, AES-256-GCM under the master key (nonce ‖
    /// ciphertext ‖ tag, `webhook:{id}` as associated data).
    pub secret_sealed: Vec<u8>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub created_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
