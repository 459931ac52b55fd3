//! Group commit for token records: concurrent client-credentials requests
//! hand their rows to one task, which writes whatever has queued up in one
//! transaction and answers each request once it is committed. A token is
//! never returned before its record is durable.
//!
//! Each batch costs as few round trips to the database as the backend
//! allows (every round trip is a hand-off between threads): on PostgreSQL
//! one statement, the insert and today's counter in one `WITH`, atomic by
//! itself; on SQLite `BEGIN`, the inserts with the counter sent along with
//! the last one, `COMMIT`.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryTrait, Statement,
    TransactionTrait, Value,
};
use tokio::sync::{mpsc, oneshot};

use crate::storage::entities::token;

const MAX_BATCH: usize = 256;
/// SQLite multi-row inserts come in these sizes only, so the database sees a
/// handful of distinct statements that stay in the prepared-statement cache
/// instead of one new statement per batch size.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

type Job = (token::ActiveModel, oneshot::Sender<Result<(), String>>);

pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

fn append(into: &mut Vec<Value>, stmt: Statement) {
    if let Some(values) = stmt.values {
        into.extend(values.0);
    }
}

/// SQLite: the inserts in chunks, today's counter appended to the last one
/// (one of four statement texts); the caller runs them in one transaction.
fn sqlite_batch(mut rows: Vec<token::ActiveModel>) -> Vec<Statement> {
    let issued = rows.len() as u64;
    let mut statements = Vec::new();
    for size in CHUNKS {
        while rows.len() >= size {
            let rest = rows.split_off(size);
            let chunk = std::mem::replace(&mut rows, rest);
            statements.push(token::Entity::insert_many(chunk).build(DbBackend::Sqlite));
        }
    }
    let counter = crate::domain::stats::today_upsert(DbBackend::Sqlite, 0, issued);
    if let Some(last) = statements.last_mut() {
        last.sql.push_str(";\n");
        last.sql.push_str(&counter.sql);
        let mut values = last.values.take().map(|v| v.0).unwrap_or_default();
        append(&mut values, counter);
        last.values = Some(sea_orm::Values(values));
    }
    statements
}

/// PostgreSQL: one statement, atomic without a transaction block.
fn postgres_batch(rows: Vec<token::ActiveModel>) -> Statement {
    let insert = token::Entity::insert_many(rows).build(DbBackend::Postgres);
    let mut values = insert.values.map(|v| v.0).unwrap_or_default();
    let day = crate::storage::entities::daily_count::day_key(crate::domain::clock::now().date());
    values.push(day.into());
    let sql = format!(
        "WITH recorded AS ({} RETURNING 1) \
         INSERT INTO daily_counts (day, validations, issued) \
         SELECT ${}, 0, count(*) FROM recorded \
         ON CONFLICT (day) DO UPDATE SET issued = daily_counts.issued + excluded.issued",
        insert.sql,
        values.len()
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn insert_batch(db: &DatabaseConnection, rows: Vec<token::ActiveModel>) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => db.execute(postgres_batch(rows)).await.map(drop),
        _ => {
            let tx = db.begin().await?;
            for statement in sqlite_batch(rows) {
                tx.execute(statement).await?;
            }
            tx.commit().await
        }
    }
}

impl Recorder {
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                match insert_batch(&db, rows.clone()).await {
                    Ok(()) => {
                        for reply in replies {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    // One bad row must not fail its neighbours: retry singly.
                    Err(_) => {
                        for (row, reply) in rows.into_iter().zip(replies) {
                            let one = insert_batch(&db, vec![row]).await;
                            let _ = reply.send(one.map_err(|e| e.to_string()));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Records `row`, returning once it is committed.
    pub async fn record(&self, row: token::ActiveModel) -> anyhow::Result<()> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((row, reply))
            .await
            .map_err(|_| anyhow::anyhow!("token recorder stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("token recorder stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot record token: {e}"))
    }
}
