//! What the recorder writes, and what a store (SQLite's or PostgreSQL's)
//! must do with a batch of it.

use serde::{Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

/// A client-credentials token's record (its kind, name and empty
/// description are implied).
#[derive(Serialize)]
pub struct TokenRecord {
    #[serde(rename = "i", serialize_with = "simple")]
    pub id: Uuid,
    #[serde(rename = "j")]
    pub jti: String,
    #[serde(rename = "o", serialize_with = "simple")]
    pub owner_id: Uuid,
    #[serde(rename = "s")]
    pub scopes: String,
    #[serde(rename = "d")]
    pub digest: String,
    #[serde(rename = "k")]
    pub kid: String,
    #[serde(rename = "c", serialize_with = "rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(rename = "e", serialize_with = "rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(rename = "h")]
    pub hint: String,
    #[serde(rename = "a")]
    pub audience: Option<String>,
}

/// A client assertion's `jti`, accepted once per client until it expires
/// (the unique index on both refuses it on every instance).
#[must_use = "an assertion's jti must be recorded before what it authenticated is done"]
#[derive(Serialize)]
pub struct JtiClaim {
    #[serde(rename = "i", serialize_with = "simple")]
    pub(super) id: Uuid,
    #[serde(rename = "m", serialize_with = "simple")]
    pub machine_user_id: Uuid,
    #[serde(rename = "j")]
    pub jti: String,
    #[serde(rename = "e", serialize_with = "rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl JtiClaim {
    pub fn new(machine_user_id: Uuid, jti: String, expires_at: OffsetDateTime) -> Self {
        Self {
            id: Uuid::now_v7(),
            machine_user_id,
            jti,
            expires_at,
        }
    }
}

/// What one request has written.
pub enum Entry {
    Token(TokenRecord),
    Jti(JtiClaim),
    /// The token is recorded only if the `jti` is new.
    JtiAndToken(JtiClaim, TokenRecord),
}

impl Entry {
    pub(super) fn parts(&self) -> (Option<&JtiClaim>, Option<&TokenRecord>) {
        match self {
            Self::Token(t) => (None, Some(t)),
            Self::Jti(j) => (Some(j), None),
            Self::JtiAndToken(j, t) => (Some(j), Some(t)),
        }
    }
}

/// How an entry ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Its `jti` was recorded before (a replay, on any instance, or earlier
    /// in the same batch): nothing of it was written.
    Replayed,
}

/// Where the writer thread writes a batch: every entry committed (or refused
/// as a replay) together, or none of them.
pub(super) trait Store: Send + 'static {
    fn write(&mut self, entries: &[Entry]) -> Result<Vec<Outcome>, Failure>;

    /// Called before each batch, outside any transaction.
    fn between_batches(&mut self) {}
}

/// Why a batch was not written.
pub(super) struct Failure {
    pub message: String,
    /// A row was refused (a constraint: its machine user deleted meanwhile,
    /// say), so the others may be fine. Otherwise (the database busy past its
    /// timeout, unreachable, out of space) every entry would fail the same way.
    pub by_row: bool,
    /// The database cannot serve now (see [`crate::storage::outage`]).
    pub outage: bool,
    /// A foreign key refused a row: the machine user it names was deleted
    /// after it authenticated.
    pub owner_gone: bool,
}

// The JSON forms that PostgreSQL's statement casts: UUIDs as hex digits,
// times as RFC 3339.
pub(super) fn simple<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.simple().encode_lower(&mut Uuid::encode_buffer()))
}

fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}
