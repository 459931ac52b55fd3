//! Each token's recent uses: the caller's own tokens and, for admins, anyone's.

use actix_web::{HttpResponse, get, web};
use uuid::Uuid;

use super::support::Problem;
use crate::{
    domain::{
        tokens::Access,
        usage::{self, UsageHistory},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

/// The last 100 uses of one of the caller's tokens, newest first, with the
/// distinct addresses among them.
#[utoipa::path(
    operation_id = "get_own_token_usage",
    tag = "tokens",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = UsageHistory),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/tokens/{id}/usage")]
pub async fn own(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:read")?;
    let history = usage::history(&state.db.read, *id, Access::Own(auth.info.owner_id)).await?;
    Ok(HttpResponse::Ok().json(history))
}

/// The last 100 uses of any token (admins).
#[utoipa::path(
    operation_id = "get_token_usage",
    tag = "tokens",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = UsageHistory),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/admin/tokens/{id}/usage")]
pub async fn any(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let history = usage::history(&state.db.read, *id, Access::Any).await?;
    Ok(HttpResponse::Ok().json(history))
}
