//! Client authentication for the OAuth token endpoint.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::common::find_by_username;
use crate::{
    domain::{Error, PrincipalKind},
    secret::Digest,
    storage::entities::{client_secret, principal},
};

/// Client authentication: the machine user if `secret` matches one of its
/// secrets (constant-time), it is enabled, and it exists.
pub async fn authenticate_client(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret: &str,
) -> Result<Option<(principal::Model, Uuid)>, Error> {
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
    // Compare with every secret so timing does not tell which one matched.
    let mut matched = None;
    for s in &secrets {
        if presented.matches_hex(&s.digest) {
            matched = Some(s.id);
        }
    }
    Ok(match matched {
        Some(id) if m.enabled => Some((m, id)),
        _ => None,
    })
}
