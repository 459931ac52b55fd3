//! What the two token lists (My tokens, All tokens) share: the sort menu,
//! numbered pages with a count, and links that keep the filters.

use super::page::FormData;
use crate::{
    domain::{
        self,
        token_browse::{Browse, TokenSort},
    },
    http::errors::WebError,
};

/// Tokens per page.
pub const PER_PAGE: u64 = 50;

pub struct SortChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub fn sort_choices(current: TokenSort) -> Vec<SortChoice> {
    TokenSort::ALL
        .into_iter()
        .map(|s| SortChoice {
            value: s.as_str(),
            label: s.label(),
            selected: s == current,
        })
        .collect()
}

/// `?page=` (from 1).
pub fn page_number(q: &FormData) -> Result<u64, WebError> {
    match q.text("page") {
        None => Ok(1),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| {
                domain::Error::invalid("page", "must be a whole number from 1 upwards").into()
            }),
    }
}

/// `?limit=` (1–500, as in the API); `PER_PAGE` without one. The value to
/// keep in links is "" for the default.
pub fn page_size(q: &FormData) -> Result<(u64, String), WebError> {
    match q.text("limit") {
        None => Ok((PER_PAGE, String::new())),
        Some(raw) => {
            let n = domain::PageRequest::parse(Some(raw), None)?.limit;
            Ok((n, n.to_string()))
        }
    }
}

/// "Showing 51–100 of 123", and links to the pages either side.
pub struct Pager {
    pub total: u64,
    pub first: u64,
    pub last: u64,
    pub page: u64,
    pub pages: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `params` are the list's filters (empty values are left out).
    pub fn new(path: &str, params: &[(&str, &str)], b: &Browse) -> Self {
        let link = |page: u64| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                if !v.is_empty() {
                    ser.append_pair(k, v);
                }
            }
            if page > 1 {
                ser.append_pair("page", &page.to_string());
            }
            let query = ser.finish();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{query}")
            }
        };
        let pages = b.pages();
        let first = (b.page - 1) * b.per_page + 1;
        Self {
            total: b.total,
            first,
            last: first + b.items.len() as u64 - 1,
            page: b.page,
            pages,
            prev: (b.page > 1).then(|| link((b.page - 1).min(pages))),
            next: (b.page < pages).then(|| link(b.page + 1)),
        }
    }

    pub fn shown(&self) -> bool {
        self.first <= self.last
    }
}
