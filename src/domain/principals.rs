//! Users (people, with passwords and a role) and machine users (API users,
//! whose username is their OAuth `client_id`), and machine users' client
//! secrets. Both kinds live in one table so usernames share one namespace.

use std::collections::HashMap;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Actor, AuthMethod, Error, Page, PageRequest, PrincipalKind, PrincipalRef, Role, ScopeSet,
    Username, audit, clock, is_admin_scope, is_unique_violation,
};
use crate::{
    secret::{Digest, PlainSecret, Secret},
    storage::{
        Change, Db, advisory_xact_lock, announce,
        entities::{client_secret, principal},
    },
};

pub const MAX_ACTIVE_SECRETS: usize = 2;
pub const DEFAULT_CC_TTL_MINUTES: i32 = 60;
pub const CLIENT_SECRET_PREFIX: &str = "tsc_";
/// Advisory lock key taken by every change that may demote or disable an
/// administrator ("admins" in ASCII).
const ADMIN_CHANGE_LOCK: i64 = 0x6164_6d69_6e73;

// ---------------------------------------------------------------- passwords

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

pub fn check_password_rules(password: &str) -> Result<(), Error> {
    let len = password.chars().count();
    if len < 8 {
        return Err(Error::invalid("password", "must be at least 8 characters"));
    }
    if len > 1024 {
        return Err(Error::invalid(
            "password",
            "must be at most 1024 characters",
        ));
    }
    Ok(())
}

/// Argon2 runs with at most one computation per core: each holds about
/// 19 MiB, so a flood of sign-ins can neither exhaust memory nor take every
/// core from the token endpoint.
static ARGON2_PERMITS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores)
    });

/// Every argon2 computation is busy: a password check is refused at once
/// (429) rather than queued without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheckBusy;

/// How long a refused password check should wait before trying again.
pub const PASSWORD_BUSY_RETRY_SECS: u64 = 1;

/// Whether a password check would be refused now (cheap: lets callers skip
/// their own work under a flood).
pub fn password_checks_saturated() -> bool {
    ARGON2_PERMITS.available_permits() == 0
}

/// Hashes off the async threads: argon2id takes tens of milliseconds by design.
/// Hashing (an admin setting a password, the first-admin setup) waits for a
/// free permit: its callers are authenticated or hold a setup code, so the
/// queue is not an attacker's to grow.
pub async fn hash_password(password: String) -> Result<String, Error> {
    let permit = ARGON2_PERMITS
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>())
            .expect("16 bytes is a valid salt");
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
    .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
}

/// Verifies against `hash`, or against a dummy hash when there is no user, so
/// the time taken does not tell whether a username exists. Refused at once
/// when every argon2 permit is taken.
pub async fn verify_password(
    hash: Option<String>,
    password: String,
) -> Result<bool, PasswordCheckBusy> {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1dNy3Gx0k9Itn9yF7hqwTf5qqfl9V0W5fvMCHzN8l+I";
    let permit = ARGON2_PERMITS
        .try_acquire()
        .map_err(|_| PasswordCheckBusy)?;
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        // Held until the computation ends, even if the request is dropped.
        let _permit = permit;
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    Ok(ok && known)
}

// ---------------------------------------------------------------- views

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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientCredentials {
    pub enabled: bool,
    pub access_token_ttl_minutes: i32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub id: Uuid,
    /// `tsc_DEBK…xQgw`, enough to tell secrets apart and never to use one;
    /// null for secrets created before hints were recorded.
    pub hint: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
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
}

/// A new client secret: the plaintext appears in this value only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewSecret {
    pub id: Uuid,
    #[serde(serialize_with = "crate::secret::serde_exposed::serialize")]
    #[schema(value_type = String)]
    pub client_secret: Secret<String>,
    /// What lists, pages and the audit log show of this secret from now on.
    pub hint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- permissions

/// The scopes a principal may hold right now: an admin holds everything, a
/// user everything but `admin:*`, a machine user its allowed scopes (never
/// `admin:*`); a disabled principal holds nothing.
pub fn permits(p: &principal::Model, scope: &str) -> bool {
    if !p.enabled {
        return false;
    }
    match p.kind {
        PrincipalKind::User => p.role == Some(Role::Admin) || !is_admin_scope(scope),
        PrincipalKind::Machine => {
            !is_admin_scope(scope) && p.scopes.split_ascii_whitespace().any(|s| s == scope)
        }
    }
}

pub fn is_admin(p: &principal::Model) -> bool {
    p.enabled && p.kind == PrincipalKind::User && p.role == Some(Role::Admin)
}

// ---------------------------------------------------------------- lookups

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<principal::Model>, Error> {
    // No username holds NUL, and PostgreSQL refuses it in a query parameter.
    if username.contains('\0') {
        return Ok(None);
    }
    Ok(principal::Entity::find()
        .filter(principal::Column::Username.eq(username))
        .one(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<principal::Model>, Error> {
    Ok(principal::Entity::find_by_id(id).one(db).await?)
}

pub async fn refs(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<PrincipalRef>, Error> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, String)> = principal::Entity::find()
        .select_only()
        .column(principal::Column::Id)
        .column(principal::Column::Username)
        .filter(principal::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, username)| PrincipalRef { id, username })
        .collect())
}

pub async fn any_admin(db: &impl ConnectionTrait) -> Result<bool, Error> {
    Ok(principal::Entity::find()
        .filter(principal::Column::Kind.eq(PrincipalKind::User))
        .filter(principal::Column::Role.eq(Role::Admin))
        .filter(principal::Column::Enabled.eq(true))
        .one(db)
        .await?
        .is_some())
}

pub(super) fn blank(
    kind: PrincipalKind,
    username: Username,
    actor: &Actor,
) -> principal::ActiveModel {
    let now = clock::now();
    principal::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind),
        username: Set(username.as_str().to_owned()),
        enabled: Set(true),
        role: Set(None),
        password_hash: Set(None),
        display_name: Set(String::new()),
        description: Set(String::new()),
        contact_email: Set(String::new()),
        scopes: Set(String::new()),
        cc_enabled: Set(false),
        cc_ttl_minutes: Set(DEFAULT_CC_TTL_MINUTES),
        created_at: Set(now),
        created_by: Set(actor.id()),
        updated_at: Set(now),
        last_login_at: Set(None),
        email: Set(None),
        // People sign in with a password unless single sign-on says
        // otherwise; machine users never sign in.
        auth: Set((kind == PrincipalKind::User).then_some(AuthMethod::Password)),
    }
}

pub(super) fn duplicate_username(e: sea_orm::DbErr) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("username is already taken")
    } else {
        e.into()
    }
}

// ---------------------------------------------------------------- users

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
        .transaction::<_, principal::Model, Error>(|tx| {
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

async fn list_kind(
    db: &impl ConnectionTrait,
    kind: PrincipalKind,
    page: PageRequest,
) -> Result<Page<principal::Model>, Error> {
    let mut q = principal::Entity::find().filter(principal::Column::Kind.eq(kind));
    if let Some(cursor) = page.cursor {
        q = q.filter(principal::Column::Id.lt(cursor));
    }
    let rows = q
        .order_by_desc(principal::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id))
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
        .transaction::<_, (principal::Model, bool), Error>(|tx| {
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

// ---------------------------------------------------------------- machine users

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

/// A plausible e-mail address, trimmed, or `None` for a blank: one `@`
/// between a local part (at most 64 characters) and a dotted domain without
/// empty labels, at most 254 characters in all, no spaces or control
/// characters. Whether mail arrives is for the mail server to say.
pub fn parse_email(raw: &str, field: &'static str) -> Result<Option<String>, Error> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            (1..=64).contains(&local.len())
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| !label.is_empty())
        });
    if valid {
        Ok(Some(email.to_owned()))
    } else {
        Err(Error::invalid(
            field,
            "must be an e-mail address such as name@example.com, at most 254 characters",
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
    super::scopes::require_known(db, &set).await?;
    Ok(set)
}

pub async fn create_machine_user(
    db: &Db,
    actor: &Actor,
    input: MachineUserInput,
) -> Result<MachineUser, Error> {
    let model = new_machine_user(db, actor, input).await?;
    let actor = actor.clone();
    let created = db
        .write
        .transaction::<_, principal::Model, Error>(|tx| {
            Box::pin(async move { insert_machine_user(tx, &actor, model).await })
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
        .transaction::<_, (principal::Model, client_secret::Model), Error>(|tx| {
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
    m.description = Set(super::parse_description(
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
        super::scopes::require_known_locked(tx, &ScopeSet::from_stored(scopes)).await?;
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
                });
        }
    }
    let creators: HashMap<Uuid, PrincipalRef> =
        refs(db, models.iter().filter_map(|m| m.created_by))
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    Ok(models
        .into_iter()
        .map(|m| MachineUser {
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

pub async fn list_machine_users(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<Page<MachineUser>, Error> {
    let page = list_kind(db, PrincipalKind::Machine, page).await?;
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
    if input.username.is_some() {
        return Err(Error::invalid(
            "username",
            "cannot be changed: it is the OAuth client_id",
        ));
    }
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
        .map(|s| super::parse_description(Some(s), "description"))
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
        .transaction::<_, (principal::Model, bool), Error>(|tx| {
            Box::pin(async move {
                let current = principal::Entity::find_by_id(id)
                    .lock_exclusive()
                    .one(tx)
                    .await?
                    .filter(|m| m.kind == PrincipalKind::Machine)
                    .ok_or(Error::NotFound("machine user"))?;
                if let Some(v) = &scopes {
                    // As on create: no scope it is allowed can vanish meanwhile.
                    super::scopes::require_known_locked(tx, v).await?;
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
        .transaction::<_, (), Error>(|tx| {
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

/// A new client secret; at most two exist at once so one can be rotated
/// without downtime.
pub async fn create_secret(
    db: &Db,
    actor: &Actor,
    machine_user_id: Uuid,
) -> Result<NewSecret, Error> {
    actor.require_admin()?;
    let secret = PlainSecret::generate(CLIENT_SECRET_PREFIX);
    let digest = secret.digest().to_hex();
    let hint = secret.hint(CLIENT_SECRET_PREFIX);
    let actor = actor.clone();
    let row = db
        .write
        .transaction::<_, client_secret::Model, Error>(|tx| {
            Box::pin(async move { insert_secret(tx, &actor, machine_user_id, digest, hint).await })
        })
        .await?;
    Ok(NewSecret {
        id: row.id,
        client_secret: Secret::new(secret.expose().to_owned()),
        hint: row.hint.unwrap_or_default(),
        created_at: row.created_at,
    })
}

/// Adds a client secret with `digest` to a machine user inside `tx`, within
/// the limit of [`MAX_ACTIVE_SECRETS`], and audits it.
async fn insert_secret(
    tx: &impl ConnectionTrait,
    actor: &Actor,
    machine_user_id: Uuid,
    digest: String,
    hint: String,
) -> Result<client_secret::Model, Error> {
    // Lock the owner so two concurrent requests cannot both add a second secret.
    principal::Entity::find_by_id(machine_user_id)
        .lock_exclusive()
        .one(tx)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
        .ok_or(Error::NotFound("machine user"))?;
    let existing = client_secret::Entity::find()
        .filter(client_secret::Column::MachineUserId.eq(machine_user_id))
        .all(tx)
        .await?;
    if existing.len() >= MAX_ACTIVE_SECRETS {
        return Err(Error::conflict(
            "a machine user holds at most two client secrets: remove one first",
        ));
    }
    let row = client_secret::ActiveModel {
        id: Set(Uuid::now_v7()),
        machine_user_id: Set(machine_user_id),
        digest: Set(digest),
        created_at: Set(clock::now()),
        created_by: Set(actor.id()),
        last_used_at: Set(None),
        hint: Set(Some(hint)),
    }
    .insert(tx)
    .await?;
    audit::record(
        tx,
        actor,
        "client_secret.create",
        "machine_user",
        Some(machine_user_id.to_string()),
        json!({"secret_id": row.id, "hint": row.hint}),
    )
    .await?;
    Ok(row)
}

pub async fn delete_secret(
    db: &Db,
    actor: &Actor,
    machine_user_id: Uuid,
    secret_id: Uuid,
) -> Result<(), Error> {
    actor.require_admin()?;
    let actor = actor.clone();
    db.write
        .transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                // Read first, for the hint the audit record names it by.
                let found = client_secret::Entity::find_by_id(secret_id)
                    .filter(client_secret::Column::MachineUserId.eq(machine_user_id))
                    .one(tx)
                    .await?
                    .ok_or(Error::NotFound("client secret"))?;
                let res = client_secret::Entity::delete_by_id(found.id)
                    .exec(tx)
                    .await?;
                if res.rows_affected == 0 {
                    return Err(Error::NotFound("client secret"));
                }
                audit::record(
                    tx,
                    &actor,
                    "client_secret.delete",
                    "machine_user",
                    Some(machine_user_id.to_string()),
                    json!({"secret_id": secret_id, "hint": found.hint}),
                )
                .await?;
                // Cached client authentications with this secret must stop
                // working now, on every instance.
                announce(tx, Change::Auth).await?;
                Ok(())
            })
        })
        .await?;
    db.changes.changed(Change::Auth);
    Ok(())
}

/// Client authentication: the machine user if `secret` matches one of its
/// secrets (constant-time), it is enabled, and it exists.
pub async fn authenticate_client(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret: &str,
) -> Result<Option<(principal::Model, Uuid)>, Error> {
    let Some(m) = find_by_username(db, client_id)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
    else {
        return Ok(None);
    };
    let presented = Digest::of(secret);
    let secrets = client_secret::Entity::find()
        .filter(client_secret::Column::MachineUserId.eq(m.id))
        .all(db)
        .await?;
    // Compare with every secret so timing does not tell which one matched.
    let mut matched = None;
    for s in &secrets {
        if presented.matches_hex(&s.digest) {
            matched = Some(s.id);
        }
    }
    Ok(match matched {
        Some(id) if m.enabled => Some((m, id)),
        _ => None,
    })
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
