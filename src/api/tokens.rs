//! Tokens: the caller's own (`/tokens`, `tokens:*`) and everyone's
//! (`/admin/tokens`, `admin:*`).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::support::{JsonBody, OptionalJsonBody, PageQuery, Problem, created_secret};
use crate::{
    domain::{
        self, Page, TokenKind, TokenStatus, clock,
        issuance::{Request, issue},
        tokens::{self, Access, Lifetime, NewToken, TokenFilter, TokenView},
    },
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

/// A token request: exactly one of `expires_in_seconds` and `expires_at`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    /// Lifetime in seconds, from 60 to the policy maximum.
    pub expires_in_seconds: Option<i64>,
    /// RFC 3339 expiry time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    /// A registered resource server's identifier (RFC 8707): the token's
    /// `aud`; its scopes must all belong to that server.
    pub audience: Option<String>,
}

impl TokenRequest {
    pub fn into_new(self) -> Result<NewToken, ApiError> {
        // Parsed here rather than by serde, so a bad time names its field.
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|raw| {
                clock::parse_rfc3339(raw).map_err(|why| domain::Error::invalid("expires_at", why))
            })
            .transpose()?;
        Ok(NewToken {
            lifetime: Lifetime::from_request(self.expires_in_seconds, expires_at)?,
            name: self.name,
            description: self.description,
            scopes: Some(self.scopes),
            audience: self.audience,
        })
    }
}

/// The optional body of a regeneration.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateBody {
    /// How long the old token keeps working, 0–259200 (72 hours); default 0.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 259200)]
    pub grace_seconds: Option<serde_json::Value>,
}

/// A grace period in seconds from JSON: a whole number in range, or a 400
/// naming `field` (serde's own message would not name it).
pub(super) fn grace_seconds(
    value: Option<&serde_json::Value>,
    field: &'static str,
) -> Result<i64, ApiError> {
    let seconds = match value {
        None | Some(serde_json::Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            domain::Error::invalid(
                field,
                "must be a whole number of seconds from 0 to 259200 (72 hours)",
            )
        })?,
    };
    Ok(domain::grace::check_grace(seconds, field)?)
}

pub(super) fn regenerate_request(
    token_id: Uuid,
    access: Access,
    body: OptionalJsonBody<RegenerateBody>,
) -> Result<Request, ApiError> {
    let body = body.parse()?.unwrap_or_default();
    Ok(Request::Regenerate {
        token_id,
        access,
        grace_seconds: grace_seconds(body.grace_seconds.as_ref(), "grace_seconds")?,
    })
}

fn own(auth: &Bearer) -> Access {
    Access::Own(auth.info.owner_id)
}

/// The caller's own tokens, newest first.
#[utoipa::path(
    operation_id = "list_own_tokens",
    tag = "tokens",
    params(PageQuery),
    security(("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = Page<TokenView>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/tokens")]
pub async fn list_own(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:read")?;
    let filter = TokenFilter {
        owner_id: Some(auth.info.owner_id),
        ..TokenFilter::default()
    };
    let page = tokens::list(&state.db.read, &filter, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Creates a personal access token for the caller. The secret (`token`) is
/// in this response only. The new token cannot hold a scope the calling token
/// lacks, and a client-credentials token cannot create one (403).
#[utoipa::path(
    operation_id = "create_own_token",
    tag = "tokens",
    request_body = TokenRequest,
    security(("bearer" = ["tokens:write"])),
    responses(
        (status = 201, body = TokenView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/tokens")]
pub async fn create_own(
    state: web::Data<AppState>,
    auth: Bearer,
    body: JsonBody<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:write")?;
    let new = body.parse()?.into_new()?;
    let request = Request::Named {
        owner_id: auth.info.owner_id,
        new,
    };
    let view = issue(&state.issuer(), &auth.context(state.policy()), request)
        .await?
        .into_view()?;
    Ok(created_secret(format!("/api/v1/tokens/{}", view.id), &view))
}

/// One of the caller's tokens.
#[utoipa::path(
    operation_id = "get_own_token",
    tag = "tokens",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = TokenView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/tokens/{id}")]
pub async fn get_own(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:read")?;
    let view = tokens::get(&state.db.read, *id, own(&auth)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Revokes one of the caller's tokens (idempotent). It stays listed, revoked.
#[utoipa::path(
    operation_id = "revoke_own_token",
    tag = "tokens",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["tokens:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/tokens/{id}")]
pub async fn revoke_own(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:write")?;
    tokens::revoke(&state.db, &auth.actor(), *id, own(&auth)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces one of the caller's tokens with a new one (same name, scopes and
/// lifetime length) and revokes the old one, at once or after
/// `grace_seconds` (the body is optional). A revoked token cannot be
/// regenerated (409); an expired one can. The new token keeps only the scopes
/// the owner may hold now (409 when none is left). The calling token must hold
/// every scope of the new token (403 otherwise), and may not be a
/// client-credentials token (403).
#[utoipa::path(
    operation_id = "regenerate_own_token",
    tag = "tokens",
    params(("id" = Uuid, Path)),
    request_body(content = Option<RegenerateBody>),
    security(("bearer" = ["tokens:write"])),
    responses(
        (status = 201, body = TokenView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/tokens/{id}/regenerate")]
pub async fn regenerate_own(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: OptionalJsonBody<RegenerateBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("tokens:write")?;
    let request = regenerate_request(*id, own(&auth), body)?;
    let view = issue(&state.issuer(), &auth.context(state.policy()), request)
        .await?
        .into_view()?;
    Ok(created_secret(format!("/api/v1/tokens/{}", view.id), &view))
}

/// Filters of `GET /api/v1/admin/tokens`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminTokenQuery {
    /// The owner's username.
    pub owner: Option<String>,
    #[param(value_type = Option<TokenKind>)]
    pub kind: Option<String>,
    #[param(value_type = Option<TokenStatus>)]
    pub status: Option<String>,
    /// Case-insensitive search in token names.
    pub q: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
}

/// Every token of every owner, newest first (admins).
#[utoipa::path(
    operation_id = "list_all_tokens",
    tag = "admin",
    params(AdminTokenQuery, PageQuery),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = Page<TokenView>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[get("/admin/tokens")]
pub async fn list_all(
    state: web::Data<AppState>,
    auth: Bearer,
    query: web::Query<AdminTokenQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let q = query.into_inner();
    let filter = TokenFilter {
        owner: q.owner,
        owner_id: None,
        kind: q.kind.as_deref().map(TokenKind::parse).transpose()?,
        status: q.status.as_deref().map(TokenStatus::parse).transpose()?,
        q: q.q,
        hide_client_credentials: false,
    };
    let page = tokens::list(&state.db.read, &filter, q.page.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Any token (admins).
#[utoipa::path(
    operation_id = "get_any_token",
    tag = "admin",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"])),
    responses(
        (status = 200, body = TokenView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/admin/tokens/{id}")]
pub async fn get_any(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:read")?;
    let view = tokens::get(&state.db.read, *id, Access::Any).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Revokes any token (admins).
#[utoipa::path(
    operation_id = "revoke_any_token",
    tag = "admin",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/admin/tokens/{id}")]
pub async fn revoke_any(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    tokens::revoke(&state.db, &auth.actor(), *id, Access::Any).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Regenerates a machine token (admins), at once or with `grace_seconds`
/// during which the old one keeps working. A personal token is refused (403):
/// administrators never mint a person's token.
#[utoipa::path(
    operation_id = "regenerate_any_token",
    tag = "admin",
    params(("id" = Uuid, Path)),
    request_body(content = Option<RegenerateBody>),
    security(("bearer" = ["admin:write"])),
    responses(
        (status = 201, body = TokenView, headers(("Location" = String))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 415, body = Problem),
    )
)]
#[post("/admin/tokens/{id}/regenerate")]
pub async fn regenerate_any(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: OptionalJsonBody<RegenerateBody>,
) -> Result<HttpResponse, ApiError> {
    auth.require("admin:write")?;
    let request = regenerate_request(*id, Access::Any, body)?;
    let view = issue(&state.issuer(), &auth.context(state.policy()), request)
        .await?
        .into_view()?;
    Ok(created_secret(
        format!("/api/v1/admin/tokens/{}", view.id),
        &view,
    ))
}
