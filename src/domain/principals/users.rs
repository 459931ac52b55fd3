//! Users: people, with a password (or single sign-on) and a role.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    common::{any_admin, blank, duplicate_username, find, is_admin, list_kind, parse_email},
    passwords::{check_password_rules, hash_password},
};
use crate::{
    domain::{
        Actor, AuthMethod, Error, Page, PageRequest, PrincipalKind, Role, Username, audit, clock,
    },
    storage::{Change, Db, WriteTransactions, advisory_xact_lock, announce, entities::principal},
};

/// Advisory lock key taken by every change that may demote or disable an
/// administrator, and by the setup that makes the first ("admins" in ASCII).
pub const ADMIN_CHANGE_LOCK: i64 = 0x6164_6d69_6e73;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    /// Where notices go; null when the user has not given one.
    pub email: Option<String>,
    /// How the user signs in.
    pub auth: AuthMethod,
}

impl User {
    fn from_model(m: principal::Model) -> Self {
        Self {
            id: m.id,
            username: m.username,
            role: m.role.unwrap_or(Role::User),
            enabled: m.enabled,
            created_at: m.created_at,
            last_login_at: m.last_login_at,
            email: m.email,
            auth: m.auth.unwrap_or(AuthMethod::Password),
        }
    }
}

pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// Optional; blank means none.
    pub email: Option<String>,
}

pub async fn create_user(db: &Db, actor: &Actor, new: NewUser) -> Result<User, Error> {
    actor.require_admin()?;
    let username = Username::parse(&new.username)?;
    let email = parse_email(new.email.as_deref().unwrap_or(""), "email")?;
    check_password_rules(&new.password)?;
    let hash = hash_password(new.password).await?;
    let mut model = blank(PrincipalKind::User, username, actor);
    model.role = Set(Some(new.role));
    model.password_hash = Set(Some(hash));
    model.email = Set(email);
    let actor = actor.clone();
    let created = db
        .write
        .write_transaction::<_, principal::Model, Error>(|tx| {
            Box::pin(async move {
                let created = model.insert(tx).await.map_err(duplicate_username)?;
                audit::record(
                    tx,
                    &actor,
                    "user.create",
                    "user",
                    Some(created.id.to_string()),
                    json!({"username": created.username, "role": new.role.as_str(), "email": created.email}),
                )
                .await?;
                Ok(created)
            })
        })
        .await?;
    Ok(User::from_model(created))
}

pub async fn get_user(db: &impl ConnectionTrait, id: Uuid) -> Result<User, Error> {
    match find(db, id).await? {
        Some(m) if m.kind == PrincipalKind::User => Ok(User::from_model(m)),
        _ => Err(Error::NotFound("user")),
    }
}

pub async fn list_users(db: &impl ConnectionTrait, page: PageRequest) -> Result<Page<User>, Error> {
    list_kind(db, PrincipalKind::User, page)
        .await
        .map(|p| p.map(User::from_model))
}

#[derive(Default)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub enabled: Option<bool>,
    pub password: Option<String>,
    /// A new address; a blank one clears it.
    pub email: Option<String>,
}

pub async fn update_user(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    patch: UserPatch,
) -> Result<User, Error> {
    actor.require_admin()?;
    patch_user(db, actor, id, patch).await
}

/// A signed-in person sets (or, with a blank, clears) their own address.
pub async fn set_own_email(db: &Db, actor: &Actor, email: &str) -> Result<User, Error> {
    let id = actor
        .id()
        .ok_or_else(|| Error::Forbidden("only a signed-in user has an address".into()))?;
    let patch = UserPatch {
        email: Some(email.to_owned()),
        ..UserPatch::default()
    };
    patch_user(db, actor, id, patch).await
}

async fn patch_user(db: &Db, actor: &Actor, id: Uuid, patch: UserPatch) -> Result<User, Error> {
    let email = patch
        .email
        .as_deref()
        .map(|e| parse_email(e, "email"))
        .transpose()?;
    if let Some(p) = &patch.password {
        check_password_rules(p)?;
    }
    let hash = match patch.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let actor = actor.clone();
    let (updated, changed) = db
        .write
        .write_transaction::<_, (principal::Model, bool), Error>(|tx| {
            Box::pin(async move {
                if patch.role.is_some() || patch.enabled.is_some() {
                    // Changes that may remove an administrator take turns, so
                    // two admins demoting each other cannot both see the other
                    // still standing (SQLite's single writer does this anyway).
                    advisory_xact_lock(tx, ADMIN_CHANGE_LOCK).await?;
                }
                let current = principal::Entity::find_by_id(id)
                    .lock_exclusive()
                    .one(tx)
                    .await?
                    .filter(|m| m.kind == PrincipalKind::User)
                    .ok_or(Error::NotFound("user"))?;
                let was_admin = is_admin(&current);
                let mut m = current.clone().into_active_model();
                let mut changed = serde_json::Map::new();
                if let Some(role) = patch.role {
                    m.role = Set(Some(role));
                    changed.insert("role".into(), json!(role.as_str()));
                }
                if let Some(enabled) = patch.enabled {
                    m.enabled = Set(enabled);
                    changed.insert("enabled".into(), json!(enabled));
                }
                if let Some(hash) = hash {
                    m.password_hash = Set(Some(hash));
                    changed.insert("password".into(), json!("changed"));
                }
                if let Some(email) = email {
                    changed.insert("email".into(), json!(email));
                    m.email = Set(email);
                }
                m.updated_at = Set(clock::now());
                let updated = m.update(tx).await?;
                if was_admin && !is_admin(&updated) && !any_admin(tx).await? {
                    return Err(Error::conflict(
                        "cannot demote or disable the last enabled administrator",
                    ));
                }
                let permissions_changed =
                    updated.enabled != current.enabled || updated.role != current.role;
                if permissions_changed || changed.contains_key("password") {
                    // A disabled user's browser sessions end now, as do all of
                    // them after a password reset.
                    if !updated.enabled || changed.contains_key("password") {
                        use crate::storage::entities::session;
                        session::Entity::delete_many()
                            .filter(session::Column::PrincipalId.eq(updated.id))
                            .exec(tx)
                            .await?;
                    }
                }
                if permissions_changed {
                    announce(tx, Change::Auth).await?;
                }
                audit::record(
                    tx,
                    &actor,
                    "user.update",
                    "user",
                    Some(id.to_string()),
                    serde_json::Value::Object(changed),
                )
                .await?;
                Ok((updated, permissions_changed))
            })
        })
        .await?;
    if changed {
        db.changes.changed(Change::Auth);
    }
    Ok(User::from_model(updated))
}

pub async fn record_login(db: &impl ConnectionTrait, id: Uuid) -> Result<(), Error> {
    principal::Entity::update_many()
        .col_expr(
            principal::Column::LastLoginAt,
            sea_orm::sea_query::Expr::value(clock::now()),
        )
        .filter(principal::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
