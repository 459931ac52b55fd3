//! Group commit for what the token endpoint writes: client-credentials token
//! records and the `jti`s of accepted client assertions (`private_key_jwt`).
//! Concurrent requests queue their entries; whichever finds no write under
//! way starts a writer, which writes everything queued by then in one
//! transaction and one round trip — one fixed-shape statement (PostgreSQL) or
//! script (SQLite), the rows passed as JSON parameters — and answers each
//! request once it is committed. A token is never returned before its record
//! is durable, and a `jti` and the token it bought are committed together or
//! not at all.
//!
//! The request that queues an entry hands nothing over: a writer takes the
//! queue when it gets to it. The writer runs on a thread of its own (see
//! `WriterThread`), on PostgreSQL with a connection of its own.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::{Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::entities::daily_count;
use crate::clock;

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
    thread: WriterThread,
}

/// Where the writer runs. The database wakes the writer when a batch is
/// committed; on an HTTP worker the writer then waited its turn behind the
/// requests ready there (a worker takes wake-ups from other threads only now
/// and then), while the database sat idle: on SQLite the token endpoint kept
/// 1.4 of the 2 cores busy. On a thread of its own the next batch goes at
/// once.
struct WriterThread {
    runtime: tokio::runtime::Handle,
    /// Dropped with the recorder: the thread then ends.
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tessera-recorder".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })?;
        Ok(Self {
            runtime: handle,
            _stop: stop,
        })
    }
}

impl Recorder {
    pub fn new(db: DatabaseConnection) -> std::io::Result<Self> {
        let thread = WriterThread::start()?;
        let db = match db.get_database_backend() {
            DbBackend::Postgres => own_postgres_connection(&db),
            _ => db,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                queue: Mutex::default(),
                thread,
            }),
        })
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
            let write = async move { inner.write_queued().await };
            drop(self.inner.thread.runtime.spawn(write));
        }
        done.await
            .map_err(|_| anyhow::anyhow!("token recording stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot record: {e}"))
    }
}

/// A PostgreSQL connection for the writer alone, opened on first use, on
/// the writer's thread: a connection's I/O is driven by the runtime that
/// opened it, and one opened by an HTTP worker would wake that worker for
/// every batch. (A SQLite connection runs on a thread of its own anyway.)
fn own_postgres_connection(db: &DatabaseConnection) -> DatabaseConnection {
    let options = db.get_postgres_connection_pool().connect_options();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .before_acquire(crate::storage::ping_if_idle)
        .acquire_timeout(crate::storage::ACQUIRE_TIMEOUT)
        .connect_lazy_with((*options).clone());
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
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

/// A token row as the statement reads it: with the id of the claim it
/// depends on, so the database itself skips tokens of replayed `jti`s.
#[derive(Serialize)]
struct TokenRow<'a> {
    #[serde(flatten)]
    token: &'a TokenRecord,
    #[serde(rename = "q", serialize_with = "simple_opt")]
    claim: Option<Uuid>,
}

fn simple_opt<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => simple(id, s),
        None => s.serialize_none(),
    }
}

/// Writes `entries` atomically in one round trip to the database: the
/// `jti`s, the tokens whose `jti` (if any) was new, and today's issued count.
async fn write(db: &DatabaseConnection, entries: &[Entry]) -> Result<Vec<Outcome>, DbErr> {
    let backend = db.get_database_backend();
    let claims: Vec<&JtiClaim> = entries.iter().filter_map(|e| e.parts().0).collect();
    let tokens: Vec<TokenRow<'_>> = entries
        .iter()
        .filter_map(|e| match e.parts() {
            (claim, Some(token)) => Some(TokenRow {
                token,
                claim: claim.map(|c| c.id),
            }),
            (_, None) => None,
        })
        .collect();
    let values = [
        to_json(&claims)?.into(),
        to_json(&tokens)?.into(),
        daily_count::day_key(clock::now().date()).into(),
    ];
    let statement = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(backend, POSTGRES, values),
        _ => Statement::from_sql_and_values(backend, SQLITE, values),
    };
    let fresh: HashSet<Uuid> = match db.query_all(statement).await {
        Ok(rows) => rows
            .iter()
            .map(|row| row.try_get::<Uuid>("", "id"))
            .collect::<Result<_, _>>()?,
        Err(e) => {
            if backend == DbBackend::Sqlite {
                // The script stops at the failing statement, inside its
                // transaction: end it (an error means none was open).
                let _ = db.execute_unprepared("ROLLBACK").await;
            }
            return Err(e);
        }
    };
    Ok(entries
        .iter()
        .map(|e| match e.parts().0 {
            Some(claim) if !fresh.contains(&claim.id) => Outcome::Replayed,
            _ => Outcome::Committed,
        })
        .collect())
}

fn to_json<T: Serialize>(rows: &[T]) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(e.to_string()))
}

// One fixed statement whatever the batch size, so it stays prepared; the rows
// are JSON arrays: ?1/$1 the claims, ?2/$2 the tokens; ?3/$3 is today.
// Claims conflicting with one recorded before (or earlier in the same
// batch) are skipped, and so are the tokens that depend on them; the ids of
// the claims recorded now come back.

/// SQLite runs a script in one call; `WHERE true` keeps `ON CONFLICT` from
/// being read as a join constraint, and `changes()` is the tokens inserted.
/// Each row is read once into a materialised CTE: `json_each`'s `value`,
/// named in a select list, is rebuilt as text and parsed again for every
/// column that names it (26-31 -> 21-24 us of this thread's time a token).
const SQLITE: &str = "BEGIN IMMEDIATE;
WITH r(v) AS MATERIALIZED (SELECT value FROM json_each(?1))
INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at)
    SELECT unhex(v->>'i'), unhex(v->>'m'), v->>'j', v->>'e' FROM r WHERE true
    ON CONFLICT DO NOTHING RETURNING id;
WITH r(v) AS MATERIALIZED (SELECT value FROM json_each(?2))
INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid, created_at, expires_at, hint, audience)
    SELECT unhex(v->>'i'), v->>'j', 'client_credentials', unhex(v->>'o'), 'client_credentials', '',
        v->>'s', v->>'d', v->>'k', v->>'c', v->>'e', v->>'h', v->>'a'
    FROM r
    WHERE v->>'q' IS NULL
        OR EXISTS (SELECT 1 FROM client_assertion_jtis WHERE id = unhex(v->>'q'));
INSERT INTO daily_counts (day, validations, issued) SELECT ?3, 0, changes() WHERE changes() > 0
    ON CONFLICT (day) DO UPDATE SET issued = issued + excluded.issued;
COMMIT;";

/// PostgreSQL runs one statement, atomic by itself.
const POSTGRES: &str = "WITH claims AS (
    INSERT INTO client_assertion_jtis (id, machine_user_id, jti, expires_at)
    SELECT i, m, j, e FROM json_to_recordset($1::json) AS x(i uuid, m uuid, j text, e timestamptz)
    ON CONFLICT DO NOTHING RETURNING id
), inserted AS (
    INSERT INTO tokens (id, jti, kind, owner_id, name, description, scopes, digest, kid, created_at, expires_at, hint, audience)
    SELECT i, j, 'client_credentials', o, 'client_credentials', '', s, d, k, c, e, h, a
    FROM json_to_recordset($2::json)
        AS x(i uuid, j text, o uuid, s text, d text, k text, c timestamptz, e timestamptz, h text, a text, q uuid)
    WHERE q IS NULL OR q IN (SELECT id FROM claims)
    RETURNING 1
), counted AS (
    INSERT INTO daily_counts (day, validations, issued)
    SELECT $3, 0, count(*) FROM inserted HAVING count(*) > 0
    ON CONFLICT (day) DO UPDATE SET issued = daily_counts.issued + excluded.issued
)
SELECT id FROM claims";
