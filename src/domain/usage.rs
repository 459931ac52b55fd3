//! Reading each token's recent uses (INTERFACE §12). They are recorded by
//! the token service in memory and written in batches (`token_service::usage`).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Error,
    tokens::{Access, find_row},
};
use crate::storage::entities::token_use;

/// Uses kept per token.
pub const KEPT: u64 = 100;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenUse {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `api` or `introspection`.
    pub via: String,
    /// The introspecting client, for introspections.
    pub client_id: Option<String>,
    /// `accepted` or `refused`.
    pub outcome: String,
    /// For refused uses: `expired`, `revoked`, `owner_inactive` or `insufficient_scope`.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageHistory {
    /// Newest first, at most 100.
    pub items: Vec<TokenUse>,
    /// Always null: the whole history is one page. There for the list shape
    /// every list has (INTERFACE §4).
    pub next_cursor: Option<String>,
    /// The distinct addresses among them, most recent first.
    pub addresses: Vec<String>,
}

/// The token's recorded uses, newest first (what was recorded in the last
/// few seconds appears at the next flush).
pub async fn history(
    db: &impl ConnectionTrait,
    token_id: Uuid,
    access: Access,
) -> Result<UsageHistory, Error> {
    let row = find_row(db, token_id, access).await?;
    let items: Vec<TokenUse> = token_use::Entity::find()
        .filter(token_use::Column::TokenId.eq(row.id))
        .order_by_desc(token_use::Column::At)
        .order_by_desc(token_use::Column::Id)
        .limit(KEPT)
        .all(db)
        .await?
        .into_iter()
        .map(|u| TokenUse {
            at: u.at,
            ip: u.ip,
            user_agent: u.user_agent,
            via: u.via,
            client_id: u.client_id,
            outcome: u.outcome,
            reason: u.reason,
        })
        .collect();
    let mut addresses: Vec<String> = Vec::new();
    for ip in items.iter().filter_map(|u| u.ip.as_ref()) {
        if !addresses.contains(ip) {
            addresses.push(ip.clone());
        }
    }
    Ok(UsageHistory {
        items,
        next_cursor: None,
        addresses,
    })
}
