//! Scopes: everyone may read them; admins register new ones.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::support::{JsonBody, Problem, created};
use crate::{
    app::AppState,
    domain::{
        Page,
        scopes::{self, Scope},
    },
    http::{auth::Bearer, errors::ApiError},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    /// `[a-z0-9:._-]`, 1–64 characters; not a built-in name nor `admin:…`.
    pub name: String,
    pub description: Option<String>,
}

/// Built-in scopes first, then registered ones by name (not paginated: a
/// deployment has few).
#[utoipa::path(
    operation_id = "list_scopes",
    tag = "scopes",
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, body = Page<Scope>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/scopes")]
pub async fn list(state: web::Data<AppState>, auth: Bearer) -> Result<HttpResponse, ApiError> {
    auth.require("profile")?;
    let items = scopes::list(&state.db.read).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(
    operation_id = "create_scope",
    tag = "scopes",
    request_body = NewScopeBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = Scope, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/scopes")]
pub async fn create(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<NewScopeBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let scope = scopes::create(&state.db, &auth.actor(), &b.name, b.description.as_deref()).await?;
    // Scopes have no page of their own: the Location is the list holding it.
    Ok(created("/api/v1/scopes".to_owned(), &scope))
}
