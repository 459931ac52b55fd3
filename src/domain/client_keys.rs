//! Machine users' public keys for `private_key_jwt` (INTERFACE §11): a
//! validated JWK Set per machine user, who may hold keys and client secrets
//! at once. Accepted assertion `jti`s are recorded by
//! `storage::recorder` and pruned by `retention`.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QuerySelect,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Context, Error, PrincipalKind, audit, clock,
    principals::{self, Need},
};
use crate::{
    jwt::client_keys::validate_jwks,
    storage::{
        Change, Db, WriteTransactions, announce,
        entities::{client_assertion_jti, client_jwks, principal},
    },
};

async fn machine(
    db: &impl ConnectionTrait,
    id: Uuid,
    lock: bool,
) -> Result<principal::Model, Error> {
    let mut q = principal::Entity::find_by_id(id);
    if lock {
        q = q.lock_exclusive();
    }
    q.one(db)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
        .ok_or(Error::NotFound("machine user"))
}

/// The machine user's public keys: `{"keys": [...]}`, empty when it has none.
/// Admins and the machine user's managers (§12).
pub async fn get(
    db: &impl ConnectionTrait,
    ctx: &Context,
    machine_user_id: Uuid,
) -> Result<Value, Error> {
    principals::authorize(db, ctx, machine_user_id, Need::See).await?;
    let row = client_jwks::Entity::find_by_id(machine_user_id)
        .one(db)
        .await?;
    Ok(match row {
        Some(row) => serde_json::from_str(&row.jwks).map_err(|e| Error::Internal(e.into()))?,
        None => json!({"keys": []}),
    })
}

/// [`put`] for a JWK Set typed or pasted as text (the pages' form).
pub async fn put_text(
    db: &Db,
    ctx: &Context,
    machine_user_id: Uuid,
    text: &str,
) -> Result<Value, Error> {
    let set = serde_json::from_str::<Value>(text).map_err(|e| {
        Error::invalid(
            "jwks",
            format!("is not JSON ({e}): paste a JWK Set such as {{\"keys\": [...]}}"),
        )
    })?;
    put(db, ctx, machine_user_id, &set).await
}

/// Replaces the machine user's keys with `set`, once it is validated.
pub async fn put(
    db: &Db,
    ctx: &Context,
    machine_user_id: Uuid,
    set: &Value,
) -> Result<Value, Error> {
    principals::authorize(&db.read, ctx, machine_user_id, Need::Manage).await?;
    let public = validate_jwks(set).map_err(|e| Error::invalid("jwks", e))?;
    let stored = public.to_string();
    let kids: Vec<Value> = public["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| json!({"kid": k["kid"], "kty": k["kty"]}))
        .collect();
    let actor = ctx.actor.clone();
    db.write
        .write_transaction::<_, (), Error>(|tx| {
            Box::pin(async move {
                machine(tx, machine_user_id, true).await?;
                client_jwks::Entity::delete_by_id(machine_user_id)
                    .exec(tx)
                    .await?;
                client_jwks::ActiveModel {
                    machine_user_id: Set(machine_user_id),
                    jwks: Set(stored),
                    updated_at: Set(clock::now()),
                    updated_by: Set(actor.id()),
                }
                .insert(tx)
                .await?;
                audit::record(
                    tx,
                    &actor,
                    "client_keys.update",
                    "machine_user",
                    Some(machine_user_id.to_string()),
                    json!({"keys": kids}),
                )
                .await?;
                // Cached keys must be replaced now, on every instance.
                announce(tx, Change::Auth).await?;
                Ok(())
            })
        })
        .await?;
    db.changes.changed(Change::Auth);
    Ok(public)
}

/// Removes the machine user's keys (nothing to remove is fine).
pub async fn delete(db: &Db, ctx: &Context, machine_user_id: Uuid) -> Result<(), Error> {
    principals::authorize(&db.read, ctx, machine_user_id, Need::Manage).await?;
    let actor = ctx.actor.clone();
    let removed = db
        .write
        .write_transaction::<_, bool, Error>(|tx| {
            Box::pin(async move {
                machine(tx, machine_user_id, true).await?;
                let res = client_jwks::Entity::delete_by_id(machine_user_id)
                    .exec(tx)
                    .await?;
                if res.rows_affected == 0 {
                    return Ok(false);
                }
                audit::record(
                    tx,
                    &actor,
                    "client_keys.delete",
                    "machine_user",
                    Some(machine_user_id.to_string()),
                    json!({}),
                )
                .await?;
                announce(tx, Change::Auth).await?;
                Ok(true)
            })
        })
        .await?;
    if removed {
        db.changes.changed(Change::Auth);
    }
    Ok(())
}

/// For client authentication: the machine user called `client_id` and its
/// stored JWK Set, if it has one.
pub async fn for_client(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<Option<(principal::Model, String)>, Error> {
    let Some(m) = principals::find_by_username(db, client_id)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
    else {
        return Ok(None);
    };
    let row = client_jwks::Entity::find_by_id(m.id).one(db).await?;
    Ok(row.map(|r| (m, r.jwks)))
}

/// Used `jti`s whose assertion expired before `cutoff`: nothing can replay them.
pub fn expired_jtis(cutoff: OffsetDateTime) -> sea_orm::Condition {
    sea_orm::Condition::all().add(client_assertion_jti::Column::ExpiresAt.lt(cutoff))
}
