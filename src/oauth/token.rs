//! `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde_json::json;

use super::request::{Form, authenticate_client, client_credentials, no_store};
use crate::{
    domain::{ScopeSet, TokenKind, principals, tokens::record_row},
    http::errors::OAuthError,
    state::AppState,
};

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::parse(&req, &body)?;
    let creds = client_credentials(&req, &form)?;
    match form.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only the client_credentials grant is supported",
            ));
        }
    }
    let creds = creds.ok_or_else(|| OAuthError::invalid_client(false))?;
    let machine = authenticate_client(&state, &req, &creds).await?;
    if !machine.cc_enabled {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "client credentials are turned off for this client",
        ));
    }
    let allowed = ScopeSet::from_stored(&machine.scopes);
    let scopes = match form.get("scope") {
        None => {
            let mut all = allowed;
            all.retain(|s| principals::permits(&machine, s));
            all
        }
        Some(raw) => {
            let requested = ScopeSet::from_stored(raw);
            if requested.is_empty() || !requested.iter().all(|s| principals::permits(&machine, s)) {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "the requested scope is not among the client's allowed scopes",
                ));
            }
            requested
        }
    };
    let ttl = i64::from(machine.cc_ttl_minutes) * 60;
    let minted = state
        .tokens
        .signer
        .mint(
            machine.id,
            &machine.username,
            TokenKind::ClientCredentials,
            scopes.to_string(),
            ttl,
        )
        .map_err(OAuthError::server_error)?;
    let row = record_row(
        &minted,
        TokenKind::ClientCredentials,
        machine.id,
        "client_credentials",
        String::new(),
        &scopes,
        None,
    );
    state
        .tokens
        .recorder
        .record(row)
        .await
        .map_err(OAuthError::server_error)?;
    state.metrics.issued(TokenKind::ClientCredentials);
    let body = json!({
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scopes.to_string(),
    });
    Ok(no_store(&mut HttpResponse::Ok())
        .content_type("application/json")
        .body(body.to_string()))
}
