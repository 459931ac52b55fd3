//! Expiry reminders (INTERFACE §9). Every active personal or machine token
//! gets one reminder per threshold it crosses and one notice at expiry; a
//! token inside several thresholds gets only the nearest. The schedule lives
//! in the database: a reminder is claimed by inserting its (token, threshold)
//! row, and its e-mail and webhook messages go into the outbox in the same
//! transaction, so each goes out once across instances and restarts.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Error, PrincipalKind, Role, TokenKind, clock, outbox, principals, tokens, webhooks};
use crate::storage::{
    Db, WriteTransactions,
    entities::{machine_user_manager, principal, token, token_reminder},
};

/// Tokens that expired longer ago than this get no notice (for example
/// when reminders are first turned on over an old database).
const NOTICE_WINDOW: Duration = Duration::days(1);
/// Tokens looked at per round.
const BATCH: u64 = 500;

/// What a sweep needs from the settings.
#[derive(Clone, Debug)]
pub struct ReminderPolicy {
    /// Seconds before expiry, longest first.
    pub thresholds: Vec<i64>,
    pub public_url: String,
    /// Whether e-mail is configured (otherwise none is queued).
    pub email: bool,
}

/// The threshold a token with `remaining` seconds is inside, the nearest
/// one (0: it has expired); `None` while it is outside them all.
pub fn nearest_threshold(thresholds: &[i64], remaining: i64) -> Option<i64> {
    if remaining <= 0 {
        return Some(0);
    }
    thresholds.iter().copied().filter(|t| remaining <= *t).min()
}

/// Whether a reminder queued about `token_id` has lost its point: the token
/// was revoked or replaced (its `revoked_at` set, grace period or not) or
/// deleted since. A read: SQLite's one writer is not needed for it.
pub async fn is_moot(db: &Db, token_id: Uuid) -> Result<bool, Error> {
    let revoked: Option<Option<OffsetDateTime>> = token::Entity::find_by_id(token_id)
        .select_only()
        .column(token::Column::RevokedAt)
        .into_tuple()
        .one(&db.read)
        .await?;
    Ok(revoked.is_none_or(|at| at.is_some()))
}

/// Sends the reminders that are due; returns how many tokens got one.
pub async fn sweep(db: &Db, policy: &ReminderPolicy) -> Result<usize, Error> {
    let now = clock::now();
    let horizon = policy.thresholds.first().copied().unwrap_or(0);
    let mut count = 0;
    // Every token in the window, a page at a time in (expiry, id) order: the
    // tokens nearest their end, reminded already, must not hide the others.
    let mut after: Option<(OffsetDateTime, Uuid)> = None;
    loop {
        let mut page = token::Entity::find()
            .filter(token::Column::Kind.is_in([TokenKind::Personal, TokenKind::Machine]))
            .filter(token::Column::RevokedAt.is_null())
            .filter(token::Column::ExpiresAt.lte(now + Duration::seconds(horizon)))
            .filter(token::Column::ExpiresAt.gt(now - NOTICE_WINDOW));
        if let Some((expires_at, id)) = after {
            page = page.filter(
                Condition::any()
                    .add(token::Column::ExpiresAt.gt(expires_at))
                    .add(
                        Condition::all()
                            .add(token::Column::ExpiresAt.eq(expires_at))
                            .add(token::Column::Id.gt(id)),
                    ),
            );
        }
        let rows = page
            .order_by_asc(token::Column::ExpiresAt)
            .order_by_asc(token::Column::Id)
            .limit(BATCH)
            .all(&db.read)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.expires_at, last.id));
        let full = rows.len() as u64 == BATCH;
        let sent = sent_thresholds(&db.read, rows.iter().map(|r| r.id).collect()).await?;
        for row in rows {
            let remaining = (row.expires_at - now).whole_seconds();
            let Some(nearest) = nearest_threshold(&policy.thresholds, remaining) else {
                continue;
            };
            if sent.get(&row.id).is_some_and(|done| *done <= nearest) {
                continue;
            }
            if remind(db, policy, row, nearest, remaining).await? {
                count += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok(count)
}

/// The smallest threshold already sent per token.
async fn sent_thresholds(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, i64>, Error> {
    let done: Vec<(Uuid, i64)> = token_reminder::Entity::find()
        .select_only()
        .column(token_reminder::Column::TokenId)
        .column(token_reminder::Column::ThresholdSeconds)
        .filter(token_reminder::Column::TokenId.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    let mut min = HashMap::new();
    for (id, t) in done {
        let entry = min.entry(id).or_insert(t);
        *entry = (*entry).min(t);
    }
    Ok(min)
}

/// Claims one reminder and queues its messages, all in one transaction;
/// false when another instance claimed it first.
async fn remind(
    db: &Db,
    policy: &ReminderPolicy,
    row: token::Model,
    threshold: i64,
    remaining: i64,
) -> Result<bool, Error> {
    let policy = policy.clone();
    let claimed = db
        .write
        .write_transaction::<_, bool, Error>(|tx| {
            Box::pin(async move {
                let inserted = token_reminder::Entity::insert(token_reminder::ActiveModel {
                    token_id: Set(row.id),
                    threshold_seconds: Set(threshold),
                    at: Set(clock::now()),
                })
                .on_conflict(
                    OnConflict::columns([
                        token_reminder::Column::TokenId,
                        token_reminder::Column::ThresholdSeconds,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(tx)
                .await;
                let inserted = match inserted {
                    // The token was deleted (with its owner) since it was
                    // read: nothing to remind of, and the others go on
                    // (refused here, so the transaction rolls back).
                    Err(e)
                        if matches!(
                            e.sql_err(),
                            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
                        ) =>
                    {
                        return Err(Error::NotFound("token"));
                    }
                    other => other?,
                };
                if inserted != 1 {
                    return Ok(false);
                }
                let Some(view) = tokens::views(tx, vec![row.clone()]).await?.pop() else {
                    return Ok(true);
                };
                let expired = threshold == 0;
                let event = if expired {
                    "token.expired"
                } else {
                    "token.expiring"
                };
                let mut data = serde_json::to_value(&view).unwrap_or(Value::Null);
                if !expired {
                    data["days_left"] = (remaining.max(0) + 86_399).div_euclid(86_400).into();
                }
                webhooks::enqueue(tx, event, clock::now(), &data).await?;
                if policy.email {
                    let (subject, body) = message(&policy.public_url, &view, expired);
                    for to in recipients(tx, row.owner_id).await? {
                        outbox::enqueue_mail(
                            tx,
                            &to,
                            event,
                            subject.clone(),
                            body.clone(),
                            Some(row.id),
                        )
                        .await?;
                    }
                }
                Ok(true)
            })
        })
        .await;
    let claimed = match claimed.map_err(Error::from) {
        // Rolled back: the token went with its owner meanwhile.
        Err(Error::NotFound("token")) => false,
        other => other?,
    };
    if claimed {
        crate::notify::wake::soon();
    }
    Ok(claimed)
}

/// The e-mail addresses of a machine user's enabled managers (§12).
pub async fn machine_user_managers(
    db: &impl ConnectionTrait,
    machine_user_id: Uuid,
) -> Result<Vec<String>, Error> {
    let people: Vec<Uuid> = machine_user_manager::Entity::find()
        .filter(machine_user_manager::Column::MachineUserId.eq(machine_user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.user_id)
        .collect();
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let emails: Vec<Option<String>> = principal::Entity::find()
        .select_only()
        .column(principal::Column::Email)
        .filter(principal::Column::Id.is_in(people))
        .filter(principal::Column::Enabled.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(emails
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .collect())
}

/// Who is reminded of a token: a PAT's owner; for a machine token the
/// machine user's contact address and its managers, or else every admin
/// with an address.
pub async fn recipients(db: &impl ConnectionTrait, owner_id: Uuid) -> Result<Vec<String>, Error> {
    let Some(owner) = principals::find(db, owner_id).await? else {
        return Ok(Vec::new());
    };
    let mut to: Vec<String> = Vec::new();
    match owner.kind {
        PrincipalKind::User => to.extend(owner.email.filter(|e| !e.is_empty())),
        PrincipalKind::Machine => {
            if !owner.contact_email.trim().is_empty() {
                to.push(owner.contact_email.trim().to_owned());
            }
            to.extend(machine_user_managers(db, owner.id).await?);
            if to.is_empty() {
                let admins: Vec<Option<String>> = principal::Entity::find()
                    .select_only()
                    .column(principal::Column::Email)
                    .filter(principal::Column::Kind.eq(PrincipalKind::User))
                    .filter(principal::Column::Role.eq(Role::Admin))
                    .filter(principal::Column::Enabled.eq(true))
                    .filter(principal::Column::Email.is_not_null())
                    .into_tuple()
                    .all(db)
                    .await?;
                to.extend(admins.into_iter().flatten().filter(|e| !e.is_empty()));
            }
        }
    }
    to.sort();
    to.dedup();
    Ok(to)
}

/// `2026-11-22 17:05 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn left(t: OffsetDateTime) -> String {
    let secs = (t - clock::now()).whole_seconds().max(0);
    match secs {
        s if s >= 2 * 86_400 => format!("in {} days", (s + 86_399) / 86_400),
        s if s >= 2 * 3600 => format!("in {} hours", (s + 3599) / 3600),
        s if s >= 120 => format!("in {} minutes", (s + 59) / 60),
        _ => "in less than two minutes".to_owned(),
    }
}

/// The subject and text of a reminder: what expires, when, what it can do,
/// when it was last used, and where to renew it. Never the secret.
pub fn message(public_url: &str, view: &tokens::TokenView, expired: bool) -> (String, String) {
    let (kind, renew) = match view.kind {
        TokenKind::Machine => (
            "machine token",
            // The page its managers can open; admins are sent on to theirs.
            format!("{public_url}/machine-users/{}", view.owner.id),
        ),
        _ => (
            "personal access token",
            format!("{public_url}/tokens/{}/regenerate", view.id),
        ),
    };
    let subject = if expired {
        format!("Tessera: the {kind} “{}” has expired", view.name)
    } else {
        format!(
            "Tessera: the {kind} “{}” expires {}",
            view.name,
            left(view.expires_at)
        )
    };
    let last_use = match (&view.last_used_at, &view.last_used_ip) {
        (Some(at), Some(ip)) => format!("{} from {ip}", when(*at)),
        (Some(at), None) => when(*at),
        _ => "never".to_owned(),
    };
    let headline = if expired {
        format!(
            "The {kind} “{}” of {} has expired.",
            view.name, view.owner.username
        )
    } else {
        format!(
            "The {kind} “{}” of {} expires {}.",
            view.name,
            view.owner.username,
            left(view.expires_at)
        )
    };
    let body = format!(
        "{headline}\n\n\
         Token:     {name}\n\
         Kind:      {kind}\n\
         Owner:     {owner}\n\
         Scopes:    {scopes}\n\
         Expires:   {expires}\n\
         Last used: {last_use}\n\n\
         Renew it with the same settings:\n{renew}\n",
        name = view.name,
        owner = view.owner.username,
        scopes = view.scopes.join(" "),
        expires = when(view.expires_at),
    );
    (subject, body)
}

/// What the in-app notice says: how many of the signed-in person's tokens
/// (for admins, also every machine token; for managers, those of the
/// machine users they manage) expire within `within`, and the soonest.
#[derive(Debug, Clone)]
pub struct Expiring {
    pub count: u64,
    pub soonest: OffsetDateTime,
}

pub async fn expiring_for(
    db: &impl ConnectionTrait,
    principal_id: Uuid,
    is_admin: bool,
    managed: &[Uuid],
    within: Duration,
) -> Result<Option<Expiring>, Error> {
    let now = clock::now();
    let mut whose = sea_orm::Condition::any().add(
        sea_orm::Condition::all()
            .add(token::Column::OwnerId.eq(principal_id))
            .add(token::Column::Kind.eq(TokenKind::Personal)),
    );
    if is_admin {
        whose = whose.add(token::Column::Kind.eq(TokenKind::Machine));
    } else if !managed.is_empty() {
        // A manager looks after the machine users of their delegation.
        whose = whose.add(
            sea_orm::Condition::all()
                .add(token::Column::OwnerId.is_in(managed.iter().copied()))
                .add(token::Column::Kind.eq(TokenKind::Machine)),
        );
    }
    let times: Vec<OffsetDateTime> = token::Entity::find()
        .select_only()
        .column(token::Column::ExpiresAt)
        .filter(whose)
        .filter(token::Column::RevokedAt.is_null())
        .filter(token::Column::ExpiresAt.gt(now))
        .filter(token::Column::ExpiresAt.lte(now + within))
        .order_by_asc(token::Column::ExpiresAt)
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?;
    Ok(times.first().map(|soonest| Expiring {
        count: times.len() as u64,
        soonest: *soonest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nearest_threshold_counts() {
        let t = [14 * 86_400, 7 * 86_400, 86_400];
        assert_eq!(nearest_threshold(&t, 20 * 86_400), None);
        assert_eq!(nearest_threshold(&t, 14 * 86_400), Some(14 * 86_400));
        assert_eq!(nearest_threshold(&t, 5 * 86_400), Some(7 * 86_400));
        assert_eq!(nearest_threshold(&t, 3600), Some(86_400));
        assert_eq!(nearest_threshold(&t, 0), Some(0));
        assert_eq!(nearest_threshold(&t, -5), Some(0));
        assert_eq!(nearest_threshold(&[], 10), None);
    }
}
