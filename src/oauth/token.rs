//! `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4).

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};

use super::request::{
    Form, authenticate_client, client_credentials, no_store, read_body, replayed,
};
use crate::{
    domain::{
        Actor, Context, Error, ScopeSet,
        issuance::{Request, issue},
    },
    http::errors::OAuthError,
    state::AppState,
};

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::http::body::Body,
) -> Result<HttpResponse, OAuthError> {
    let body = read_body(body)?;
    let form = Form::parse(&req, &body)?;
    let creds = client_credentials(&state, &req, &form)?;
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
    let client = authenticate_client(&state, &req, &creds).await?;
    let request = Request::ClientCredentials {
        machine: client.machine,
        jti: client.jti,
        scope: form.get("scope").map(str::to_owned),
        resource: form.get("resource").map(str::to_owned),
    };
    let issued = match issue(
        &state.issuer(),
        &Context::new(Actor::system(), state.policy()),
        request,
    )
    .await
    {
        Err(Error::ClientRefused) => return Err(replayed(&state, &req, &creds)),
        other => other?,
    };
    let body = serde_json::to_string(&Answer {
        access_token: issued.token.expose(),
        token_type: "Bearer",
        expires_in: issued.lifetime_secs,
        scope: &issued.scopes,
    })
    .map_err(OAuthError::server_error)?;
    Ok(no_store(&mut HttpResponse::Ok())
        .content_type("application/json")
        .body(body))
}

/// RFC 6749 §5.1 (a struct, not `json!`: this answers at load).
#[derive(serde::Serialize)]
struct Answer<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(serialize_with = "ScopeSet::spaced")]
    scope: &'a ScopeSet,
}
