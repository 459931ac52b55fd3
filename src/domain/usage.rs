//! Reading each token's recent uses (INTERFACE §12). They are recorded by
//! the token service in memory and written in batches (`token_service::usage`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Error, PageRequest,
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
    /// Newest first: one page of the (at most 100) uses kept.
    pub items: Vec<TokenUse>,
    /// For `?cursor=`: the next page, or null on the last.
    pub next_cursor: Option<String>,
    /// The distinct addresses among all uses kept, most recent first.
    pub addresses: Vec<String>,
}

/// Every use kept, on one page (what the token pages show).
pub const WHOLE: PageRequest = PageRequest {
    limit: KEPT,
    cursor: None,
};

/// The token's recorded uses, newest first, one page of them (what was
/// recorded in the last few seconds appears at the next flush). A cursor is
/// the id of the last use of the page before.
pub async fn history(
    db: &impl ConnectionTrait,
    token_id: Uuid,
    access: Access,
    page: &PageRequest,
) -> Result<UsageHistory, Error> {
    let row = find_row(db, token_id, access).await?;
    let of_token = token_use::Column::TokenId.eq(row.id);
    let mut query = token_use::Entity::find().filter(of_token.clone());
    if let Some(cursor) = page.cursor {
        let after = token_use::Entity::find_by_id(cursor)
            .filter(of_token.clone())
            .one(db)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "cursor",
                    "is not a cursor this server returned (or its use is no longer kept)",
                )
            })?;
        query = query.filter(
            Condition::any()
                .add(token_use::Column::At.lt(after.at))
                .add(
                    Condition::all()
                        .add(token_use::Column::At.eq(after.at))
                        .add(token_use::Column::Id.lt(after.id)),
                ),
        );
    }
    let mut uses = query
        .order_by_desc(token_use::Column::At)
        .order_by_desc(token_use::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let more = uses.len() as u64 > page.limit;
    uses.truncate(page.limit as usize);
    let next_cursor = more
        .then(|| uses.last().map(|u| URL_SAFE_NO_PAD.encode(u.id.as_bytes())))
        .flatten();
    let addresses = addresses(db, row.id).await?;
    let items = uses
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
    Ok(UsageHistory {
        items,
        next_cursor,
        addresses,
    })
}

/// The distinct addresses among the token's kept uses, most recent first.
async fn addresses(db: &impl ConnectionTrait, token_id: Uuid) -> Result<Vec<String>, Error> {
    let ips: Vec<Option<String>> = token_use::Entity::find()
        .select_only()
        .column(token_use::Column::Ip)
        .filter(token_use::Column::TokenId.eq(token_id))
        .order_by_desc(token_use::Column::At)
        .order_by_desc(token_use::Column::Id)
        .limit(KEPT)
        .into_tuple()
        .all(db)
        .await?;
    let mut addresses: Vec<String> = Vec::new();
    for ip in ips.into_iter().flatten() {
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    Ok(addresses)
}
