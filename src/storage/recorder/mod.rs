//! Group commit for what the token endpoint writes: client-credentials token
//! records and the `jti`s of accepted client assertions (`private_key_jwt`).
//! Concurrent requests queue their entries; a writer thread takes everything
//! queued by then, writes it in one transaction and answers each request once
//! it is committed. A token is never returned before its record is
//! committed (on SQLite, safe from a crash of the process at once and from a
//! power loss once the next checkpoint has synced the WAL), and a `jti` and
//! the token it bought are committed together or not at all.
//!
//! The request that queues an entry hands nothing over: it wakes the writer
//! only if the writer is idle, and the writer takes the queue when it gets to
//! it. The writer has a connection of its own: on SQLite one it calls
//! directly on its thread ([`sqlite`]), on PostgreSQL one it drives with a
//! runtime of its own ([`postgres`]).

mod batch;
mod checkpoint;
mod postgres;
mod sqlite;

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::oneshot;

pub use batch::{Entry, JtiClaim, Outcome, TokenRecord};
use batch::{Failure, Store};

/// Entries written per transaction at most; more wait for the next one.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<Outcome, RecordError>>;

/// An entry that was not written (nor anything of its batch).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot record: {message}")]
pub struct RecordError {
    message: String,
    /// The database cannot serve now, rather than refusing this entry.
    pub outage: bool,
    /// The entry's machine user was deleted meanwhile (see [`Failure`]).
    pub owner_gone: bool,
}

impl From<Failure> for RecordError {
    fn from(f: Failure) -> Self {
        Self {
            message: f.message,
            outage: f.outage,
            owner_gone: f.owner_gone,
        }
    }
}

#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Handle>,
}

/// Held by the recorder's clones; the last one dropped stops the thread
/// once the queue is written.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    entries: Vec<(Entry, Reply)>,
    /// The writer waits for entries: whoever queues one wakes it.
    idle: bool,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
    }
}

impl Recorder {
    /// A recorder writing to the database behind `db` (the writer's own
    /// connection is opened now on SQLite, on first use on PostgreSQL).
    pub fn new(db: &DatabaseConnection) -> anyhow::Result<Self> {
        match db.get_database_backend() {
            DbBackend::Postgres => Self::start(postgres::Postgres::new(db)?),
            _ => Self::start(sqlite::Sqlite::new(db)?),
        }
    }

    fn start(store: impl Store) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            wake: Condvar::new(),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("tessera-recorder".into())
            .spawn(move || run(&writer, store))?;
        Ok(Self {
            inner: Arc::new(Handle { shared }),
        })
    }

    /// Writes `entry`, returning once it is committed (or refused).
    pub async fn record(&self, entry: Entry) -> Result<Outcome, RecordError> {
        let (reply, done) = oneshot::channel();
        let shared = &self.inner.shared;
        let wake = {
            let mut queue = shared.lock();
            queue.entries.push((entry, reply));
            std::mem::replace(&mut queue.idle, false)
        };
        if wake {
            shared.wake.notify_one();
        }
        done.await.map_err(|_| RecordError {
            message: "the writer stopped".into(),
            outage: false,
            owner_gone: false,
        })?
    }
}

/// The writer thread: waits for entries, writes up to [`MAX_BATCH`] of them
/// at a time, answers, and ends when the recorder is dropped.
fn run(shared: &Shared, mut store: impl Store) {
    loop {
        let batch: Vec<_> = {
            let mut queue = shared.lock();
            while queue.entries.is_empty() {
                if queue.stopped {
                    return;
                }
                queue.idle = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.idle = false;
            let n = queue.entries.len().min(MAX_BATCH);
            queue.entries.drain(..n).collect()
        };
        // A panic fails this batch's requests (their replies are dropped),
        // not every later one.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            store.between_batches();
            write_batch(&mut store, batch);
        }));
    }
}

fn write_batch(store: &mut impl Store, batch: Vec<(Entry, Reply)>) {
    let (entries, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    match store.write(&entries) {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        // One bad entry must not fail its neighbours: retry singly.
        Err(Failure { by_row: true, .. }) => {
            for (entry, reply) in entries.iter().zip(replies) {
                let one = store.write(std::slice::from_ref(entry));
                let _ = reply.send(
                    one.map(|mut o| o.pop().unwrap_or(Outcome::Replayed))
                        .map_err(RecordError::from),
                );
            }
        }
        // Retrying each entry would only wait that long once more per entry.
        Err(failure) => {
            let error = RecordError::from(failure);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
