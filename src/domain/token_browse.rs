//! Token lists for people to browse: a total count, numbered pages and a
//! choice of order (created, expires, last used). The API keeps its cursor
//! pages (`tokens::list`); these pages may shift when tokens are made
//! meanwhile, which a person reading a list can live with.

use sea_orm::{ConnectionTrait, Order, PaginatorTrait, QueryOrder, QuerySelect, sea_query::Expr};

use super::{
    Error, TokenKind,
    tokens::{TokenFilter, TokenView, filtered, views},
};
use crate::storage::entities::token;

/// The orders a list can be read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenSort {
    /// Newest first.
    #[default]
    Created,
    CreatedOldest,
    /// The soonest expiry first.
    Expires,
    ExpiresLatest,
    /// The most recently used first; never-used tokens last.
    LastUsed,
    /// The least recently used first (never-used tokens first): what to clean up.
    LastUsedLeast,
}

impl TokenSort {
    pub const ALL: [Self; 6] = [
        Self::Created,
        Self::CreatedOldest,
        Self::Expires,
        Self::ExpiresLatest,
        Self::LastUsed,
        Self::LastUsedLeast,
    ];

    pub fn parse(raw: Option<&str>) -> Result<Self, Error> {
        match raw.map(str::trim).unwrap_or("") {
            "" => Ok(Self::Created),
            other => Self::ALL
                .into_iter()
                .find(|s| s.as_str() == other)
                .ok_or_else(|| {
                    Error::invalid(
                        "sort",
                        "must be one of created, created_asc, expires, expires_desc, last_used, last_used_asc",
                    )
                }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::CreatedOldest => "created_asc",
            Self::Expires => "expires",
            Self::ExpiresLatest => "expires_desc",
            Self::LastUsed => "last_used",
            Self::LastUsedLeast => "last_used_asc",
        }
    }

    /// In words, for the sort menu.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "Created, newest first",
            Self::CreatedOldest => "Created, oldest first",
            Self::Expires => "Expires, soonest first",
            Self::ExpiresLatest => "Expires, latest first",
            Self::LastUsed => "Last used, most recent first",
            Self::LastUsedLeast => "Last used, least recent first",
        }
    }
}

/// One numbered page of a list, and how many tokens the filter matches.
pub struct Browse {
    pub items: Vec<TokenView>,
    pub total: u64,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

impl Browse {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page).max(1)
    }
}

/// Page `page` (from 1) of `per_page` tokens matching `filter`, in `sort`
/// order; the id breaks ties, so every token is on exactly one page.
pub async fn browse(
    db: &impl ConnectionTrait,
    filter: &TokenFilter,
    sort: TokenSort,
    page: u64,
    per_page: u64,
) -> Result<Browse, Error> {
    let page = page.max(1);
    let Some(q) = filtered(db, filter).await? else {
        return Ok(Browse {
            items: Vec::new(),
            total: 0,
            page,
            per_page,
        });
    };
    let total = q.clone().count(db).await?;
    let never_used = Expr::col(token::Column::LastUsedAt).is_null();
    // A client-credentials record's id is minted with it (UUIDv7: time
    // first), so its id order is its creation order, and `(kind, id)` holds
    // them in that order. Sorting by `created_at` instead sorted every one of
    // them: 1.2 s for the first page at a million records.
    let by_id = filter.kind == Some(TokenKind::ClientCredentials);
    let q = match sort {
        TokenSort::Created | TokenSort::CreatedOldest if by_id => q,
        TokenSort::Created => q.order_by(token::Column::CreatedAt, Order::Desc),
        TokenSort::CreatedOldest => q.order_by(token::Column::CreatedAt, Order::Asc),
        TokenSort::Expires => q.order_by(token::Column::ExpiresAt, Order::Asc),
        TokenSort::ExpiresLatest => q.order_by(token::Column::ExpiresAt, Order::Desc),
        // NULLs sort differently on SQLite and PostgreSQL: order by "never
        // used" first so both backends agree.
        TokenSort::LastUsed => q
            .order_by(never_used, Order::Asc)
            .order_by(token::Column::LastUsedAt, Order::Desc),
        TokenSort::LastUsedLeast => q
            .order_by(never_used, Order::Desc)
            .order_by(token::Column::LastUsedAt, Order::Asc),
    };
    let order = match sort {
        TokenSort::CreatedOldest | TokenSort::Expires | TokenSort::LastUsedLeast => Order::Asc,
        _ => Order::Desc,
    };
    let rows = q
        .order_by(token::Column::Id, order)
        .offset((page - 1).saturating_mul(per_page))
        .limit(per_page)
        .all(db)
        .await?;
    Ok(Browse {
        items: views(db, rows).await?,
        total,
        page,
        per_page,
    })
}
