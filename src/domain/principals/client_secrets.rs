//! Machine users' client secrets: at most two at once, stored as digests.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{Actor, Context, Error, PrincipalKind, audit, clock},
    secret::{PlainSecret, Secret},
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{client_secret, principal},
    },
};

pub const MAX_ACTIVE_SECRETS: usize = 2;

pub const CLIENT_SECRET_PREFIX: &str = "tsc_";

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
    /// Null, or the end of its grace period after a newer secret replaced it:
    /// it stops working then and is removed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Replacing a secret in the call that creates its successor: the old one
/// keeps working for `grace_seconds` (0: it is removed at once).
#[derive(Debug, Clone, Copy)]
pub struct Replacement {
    pub replaces: Uuid,
    pub grace_seconds: i64,
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
    /// Always null for a new secret (the field every secret has).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A new client secret; at most two exist at once so one can be rotated
/// without downtime. With `replacement`, the named secret is retired in the
/// same transaction: removed at once, or when its grace period ends.
pub async fn create_secret(
    db: &Db,
    ctx: &Context,
    machine_user_id: Uuid,
    replacement: Option<Replacement>,
) -> Result<NewSecret, Error> {
    super::managers::authorize(
        &db.read,
        ctx,
        machine_user_id,
        super::managers::Need::Manage,
    )
    .await?;
    if let Some(r) = replacement {
        crate::domain::grace::check_grace(r.grace_seconds, "grace_seconds")?;
    }
    let actor = &ctx.actor;
    let secret = PlainSecret::generate(CLIENT_SECRET_PREFIX);
    let digest = secret.digest().to_hex();
    let hint = secret.hint(CLIENT_SECRET_PREFIX);
    let actor = actor.clone();
    let row = db
        .write
        .write_transaction::<_, client_secret::Model, Error>(|tx| {
            Box::pin(async move {
                let row =
                    insert_secret_replacing(tx, &actor, machine_user_id, digest, hint, replacement)
                        .await?;
                if replacement.is_some() {
                    // Cached authentications with the old secret must learn
                    // its end (or its removal) on every instance.
                    announce(tx, Change::Auth).await?;
                }
                Ok(row)
            })
        })
        .await?;
    if replacement.is_some() {
        db.changes.changed(Change::Auth);
    }
    Ok(NewSecret {
        id: row.id,
        client_secret: Secret::new(secret.expose().to_owned()),
        hint: row.hint.unwrap_or_default(),
        created_at: row.created_at,
        expires_at: None,
    })
}

/// Adds a client secret with `digest` to a machine user inside `tx`, within
/// the limit of [`MAX_ACTIVE_SECRETS`], and audits it.
pub(super) async fn insert_secret(
    tx: &impl ConnectionTrait,
    actor: &Actor,
    machine_user_id: Uuid,
    digest: String,
    hint: String,
) -> Result<client_secret::Model, Error> {
    insert_secret_replacing(tx, actor, machine_user_id, digest, hint, None).await
}

/// [`insert_secret`], retiring `replacement.replaces` too. The two-secret
/// limit counts a replaced secret until its grace ends (INTERFACE §9): a
/// secret is replaced with a grace period while it is the only one, and one
/// of two only at once (grace 0), so no more than two ever work.
async fn insert_secret_replacing(
    tx: &impl ConnectionTrait,
    actor: &Actor,
    machine_user_id: Uuid,
    digest: String,
    hint: String,
    replacement: Option<Replacement>,
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
    let now = clock::now();
    let replaced = match replacement {
        None => None,
        Some(r) => {
            let old = existing
                .iter()
                .find(|s| s.id == r.replaces)
                .ok_or(Error::NotFound("client secret"))?;
            if let Some(ends) = old.expires_at {
                return Err(Error::conflict(format!(
                    "this secret was replaced already and stops working at {}",
                    clock::rfc3339(ends)
                )));
            }
            Some((old.clone(), r.grace_seconds))
        }
    };
    // A grace that has ended counts no more, even before the sweep removes it.
    let live = existing
        .iter()
        .filter(|s| s.expires_at.is_none_or(|ends| ends > now));
    let in_grace = live.clone().filter(|s| s.expires_at.is_some()).count();
    let removed_now = usize::from(matches!(replaced, Some((_, 0))));
    if live.count() - removed_now >= MAX_ACTIVE_SECRETS {
        return Err(Error::conflict(if in_grace > 0 {
            "a machine user holds at most two client secrets, and a replaced one counts until its grace period ends"
        } else if replaced.is_some() {
            "a machine user holds at most two client secrets, and the replaced one counts until its grace period ends: remove the other first, or replace this one at once (grace_seconds 0)"
        } else {
            "a machine user holds at most two client secrets: remove one first, or replace one"
        }));
    }
    let row = client_secret::ActiveModel {
        id: Set(Uuid::now_v7()),
        machine_user_id: Set(machine_user_id),
        digest: Set(digest),
        created_at: Set(clock::now()),
        created_by: Set(actor.id()),
        last_used_at: Set(None),
        hint: Set(Some(hint)),
        expires_at: Set(None),
    }
    .insert(tx)
    .await?;
    let mut details = json!({"secret_id": row.id, "hint": row.hint});
    if let Some((old, grace)) = &replaced {
        details["replaces"] = json!(old.id);
        details["grace_seconds"] = json!(grace);
    }
    audit::record(
        tx,
        actor,
        "client_secret.create",
        "machine_user",
        Some(machine_user_id.to_string()),
        details,
    )
    .await?;
    match replaced {
        Some((old, 0)) => remove(tx, actor, &old).await?,
        Some((old, grace)) => {
            client_secret::Entity::update_many()
                .col_expr(
                    client_secret::Column::ExpiresAt,
                    Expr::value(crate::domain::grace::ends_after(grace)),
                )
                .filter(client_secret::Column::Id.eq(old.id))
                .exec(tx)
                .await?;
        }
        None => {}
    }
    Ok(row)
}

/// Deletes a secret and audits it (`client_secret.delete`); the caller
/// announces the change.
async fn remove(
    tx: &impl ConnectionTrait,
    actor: &Actor,
    found: &client_secret::Model,
) -> Result<(), Error> {
    let res = client_secret::Entity::delete_by_id(found.id)
        .exec(tx)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound("client secret"));
    }
    audit::record(
        tx,
        actor,
        "client_secret.delete",
        "machine_user",
        Some(found.machine_user_id.to_string()),
        json!({"secret_id": found.id, "hint": found.hint}),
    )
    .await?;
    Ok(())
}

/// Deletes the replaced secrets whose grace period has ended (the sweep):
/// each in its own short transaction, audited as done by the system. Returns
/// how many went.
pub async fn remove_expired(db: &Db) -> Result<u64, Error> {
    let due = client_secret::Entity::find()
        .filter(client_secret::Column::ExpiresAt.lte(clock::now()))
        .all(&db.read)
        .await?;
    let mut removed = 0;
    for found in due {
        let gone = db
            .write
            .write_transaction::<_, bool, Error>(|tx| {
                Box::pin(async move {
                    match remove(tx, &Actor::system(), &found).await {
                        // Another instance's sweep took it first.
                        Err(Error::NotFound(_)) => Ok(false),
                        Err(e) => Err(e),
                        Ok(()) => {
                            announce(tx, Change::Auth).await?;
                            Ok(true)
                        }
                    }
                })
            })
            .await?;
        if gone {
            db.changes.changed(Change::Auth);
            removed += 1;
        }
    }
    Ok(removed)
}

pub async fn delete_secret(
    db: &Db,
    ctx: &Context,
    machine_user_id: Uuid,
    secret_id: Uuid,
) -> Result<(), Error> {
    super::managers::authorize(
        &db.read,
        ctx,
        machine_user_id,
        super::managers::Need::Manage,
    )
    .await?;
    let actor = &ctx.actor;
    let actor = actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                // Read first, for the hint the audit record names it by.
                let found = client_secret::Entity::find_by_id(secret_id)
                    .filter(client_secret::Column::MachineUserId.eq(machine_user_id))
                    .one(tx)
                    .await?
                    .ok_or(Error::NotFound("client secret"))?;
                remove(tx, &actor, &found).await?;
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
