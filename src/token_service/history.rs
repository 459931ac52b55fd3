//! Each token's recent uses (INTERFACE §12): the entries `usage` buffers in
//! memory and the batched statements that store them, keeping the newest
//! [`PER_TOKEN`] per token.

use std::{net::IpAddr, sync::Arc};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Uses kept per token, in memory and in the store.
pub const PER_TOKEN: usize = 100;
/// Longest user agent kept, in bytes.
const MAX_USER_AGENT: usize = 256;
/// Rows per insert statement (nine parameters each).
const ROWS: usize = 300;
/// Tokens per prune statement.
const PRUNE_TOKENS: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Api,
    Introspection,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Introspection => "introspection",
        }
    }
}

/// Why a use of an identifiable token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Expired,
    Revoked,
    OwnerInactive,
    InsufficientScope,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::OwnerInactive => "owner_inactive",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

/// One use as buffered: the address is kept as an `IpAddr` and repeated
/// user agents and client ids share one allocation.
#[derive(Clone, Debug)]
pub struct Use {
    pub at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<Arc<str>>,
    pub via: Via,
    pub client_id: Option<Arc<str>>,
    pub refused: Option<Refused>,
}

/// `text` shortened to at most [`MAX_USER_AGENT`] bytes on a character boundary.
pub fn clip_user_agent(text: &str) -> &str {
    if text.len() <= MAX_USER_AGENT {
        return text;
    }
    let mut end = MAX_USER_AGENT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `new` as a shared string, reusing `previous` when it is the same text, so
/// a client that keeps calling costs no allocation per call.
pub fn shared(previous: Option<&Arc<str>>, new: Option<&str>) -> Option<Arc<str>> {
    let new = new?;
    match previous {
        Some(p) if &**p == new => Some(p.clone()),
        _ => Some(Arc::from(new)),
    }
}

fn placeholders(backend: DbBackend, from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|i| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => "?".to_owned(),
        })
        .collect()
}

/// Stores `uses` (per token, oldest first) and prunes those tokens to their
/// newest [`PER_TOKEN`] uses: one insert per [`ROWS`] rows and one delete per
/// [`PRUNE_TOKENS`] tokens, each statement atomic on its own. Uses of tokens
/// deleted meanwhile are skipped.
pub async fn store<C: ConnectionTrait>(db: &C, uses: &[(Uuid, Vec<Use>)]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut rows: Vec<[Value; 9]> = Vec::new();
    for (token_id, list) in uses {
        for u in list {
            rows.push([
                Uuid::now_v7().into(),
                (*token_id).into(),
                u.at.into(),
                u.ip.map(|ip| ip.to_string()).into(),
                u.user_agent.as_deref().map(str::to_owned).into(),
                u.via.as_str().into(),
                u.client_id.as_deref().map(str::to_owned).into(),
                if u.refused.is_some() {
                    "refused"
                } else {
                    "accepted"
                }
                .into(),
                u.refused.map(|r| r.as_str().to_owned()).into(),
            ]);
        }
    }
    for chunk in rows.chunks(ROWS) {
        let tuples: Vec<String> = placeholders(backend, 1, chunk.len() * 9)
            .chunks(9)
            .map(|row| format!("({})", row.join(", ")))
            .collect();
        let cols = "id, token_id, at, ip, user_agent, via, client_id, outcome, reason";
        db.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "WITH v({cols}) AS (VALUES {}) \
                 INSERT INTO token_uses ({cols}) SELECT {cols} FROM v \
                 WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.id = v.token_id)",
                tuples.join(", ")
            ),
            chunk.iter().flat_map(|r| r.iter().cloned()),
        ))
        .await?;
    }
    for chunk in uses.chunks(PRUNE_TOKENS) {
        let ids = placeholders(backend, 1, chunk.len());
        db.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM token_uses WHERE id IN (SELECT id FROM (\
                 SELECT id, ROW_NUMBER() OVER (PARTITION BY token_id ORDER BY at DESC, id DESC) AS n \
                 FROM token_uses WHERE token_id IN ({})) ranked WHERE n > {PER_TOKEN})",
                ids.join(", ")
            ),
            chunk.iter().map(|(id, _)| Value::from(*id)),
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(200);
        let clipped = clip_user_agent(&long);
        assert!(clipped.len() <= MAX_USER_AGENT);
        assert!(clipped.chars().all(|c| c == 'é'));
        assert_eq!(clip_user_agent("curl/8"), "curl/8");
    }

    #[test]
    fn a_repeated_text_shares_its_allocation() {
        let first = shared(None, Some("curl/8")).unwrap();
        let again = shared(Some(&first), Some("curl/8")).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = shared(Some(&first), Some("wget")).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
