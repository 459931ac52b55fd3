//! Group commit for the `jti`s of accepted client assertions
//! (`private_key_jwt`): concurrent requests hand their `jti` to one task,
//! which inserts whatever has queued up in one transaction (each row with
//! `ON CONFLICT DO NOTHING`, so a replay — also one inside the same batch —
//! is seen per row) and answers each request once it is committed.

use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, TransactionTrait,
    sea_query::OnConflict,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::entities::client_assertion_jti as jti;

const MAX_BATCH: usize = 256;

type Job = (jti::ActiveModel, oneshot::Sender<Result<bool, String>>);

pub struct JtiRecorder {
    tx: mpsc::Sender<Job>,
}

/// Inserts `rows` in one transaction; per row, whether it was new.
async fn insert_batch(
    db: &DatabaseConnection,
    rows: &[jti::ActiveModel],
) -> Result<Vec<bool>, DbErr> {
    let tx = db.begin().await?;
    let mut fresh = Vec::with_capacity(rows.len());
    for row in rows {
        let inserted = jti::Entity::insert(row.clone())
            .on_conflict(
                OnConflict::columns([jti::Column::MachineUserId, jti::Column::Jti])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&tx)
            .await?;
        fresh.push(inserted == 1);
    }
    tx.commit().await?;
    Ok(fresh)
}

impl JtiRecorder {
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                match insert_batch(&db, &rows).await {
                    Ok(fresh) => {
                        for (reply, fresh) in replies.into_iter().zip(fresh) {
                            let _ = reply.send(Ok(fresh));
                        }
                    }
                    // One bad row must not fail its neighbours: retry singly.
                    Err(_) => {
                        for (row, reply) in rows.into_iter().zip(replies) {
                            let one = insert_batch(&db, std::slice::from_ref(&row)).await;
                            let _ = reply.send(
                                one.map(|f| f.first().copied().unwrap_or(false))
                                    .map_err(|e| e.to_string()),
                            );
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Records that `jti` of this client was accepted, until `expires_at`;
    /// false when it was recorded before (a replay), by any instance.
    pub async fn record(
        &self,
        machine_user_id: Uuid,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let row = jti::ActiveModel {
            id: Set(Uuid::now_v7()),
            machine_user_id: Set(machine_user_id),
            jti: Set(jti.to_owned()),
            expires_at: Set(expires_at),
        };
        let (reply, done) = oneshot::channel();
        self.tx
            .send((row, reply))
            .await
            .map_err(|_| anyhow::anyhow!("jti recorder stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("jti recorder stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot record a client assertion's jti: {e}"))
    }
}
