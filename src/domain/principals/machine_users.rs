//! Machine users: API users whose username is their OAuth `client_id`.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    client_secrets::{CLIENT_SECRET_PREFIX, NewSecret, SecretInfo, insert_secret},
    common::{blank, duplicate_username, find, parse_email, refs},
    managers::{Keepers, MachineUserFilter, Need, authorize, list_rows, managed_by, replace},
};
use crate::{
    domain::{
        Actor, Context, Error, Page, PageRequest, PrincipalKind, PrincipalRef, ScopeSet, Username,
        audit, clock, is_admin_scope,
    },
    secret::{PlainSecret, Secret},
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{client_secret, principal},
    },
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientCredentials {
    pub enabled: bool,
    pub access_token_ttl_minutes: i32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MachineUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub description: String,
    pub contact_email: String,
    pub scopes: Vec<String>,
    pub enabled: bool,
    pub client_credentials: ClientCredentials,
    pub secrets: Vec<SecretInfo>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: Option<PrincipalRef>,
    /// People who are not admins but look after it.
    pub managers: Vec<PrincipalRef>,
    /// Neither its creator nor any manager is an enabled user.
    pub orphaned: bool,
}

impl MachineUser {
    /// One of its client secrets, by id.
    pub fn secret(&self, id: Uuid) -> Result<&SecretInfo, Error> {
        self.secrets
            .iter()
            .find(|s| s.id == id)
            .ok_or(Error::NotFound("client secret"))
    }
}

#[derive(Default, Debug, Clone)]
pub struct MachineUserInput {
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub contact_email: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub cc_enabled: Option<bool>,
    pub cc_ttl_minutes: Option<i64>,
    /// Usernames of enabled users (replaces the list).
    pub managers: Option<Vec<String>>,
}

fn check_ttl(minutes: i64) -> Result<i32, Error> {
    if (1..=1440).contains(&minutes) {
        Ok(minutes as i32)
    } else {
        Err(Error::invalid(
            "client_credentials.access_token_ttl_minutes",
            "must be from 1 to 1440 minutes",
        ))
    }
}

fn check_email(raw: &str) -> Result<String, Error> {
    parse_email(raw, "contact_email").map(Option::unwrap_or_default)
}

fn check_short_text(raw: &str, field: &'static str) -> Result<String, Error> {
    let text = raw.trim();
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must be at most 200 characters without control characters",
        ));
    }
    Ok(text.to_owned())
}

/// Machine users may hold registered and built-in scopes, never `admin:*`.
async fn check_machine_scopes(
    db: &impl ConnectionTrait,
    scopes: &[String],
) -> Result<ScopeSet, Error> {
    let set = ScopeSet::from_names(scopes.iter().map(|s| s.trim().to_owned()));
    if let Some(admin) = set.iter().find(|s| is_admin_scope(s)) {
        return Err(Error::invalid(
            "scopes",
            format!("{admin} can only be held by administrators"),
        ));
    }
    crate::domain::scopes::require_known(db, &set).await?;
    Ok(set)
}

pub async fn create_machine_user(
    db: &Db,
    actor: &Actor,
    input: MachineUserInput,
) -> Result<MachineUser, Error> {
    let managers = input.managers.clone();
    let model = new_machine_user(db, actor, input).await?;
    let actor = actor.clone();
    let created = db
        .write
        .write_transaction::<_, principal::Model, Error>(|tx| {
            Box::pin(async move {
                let created = insert_machine_user(tx, &actor, model).await?;
                if let Some(names) = &managers {
                    replace(tx, created.id, names).await?;
                }
                Ok(created)
            })
        })
        .await?;
    machine_user_view(&db.read, created).await
}

/// A machine user and its first client secret, in one transaction: either
/// both exist afterwards or neither does (the command line's
/// `machine-users create`).
pub async fn create_machine_user_with_secret(
    db: &Db,
    actor: &Actor,
    input: MachineUserInput,
) -> Result<(MachineUser, NewSecret), Error> {
    let model = new_machine_user(db, actor, input).await?;
    let secret = PlainSecret::generate(CLIENT_SECRET_PREFIX);
    let digest = secret.digest().to_hex();
    let hint = secret.hint(CLIENT_SECRET_PREFIX);
    let actor = actor.clone();
    let (created, row) = db
        .write
        .write_transaction::<_, (principal::Model, client_secret::Model), Error>(|tx| {
            Box::pin(async move {
                let created = insert_machine_user(tx, &actor, model).await?;
                let row = insert_secret(tx, &actor, created.id, digest, hint).await?;
                Ok((created, row))
            })
        })
        .await?;
    let view = machine_user_view(&db.read, created).await?;
    Ok((
        view,
        NewSecret {
            id: row.id,
            client_secret: Secret::new(secret.expose().to_owned()),
            hint: row.hint.unwrap_or_default(),
            created_at: row.created_at,
            expires_at: None,
        },
    ))
}

/// A validated machine user, not yet written.
async fn new_machine_user(
    db: &Db,
    actor: &Actor,
    input: MachineUserInput,
) -> Result<principal::ActiveModel, Error> {
    actor.require_admin()?;
    let username = Username::parse(input.username.as_deref().unwrap_or(""))?;
    let mut m = blank(PrincipalKind::Machine, username, actor);
    m.display_name = Set(check_short_text(
        input.display_name.as_deref().unwrap_or(""),
        "display_name",
    )?);
    m.description = Set(crate::domain::parse_description(
        input.description.as_deref(),
        "description",
    )?);
    m.contact_email = Set(check_email(input.contact_email.as_deref().unwrap_or(""))?);
    if let Some(scopes) = &input.scopes {
        m.scopes = Set(check_machine_scopes(&db.read, scopes).await?.to_string());
    }
    if let Some(enabled) = input.enabled {
        m.enabled = Set(enabled);
    }
    if let Some(on) = input.cc_enabled {
        m.cc_enabled = Set(on);
    }
    if let Some(ttl) = input.cc_ttl_minutes {
        m.cc_ttl_minutes = Set(check_ttl(ttl)?);
    }
    Ok(m)
}

async fn insert_machine_user(
    tx: &impl ConnectionTrait,
    actor: &Actor,
    model: principal::ActiveModel,
) -> Result<principal::Model, Error> {
    // Its scopes stay locked until the transaction ends, so none of them can
    // be deleted before this machine user counts as allowed it.
    if let sea_orm::ActiveValue::Set(scopes) = &model.scopes {
        crate::domain::scopes::require_known_locked(tx, &ScopeSet::from_stored(scopes)).await?;
    }
    let created = model.insert(tx).await.map_err(duplicate_username)?;
    audit::record(
        tx,
        actor,
        "machine_user.create",
        "machine_user",
        Some(created.id.to_string()),
        json!({"username": created.username, "scopes": created.scopes}),
    )
    .await?;
    Ok(created)
}

async fn machine_user_view(
    db: &impl ConnectionTrait,
    m: principal::Model,
) -> Result<MachineUser, Error> {
    Ok(machine_user_views(db, vec![m]).await?.remove(0))
}

/// Views of several machine users with two queries in all: their secrets, and
/// the principals who created them.
async fn machine_user_views(
    db: &impl ConnectionTrait,
    models: Vec<principal::Model>,
) -> Result<Vec<MachineUser>, Error> {
    let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
    let mut secrets: HashMap<Uuid, Vec<SecretInfo>> = HashMap::new();
    if !ids.is_empty() {
        for s in client_secret::Entity::find()
            .filter(client_secret::Column::MachineUserId.is_in(ids))
            // A replaced secret whose grace has ended works nowhere: it is
            // not shown while it waits for the sweep to delete it.
            .filter(
                Condition::any()
                    .add(client_secret::Column::ExpiresAt.is_null())
                    .add(client_secret::Column::ExpiresAt.gt(clock::now())),
            )
            .order_by_asc(client_secret::Column::Id)
            .all(db)
            .await?
        {
            secrets
                .entry(s.machine_user_id)
                .or_default()
                .push(SecretInfo {
                    id: s.id,
                    hint: s.hint,
                    created_at: s.created_at,
                    last_used_at: s.last_used_at,
                    expires_at: s.expires_at,
                });
        }
    }
    let mut keepers = Keepers::of(db, &models).await?;
    let creators: HashMap<Uuid, PrincipalRef> =
        refs(db, models.iter().filter_map(|m| m.created_by))
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    Ok(models
        .into_iter()
        .map(|m| MachineUser {
            orphaned: keepers.orphaned(&m),
            managers: keepers.managers.remove(&m.id).unwrap_or_default(),
            secrets: secrets.remove(&m.id).unwrap_or_default(),
            created_by: m.created_by.and_then(|id| creators.get(&id).cloned()),
            id: m.id,
            username: m.username,
            display_name: m.display_name,
            description: m.description,
            contact_email: m.contact_email,
            scopes: ScopeSet::from_stored(&m.scopes).to_vec(),
            enabled: m.enabled,
            client_credentials: ClientCredentials {
                enabled: m.cc_enabled,
                access_token_ttl_minutes: m.cc_ttl_minutes,
            },
            created_at: m.created_at,
        })
        .collect())
}

async fn find_machine(db: &impl ConnectionTrait, id: Uuid) -> Result<principal::Model, Error> {
    find(db, id)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
        .ok_or(Error::NotFound("machine user"))
}

pub async fn get_machine_user(db: &impl ConnectionTrait, id: Uuid) -> Result<MachineUser, Error> {
    let m = find_machine(db, id).await?;
    machine_user_view(db, m).await
}

/// One machine user, for an admin or one of its managers.
pub async fn view_machine_user(
    db: &impl ConnectionTrait,
    ctx: &Context,
    id: Uuid,
) -> Result<MachineUser, Error> {
    let m = authorize(db, ctx, id, Need::See).await?;
    machine_user_view(db, m).await
}

pub async fn list_machine_users(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<Page<MachineUser>, Error> {
    list_machine_users_filtered(db, MachineUserFilter::default(), page).await
}

/// Machine users for the caller: every one (admins, filtered by `orphaned`
/// if asked), or those the caller manages (a manager; 403 for someone who
/// manages none, as before managers existed).
pub async fn list_machine_users_for(
    db: &impl ConnectionTrait,
    ctx: &Context,
    orphaned: Option<bool>,
    page: PageRequest,
) -> Result<Page<MachineUser>, Error> {
    let holds = |scope: &str| ctx.token.as_ref().is_none_or(|t| t.scopes.contains(scope));
    let mut filter = MachineUserFilter {
        orphaned,
        managed_by: None,
    };
    match ctx.actor.principal.as_ref() {
        Some(_) if ctx.actor.is_admin && holds("admin:read") => {}
        Some(me) if holds("tokens:read") && !managed_by(db, me.id).await?.is_empty() => {
            filter.managed_by = Some(me.id);
        }
        Some(_) => {
            return Err(Error::Forbidden(
                "administrators only, or the managers of machine users".into(),
            ));
        }
        None => {}
    }
    list_machine_users_filtered(db, filter, page).await
}

pub async fn list_machine_users_filtered(
    db: &impl ConnectionTrait,
    filter: MachineUserFilter,
    page: PageRequest,
) -> Result<Page<MachineUser>, Error> {
    let page = list_rows(db, filter, page).await?;
    Ok(Page {
        items: machine_user_views(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// Changes take effect on the machine user's existing tokens at their next use.
pub async fn update_machine_user(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: MachineUserInput,
) -> Result<MachineUser, Error> {
    actor.require_admin()?;
    // The username is the OAuth client_id: it is taken back unchanged (a
    // client sending what it read), never changed.
    let username = input.username.clone();
    let scopes = match &input.scopes {
        Some(s) => Some(check_machine_scopes(&db.read, s).await?),
        None => None,
    };
    let display_name = input
        .display_name
        .as_deref()
        .map(|s| check_short_text(s, "display_name"))
        .transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|s| crate::domain::parse_description(Some(s), "description"))
        .transpose()?;
    let contact_email = input
        .contact_email
        .as_deref()
        .map(check_email)
        .transpose()?;
    let ttl = input.cc_ttl_minutes.map(check_ttl).transpose()?;
    let actor = actor.clone();
    let (updated, changed) = db
        .write
        .write_transaction::<_, (principal::Model, bool), Error>(|tx| {
            Box::pin(async move {
                let current = principal::Entity::find_by_id(id)
                    .lock_exclusive()
                    .one(tx)
                    .await?
                    .filter(|m| m.kind == PrincipalKind::Machine)
                    .ok_or(Error::NotFound("machine user"))?;
                if username.is_some_and(|u| u != current.username) {
                    return Err(Error::invalid(
                        "username",
                        "cannot be changed: it is the OAuth client_id",
                    ));
                }
                if let Some(v) = &scopes {
                    // As on create: no scope it is allowed can vanish meanwhile.
                    crate::domain::scopes::require_known_locked(tx, v).await?;
                }
                let mut m = current.clone().into_active_model();
                let mut changed = serde_json::Map::new();
                if let Some(v) = display_name {
                    changed.insert("display_name".into(), json!(v));
                    m.display_name = Set(v);
                }
                if let Some(v) = description {
                    changed.insert("description".into(), json!(v));
                    m.description = Set(v);
                }
                if let Some(v) = contact_email {
                    changed.insert("contact_email".into(), json!(v));
                    m.contact_email = Set(v);
                }
                if let Some(v) = scopes {
                    changed.insert("scopes".into(), json!(v.to_string()));
                    m.scopes = Set(v.to_string());
                }
                if let Some(v) = input.enabled {
                    changed.insert("enabled".into(), json!(v));
                    m.enabled = Set(v);
                }
                if let Some(v) = input.cc_enabled {
                    changed.insert("client_credentials.enabled".into(), json!(v));
                    m.cc_enabled = Set(v);
                }
                if let Some(v) = ttl {
                    changed.insert(
                        "client_credentials.access_token_ttl_minutes".into(),
                        json!(v),
                    );
                    m.cc_ttl_minutes = Set(v);
                }
                if let Some(names) = &input.managers
                    && let Some(now) = replace(tx, id, names).await?
                {
                    changed.insert("managers".into(), now);
                }
                m.updated_at = Set(clock::now());
                let updated = m.update(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "machine_user.update",
                    "machine_user",
                    Some(id.to_string()),
                    serde_json::Value::Object(changed),
                )
                .await?;
                // Cached client authentications hold the whole record: any
                // real change makes them stale, a no-op patch does not.
                let changed = principal::Model {
                    updated_at: current.updated_at,
                    ..updated.clone()
                } != current;
                if changed {
                    announce(tx, Change::Auth).await?;
                }
                Ok((updated, changed))
            })
        })
        .await?;
    if changed {
        db.changes.changed(Change::Auth);
    }
    machine_user_view(&db.read, updated).await
}

/// Deletes the machine user; its tokens and secrets go with it (foreign keys
/// cascade), the audit log keeps the record.
pub async fn delete_machine_user(db: &Db, actor: &Actor, id: Uuid) -> Result<(), Error> {
    actor.require_admin()?;
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                let m = find_machine(tx, id).await?;
                principal::Entity::delete_by_id(id).exec(tx).await?;
                audit::record(
                    tx,
                    &actor,
                    "machine_user.delete",
                    "machine_user",
                    Some(id.to_string()),
                    json!({"username": m.username}),
                )
                .await?;
                announce(tx, Change::Auth).await?;
                Ok(())
            })
        })
        .await?;
    db.changes.changed(Change::Auth);
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};

    use super::*;
    use crate::storage::entities::audit_event;

    /// The machine user and its secret share one transaction: when the
    /// second insert fails, the first is rolled back with it.
    #[tokio::test]
    async fn a_machine_user_is_not_kept_when_its_first_secret_fails() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        db.write
            .execute_unprepared(
                "CREATE TRIGGER no_secrets BEFORE INSERT ON client_secrets \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .await
            .unwrap();
        let input = MachineUserInput {
            username: Some("half-made".into()),
            ..MachineUserInput::default()
        };

        let result = create_machine_user_with_secret(&db, &Actor::system(), input.clone()).await;

        assert!(
            matches!(result, Err(Error::Internal(_))),
            "the secret insert failed"
        );
        assert_eq!(principal::Entity::find().count(&db.read).await.unwrap(), 0);
        assert_eq!(
            audit_event::Entity::find().count(&db.read).await.unwrap(),
            0
        );

        db.write
            .execute_unprepared("DROP TRIGGER no_secrets")
            .await
            .unwrap();
        let (machine, secret) = create_machine_user_with_secret(&db, &Actor::system(), input)
            .await
            .unwrap();
        assert_eq!(machine.secrets.len(), 1);
        assert_eq!(machine.secrets[0].id, secret.id);
    }
}
