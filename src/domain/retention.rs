//! Keeping the database from growing without bound (INTERFACE §8): records of
//! expired client-credentials tokens after `TESSERA_RETENTION`, audit events
//! after `TESSERA_AUDIT_RETENTION` (if set), expired sessions and spent setup
//! codes. Deletes run in small batches, each its own short statement, so the
//! single SQLite writer is never held long enough to stall issuance.

use std::time::Duration;

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, sea_query::Query};
use time::OffsetDateTime;

use super::{Error, TokenKind, clock, sessions};
use crate::{
    duration::Dur,
    storage::{
        Db,
        entities::{audit_event, client_assertion_jti, session, setup_code, token},
    },
};

/// Rows deleted per statement.
pub const BATCH: u64 = 500;
/// The first pass runs this soon after start-up…
pub const FIRST_PASS_AFTER: Duration = Duration::from_secs(2);
/// …and then this often.
pub const PASS_EVERY: Duration = Duration::from_secs(600);

/// What to keep: the settings, as durations.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub tokens: Dur,
    pub audit: Option<Dur>,
}

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub tokens: u64,
    pub audit_events: u64,
    pub sessions: u64,
    pub setup_codes: u64,
    /// Used client-assertion `jti`s whose assertion has expired.
    pub assertion_jtis: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn before(now: OffsetDateTime, keep: Dur) -> OffsetDateTime {
    // `Dur` is at most 100 years, but stay checked: a cutoff before the
    // earliest representable time simply keeps everything.
    now.checked_sub(time::Duration::seconds(keep.seconds))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One pass over every kind of record, oldest first, in batches.
pub async fn prune(db: &Db, policy: Policy) -> Result<Pruned, Error> {
    let now = clock::now();
    let mut pruned = Pruned::default();

    let cutoff = before(now, policy.tokens);
    pruned.tokens = in_batches(|| async {
        let ids = Query::select()
            .column(token::Column::Id)
            .from(token::Entity)
            .and_where(token::Column::Kind.eq(TokenKind::ClientCredentials))
            .and_where(token::Column::ExpiresAt.lt(cutoff))
            .limit(BATCH)
            .to_owned();
        token::Entity::delete_many()
            .filter(token::Column::Id.in_subquery(ids))
            .exec(&db.write)
            .await
            .map(|r| r.rows_affected)
    })
    .await?;

    if let Some(keep) = policy.audit {
        let cutoff = before(now, keep);
        pruned.audit_events = in_batches(|| async {
            let ids = Query::select()
                .column(audit_event::Column::Id)
                .from(audit_event::Entity)
                .and_where(audit_event::Column::At.lt(cutoff))
                .limit(BATCH)
                .to_owned();
            audit_event::Entity::delete_many()
                .filter(audit_event::Column::Id.in_subquery(ids))
                .exec(&db.write)
                .await
                .map(|r| r.rows_affected)
        })
        .await?;
    }

    let idle_since = now - sessions::IDLE_TIMEOUT;
    pruned.sessions = in_batches(|| async {
        let ids = Query::select()
            .column(session::Column::Id)
            .from(session::Entity)
            .cond_where(
                Condition::any()
                    .add(session::Column::ExpiresAt.lte(now))
                    .add(session::Column::LastSeenAt.lte(idle_since)),
            )
            .limit(BATCH)
            .to_owned();
        session::Entity::delete_many()
            .filter(session::Column::Id.in_subquery(ids))
            .exec(&db.write)
            .await
            .map(|r| r.rows_affected)
    })
    .await?;

    pruned.setup_codes = setup_code::Entity::delete_many()
        .filter(
            Condition::any()
                .add(setup_code::Column::UsedAt.is_not_null())
                .add(setup_code::Column::ExpiresAt.lte(now)),
        )
        .exec(&db.write)
        .await?
        .rows_affected;

    // An expired assertion is refused on its `exp` alone; the margin covers
    // instances whose clocks run a little behind.
    let spent = now - time::Duration::seconds(super::CLOCK_LEEWAY_SECS);
    pruned.assertion_jtis = in_batches(|| async {
        let ids = Query::select()
            .column(client_assertion_jti::Column::Id)
            .from(client_assertion_jti::Entity)
            .cond_where(super::client_keys::expired_jtis(spent))
            .limit(BATCH)
            .to_owned();
        client_assertion_jti::Entity::delete_many()
            .filter(client_assertion_jti::Column::Id.in_subquery(ids))
            .exec(&db.write)
            .await
            .map(|r| r.rows_affected)
    })
    .await?;
    Ok(pruned)
}

/// Runs `batch` until it deletes less than a full batch, yielding between
/// batches so queued writes (token records) go first.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sea_orm::DbErr>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Prunes soon after start-up and then every `PASS_EVERY`, until the process
/// ends. Every instance may run it: deleting what is already gone is harmless.
pub fn spawn(db: Db, policy: Policy) {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_PASS_AFTER).await;
        let mut tick = tokio::time::interval(PASS_EVERY);
        loop {
            tick.tick().await;
            match prune(&db, policy).await {
                Ok(p) if p.is_empty() => {}
                Ok(p) => tracing::info!(
                    tokens = p.tokens,
                    audit_events = p.audit_events,
                    sessions = p.sessions,
                    setup_codes = p.setup_codes,
                    assertion_jtis = p.assertion_jtis,
                    "pruned records past their retention"
                ),
                Err(super::Error::Internal(cause) | super::Error::Unavailable(cause)) => {
                    tracing::error!(error = %format!("{cause:#}"), "cannot prune old records")
                }
                Err(e) => tracing::error!(error = %e, "cannot prune old records"),
            }
        }
    });
}
