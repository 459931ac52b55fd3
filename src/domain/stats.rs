//! What the dashboard shows: tokens about to expire, tokens issued per day,
//! and machine users whose client secrets are getting old.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Error, PrincipalKind, clock, tokens};
use crate::storage::entities::{client_secret, daily_count, principal, token};

/// The owner's active tokens that expire within `within`, soonest first.
pub async fn expiring_tokens(
    db: &impl ConnectionTrait,
    owner_id: Uuid,
    within: Duration,
) -> Result<Vec<tokens::TokenView>, Error> {
    let now = clock::now();
    let rows = token::Entity::find()
        .filter(token::Column::OwnerId.eq(owner_id))
        .filter(token::Column::RevokedAt.is_null())
        .filter(token::Column::ExpiresAt.gt(now))
        .filter(token::Column::ExpiresAt.lte(now + within))
        .order_by_asc(token::Column::ExpiresAt)
        .limit(100)
        .all(db)
        .await?;
    tokens::views(db, rows).await
}

/// One count per day (UTC) for the last `days` days, oldest first, today last.
pub fn empty_days(days: i64, today: Date) -> BTreeMap<Date, u64> {
    (0..days)
        .filter_map(|back| today.checked_sub(Duration::days(back)))
        .map(|d| (d, 0))
        .collect()
}

/// Adds to today's counters (one upsert, on both backends). Issued tokens are
/// counted in the transaction that records them; validations when the
/// in-memory usage is flushed.
pub async fn add_to_today(
    db: &impl ConnectionTrait,
    validations: u64,
    issued: u64,
) -> Result<(), sea_orm::DbErr> {
    db.execute(today_upsert(db.get_database_backend(), validations, issued))
        .await?;
    Ok(())
}

/// The statement of [`add_to_today`], for callers that run it together with
/// others.
pub fn today_upsert(
    backend: sea_orm::DbBackend,
    validations: u64,
    issued: u64,
) -> sea_orm::Statement {
    use sea_orm::{
        ActiveValue::Set,
        QueryTrait,
        sea_query::{Expr, OnConflict},
    };
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let (validations, issued) = (clamp(validations), clamp(issued));
    daily_count::Entity::insert(daily_count::ActiveModel {
        day: Set(daily_count::day_key(clock::now().date())),
        validations: Set(validations),
        issued: Set(issued),
    })
    .on_conflict(
        OnConflict::column(daily_count::Column::Day)
            .value(
                daily_count::Column::Validations,
                Expr::col((daily_count::Entity, daily_count::Column::Validations)).add(validations),
            )
            .value(
                daily_count::Column::Issued,
                Expr::col((daily_count::Entity, daily_count::Column::Issued)).add(issued),
            )
            .to_owned(),
    )
    .build(backend)
}

/// One counter per day over the last `days` days, oldest first, today last.
async fn per_day(
    db: &impl ConnectionTrait,
    days: i64,
    pick: impl Fn(&daily_count::Model) -> i64,
) -> Result<Vec<(Date, u64)>, Error> {
    let mut counts = empty_days(days, clock::now().date());
    let Some(first) = counts.keys().next().copied() else {
        return Ok(Vec::new());
    };
    let rows = daily_count::Entity::find()
        .filter(daily_count::Column::Day.gte(daily_count::day_key(first)))
        .all(db)
        .await?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    for row in rows {
        if let Ok(day) = Date::parse(&row.day, &fmt)
            && let Some(n) = counts.get_mut(&day)
        {
            *n = u64::try_from(pick(&row)).unwrap_or(0);
        }
    }
    Ok(counts.into_iter().collect())
}

/// Tokens of every kind issued per day (UTC) over the last `days` days.
pub async fn tokens_issued_per_day(
    db: &impl ConnectionTrait,
    days: i64,
) -> Result<Vec<(Date, u64)>, Error> {
    per_day(db, days, |r| r.issued).await
}

/// Successful token validations per day (UTC) over the last `days` days.
pub async fn validations_per_day(
    db: &impl ConnectionTrait,
    days: i64,
) -> Result<Vec<(Date, u64)>, Error> {
    per_day(db, days, |r| r.validations).await
}

/// A machine user holding a client secret older than the threshold.
#[derive(Debug, Clone)]
pub struct StaleSecret {
    pub machine_user_id: Uuid,
    pub username: String,
    pub secret_id: Uuid,
    pub created_at: OffsetDateTime,
}

pub async fn stale_secrets(
    db: &impl ConnectionTrait,
    older_than: Duration,
) -> Result<Vec<StaleSecret>, Error> {
    let cutoff = clock::now() - older_than;
    let secrets = client_secret::Entity::find()
        .filter(client_secret::Column::CreatedAt.lt(cutoff))
        .order_by_asc(client_secret::Column::CreatedAt)
        .limit(200)
        .all(db)
        .await?;
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = secrets.iter().map(|s| s.machine_user_id).collect();
    let owners: BTreeMap<Uuid, String> = principal::Entity::find()
        .filter(principal::Column::Id.is_in(ids))
        .filter(principal::Column::Kind.eq(PrincipalKind::Machine))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.username))
        .collect();
    Ok(secrets
        .into_iter()
        .filter_map(|s| {
            owners.get(&s.machine_user_id).map(|username| StaleSecret {
                machine_user_id: s.machine_user_id,
                username: username.clone(),
                secret_id: s.id,
                created_at: s.created_at,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_days_cover_the_window_ending_today() {
        let today = time::macros::date!(2026 - 03 - 01);
        let days = empty_days(30, today);
        assert_eq!(days.len(), 30);
        assert_eq!(days.keys().last(), Some(&today));
        assert_eq!(
            days.keys().next(),
            Some(&time::macros::date!(2026 - 01 - 31))
        );
    }
}
