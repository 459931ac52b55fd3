//! SQLite's WAL checkpoints, off the writer's path. A checkpoint copies the
//! WAL into the database and syncs both files. Run by the writer at every
//! commit that took the WAL past SQLite's threshold, those syncs held up its
//! batch and every request queued behind it: about 380 `fdatasync`s a second
//! under token load, with the HTTP workers idle meanwhile.
//!
//! A thread of its own now copies the WAL 20 ms after its last copy, with a
//! passive checkpoint, which never blocks a writer. But the WAL starts over
//! only if all of it has been copied when a write begins, and a busy writer
//! always adds frames while a checkpoint syncs. So once the WAL holds
//! [`RESTART_AT`] frames the checkpointer asks the writer to hold its next
//! batch while it copies the last few: one short pause every few thousand
//! frames instead of a checkpoint every 250.

use std::{
    path::Path,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use rusqlite::Connection;

/// Frames in the WAL past which the checkpointer pauses the writer so that
/// the WAL starts over (16 MiB at SQLite's 4 KiB pages).
pub(super) const RESTART_AT: i64 = 4096;
/// The rest between two copies of the WAL.
const EVERY: Duration = Duration::from_millis(20);
/// How long the checkpointer waits for the writer to pause (a batch of the
/// largest size takes some 20 ms). An idle writer does not answer, and adds
/// no frames anyway: the next round copies the WAL to its end.
const HANDSHAKE: Duration = Duration::from_millis(100);
/// The longest the writer holds a batch for the checkpointer.
const MAX_PAUSE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// The checkpointer wants the writer to hold its next batch.
    wanted: bool,
    /// The writer holds it.
    paused: bool,
    stopped: bool,
}

/// What the writer and the checkpointer share.
#[derive(Default)]
pub(super) struct Pause {
    state: Mutex<State>,
    changed: Condvar,
}

impl Pause {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the writer before each batch: if the checkpointer asks,
    /// waits until it has copied the rest of the WAL.
    pub(super) fn between_batches(&self) {
        let mut state = self.lock();
        if !state.wanted {
            return;
        }
        state.paused = true;
        self.changed.notify_all();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, MAX_PAUSE, |s| s.wanted)
            .unwrap_or_else(PoisonError::into_inner);
        state.paused = false;
        // One request holds the writer once: a copy that outlasts the pause
        // (a slow disk) does not hold the batches after this one too.
        state.wanted = false;
    }

    /// Ends the checkpointer thread.
    pub(super) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// Starts the checkpointer of the database at `path`, which pauses the
/// writer once the WAL holds `restart_at` frames.
pub(super) fn spawn(path: &Path, restart_at: i64) -> anyhow::Result<Arc<Pause>> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A checkpoint syncs the WAL before it copies and the database after,
    // as the writers' `NORMAL` asks.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let pause = Arc::new(Pause::default());
    let shared = pause.clone();
    std::thread::Builder::new()
        .name("tessera-wal".into())
        .spawn(move || run(&conn, &shared, restart_at))?;
    Ok(pause)
}

fn run(conn: &Connection, pause: &Pause, restart_at: i64) {
    // Raised past the WAL's size after each pause: when the WAL did not
    // start over (a reader kept old frames, sea-orm's writer wrote during
    // the pause), the writer is not paused again in vain every round.
    let mut ask_at = restart_at;
    // A failing checkpoint (a full disk, say) is logged once, not every round.
    let mut failing = false;
    let mut failed = |result: &rusqlite::Result<(i64, i64)>| match result {
        Ok(_) => failing = false,
        Err(e) => {
            if !std::mem::replace(&mut failing, true) {
                tracing::warn!(error = %e, "cannot copy the WAL into the database");
            }
        }
    };
    loop {
        {
            let (state, _) = pause
                .changed
                .wait_timeout_while(pause.lock(), EVERY, |s| !s.stopped)
                .unwrap_or_else(PoisonError::into_inner);
            if state.stopped {
                return;
            }
        }
        let first = checkpoint(conn);
        failed(&first);
        // -1: another connection was checkpointing, or not in WAL mode.
        let Ok((log @ 0.., _)) = first else { continue };
        if log < restart_at {
            ask_at = restart_at;
        }
        // `log` is the WAL as the checkpoint began: with `copied` equal to
        // it the writer may well have added frames since.
        if log < ask_at {
            continue;
        }
        let asked = std::time::Instant::now();
        let paused = {
            let mut state = pause.lock();
            state.wanted = true;
            let (state, _) = pause
                .changed
                .wait_timeout_while(state, HANDSHAKE, |s| !s.paused && !s.stopped)
                .unwrap_or_else(PoisonError::into_inner);
            state.paused
        };
        // A writer busy with a long batch is not held for a copy that
        // cannot reach the end of the WAL; the next round asks again.
        let last = paused.then(|| checkpoint(conn));
        pause.lock().wanted = false;
        pause.changed.notify_all();
        let Some(last) = last else { continue };
        tracing::debug!(
            log,
            last = ?last.as_ref().ok(),
            held_us = asked.elapsed().as_micros() as u64,
            "WAL checkpoint with the writer held"
        );
        failed(&last);
        if let Ok((log @ 0.., _)) = last {
            ask_at = log + restart_at;
        }
    }
}

/// A passive checkpoint: the frames in the WAL, and how many are copied.
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request the checkpointer does not withdraw within the pause (a copy
    /// slower than that) holds the writer once, not every batch after it.
    #[test]
    fn a_request_holds_the_writer_once() {
        let pause = Pause::default();
        pause.lock().wanted = true;
        pause.between_batches();
        let state = pause.lock();
        assert!(!state.wanted && !state.paused);
    }

    /// A writer that never stops, pausing only when asked: the WAL still
    /// starts over, so its file stays near the restart size instead of
    /// holding every frame written.
    #[test]
    fn the_wal_starts_over_under_a_continuous_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        writer.pragma_update(None, "synchronous", "NORMAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)", [])
            .unwrap();
        let restart_at = 200;
        let pause = spawn(&path, restart_at).unwrap();
        // Each commit writes at least one frame (a row fills most of a
        // page): ten times the restart size, a commit every 100 µs or so.
        let mut insert = writer.prepare("INSERT INTO t (v) VALUES (?1)").unwrap();
        for _ in 0..10 * restart_at {
            pause.between_batches();
            insert.execute([vec![7u8; 3000]]).unwrap();
            std::thread::sleep(Duration::from_micros(100));
        }
        pause.stop();
        // Without the pause it holds every frame: about 6,000, 30 times
        // the restart size. With it, a slow disk's syncs leave room for more
        // than the restart size, hence a bound of half of that.
        let frames = (std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len()
            - 32)
            / (4096 + 24);
        assert!(
            frames < 15 * restart_at as u64,
            "the WAL grew to {frames} frames"
        );
    }
}
