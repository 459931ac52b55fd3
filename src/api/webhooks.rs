//! Webhooks (admins; INTERFACE §9): subscribe a URL to events, read the
//! delivery log, ping a receiver. The signing secret is in the create
//! response only.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::support::{JsonBody, PageQuery, Problem, created_secret};
use crate::{
    domain::{
        Page,
        webhooks::{self, CreatedWebhook, Delivery, Webhook, WebhookInput},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// An `http://` or `https://` URL.
    pub url: Option<String>,
    /// Events to receive, e.g. `["token.expiring", "token.revoked"]`.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Subscribes a receiver. The answer holds its signing `secret`
/// (`whsec_…`), shown this once.
#[utoipa::path(
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = NewWebhookBody,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = CreatedWebhook, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<NewWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let input = WebhookInput {
        url: b.url,
        events: b.events,
        description: b.description,
        enabled: None,
    };
    let hook = webhooks::create(&state.db, &state.master, &auth.actor(), input).await?;
    Ok(created_secret(
        format!("/api/v1/webhooks/{}", hook.webhook.id),
        &hook,
    ))
}

/// Newest first.
#[utoipa::path(
    operation_id = "list_webhooks",
    tag = "webhooks",
    params(PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Page<Webhook>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/webhooks")]
pub async fn list(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let page = webhooks::list(&state.db.read, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    operation_id = "get_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Webhook),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/webhooks/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let hook: Webhook = webhooks::find(&state.db.read, *id).await?.into();
    Ok(HttpResponse::Ok().json(hook))
}

/// Changes any of `url`, `events`, `description`, `enabled`.
#[utoipa::path(
    operation_id = "update_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    request_body = WebhookPatch,
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 200, body = Webhook),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[patch("/webhooks/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let b = body.parse()?;
    let input = WebhookInput {
        url: b.url,
        events: b.events,
        description: b.description,
        enabled: b.enabled,
    };
    let hook = webhooks::update(&state.db, &auth.actor(), *id, input).await?;
    Ok(HttpResponse::Ok().json(hook))
}

#[utoipa::path(
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/webhooks/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    webhooks::delete(&state.db, &auth.actor(), *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delivery attempts, newest first.
#[utoipa::path(
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Page<Delivery>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let page = webhooks::deliveries(&state.db.read, *id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Sends a `ping` event now.
#[utoipa::path(
    operation_id = "ping_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 202),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem),
    )
)]
#[post("/webhooks/{id}/ping")]
pub async fn ping(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    webhooks::ping(&state.db, &auth.actor(), *id).await?;
    crate::notify::wake::soon();
    Ok(HttpResponse::Accepted().finish())
}
