//! Signing keys in the database: the first key, rotation, the list shown to
//! admins and the ring every instance loads. The private part is stored sealed
//! under the master key (`jwt::keys::seal`); a key stays published while it can
//! verify a live token.

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{Actor, Error, audit, clock};
pub use crate::kinds::{KeyAlg, KeyState};
use crate::{
    duration::Dur,
    jwt::keys::{KeyRing, LoadedKey, generate_pkcs8, load, new_kid, open, seal},
    secret::MasterKey,
    storage::{
        Change, Db, WriteTransactions, advisory_xact_lock, announce,
        entities::{signing_key, token},
    },
};

/// A row of `tessera keys list` and `/admin/keys`.
pub struct KeyInfo {
    pub kid: String,
    pub alg: KeyAlg,
    pub state: KeyState,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
    /// When the last token it signed expires: after that it leaves the JWKS.
    pub retires_after: Option<OffsetDateTime>,
    /// For a `next` key: when it starts signing.
    pub activates_at: Option<OffsetDateTime>,
}

/// A rotation done: the new key, and when it starts signing (None: at once).
#[derive(Debug, Clone)]
pub struct Rotated {
    pub kid: String,
    pub activates_at: Option<OffsetDateTime>,
}

async fn insert_key(
    db: &impl ConnectionTrait,
    master: &MasterKey,
    alg: KeyAlg,
    activates_at: Option<OffsetDateTime>,
) -> anyhow::Result<signing_key::Model> {
    let kid = new_kid();
    let pkcs8 = tokio::task::spawn_blocking(move || generate_pkcs8(alg)).await??;
    // Loading checks the generated key before it is stored.
    let loaded = load(&kid, alg, &pkcs8, clock::now(), None)?;
    let model = signing_key::ActiveModel {
        kid: Set(kid.clone()),
        alg: Set(alg),
        state: Set(if activates_at.is_some() {
            KeyState::Next
        } else {
            KeyState::Active
        }),
        public_jwk: Set(loaded.jwk.to_string()),
        private_key: Set(seal(master, &kid, &pkcs8)),
        created_at: Set(clock::now()),
        retired_at: Set(None),
        activates_at: Set(activates_at),
    };
    signing_key::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    signing_key::Entity::find_by_id(kid)
        .one(db)
        .await?
        .context("inserted key vanished")
}

/// Whether any key has been sealed in this database: then only the master
/// key that sealed it may be used, never a new one.
pub async fn any_sealed(db: &impl ConnectionTrait) -> anyhow::Result<bool> {
    Ok(signing_key::Entity::find()
        .select_only()
        .column(signing_key::Column::Kid)
        .into_tuple::<String>()
        .one(db)
        .await?
        .is_some())
}

/// Makes sure an active key exists (first start), and that `master` opens
/// it. Instances starting together take turns, so only one of them creates it.
pub async fn ensure_active(db: &Db, master: &MasterKey, alg: KeyAlg) -> anyhow::Result<()> {
    let active = signing_key::Entity::find()
        .filter(signing_key::Column::State.eq(KeyState::Active))
        .one(&db.read)
        .await?;
    if let Some(key) = active {
        return opens(master, &key);
    }
    let tx = db.write.begin_write().await?;
    advisory_xact_lock(&tx, FIRST_KEY_LOCK).await?;
    let active = signing_key::Entity::find()
        .filter(signing_key::Column::State.eq(KeyState::Active))
        .one(&tx)
        .await?;
    match active {
        // Made by another process meanwhile.
        Some(key) => opens(master, &key)?,
        None => {
            insert_key(&tx, master, alg, None).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Whether `master` opens `key`. A command run with another master key (the
/// server's given in its environment, this one generated beside the
/// database) would seal keys that no server can open.
fn opens(master: &MasterKey, key: &signing_key::Model) -> anyhow::Result<()> {
    if open(master, &key.kid, &key.private_key).is_err() {
        anyhow::bail!(
            "the master key does not open this database's signing keys: give the one the server uses (TESSERA_MASTER_KEY, or master.key beside the SQLite file)"
        );
    }
    Ok(())
}

/// Advisory lock key for creating the first signing key ("keys" in ASCII).
const FIRST_KEY_LOCK: i64 = 0x6b65_7973;
/// Advisory lock key held by every change of key states ("keyrot").
const ROTATION_LOCK: i64 = 0x6b65_7972_6f74;

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::unexpected(e.into())
}

/// Rotates the signing key. Without `publish_for` the new key signs at once
/// and the active one (and a `next` key not yet signing) retire; with it the
/// new key is published as `next` and starts signing when `publish_for` has
/// passed, on every instance at that moment. Running instances pick it up on
/// their next reload (within 10 s, at once on PostgreSQL).
pub async fn rotate(
    db: &Db,
    master: &MasterKey,
    alg: KeyAlg,
    actor: &Actor,
    publish_for: Option<Dur>,
) -> Result<Rotated, Error> {
    actor.require_admin()?;
    let master = master.clone();
    let actor = actor.clone();
    let rotated = db
        .write
        .write_transaction::<_, Rotated, Error>(|tx| {
            Box::pin(async move {
                advisory_xact_lock(tx, ROTATION_LOCK).await?;
                let now = clock::now();
                promote_due_in(tx, now).await?;
                let pending = pending_next(tx).await?;
                let activates_at = match publish_for {
                    Some(d) => {
                        if let Some(p) = pending {
                            return Err(Error::conflict(format!(
                                "key {} is published already and starts signing at {}: rotate again after that, or rotate at once",
                                p.kid,
                                p.activates_at.map(clock::rfc3339).unwrap_or_default()
                            )));
                        }
                        Some(now + time::Duration::seconds(d.seconds))
                    }
                    None => {
                        // The active key, and a next key that never signed.
                        signing_key::Entity::update_many()
                            .col_expr(signing_key::Column::State, Expr::value(KeyState::Retired))
                            .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
                            .filter(
                                signing_key::Column::State
                                    .is_in([KeyState::Active, KeyState::Next]),
                            )
                            .exec(tx)
                            .await?;
                        None
                    }
                };
                let key = insert_key(tx, &master, alg, activates_at)
                    .await
                    .map_err(internal)?;
                audit::record(
                    tx,
                    &actor,
                    "key.rotate",
                    "signing_key",
                    Some(key.kid.clone()),
                    json!({
                        "alg": alg.as_str(),
                        "activates_at": activates_at.map(clock::rfc3339),
                        "publish_for_seconds": publish_for.map(|d| d.seconds),
                    }),
                )
                .await?;
                announce(tx, Change::Keys).await?;
                Ok(Rotated {
                    kid: key.kid,
                    activates_at,
                })
            })
        })
        .await?;
    db.changes.changed(Change::Keys);
    Ok(rotated)
}

/// The `next` key not yet signing, if any (the earliest).
async fn pending_next(db: &impl ConnectionTrait) -> Result<Option<signing_key::Model>, Error> {
    Ok(signing_key::Entity::find()
        .filter(signing_key::Column::State.eq(KeyState::Next))
        .order_by_asc(signing_key::Column::ActivatesAt)
        .one(db)
        .await?)
}

/// Records in the database what the signers already do by the clock: a `next`
/// key whose moment has come is active, and the key it replaced retired as
/// of that moment. Returns the promoted kid.
async fn promote_due_in(
    tx: &impl ConnectionTrait,
    now: OffsetDateTime,
) -> Result<Option<String>, Error> {
    let Some(due) = pending_next(tx)
        .await?
        .filter(|k| k.activates_at.is_some_and(|t| t <= now))
    else {
        return Ok(None);
    };
    let from = due.activates_at.unwrap_or(now);
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::State, Expr::value(KeyState::Retired))
        .col_expr(signing_key::Column::RetiredAt, Expr::value(from))
        .filter(signing_key::Column::State.eq(KeyState::Active))
        .exec(tx)
        .await?;
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::State, Expr::value(KeyState::Active))
        .filter(signing_key::Column::Kid.eq(due.kid.as_str()))
        .exec(tx)
        .await?;
    Ok(Some(due.kid))
}

/// [`promote_due_in`] in its own transaction, once across instances.
pub async fn promote_due(db: &Db) -> Result<Option<String>, Error> {
    let promoted = db
        .write
        .write_transaction::<_, Option<String>, Error>(|tx| {
            Box::pin(async move {
                advisory_xact_lock(tx, ROTATION_LOCK).await?;
                let promoted = promote_due_in(tx, clock::now()).await?;
                if promoted.is_some() {
                    announce(tx, Change::Keys).await?;
                }
                Ok(promoted)
            })
        })
        .await?;
    if promoted.is_some() {
        db.changes.changed(Change::Keys);
    }
    Ok(promoted)
}

/// Automatic rotation (`TESSERA_KEY_ROTATE_EVERY`): when the active key has
/// signed for `every` less `publish_for`, its successor is published as `next`
/// to start signing when the active key is `every` old (and never sooner than
/// `publish_for` from now). Under the rotation lock and only while no `next`
/// key exists, so however many instances run, one successor is made.
pub async fn rotate_if_due(
    db: &Db,
    master: &MasterKey,
    alg: KeyAlg,
    every: Dur,
    publish_for: Dur,
) -> Result<Option<Rotated>, Error> {
    let master = master.clone();
    let rotated = db
        .write
        .write_transaction::<_, Option<Rotated>, Error>(|tx| {
            Box::pin(async move {
                advisory_xact_lock(tx, ROTATION_LOCK).await?;
                let now = clock::now();
                promote_due_in(tx, now).await?;
                if pending_next(tx).await?.is_some() {
                    return Ok(None);
                }
                let Some(active) = signing_key::Entity::find()
                    .filter(signing_key::Column::State.eq(KeyState::Active))
                    .order_by_desc(signing_key::Column::CreatedAt)
                    .one(tx)
                    .await?
                else {
                    return Ok(None);
                };
                let since = active.activates_at.unwrap_or(active.created_at);
                let switch = since + time::Duration::seconds(every.seconds);
                let publish = time::Duration::seconds(publish_for.seconds);
                if now < switch - publish {
                    return Ok(None);
                }
                let activates_at = switch.max(now + publish);
                let key = insert_key(tx, &master, alg, Some(activates_at))
                    .await
                    .map_err(internal)?;
                audit::record(
                    tx,
                    &Actor::system(),
                    "key.rotate",
                    "signing_key",
                    Some(key.kid.clone()),
                    json!({
                        "alg": alg.as_str(),
                        "activates_at": clock::rfc3339(activates_at),
                        "publish_for_seconds": publish_for.seconds,
                        "automatic": true,
                    }),
                )
                .await?;
                announce(tx, Change::Keys).await?;
                Ok(Some(Rotated {
                    kid: key.kid,
                    activates_at: Some(activates_at),
                }))
            })
        })
        .await?;
    if rotated.is_some() {
        db.changes.changed(Change::Keys);
    }
    Ok(rotated)
}

/// When the last token `kid` signed expires: one index seek on
/// `(kid, expires_at)`, so reloads stay cheap however many tokens exist.
async fn last_expiry(
    db: &impl ConnectionTrait,
    kid: &str,
) -> anyhow::Result<Option<OffsetDateTime>> {
    let max: Option<Option<OffsetDateTime>> = token::Entity::find()
        .select_only()
        .column_as(token::Column::ExpiresAt.max(), "max_exp")
        .filter(token::Column::Kid.eq(kid))
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten())
}

pub async fn list(db: &impl ConnectionTrait) -> anyhow::Result<Vec<KeyInfo>> {
    let mut keys = signing_key::Entity::find().all(db).await?;
    keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let retires_after = match k.state {
            KeyState::Active | KeyState::Next => None,
            KeyState::Retired => Some(
                last_expiry(db, &k.kid)
                    .await?
                    .unwrap_or(k.retired_at.unwrap_or(k.created_at)),
            ),
        };
        out.push(KeyInfo {
            retires_after,
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            retired_at: k.retired_at,
            activates_at: k.activates_at,
        });
    }
    Ok(out)
}

/// Builds the ring from the database, reusing already-decrypted keys.
pub async fn load_ring(
    db: &impl ConnectionTrait,
    master: &MasterKey,
    previous: Option<&KeyRing>,
) -> anyhow::Result<KeyRing> {
    let now = clock::now();
    let rows = signing_key::Entity::find().all(db).await?;
    let mut by_kid = HashMap::new();
    let mut active: Option<Arc<LoadedKey>> = None;
    let mut next: Option<(Arc<LoadedKey>, OffsetDateTime)> = None;
    for row in rows {
        let live = matches!(row.state, KeyState::Active | KeyState::Next)
            || last_expiry(db, &row.kid)
                .await?
                .is_some_and(|exp| exp > now);
        if !live {
            continue;
        }
        let key = match previous.and_then(|p| p.by_kid.get(&row.kid)) {
            Some(k) if k.retired_at == row.retired_at => k.clone(),
            _ => {
                let pkcs8 = open(master, &row.kid, &row.private_key)?;
                Arc::new(load(
                    &row.kid,
                    row.alg,
                    &pkcs8,
                    row.created_at,
                    row.retired_at,
                )?)
            }
        };
        if row.state == KeyState::Active
            && active
                .as_ref()
                .is_none_or(|a| (a.created_at, &a.kid) < (key.created_at, &key.kid))
        {
            active = Some(key.clone());
        }
        if row.state == KeyState::Next
            && let Some(from) = row.activates_at
            && next.as_ref().is_none_or(|(_, t)| from < *t)
        {
            next = Some((key.clone(), from));
        }
        by_kid.insert(row.kid, key);
    }
    let active = active.context("no active signing key")?;
    Ok(KeyRing::new(active, by_kid).with_next(next))
}

/// A signer over the keys in the database, making the first key if there is
/// none: what the command line signs with.
pub async fn load_signer(
    db: &Db,
    master: &MasterKey,
    settings: &crate::config::Settings,
) -> anyhow::Result<crate::jwt::Signer> {
    ensure_active(db, master, settings.signing_alg).await?;
    let ring = load_ring(&db.read, master, None).await?;
    Ok(crate::jwt::Signer::new(
        settings.public_url.clone(),
        settings.audience.clone(),
        ring,
    ))
}
