//! `GET /api/v1/me`: who is calling, with which effective scopes.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::support::Problem;
use crate::{
    domain::{PrincipalKind, Role, ScopeSet, TokenKind, clock},
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct MeToken {
    pub id: Uuid,
    pub kind: TokenKind,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Borrowed from the caller's cached token info: `/me` answers at load.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    pub id: Uuid,
    pub username: &'a str,
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
    /// Null for a machine user.
    pub role: Option<Role>,
    /// The calling token's effective scopes.
    #[schema(value_type = Vec<String>)]
    pub scopes: &'a ScopeSet,
    pub token: MeToken,
}

/// The caller and the calling token's effective scopes.
#[utoipa::path(
    operation_id = "get_me",
    tag = "me",
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, body = Me),
        (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/me")]
pub async fn me(_state: web::Data<AppState>, auth: Bearer) -> Result<HttpResponse, ApiError> {
    auth.require("profile")?;
    let info = &auth.info;
    Ok(HttpResponse::Ok().json(Me {
        id: info.owner_id,
        username: &info.username,
        kind: info.owner_kind,
        role: if info.owner_kind == PrincipalKind::User {
            info.role
        } else {
            None
        },
        scopes: &info.scopes,
        token: MeToken {
            id: info.token_id,
            kind: info.kind,
            expires_at: clock::from_unix(info.exp),
        },
    }))
}
