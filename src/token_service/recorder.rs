//! Group commit for token records: concurrent client-credentials requests
//! hand their rows to one task, which inserts whatever has queued up in a
//! single statement and answers each request once it is committed. A token is
//! never returned before its record is durable.

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use crate::storage::entities::token;

const MAX_BATCH: usize = 256;

type Job = (token::ActiveModel, oneshot::Sender<Result<(), String>>);

pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

impl Recorder {
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let result = token::Entity::insert_many(rows.clone())
                    .exec_without_returning(&db)
                    .await;
                match result {
                    Ok(_) => {
                        for reply in replies {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    // One bad row must not fail its neighbours: retry singly.
                    Err(_) => {
                        for (row, reply) in rows.into_iter().zip(replies) {
                            let one = token::Entity::insert(row).exec_without_returning(&db).await;
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
