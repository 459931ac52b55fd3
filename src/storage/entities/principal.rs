use sea_orm::entity::prelude::*;

use crate::{
    kinds::{AuthMethod, PrincipalKind, Role},
    secret::HashedPassword,
};

/// A user or a machine user: one table, so usernames share one namespace.
/// The password hash is a `HashedPassword`, whose `Debug` hides it.
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
    pub password_hash: Option<HashedPassword>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_password_hash_out_of_the_row_and_its_active_model() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let user = Model {
            id: Uuid::nil(),
            kind: PrincipalKind::User,
            username: "alice".into(),
            enabled: true,
            role: Some(Role::User),
            password_hash: Some(HashedPassword::new(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            )),
            display_name: String::new(),
            description: String::new(),
            contact_email: String::new(),
            scopes: String::new(),
            cc_enabled: false,
            cc_ttl_minutes: 0,
            created_at: now,
            created_by: None,
            updated_at: now,
            last_login_at: None,
            email: None,
            auth: Some(AuthMethod::Password),
        };
        let shown = format!("{user:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("argon2"), "{shown}");
        // The ActiveModel sea-orm derives, as an update would hold it.
        let shown = format!("{:?}", ActiveModel::from(user));
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("argon2"), "{shown}");
    }
}
