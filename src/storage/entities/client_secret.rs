use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub machine_user_id: Uuid,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    #[sea_orm(unique)]
    pub digest: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub created_by: Option<Uuid>,
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
    /// `tsc_DEBK…xQgw`: identifies the secret without revealing it; null for
    /// secrets created before hints existed.
    pub hint: Option<String>,
    /// The end of its grace period once a newer secret replaced it: it
    /// stops authenticating then and is deleted by the sweep.
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
