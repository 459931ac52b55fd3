//! Scopes: everyone may read them; admins register, describe and delete
//! their own (built-in scopes are fixed).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::support::{JsonBody, PageQuery, Problem, created, page_by_key};
use crate::{
    domain::{
        Page,
        scopes::{self, Scope},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    /// `[a-z0-9:._-]`, 1–64 characters; not a built-in name nor `admin:…`.
    pub name: String,
    pub description: Option<String>,
}

/// Built-in scopes first, then registered ones by name, a page at a time.
#[utoipa::path(
    operation_id = "list_scopes",
    tag = "scopes",
    security(("bearer" = ["profile"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<Scope>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/scopes")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("profile")?;
    let items = scopes::list(&state.db.read).await?;
    // Built-in first: "0" sorts before "1".
    let page = page_by_key(
        items,
        |s| format!("{}{}", if s.builtin { 0 } else { 1 }, s.name),
        &query,
    )?;
    Ok(HttpResponse::Ok().json(page))
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
    Ok(created(location(&scope.name), &scope))
}

fn location(name: &str) -> String {
    format!("/api/v1/scopes/{name}")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopePatch {
    /// At most 500 characters.
    pub description: String,
}

/// One scope, built-in or registered.
#[utoipa::path(
    operation_id = "get_scope",
    tag = "scopes",
    params(("name" = String, Path)),
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, body = Scope),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/scopes/{name}")]
pub async fn get(
    state: web::Data<AppState>,
    auth: Bearer,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require("profile")?;
    let scope = scopes::get(&state.db.read, &name).await?;
    Ok(HttpResponse::Ok().json(scope))
}

/// Changes a registered scope's description. Built-in scopes cannot be
/// changed (409).
#[utoipa::path(
    operation_id = "update_scope",
    tag = "scopes",
    params(("name" = String, Path)),
    request_body = ScopePatch,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 200, body = Scope),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem),
    )
)]
#[patch("/scopes/{name}")]
pub async fn update(
    state: web::Data<AppState>,
    auth: Bearer,
    name: web::Path<String>,
    body: JsonBody<ScopePatch>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let scope = scopes::update(&state.db, &auth.actor(), &name, &b.description).await?;
    Ok(HttpResponse::Ok().json(scope))
}

/// Deletes a registered scope that nothing uses: 409 while a machine user is
/// allowed it or an active token holds it (the detail counts them), and for
/// built-in scopes.
#[utoipa::path(
    operation_id = "delete_scope",
    tag = "scopes",
    params(("name" = String, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem),
    )
)]
#[delete("/scopes/{name}")]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Bearer,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    scopes::delete(&state.db, &auth.actor(), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
