//! Machine users' client secrets: at most two at once, stored as digests.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{Actor, Context, Error, PrincipalKind, audit, clock},
    secret::{PlainSecret, Secret},
    storage::{
        Change, Db, announce,
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

/// A new client secret; at most two exist at once so one can be rotated
/// without downtime.
pub async fn create_secret(
    db: &Db,
    ctx: &Context,
    machine_user_id: Uuid,
) -> Result<NewSecret, Error> {
    super::managers::authorize(
        &db.read,
        ctx,
        machine_user_id,
        super::managers::Need::Manage,
    )
    .await?;
    let actor = &ctx.actor;
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
pub(super) async fn insert_secret(
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
