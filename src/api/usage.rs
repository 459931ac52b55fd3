//! Each token's recent uses: the caller's own tokens and, for admins, anyone's.

use actix_web::{HttpResponse, get, web};
use uuid::Uuid;

use super::support::{PageQuery, Problem};
use crate::{
    domain::{
        tokens::Access,
        usage::{self, UsageHistory, UsagePage},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

/// The last 100 uses of one of the caller's tokens, newest first, a page at
/// a time, with the distinct addresses among them.
#[utoipa::path(
    operation_id = "get_own_token_usage",
    tag = "tokens",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = UsageHistory),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/tokens/{id}/usage")]
pub async fn own(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:read")?;
    let page = UsagePage::parse(query.limit.as_deref(), query.cursor.as_deref())?;
    let history =
        usage::history(&state.db.read, *id, Access::Own(auth.info.owner_id), &page).await?;
    Ok(HttpResponse::Ok().json(history))
}

/// The last 100 uses of any token (admins), a page at a time.
#[utoipa::path(
    operation_id = "get_token_usage",
    tag = "tokens",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = UsageHistory),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/admin/tokens/{id}/usage")]
pub async fn any(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let page = UsagePage::parse(query.limit.as_deref(), query.cursor.as_deref())?;
    let history = usage::history(&state.db.read, *id, Access::Any, &page).await?;
    Ok(HttpResponse::Ok().json(history))
}
