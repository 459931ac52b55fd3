//! Resource servers (RFC 8707): `/api/v1/resource-servers`, the APIs that
//! consume tokens and the scopes each owns.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::support::{JsonBody, PageQuery, Problem, created, page_by_key};
use crate::{
    domain::{
        Page,
        resource_servers::{self, ResourceServer, ResourceServerInput},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerBody {
    /// An absolute URI without a fragment: the `aud` of tokens for it.
    /// Required to create.
    pub identifier: Option<String>,
    /// 1–200 characters. Required to create.
    pub name: Option<String>,
    /// Registered scopes it owns; a scope belongs to at most one resource
    /// server. On `PATCH`, replaces the list.
    pub scopes: Option<Vec<String>>,
}

impl From<ResourceServerBody> for ResourceServerInput {
    fn from(b: ResourceServerBody) -> Self {
        Self {
            identifier: b.identifier,
            name: b.name,
            scopes: b.scopes,
        }
    }
}

fn location(id: Uuid) -> String {
    format!("/api/v1/resource-servers/{id}")
}

/// The resource servers by identifier, a page at a time.
#[utoipa::path(
    operation_id = "list_resource_servers",
    tag = "resource servers",
    security(("bearer" = ["admin:read"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<ResourceServer>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/resource-servers")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let items = resource_servers::list(&state.db.read).await?;
    let page = page_by_key(items, |r| r.identifier.clone(), &query)?;
    Ok(HttpResponse::Ok().json(page))
}

/// Registers a resource server.
#[utoipa::path(
    operation_id = "create_resource_server",
    tag = "resource servers",
    request_body = ResourceServerBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = ResourceServer, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/resource-servers")]
pub async fn create(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<ResourceServerBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let input = body.parse()?.into();
    let server = resource_servers::create(&state.db, &auth.actor(), input).await?;
    Ok(created(location(server.id), &server))
}

#[utoipa::path(
    operation_id = "get_resource_server",
    tag = "resource servers",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = ResourceServer),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/resource-servers/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    Ok(HttpResponse::Ok().json(resource_servers::get(&state.db.read, *id).await?))
}

/// Changes any of `identifier`, `name` and `scopes`.
#[utoipa::path(
    operation_id = "update_resource_server",
    tag = "resource servers",
    params(("id" = Uuid, Path)),
    request_body = ResourceServerBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 200, body = ResourceServer),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem),
    )
)]
#[patch("/resource-servers/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<ResourceServerBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let input = body.parse()?.into();
    let server = resource_servers::update(&state.db, &auth.actor(), *id, input).await?;
    Ok(HttpResponse::Ok().json(server))
}

/// Removes a resource server; its scopes stay registered. Tokens issued for
/// it keep their `aud` until they expire or are revoked.
#[utoipa::path(
    operation_id = "delete_resource_server",
    tag = "resource servers",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/resource-servers/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    resource_servers::delete(&state.db, &auth.actor(), *id).await?;
    Ok(HttpResponse::NoContent().finish())
}
