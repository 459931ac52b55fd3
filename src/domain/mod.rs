//! The domain: users, machine users, scopes, tokens and the audit log. The REST
//! API, the web pages and the CLI all call these functions; none of them holds
//! business rules of its own.

pub mod audit;
pub mod client_keys;
mod error;
pub mod grace;
pub mod issuance;
pub mod leaks;
pub mod outbox;
pub mod principals;
pub mod reminders;
pub mod resource_servers;
pub mod retention;
pub mod reveals;
pub mod rotation;
pub mod scopes;
pub mod sessions;
pub mod signing_keys;
pub mod sso;
pub mod stats;
pub mod token_browse;
pub mod tokens;
mod types;
pub mod usage;
pub mod webhook_events;
pub mod webhooks;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use uuid::Uuid;

pub use crate::clock;
pub use crate::jwt::CLOCK_LEEWAY_SECS;
pub use error::{Error, is_unique_violation};
pub use types::*;

/// `{id, username}` as in `created_by`, `revoked_by` and audit actors.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PrincipalRef {
    pub id: Uuid,
    pub username: String,
}

/// Who is acting: a signed-in person, a token's owner, or the command line
/// (`principal: None`).
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub principal: Option<PrincipalRef>,
    pub is_admin: bool,
    pub ip: Option<String>,
    /// The API token that made the change, recorded in the audit log.
    pub token_id: Option<Uuid>,
}

impl Actor {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn id(&self) -> Option<Uuid> {
        self.principal.as_ref().map(|p| p.id)
    }

    pub fn require_admin(&self) -> Result<(), Error> {
        if self.principal.is_none() || self.is_admin {
            Ok(())
        } else {
            Err(Error::Forbidden("administrators only".into()))
        }
    }
}

impl Actor {
    /// A signed-in person or a token's owner.
    pub fn principal(id: Uuid, username: &str, is_admin: bool, ip: Option<String>) -> Self {
        Self {
            principal: Some(PrincipalRef {
                id,
                username: username.to_owned(),
            }),
            is_admin,
            ip,
            token_id: None,
        }
    }

    /// Nobody signed in yet (a failed sign-in, the first-admin setup).
    pub fn anonymous(ip: Option<String>) -> Self {
        Self {
            ip,
            ..Self::default()
        }
    }
}

/// The token a request came with: its kind and its effective scopes.
#[derive(Clone, Debug)]
pub struct CallingToken {
    pub kind: TokenKind,
    pub scopes: ScopeSet,
}

/// The policy every request is held to (from the settings).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The longest lifetime of a personal or machine token, in seconds.
    pub max_token_lifetime: i64,
}

/// Who asks, with which token if any, under which policy: what the domain
/// needs to decide a request.
#[derive(Clone, Debug)]
pub struct Context {
    pub actor: Actor,
    pub token: Option<CallingToken>,
    pub policy: Policy,
}

impl Context {
    pub fn new(actor: Actor, policy: Policy) -> Self {
        Self {
            actor,
            token: None,
            policy,
        }
    }

    pub fn with_token(mut self, token: CallingToken) -> Self {
        self.token = Some(token);
        self
    }
}

/// `?limit=` (1–500, default 50) and an opaque `?cursor=`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub limit: u64,
    pub cursor: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 50,
            cursor: None,
        }
    }
}

impl PageRequest {
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = match limit {
            None => 50,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 500"))?,
        };
        let cursor = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(
                URL_SAFE_NO_PAD
                    .decode(raw)
                    .ok()
                    .and_then(|b| Uuid::from_slice(&b).ok())
                    .ok_or_else(|| {
                        Error::invalid("cursor", "is not a cursor this server returned")
                    })?,
            ),
        };
        Ok(Self { limit, cursor })
    }
}

/// `{items, next_cursor}`: lists run newest first by uuid v7 id, so a cursor
/// stays stable while new rows are inserted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: u64, id: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(id(r).as_bytes()))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
