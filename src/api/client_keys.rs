//! A machine user's public keys for `private_key_jwt` (INTERFACE §11):
//! `GET`, `PUT` and `DELETE /api/v1/machine-users/{id}/jwks`.

use actix_web::{HttpResponse, delete, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::support::{JsonBody, Problem, or_scope};
use crate::{
    domain::{client_keys, principals},
    http::{auth::Bearer, errors::ApiError},
    state::AppState,
};

/// A JWK Set (RFC 7517 §5) of public signing keys: EC P-256, RSA of 2048
/// bits or more, or Ed25519; at most 5, each with a distinct `kid` when
/// there are several. Private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`)
/// are refused.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// The machine user's registered public keys (`{"keys": []}` when none).
#[utoipa::path(
    operation_id = "get_machine_user_jwks",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:read"]), ("bearer" = ["tokens:read"])),
    responses(
        (status = 200, body = JwkSet),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[get("/machine-users/{id}/jwks")]
pub async fn get_jwks(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:read", "tokens:read"])?;
    let set = client_keys::get(&state.db.read, &auth.context(state.policy()), *id)
        .await
        .map_err(or_scope(&auth, "admin:read"))?;
    Ok(HttpResponse::Ok().json(set))
}

/// Replaces the machine user's public keys; answers the set as stored (only
/// public members). Its client secrets are untouched: it may use both.
#[utoipa::path(
    operation_id = "put_machine_user_jwks",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    request_body = JwkSet,
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 200, body = JwkSet),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
    )
)]
#[put("/machine-users/{id}/jwks")]
pub async fn put_jwks(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    let ctx = auth.context(state.policy());
    // Who may act is decided before the body is read.
    principals::authorize(&state.db.read, &ctx, *id, principals::Need::Manage)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    let set = body.parse_document()?;
    let stored = client_keys::put(&state.db, &auth.context(state.policy()), *id, &set)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    Ok(HttpResponse::Ok().json(stored))
}

/// Removes the machine user's public keys (204, also when it had none).
#[utoipa::path(
    operation_id = "delete_machine_user_jwks",
    tag = "machine users",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["admin:write"]), ("bearer" = ["tokens:write"])),
    responses(
        (status = 204),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
#[delete("/machine-users/{id}/jwks")]
pub async fn delete_jwks(
    state: web::Data<AppState>,
    auth: Bearer,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth.require_any(&["admin:write", "tokens:write"])?;
    client_keys::delete(&state.db, &auth.context(state.policy()), *id)
        .await
        .map_err(or_scope(&auth, "admin:write"))?;
    Ok(HttpResponse::NoContent().finish())
}
