//! Reading each token's recent uses (INTERFACE §12). They are recorded by
//! the token service in memory and written in batches (`token_service::usage`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{IntoCondition, Query},
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

/// One page of a token's uses: how many, and after which (the time and id
/// of the last use of the page before, so a page still follows when that
/// use has since been pruned).
pub struct UsagePage {
    limit: u64,
    after: Option<(OffsetDateTime, Uuid)>,
}

/// Every use kept, on one page (what the token pages show).
pub const WHOLE: UsagePage = UsagePage {
    limit: KEPT,
    after: None,
};

impl UsagePage {
    /// `?limit=` as every list takes it, and a cursor this server returned.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = PageRequest::parse(limit, None)?.limit;
        let after =
            match cursor.filter(|c| !c.is_empty()) {
                None => None,
                Some(raw) => Some(decode_cursor(raw).ok_or_else(|| {
                    Error::invalid("cursor", "is not a cursor this server returned")
                })?),
            };
        Ok(Self { limit, after })
    }
}

fn encode_cursor(at: OffsetDateTime, id: Uuid) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&at.unix_timestamp_nanos().to_be_bytes());
    bytes[16..].copy_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(raw: &str) -> Option<(OffsetDateTime, Uuid)> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(raw).ok()?.try_into().ok()?;
    let nanos = i128::from_be_bytes(bytes[..16].try_into().ok()?);
    // No use was recorded before 1970; earlier times (down to year -9999)
    // would reach PostgreSQL, whose timestamps end at 4713 BC.
    if nanos < 0 {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    Some((at, Uuid::from_slice(&bytes[16..]).ok()?))
}

/// The token's recorded uses, newest first, one page of them (what was
/// recorded in the last few seconds appears at the next flush).
pub async fn history(
    db: &impl ConnectionTrait,
    token_id: Uuid,
    access: Access,
    page: &UsagePage,
) -> Result<UsageHistory, Error> {
    let row = find_row(db, token_id, access).await?;
    let mut query = token_use::Entity::find().filter(kept(row.id));
    if let Some((at, id)) = page.after {
        query = query.filter(
            Condition::any().add(token_use::Column::At.lt(at)).add(
                Condition::all()
                    .add(token_use::Column::At.eq(at))
                    .add(token_use::Column::Id.lt(id)),
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
        .then(|| uses.last().map(|u| encode_cursor(u.at, u.id)))
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

/// The token's newest [`KEPT`] uses. The flush inserts new uses and prunes
/// old ones in separate statements, so for a moment the store may hold more;
/// readers never see them.
fn kept(token_id: Uuid) -> impl IntoCondition {
    token_use::Column::Id.in_subquery(
        Query::select()
            .column(token_use::Column::Id)
            .from(token_use::Entity)
            .and_where(token_use::Column::TokenId.eq(token_id))
            .order_by(token_use::Column::At, Order::Desc)
            .order_by(token_use::Column::Id, Order::Desc)
            .limit(KEPT)
            .to_owned(),
    )
}

/// The distinct addresses among the token's kept uses, most recent first.
async fn addresses(db: &impl ConnectionTrait, token_id: Uuid) -> Result<Vec<String>, Error> {
    let ips: Vec<Option<String>> = token_use::Entity::find()
        .select_only()
        .column(token_use::Column::Ip)
        .filter(kept(token_id))
        .order_by_desc(token_use::Column::At)
        .order_by_desc(token_use::Column::Id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        let at = OffsetDateTime::from_unix_timestamp(1_796_186_621).unwrap();
        let id = Uuid::now_v7();
        let page = UsagePage::parse(None, Some(&encode_cursor(at, id))).unwrap();
        assert_eq!(page.after, Some((at, id)));
        assert_eq!(page.limit, 50);
        for bad in ["garbage", "AAAA", &URL_SAFE_NO_PAD.encode(id.as_bytes())] {
            assert!(UsagePage::parse(None, Some(bad)).is_err(), "{bad}");
        }
        assert!(UsagePage::parse(Some("0"), None).is_err());
    }
}
