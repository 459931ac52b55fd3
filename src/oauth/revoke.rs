//! `POST /oauth2/revoke` (RFC 7009): a client revokes one of its own tokens.
//! Unknown tokens are answered 200 all the same (§2.2); a token of another
//! owner is refused (§2.1), which tells its holder nothing that using it
//! would not.

use actix_web::{HttpRequest, HttpResponse, web};

use super::request::{Form, authenticate_client_now, client_credentials, no_store, read_body};
use crate::{
    domain::{Actor, PrincipalRef, tokens},
    http::{client_ip, errors::OAuthError},
    secret::Digest,
    state::AppState,
};

pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::http::body::Body,
) -> Result<HttpResponse, OAuthError> {
    let body = read_body(body)?;
    let form = Form::parse(&req, &body)?;
    let creds = client_credentials(&state, &req, &form)?
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    let client = authenticate_client_now(&state, &req, &creds).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let actor = Actor {
        principal: Some(PrincipalRef {
            id: client.id,
            username: client.username.clone(),
        }),
        is_admin: false,
        ip: client_ip(&req),
        token_id: None,
    };
    // A token that does not verify (forged, expired, not ours) has nothing
    // left to revoke; one whose keys could not be read got no verdict.
    match state.tokens.verify(token).await {
        Ok(claims) => {
            let found = tokens::revoke_by_value(
                &state.db,
                &actor,
                &claims.jti,
                &Digest::of(token),
                client.id,
            )
            .await?;
            if found == tokens::RevokedByValue::NotYours {
                return Err(OAuthError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "this token was not issued to this client",
                ));
            }
        }
        Err(rejection) => {
            if let Some(e) = OAuthError::no_verdict(&rejection) {
                return Err(e);
            }
        }
    }
    Ok(no_store(&mut HttpResponse::Ok()).finish())
}
