//! `last used at / from` for tokens and client secrets, coalesced in memory
//! and written every few seconds in a few batched statements, so validating a
//! token never writes to the database.
//!
//! Lock order: token rows (in id order), then client-secret rows, each in
//! their own transaction, and the daily counter last in a statement of its
//! own. Every other writer takes a token row before the counter too, so a
//! flush cannot deadlock with them (or with another instance's flush). What
//! cannot be written stays in memory for the next flush, merged with newer
//! uses (the newest wins).

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::clock;

pub const FLUSH_EVERY_SECS: u64 = 5;
/// Rows per statement: three parameters each stays far below the limits of
/// both backends.
const CHUNK: usize = 500;

type TokenUse = (OffsetDateTime, Option<String>);

#[derive(Default)]
pub struct UsageTracker {
    tokens: Mutex<HashMap<Uuid, TokenUse>>,
    secrets: Mutex<HashMap<Uuid, OffsetDateTime>>,
    /// Successful validations since the last flush, for the daily counter.
    validations: AtomicU64,
}

impl UsageTracker {
    pub fn touch_token(&self, id: Uuid, ip: Option<&str>) {
        let now = clock::now();
        self.validations.fetch_add(1, Ordering::Relaxed);
        let mut map = self.tokens.lock().expect("usage lock");
        match map.get_mut(&id) {
            // Same second, same address: nothing new to record.
            Some((at, seen)) if *at == now && seen.as_deref() == ip => {}
            Some(entry) => *entry = (now, ip.map(str::to_owned)),
            None => {
                map.insert(id, (now, ip.map(str::to_owned)));
            }
        }
    }

    pub fn touch_secret(&self, id: Uuid) {
        self.secrets
            .lock()
            .expect("usage lock")
            .insert(id, clock::now());
    }

    /// Writes what was recorded since the last flush. On error, what was not
    /// written is kept for the next flush and the first error is returned.
    pub async fn flush<C: ConnectionTrait + TransactionTrait>(&self, db: &C) -> Result<(), DbErr> {
        let mut tokens: Vec<(Uuid, TokenUse)> =
            std::mem::take(&mut *self.tokens.lock().expect("usage lock"))
                .into_iter()
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
                merge(&self.tokens, rest.iter().cloned(), |(at, _)| *at);
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

        if validations > 0
            && let Err(e) = crate::storage::counters::add_to_today(db, validations, 0).await
        {
            self.validations.fetch_add(validations, Ordering::Relaxed);
            failed.get_or_insert(e);
        }
        failed.map_or(Ok(()), Err)
    }
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
async fn write_uses<C: ConnectionTrait + TransactionTrait, const N: usize>(
    db: &C,
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
    let tx = db.begin().await?;
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
