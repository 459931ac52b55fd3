//! Client authentication for the OAuth token endpoint.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use time::OffsetDateTime;
use uuid::Uuid;

use super::common::find_by_username;
use crate::{
    domain::{Error, PrincipalKind},
    secret::Digest,
    storage::entities::{client_secret, principal},
};

/// A client that authenticated, and with which secret.
pub struct AuthenticatedClient {
    pub machine: principal::Model,
    pub secret_id: Uuid,
    /// The end of the secret's grace period, when a newer one replaced it.
    pub expires_at: Option<OffsetDateTime>,
}

/// Client authentication: the machine user if `secret` matches one of its
/// secrets (constant-time) that has not expired, it is enabled, and it exists.
pub async fn authenticate_client(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret: &str,
) -> Result<Option<AuthenticatedClient>, Error> {
    let Some(m) = find_by_username(db, client_id)
        .await?
        .filter(|m| m.kind == PrincipalKind::Machine)
    else {
        return Ok(None);
    };
    let presented = Digest::of(secret);
    let secrets = client_secret::Entity::find()
        .filter(client_secret::Column::MachineUserId.eq(m.id))
        .all(db)
        .await?;
    let now = OffsetDateTime::now_utc();
    // Compare with every secret so timing does not tell which one matched.
    let mut matched = None;
    for s in &secrets {
        if presented.matches_hex(&s.digest) {
            matched = Some(s);
        }
    }
    Ok(match matched {
        // A replaced secret whose grace period is over never authenticates,
        // even before the sweep deletes it.
        Some(s) if m.enabled && s.expires_at.is_none_or(|t| t > now) => Some(AuthenticatedClient {
            secret_id: s.id,
            expires_at: s.expires_at,
            machine: m,
        }),
        _ => None,
    })
}
