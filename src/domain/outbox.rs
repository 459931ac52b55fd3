//! The outbox: webhook deliveries and e-mail, stored in the transaction of
//! what caused them and sent afterwards by whichever instance claims each
//! attempt. A claim is a conditional update on the attempt count, so two
//! instances never send the same attempt; a claim lapses after
//! [`CLAIM_FOR`], so a message whose sender died is sent again (same id).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Error, clock};
use crate::storage::{
    WriteTransactions,
    entities::{outbox, webhook_delivery},
};

pub const CHANNEL_WEBHOOK: &str = "webhook";
pub const CHANNEL_EMAIL: &str = "email";
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";
/// Longer than any one attempt may take (the sweeper ends one after 30 s).
const CLAIM_FOR: Duration = Duration::seconds(120);

/// A new message, due now.
pub fn row(
    channel: &str,
    webhook_id: Option<Uuid>,
    recipient: Option<String>,
    event: &str,
    subject: Option<String>,
    body: String,
) -> outbox::ActiveModel {
    let now = clock::now();
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        channel: Set(channel.to_owned()),
        webhook_id: Set(webhook_id),
        recipient: Set(recipient),
        event: Set(event.to_owned()),
        subject: Set(subject),
        body: Set(body),
        created_at: Set(now),
        attempts: Set(0),
        first_attempt_at: Set(None),
        next_attempt_at: Set(Some(now)),
        claimed_until: Set(None),
        state: Set(PENDING.to_owned()),
        last_error: Set(None),
        token_id: Set(None),
    }
}

/// Messages of `channels` whose next attempt is due and that nobody holds.
pub async fn due(
    db: &impl ConnectionTrait,
    channels: &[&str],
    limit: u64,
) -> Result<Vec<outbox::Model>, Error> {
    due_except(db, channels, &[], limit).await
}

/// [`due`], leaving out messages for the webhooks in `busy`, so that a slow
/// receiver's backlog cannot fill the page and hide everything behind it.
pub async fn due_except(
    db: &impl ConnectionTrait,
    channels: &[&str],
    busy: &[Uuid],
    limit: u64,
) -> Result<Vec<outbox::Model>, Error> {
    let now = clock::now();
    let mut query = outbox::Entity::find()
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .filter(outbox::Column::Channel.is_in(channels.iter().copied()))
        .filter(
            Condition::any()
                .add(outbox::Column::ClaimedUntil.is_null())
                .add(outbox::Column::ClaimedUntil.lt(now)),
        );
    if !busy.is_empty() {
        query = query.filter(
            Condition::any()
                .add(outbox::Column::WebhookId.is_null())
                .add(outbox::Column::WebhookId.is_not_in(busy.iter().copied())),
        );
    }
    Ok(query
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Takes the next attempt of `seen` for this instance; `None` when another
/// instance took it first.
pub async fn claim(
    db: &impl ConnectionTrait,
    seen: &outbox::Model,
) -> Result<Option<outbox::Model>, Error> {
    let now = clock::now();
    let first = seen.first_attempt_at.unwrap_or(now);
    let res = outbox::Entity::update_many()
        .col_expr(outbox::Column::Attempts, Expr::value(seen.attempts + 1))
        .col_expr(outbox::Column::ClaimedUntil, Expr::value(now + CLAIM_FOR))
        .col_expr(outbox::Column::FirstAttemptAt, Expr::value(first))
        .filter(outbox::Column::Id.eq(seen.id))
        .filter(outbox::Column::Attempts.eq(seen.attempts))
        .filter(outbox::Column::State.eq(PENDING))
        .filter(
            Condition::any()
                .add(outbox::Column::ClaimedUntil.is_null())
                .add(outbox::Column::ClaimedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    Ok(Some(outbox::Model {
        attempts: seen.attempts + 1,
        first_attempt_at: Some(first),
        claimed_until: Some(now + CLAIM_FOR),
        ..seen.clone()
    }))
}

/// What one attempt came to.
#[derive(Debug)]
pub struct Outcome {
    pub delivered: bool,
    /// The receiver's HTTP status, when one came.
    pub status: Option<u16>,
    /// Why it failed (never a secret: a status line or a transport error).
    pub error: Option<String>,
    /// Not delivered, and never to be: no retry.
    pub moot: bool,
}

/// A failed attempt that got no answer at all.
pub fn unanswered(why: &str) -> Outcome {
    Outcome {
        delivered: false,
        status: None,
        error: Some(why.to_owned()),
        moot: false,
    }
}

/// A message not sent because it has lost its point (a reminder about a
/// token revoked meanwhile): given up at once.
pub fn moot(why: &str) -> Outcome {
    Outcome {
        moot: true,
        ..unanswered(why)
    }
}

/// Whether `claimed` is past its last attempt: a first one and one per
/// retry in `schedule`. Only attempts that never finished get it there.
pub fn gave_up_on(claimed: &outbox::Model, schedule: &[crate::duration::Dur]) -> bool {
    usize::try_from(claimed.attempts).map_or(true, |n| n > schedule.len() + 1)
}

/// When the attempt after `attempts` is due, or `None` to give up: the
/// schedule counts from the first attempt.
pub fn next_attempt(
    first: OffsetDateTime,
    attempts: i32,
    schedule: &[crate::duration::Dur],
) -> Option<OffsetDateTime> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    schedule
        .get(index)
        .map(|d| first + Duration::seconds(d.seconds))
}

/// Records the outcome of a claimed attempt: delivered, due again, or failed;
/// for a webhook also a line in its delivery log.
pub async fn finish(
    db: &sea_orm::DatabaseConnection,
    claimed: &outbox::Model,
    outcome: Outcome,
    schedule: &[crate::duration::Dur],
) -> Result<(), Error> {
    let now = clock::now();
    let first = claimed.first_attempt_at.unwrap_or(now);
    let next = if outcome.delivered || outcome.moot {
        None
    } else {
        next_attempt(first, claimed.attempts, schedule).map(|t| t.max(now))
    };
    let state = match (outcome.delivered, next) {
        (true, _) => DELIVERED,
        (false, Some(_)) => PENDING,
        (false, None) => FAILED,
    };
    let error = outcome
        .error
        .map(|e| e.chars().take(1000).collect::<String>());
    let claimed = claimed.clone();
    db.write_transaction::<_, (), Error>(|tx| {
        Box::pin(async move {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::State, Expr::value(state))
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(next))
                .col_expr(
                    outbox::Column::ClaimedUntil,
                    Expr::value(Option::<OffsetDateTime>::None),
                )
                .col_expr(outbox::Column::LastError, Expr::value(error.clone()))
                .filter(outbox::Column::Id.eq(claimed.id))
                .filter(outbox::Column::Attempts.eq(claimed.attempts))
                .exec(tx)
                .await?;
            if let Some(webhook_id) = claimed.webhook_id {
                webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    message_id: Set(claimed.id),
                    webhook_id: Set(webhook_id),
                    event: Set(claimed.event.clone()),
                    attempt: Set(claimed.attempts),
                    status: Set(outcome.status.map(i32::from)),
                    error: Set(error),
                    at: Set(now),
                    next_attempt_at: Set(next),
                })
                .exec_without_returning(tx)
                .await?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(())
}

/// How long sent and failed messages and delivery logs are kept.
pub const KEEP: Duration = Duration::days(30);

/// Deletes messages that are done and delivery-log lines older than [`KEEP`]
/// (ids are uuid v7, so "older" is an id range on the primary key).
pub async fn prune(db: &impl ConnectionTrait) -> Result<u64, Error> {
    let before = clock::now() - KEEP;
    let seconds = u64::try_from(before.unix_timestamp()).unwrap_or(0);
    let boundary = Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0));
    let messages = outbox::Entity::delete_many()
        .filter(outbox::Column::Id.lt(boundary))
        .filter(outbox::Column::State.ne(PENDING))
        .exec(db)
        .await?;
    let log = webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::Id.lt(boundary))
        .exec(db)
        .await?;
    Ok(messages.rows_affected + log.rows_affected)
}

/// Queues an e-mail (`recipient` already checked as an address); `token`:
/// the token a reminder is about, so it is dropped unsent should that token
/// be revoked, replaced or deleted first.
pub async fn enqueue_mail(
    db: &impl ConnectionTrait,
    recipient: &str,
    event: &str,
    subject: String,
    body: String,
    token: Option<Uuid>,
) -> Result<(), Error> {
    let mut mail = row(
        CHANNEL_EMAIL,
        None,
        Some(recipient.to_owned()),
        event,
        Some(subject),
        body,
    );
    mail.token_id = Set(token);
    outbox::Entity::insert(mail)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_count_from_the_first_attempt_then_stop() {
        let schedule: Vec<crate::duration::Dur> = ["5s", "5m", "30m", "2h", "5h", "10h"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        let first = clock::now();
        assert_eq!(
            next_attempt(first, 1, &schedule),
            Some(first + Duration::seconds(5))
        );
        assert_eq!(
            next_attempt(first, 6, &schedule),
            Some(first + Duration::hours(10))
        );
        assert_eq!(next_attempt(first, 7, &schedule), None);
        assert_eq!(next_attempt(first, 0, &schedule), None);
    }
}
