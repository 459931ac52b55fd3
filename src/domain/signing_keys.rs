//! Signing keys in the database: the first key, rotation, the list shown to
//! admins and the ring every instance loads. The private part is stored sealed
//! under the master key (`jwt::keys::seal`); a key stays published while it can
//! verify a live token.

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{Actor, audit, clock};
pub use crate::kinds::{KeyAlg, KeyState};
use crate::{
    jwt::keys::{KeyRing, LoadedKey, generate_pkcs8, load, new_kid, open, seal},
    secret::MasterKey,
    storage::{
        Change, Db, advisory_xact_lock, announce,
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
}

async fn insert_key(
    db: &impl ConnectionTrait,
    master: &MasterKey,
    alg: KeyAlg,
) -> anyhow::Result<signing_key::Model> {
    let kid = new_kid();
    let pkcs8 = tokio::task::spawn_blocking(move || generate_pkcs8(alg)).await??;
    // Loading checks the generated key before it is stored.
    let loaded = load(&kid, alg, &pkcs8, clock::now(), None)?;
    let model = signing_key::ActiveModel {
        kid: Set(kid.clone()),
        alg: Set(alg),
        state: Set(KeyState::Active),
        public_jwk: Set(loaded.jwk.to_string()),
        private_key: Set(seal(master, &kid, &pkcs8)),
        created_at: Set(clock::now()),
        retired_at: Set(None),
    };
    signing_key::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    signing_key::Entity::find_by_id(kid)
        .one(db)
        .await?
        .context("inserted key vanished")
}

/// Makes sure an active key exists (first start). Instances starting together
/// take turns, so only one of them creates it.
pub async fn ensure_active(db: &Db, master: &MasterKey, alg: KeyAlg) -> anyhow::Result<()> {
    let active = signing_key::Entity::find()
        .filter(signing_key::Column::State.eq(KeyState::Active))
        .one(&db.read)
        .await?;
    if active.is_some() {
        return Ok(());
    }
    let tx = db.write.begin().await?;
    advisory_xact_lock(&tx, FIRST_KEY_LOCK).await?;
    let active = signing_key::Entity::find()
        .filter(signing_key::Column::State.eq(KeyState::Active))
        .one(&tx)
        .await?;
    if active.is_none() {
        insert_key(&tx, master, alg).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Advisory lock key for creating the first signing key ("keys" in ASCII).
const FIRST_KEY_LOCK: i64 = 0x6b65_7973;

/// Retires the active key and creates a new one. Running instances pick it up
/// on their next reload (within 10 s, at once on PostgreSQL).
pub async fn rotate(
    db: &Db,
    master: &MasterKey,
    alg: KeyAlg,
    actor: &Actor,
) -> anyhow::Result<String> {
    actor.require_admin()?;
    let master = master.clone();
    let actor = actor.clone();
    let kid = db
        .write
        .transaction::<_, String, anyhow::Error>(|tx| {
            Box::pin(async move {
                let now = clock::now();
                signing_key::Entity::update_many()
                    .col_expr(
                        signing_key::Column::State,
                        sea_orm::sea_query::Expr::value(KeyState::Retired),
                    )
                    .col_expr(
                        signing_key::Column::RetiredAt,
                        sea_orm::sea_query::Expr::value(now),
                    )
                    .filter(signing_key::Column::State.eq(KeyState::Active))
                    .exec(tx)
                    .await?;
                let key = insert_key(tx, &master, alg).await?;
                audit::record(
                    tx,
                    &actor,
                    "key.rotate",
                    "signing_key",
                    Some(key.kid.clone()),
                    json!({"alg": alg.as_str()}),
                )
                .await?;
                announce(tx, Change::Keys).await?;
                Ok(key.kid)
            })
        })
        .await
        .map_err(|e| match e {
            sea_orm::TransactionError::Connection(e) => anyhow::Error::new(e),
            sea_orm::TransactionError::Transaction(e) => e,
        })?;
    db.changes.changed(Change::Keys);
    Ok(kid)
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
            KeyState::Active => None,
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
    for row in rows {
        let live = row.state == KeyState::Active
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
        by_kid.insert(row.kid, key);
    }
    let active = active.context("no active signing key")?;
    Ok(KeyRing::new(active, by_kid))
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
