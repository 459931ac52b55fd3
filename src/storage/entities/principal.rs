use sea_orm::entity::prelude::*;

use crate::kinds::{AuthMethod, PrincipalKind, Role};

/// A user or a machine user: one table, so usernames share one namespace.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "principals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: PrincipalKind,
    #[sea_orm(unique)]
    pub username: String,
    pub enabled: bool,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub display_name: String,
    pub description: String,
    pub contact_email: String,
    /// Machine users: allowed scopes, space separated.
    pub scopes: String,
    pub cc_enabled: bool,
    pub cc_ttl_minutes: i32,
    pub created_at: TimeDateTimeWithTimeZone,
    pub created_by: Option<Uuid>,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub last_login_at: Option<TimeDateTimeWithTimeZone>,
    /// Users: where notices go (optional).
    pub email: Option<String>,
    /// Users: how they sign in; machine users have none.
    pub auth: Option<AuthMethod>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
