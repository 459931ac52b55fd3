//! Per-day counters (tokens issued, validations) behind the dashboard's
//! charts: one upserted row per day, so the charts never scan the tokens table.

use sea_orm::{ConnectionTrait, EntityTrait};

use super::entities::daily_count;
use crate::clock;

/// Adds to today's counters (one upsert, on both backends). Issued tokens are
/// counted in the transaction that records them; validations when the
/// in-memory usage is flushed.
pub async fn add_to_today(
    db: &impl ConnectionTrait,
    validations: u64,
    issued: u64,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{
        ActiveValue::Set,
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
    .exec_without_returning(db)
    .await?;
    Ok(())
}
