//! Group commit for token records: concurrent client-credentials requests
//! hand their rows to one task, which writes whatever has queued up in one
//! transaction and answers each request once it is committed. A token is
//! never returned before its record is durable.

use sea_orm::{DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::entities::token;

const MAX_BATCH: usize = 256;
/// Multi-row inserts come in these sizes only, so the database sees a handful
/// of distinct statements that stay in the prepared-statement cache instead
/// of one new statement per batch size.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

type Job = (token::ActiveModel, oneshot::Sender<Result<(), String>>);

pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

async fn insert_batch(
    db: &DatabaseConnection,
    mut rows: Vec<token::ActiveModel>,
) -> Result<(), DbErr> {
    let tx = db.begin().await?;
    crate::storage::counters::add_to_today(&tx, 0, rows.len() as u64).await?;
    for size in CHUNKS {
        while rows.len() >= size {
            let rest = rows.split_off(size);
            token::Entity::insert_many(std::mem::replace(&mut rows, rest))
                .exec_without_returning(&tx)
                .await?;
        }
    }
    tx.commit().await
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
                            let _ = reply.send(one.map(|_| ()).map_err(|e| e.to_string()));
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
