//! Group commit for what the token endpoint writes: client-credentials token
//! records and the `jti`s of accepted client assertions (`private_key_jwt`).
//! Concurrent requests queue their entries; whichever finds no write under
//! way starts one on its own worker thread, which writes everything queued by
//! then in one transaction — one fixed-shape statement per table, the rows
//! passed as one JSON parameter — and answers each request once it is
//! committed. A token is never returned before its record is durable, and a
//! `jti` and the token it bought are committed together or not at all.
//!
//! There is no recorder thread or task of its own: handing every request to
//! one and back cost more in thread switches than the writes themselves.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use serde::{Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::counters;

/// Entries written per transaction at most; more wait for the next one.
const MAX_BATCH: usize = 1024;

/// A client-credentials token's record (its kind, name and empty
/// description are implied).
#[derive(Serialize)]
pub struct TokenRecord {
    #[serde(rename = "i", serialize_with = "simple")]
    pub id: Uuid,
    #[serde(rename = "j")]
    pub jti: String,
    #[serde(rename = "o", serialize_with = "simple")]
    pub owner_id: Uuid,
    #[serde(rename = "s")]
    pub scopes: String,
    #[serde(rename = "d")]
    pub digest: String,
    #[serde(rename = "k")]
    pub kid: String,
    #[serde(rename = "c", serialize_with = "rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(rename = "e", serialize_with = "rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(rename = "h")]
    pub hint: String,
    #[serde(rename = "a")]
    pub audience: Option<String>,
}

/// A client assertion's `jti`, accepted once per client until it expires
/// (the unique index on both refuses it on every instance).
#[must_use = "an assertion's jti must be recorded before what it authenticated is done"]
#[derive(Serialize)]
pub struct JtiClaim {
    #[serde(rename = "i", serialize_with = "simple")]
    id: Uuid,
    #[serde(rename = "m", serialize_with = "simple")]
    pub machine_user_id: Uuid,
    #[serde(rename = "j")]
    pub jti: String,
    #[serde(rename = "e", serialize_with = "rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl JtiClaim {
    pub fn new(machine_user_id: Uuid, jti: String, expires_at: OffsetDateTime) -> Self {
        Self {
            id: Uuid::now_v7(),
            machine_user_id,
            jti,
            expires_at,
        }
    }
}

// The same text forms sqlx binds: UUIDs as 16-byte blobs on SQLite (hex
// digits here, `unhex` there) and times as RFC 3339.
fn simple<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.simple().encode_lower(&mut Uuid::encode_buffer()))
}

fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// What one request has written.
pub enum Entry {
    Token(TokenRecord),
    Jti(JtiClaim),
    /// The token is recorded only if the `jti` is new.
    JtiAndToken(JtiClaim, TokenRecord),
}

impl Entry {
    fn parts(&self) -> (Option<&JtiClaim>, Option<&TokenRecord>) {
        match self {
            Self::Token(t) => (None, Some(t)),
            Self::Jti(j) => (Some(j), None),
            Self::JtiAndToken(j, t) => (Some(j), Some(t)),
        }
    }
}

/// How an entry ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Its `jti` was recorded before (a replay, on any instance, or earlier
    /// in the same batch): nothing of it was written.
    Replayed,
}

type Reply = oneshot::Sender<Result<Outcome, String>>;

#[derive(Default)]
struct Queue {
    entries: Vec<(Entry, Reply)>,
    writing: bool,
}

#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    queue: Mutex<Queue>,
}

impl Recorder {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                queue: Mutex::default(),
            }),
        }
    }

    /// Writes `entry`, returning once it is committed (or refused).
    pub async fn record(&self, entry: Entry) -> anyhow::Result<Outcome> {
        let (reply, done) = oneshot::channel();
        let start = {
            let mut queue = self.inner.lock();
            queue.entries.push((entry, reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            // Its own task, so that a request dropped mid-write (a client
            // gone) does not take its neighbours' batch with it.
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.write_queued().await });
        }
        done.await
            .map_err(|_| anyhow::anyhow!("token recording stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot record: {e}"))
    }
}

/// Lets the next entry start a write should a writer end abnormally (a
/// panic), instead of leaving every later request waiting.
struct Writing<'a> {
    inner: &'a Inner,
    ended: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.inner.lock().writing = false;
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn write_queued(&self) {
        let mut writing = Writing {
            inner: self,
            ended: false,
        };
        loop {
            let batch: Vec<_> = {
                let mut queue = self.lock();
                if queue.entries.is_empty() {
                    // Under the lock that queueing takes: an entry queued
                    // after this starts the next writer.
                    queue.writing = false;
                    writing.ended = true;
                    return;
                }
                let n = queue.entries.len().min(MAX_BATCH);
                queue.entries.drain(..n).collect()
            };
            let (entries, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match write(&self.db, &entries).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                // One bad entry must not fail its neighbours: retry singly.
                Err(_) => {
                    for (entry, reply) in entries.iter().zip(replies) {
                        let one = write(&self.db, std::slice::from_ref(entry)).await;
                        let _ = reply.send(
                            one.map(|mut o| o.pop().unwrap_or(Outcome::Replayed))
                                .map_err(|e| e.to_string()),
                        );
                    }
                }
            }
        }
    }
}

/// Writes `entries` in one transaction: the `jti`s first, then the tokens
/// whose `jti` (if any) was new, then today's issued counter.
async fn write(db: &DatabaseConnection, entries: &[Entry]) -> Result<Vec<Outcome>, DbErr> {
    let backend = db.get_database_backend();
    let tx = db.begin().await?;
    let claims: Vec<&JtiClaim> = entries.iter().filter_map(|e| e.parts().0).collect();
    let fresh: HashSet<Uuid> = if claims.is_empty() {
        HashSet::new()
    } else {
        insert_jtis(&tx, backend, &claims).await?
    };
    let outcomes: Vec<Outcome> = entries
        .iter()
        .map(|e| match e.parts().0 {
            Some(claim) if !fresh.contains(&claim.id) => Outcome::Replayed,
            _ => Outcome::Committed,
        })
        .collect();
    let tokens: Vec<&TokenRecord> = entries
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::Committed)
        .filter_map(|(e, _)| e.parts().1)
        .collect();
    if !tokens.is_empty() {
        tx.execute(statement(backend, &INSERT_TOKENS, &tokens)?)
            .await?;
        counters::add_to_today(&tx, 0, tokens.len() as u64).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts the claims, returning the ids of those that were new.
async fn insert_jtis(
    tx: &DatabaseTransaction,
    backend: DbBackend,
    claims: &[&JtiClaim],
) -> Result<HashSet<Uuid>, DbErr> {
    let rows = tx
        .query_all(statement(backend, &INSERT_JTIS, claims)?)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "id"))
        .collect()
}

/// One statement per table whatever the batch size, so each stays prepared.
struct Sql {
    sqlite: &'static str,
    postgres: &'static str,
}

const INSERT_TOKENS: Sql = Sql {
    sqlite: "INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid, created_at, expires_at, hint, audience) \
        SELECT unhex(value->>'i'), value->>'j', 'client_credentials', unhex(value->>'o'), 'client_credentials', '', \
        value->>'s', value->>'d', value->>'k', value->>'c', value->>'e', value->>'h', value->>'a' FROM json_each(?)",
    postgres: "INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid, created_at, expires_at, hint, audience) \
        SELECT i, j, 'client_credentials', o, 'client_credentials', '', s, d, k, c, e, h, a \
        FROM json_to_recordset($1::json) AS x(i uuid, j text, o uuid, s text, d text, k text, c timestamptz, e timestamptz, h text, a text)",
};

// `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
const INSERT_JTIS: Sql = Sql {
    sqlite: "INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at) \
        SELECT unhex(value->>'i'), unhex(value->>'m'), value->>'j', value->>'e' FROM json_each(?) WHERE true \
        ON CONFLICT DO NOTHING RETURNING id",
    postgres: "INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at) \
        SELECT i, m, j, e FROM json_to_recordset($1::json) AS x(i uuid, m uuid, j text, e timestamptz) \
        ON CONFLICT DO NOTHING RETURNING id",
};

fn statement<T: Serialize>(backend: DbBackend, sql: &Sql, rows: &[T]) -> Result<Statement, DbErr> {
    let json = serde_json::to_string(rows).map_err(|e| DbErr::Custom(e.to_string()))?;
    let sql = match backend {
        DbBackend::Postgres => sql.postgres,
        _ => sql.sqlite,
    };
    Ok(Statement::from_sql_and_values(backend, sql, [json.into()]))
}
