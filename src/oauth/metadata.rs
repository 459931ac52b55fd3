//! `/.well-known/oauth-authorization-server` (RFC 8414) and
//! `/.well-known/jwks.json` (RFC 7517).

use actix_web::{HttpResponse, http::header, web};
use serde_json::json;

use crate::{domain::scopes, http::errors::ApiError, state::AppState};

pub async fn metadata(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let base = &state.settings.public_url;
    let scopes: Vec<String> = scopes::list(&state.db.read)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let algs = crate::jwt::client_keys::ALGORITHMS;
    let body = json!({
        "issuer": base,
        "token_endpoint": format!("{base}/oauth2/token"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        "scopes_supported": scopes,
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string()))
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .body(state.tokens.ring().jwks.clone())
}
