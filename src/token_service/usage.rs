//! `last used at / from` for tokens and client secrets, and each token's
//! recent uses (`history`), buffered in memory and written every few seconds
//! (`TESSERA_USAGE_FLUSH_INTERVAL`) in a few batched statements, so
//! validating a token never writes to the database. Recording a use takes
//! one short lock of one of 16 shards (by token id), so workers rarely wait
//! for each other; the buffer is bounded per token and in all.
//!
//! Lock order: token rows (in id order), then client-secret rows, each in
//! their own transaction, and the daily counter last in a statement of its
//! own. Every other writer takes a token row before the counter too, so a
//! flush cannot deadlock with them (or with another instance's flush). What
//! cannot be written stays in memory for the next flush, merged with newer
//! uses (the newest wins). History rows go after them (insert, then prune to
//! the newest 100 per token); history that cannot be written is dropped.

use std::{
    collections::{HashMap, VecDeque, hash_map::Entry},
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement, Value,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::history::{self, PER_TOKEN, Refused, Use, Via};
use crate::{
    domain::clock,
    storage::{WriteTransactions, entities::token},
};

/// Rows per statement: three parameters each stays far below the limits of
/// both backends.
const CHUNK: usize = 500;
/// Shards of the per-token buffer, so workers recording uses of different
/// tokens rarely wait for each other.
const SHARDS: usize = 16;
/// Uses buffered between two flushes, over all tokens; past it a new use
/// still updates "last used" but is left out of the history.
pub const MAX_BUFFERED_USES: usize = 100_000;
/// Uses of expired tokens waiting for their id (found by `jti` at the flush).
const MAX_EXPIRED_USES: usize = 10_000;

/// What one token did since the last flush.
#[derive(Default)]
struct TokenEntry {
    /// The newest accepted API use, for `last_used_at/ip`.
    last: Option<(OffsetDateTime, Option<IpAddr>)>,
    /// Uses, oldest first, at most [`PER_TOKEN`].
    history: VecDeque<Use>,
}

/// A token a refused use can be pinned on: by id, or for a token whose
/// signature verified but that had expired before it was cached, by `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Id(Uuid),
    Jti(String),
}

/// Who used a token how: everything a use records besides the token and time.
#[derive(Clone, Copy, Debug)]
pub struct UseOf<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub via: Via,
    pub client_id: Option<&'a str>,
    pub refused: Option<Refused>,
}

pub struct UsageTracker {
    shards: [Mutex<HashMap<Uuid, TokenEntry>>; SHARDS],
    /// History entries buffered in all shards.
    buffered: AtomicUsize,
    expired: Mutex<Vec<(String, Use)>>,
    secrets: Mutex<HashMap<Uuid, OffsetDateTime>>,
    /// Successful validations since the last flush, for the daily counter.
    validations: AtomicU64,
}

impl Default for UsageTracker {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::default()),
            buffered: AtomicUsize::new(0),
            expired: Mutex::default(),
            secrets: Mutex::default(),
            validations: AtomicU64::new(0),
        }
    }
}

fn shard_of(id: &Uuid) -> usize {
    // v7 ids start with the time: the random tail spreads tokens evenly.
    id.as_bytes()[15] as usize % SHARDS
}

impl UsageTracker {
    /// An accepted API call without a user agent (kept for callers that only
    /// need "last used").
    pub fn touch_token(&self, id: Uuid, ip: Option<&str>) {
        let ip = ip.and_then(|s| s.parse().ok());
        self.record(
            &Seen::Id(id),
            UseOf {
                ip,
                user_agent: None,
                via: Via::Api,
                client_id: None,
                refused: None,
            },
        );
    }

    /// Records one use in memory: one short lock of one shard, no database.
    pub fn record(&self, token: &Seen, how: UseOf<'_>) {
        let now = clock::now();
        let user_agent = how.user_agent.map(history::clip_user_agent);
        let id = match token {
            Seen::Id(id) => *id,
            Seen::Jti(jti) => {
                let mut pending = self.expired.lock().expect("usage lock");
                if pending.len() < MAX_EXPIRED_USES {
                    let prev = pending.last().map(|(_, u)| u);
                    let entry = Use {
                        at: now,
                        ip: how.ip,
                        user_agent: history::shared(
                            prev.and_then(|u| u.user_agent.as_ref()),
                            user_agent,
                        ),
                        via: how.via,
                        client_id: history::shared(
                            prev.and_then(|u| u.client_id.as_ref()),
                            how.client_id,
                        ),
                        refused: how.refused,
                    };
                    pending.push((jti.clone(), entry));
                }
                return;
            }
        };
        let accepted_api = how.refused.is_none() && how.via == Via::Api;
        if accepted_api {
            self.validations.fetch_add(1, Ordering::Relaxed);
        }
        let mut map = self.shards[shard_of(&id)].lock().expect("usage lock");
        let entry = map.entry(id).or_default();
        if accepted_api {
            entry.last = Some((now, how.ip));
        }
        let full = entry.history.len() >= PER_TOKEN;
        if !full && self.buffered.load(Ordering::Relaxed) >= MAX_BUFFERED_USES {
            return;
        }
        let prev = entry.history.back();
        let new = Use {
            at: now,
            ip: how.ip,
            user_agent: history::shared(prev.and_then(|u| u.user_agent.as_ref()), user_agent),
            via: how.via,
            client_id: history::shared(prev.and_then(|u| u.client_id.as_ref()), how.client_id),
            refused: how.refused,
        };
        if full {
            entry.history.pop_front();
        } else {
            self.buffered.fetch_add(1, Ordering::Relaxed);
        }
        entry.history.push_back(new);
    }

    pub fn touch_secret(&self, id: Uuid) {
        self.secrets
            .lock()
            .expect("usage lock")
            .insert(id, clock::now());
    }

    /// Uses buffered now (for tests of the bound).
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// Writes what was recorded since the last flush. On error, "last used"
    /// that was not written is kept for the next flush and the first error is
    /// returned; history that could not be written is dropped (it is a
    /// best-effort record, and retrying it forever could pile up).
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let mut taken: Vec<(Uuid, TokenEntry)> = Vec::new();
        for shard in &self.shards {
            let map = std::mem::take(&mut *shard.lock().expect("usage lock"));
            taken.extend(map);
        }
        let in_history: usize = taken.iter().map(|(_, e)| e.history.len()).sum();
        self.buffered.fetch_sub(in_history, Ordering::Relaxed);
        let expired = std::mem::take(&mut *self.expired.lock().expect("usage lock"));
        let mut tokens: Vec<(Uuid, TokenUse)> = taken
            .iter()
            .filter_map(|(id, e)| {
                e.last
                    .map(|(at, ip)| (*id, (at, ip.map(|ip| ip.to_string()))))
            })
            .collect();
        let mut uses: Vec<(Uuid, Vec<Use>)> = taken
            .into_iter()
            .filter(|(_, e)| !e.history.is_empty())
            .map(|(id, e)| (id, Vec::from(e.history)))
            .collect();
        let mut secrets: Vec<(Uuid, OffsetDateTime)> =
            std::mem::take(&mut *self.secrets.lock().expect("usage lock"))
                .into_iter()
                .collect();
        let validations = self.validations.swap(0, Ordering::Relaxed);
        tokens.sort_unstable_by_key(|(id, _)| *id);
        secrets.sort_unstable_by_key(|(id, _)| *id);
        let mut failed = None;
        let mut rest = tokens.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(CHUNK));
            let rows = chunk
                .iter()
                .map(|(id, (at, ip))| [(*id).into(), (*at).into(), ip.clone().into()])
                .collect();
            if let Err(e) = write_uses(db, Table::Tokens, rows).await {
                self.put_back(rest);
                failed.get_or_insert(e);
                break;
            }
            rest = tail;
        }

        let mut rest = secrets.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(CHUNK));
            let rows = chunk
                .iter()
                .map(|(id, at)| [(*id).into(), (*at).into()])
                .collect();
            if let Err(e) = write_uses(db, Table::Secrets, rows).await {
                merge(&self.secrets, rest.iter().cloned(), |at| *at);
                failed.get_or_insert(e);
                break;
            }
            rest = tail;
        }

        match resolve_expired(db, expired).await {
            Ok(more) => uses.extend(more),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
        if !uses.is_empty()
            && let Err(e) = history::store(db, &uses).await
        {
            failed.get_or_insert(e);
        }

        if validations > 0
            && let Err(e) = crate::storage::counters::add_to_today(db, validations, 0).await
        {
            self.validations.fetch_add(validations, Ordering::Relaxed);
            failed.get_or_insert(e);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Puts back "last used" that could not be written, unless a newer use
    /// of the same token was recorded meanwhile.
    fn put_back(&self, rows: &[(Uuid, TokenUse)]) {
        for (id, (at, ip)) in rows {
            let mut map = self.shards[shard_of(id)].lock().expect("usage lock");
            let entry = map.entry(*id).or_default();
            if entry.last.is_none_or(|(seen, _)| seen < *at) {
                entry.last = Some((*at, ip.as_deref().and_then(|s| s.parse().ok())));
            }
        }
    }
}

type TokenUse = (OffsetDateTime, Option<String>);

/// The ids of expired tokens whose uses were recorded by `jti`, in one query
/// per [`CHUNK`]; a `jti` with no row is dropped.
async fn resolve_expired<C: ConnectionTrait>(
    db: &C,
    expired: Vec<(String, Use)>,
) -> Result<Vec<(Uuid, Vec<Use>)>, DbErr> {
    let mut by_jti: HashMap<String, Vec<Use>> = HashMap::new();
    for (jti, u) in expired {
        by_jti.entry(jti).or_default().push(u);
    }
    let jtis: Vec<String> = by_jti.keys().cloned().collect();
    let mut out = Vec::new();
    for chunk in jtis.chunks(CHUNK) {
        let rows: Vec<(Uuid, String)> = token::Entity::find()
            .select_only()
            .column(token::Column::Id)
            .column(token::Column::Jti)
            .filter(token::Column::Jti.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, jti) in rows {
            if let Some(mut list) = by_jti.remove(&jti) {
                let keep = list.len().saturating_sub(PER_TOKEN);
                out.push((id, list.split_off(keep)));
            }
        }
    }
    Ok(out)
}

/// Puts back uses that could not be written, unless a newer use of the same
/// token or secret was recorded meanwhile.
fn merge<V>(
    map: &Mutex<HashMap<Uuid, V>>,
    rows: impl Iterator<Item = (Uuid, V)>,
    at: impl Fn(&V) -> OffsetDateTime,
) {
    let mut map = map.lock().expect("usage lock");
    for (id, value) in rows {
        match map.entry(id) {
            Entry::Occupied(e) if at(e.get()) >= at(&value) => {}
            Entry::Occupied(mut e) => {
                e.insert(value);
            }
            Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Table {
    Tokens,
    Secrets,
}

/// One transaction for one chunk of rows `[id, at, (ip)]`, sorted by id: on
/// PostgreSQL the rows are locked in that order first, then all are updated
/// by one statement. A use older than the one stored (written by another
/// instance) does not overwrite it.
async fn write_uses<const N: usize>(
    db: &DatabaseConnection,
    table: Table,
    rows: Vec<[Value; N]>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    // `$1, $2…` on PostgreSQL, `?` on SQLite, numbered from 1 per statement.
    let params = |count: usize| -> Vec<String> {
        (1..=count)
            .map(|i| match backend {
                DbBackend::Postgres => format!("${i}"),
                _ => "?".to_owned(),
            })
            .collect()
    };
    let (name, columns, set) = match table {
        Table::Tokens => (
            "tokens",
            "id, at, ip",
            "last_used_at = v.at, last_used_ip = v.ip",
        ),
        Table::Secrets => ("client_secrets", "id, at", "last_used_at = v.at"),
    };
    let tx = db.begin_write().await?;
    if backend == DbBackend::Postgres {
        let ids = params(rows.len());
        tx.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id FROM {name} WHERE id IN ({}) ORDER BY id FOR UPDATE",
                ids.join(", ")
            ),
            rows.iter().map(|r| r[0].clone()),
        ))
        .await?;
    }
    let tuples: Vec<String> = params(rows.len() * N)
        .chunks(N)
        .map(|row| format!("({})", row.join(", ")))
        .collect();
    tx.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "WITH v({columns}) AS (VALUES {}) \
             UPDATE {name} SET {set} FROM v \
             WHERE {name}.id = v.id \
             AND ({name}.last_used_at IS NULL OR {name}.last_used_at <= v.at)",
            tuples.join(", ")
        ),
        rows.into_iter().flatten(),
    ))
    .await?;
    tx.commit().await
}
