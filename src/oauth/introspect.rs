//! `POST /oauth2/introspect` (RFC 7662). The caller is a client whose allowed
//! scopes include `introspect`, or presents a Bearer token holding it.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};

use super::request::{Form, authenticate_client_now, client_credentials, no_store, read_body};
use crate::{
    domain::principals,
    http::auth::{BearerHeader, bearer_token, user_agent},
    http::errors::OAuthError,
    state::AppState,
    token_service::{
        history::Via,
        usage::{Seen, UseOf},
    },
};

enum Caller {
    Client(std::sync::Arc<crate::storage::entities::principal::Model>),
    Token(std::sync::Arc<crate::token_service::AuthInfo>),
}

impl Caller {
    fn name(&self) -> &str {
        match self {
            Self::Client(c) => &c.username,
            Self::Token(t) => &t.username,
        }
    }
}

pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::http::body::Body,
) -> Result<HttpResponse, OAuthError> {
    let body = read_body(body)?;
    let form = Form::parse(&req, &body)?;
    // The introspecting client (shared, not copied), recorded with the
    // introspected token's use.
    let (allowed, caller) = match client_credentials(&state, &req, &form)? {
        Some(creds) => {
            let client = authenticate_client_now(&state, &req, &creds).await?;
            (
                principals::permits(&client, "introspect"),
                Caller::Client(client),
            )
        }
        None => match bearer_token(&req) {
            BearerHeader::Token(token) => match state.tokens.validate(token).await {
                Ok(info) => (info.has_scope("introspect"), Caller::Token(info)),
                Err(r) => {
                    if let Some(e) = OAuthError::no_verdict(&r) {
                        return Err(e);
                    }
                    let mut e = OAuthError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_token",
                        "the access token is invalid",
                    );
                    e.challenge = Some(r#"Bearer realm="tessera", error="invalid_token""#.into());
                    return Err(e);
                }
            },
            _ => {
                let mut e = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "authenticate as a client or with a Bearer token",
                );
                e.challenge = Some(r#"Basic realm="tessera", charset="UTF-8""#.into());
                return Err(e);
            }
        },
    };
    if !allowed {
        let mut e = OAuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the caller does not hold the introspect scope",
        );
        // A Bearer caller is told which scope it lacks (RFC 6750 §3).
        if matches!(caller, Caller::Token(_)) {
            e.challenge = Some(
                r#"Bearer realm="tessera", error="insufficient_scope", scope="introspect""#.into(),
            );
        }
        return Err(e);
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let how = UseOf {
        ip: crate::http::client_addr(&req),
        user_agent: user_agent(&req),
        via: Via::Introspection,
        client_id: Some(caller.name()),
        refused: None,
    };
    let body = match state.tokens.check(token).await {
        Ok(info) => {
            state.metrics.validation(true);
            state.tokens.usage.record(&Seen::Id(info.token_id), how);
            serde_json::to_string(&Active {
                active: true,
                scope: &info.scopes,
                client_id: &info.username,
                username: &info.username,
                token_type: "Bearer",
                token_kind: info.kind,
                // A replaced token in its grace period stops working before
                // its `exp`: a resource server may cache the answer until then.
                exp: info
                    .revokes_at
                    .map_or(info.exp, |at| info.exp.min(at.unix_timestamp())),
                iat: info.iat,
                nbf: info.nbf,
                sub: info.owner_id,
                aud: &info.audience,
                iss: state.tokens.issuer(),
                jti: &info.jti,
            })
            .map_err(OAuthError::server_error)?
        }
        Err(refusal) => {
            if let Some(e) = OAuthError::no_verdict(&refusal.rejection) {
                return Err(e);
            }
            state.metrics.validation(false);
            refusal.record(&state.tokens.usage, how);
            r#"{"active":false}"#.to_owned()
        }
    };
    Ok(no_store(&mut HttpResponse::Ok())
        .content_type("application/json")
        .body(body))
}

/// RFC 7662 §2.2, for an active token (a struct, not `json!`: this answers
/// at load).
#[derive(serde::Serialize)]
struct Active<'a> {
    active: bool,
    #[serde(serialize_with = "crate::domain::ScopeSet::spaced")]
    scope: &'a crate::domain::ScopeSet,
    client_id: &'a str,
    username: &'a str,
    token_type: &'static str,
    token_kind: crate::domain::TokenKind,
    exp: i64,
    iat: i64,
    nbf: i64,
    sub: uuid::Uuid,
    aud: &'a str,
    iss: &'a str,
    jti: &'a str,
}
