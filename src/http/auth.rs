//! Bearer authentication for `/api/v1` (RFC 6750).

use std::{cell::Cell, future::Future, pin::Pin, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use super::{client_ip, errors::ApiError};
use crate::{
    domain::{Actor, CallingToken, Context, Policy},
    kinds::PrincipalKind,
    state::AppState,
    token_service::{
        AuthInfo, Rejection,
        history::{Refused, Via},
        usage::{Seen, UseOf},
    },
};

/// The validated caller of an API request. Its use of the token is recorded
/// (in memory, see `token_service::usage`) when the handler is done with it:
/// accepted, or refused for a missing scope.
pub struct Bearer {
    pub info: Arc<AuthInfo>,
    refused: Cell<Option<Refused>>,
    req: HttpRequest,
    state: web::Data<AppState>,
}

/// The `User-Agent` of a request, when it is text.
pub fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

impl Drop for Bearer {
    fn drop(&mut self) {
        self.state.tokens.usage.record(
            &Seen::Id(self.info.token_id),
            UseOf {
                ip: super::client_addr(&self.req),
                user_agent: user_agent(&self.req),
                via: Via::Api,
                client_id: None,
                refused: self.refused.get(),
            },
        );
    }
}

impl Bearer {
    /// First line of every handler: the scope it needs.
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.info.has_scope(scope) {
            Ok(())
        } else {
            self.refused.set(Some(Refused::InsufficientScope));
            Err(ApiError::InsufficientScope(scope))
        }
    }

    /// One of `scopes`. When none is held the first is named, except that a
    /// person who is not an admin (who can never hold `admin:*`) is told the
    /// first other one: the manager's scope on a machine user's routes.
    pub fn require_any(&self, scopes: &[&'static str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.info.has_scope(s)) {
            return Ok(());
        }
        let person = self.info.owner_kind == PrincipalKind::User && !self.info.is_admin();
        let named = scopes
            .iter()
            .find(|s| !person || !s.starts_with("admin:"))
            .unwrap_or(&scopes[0]);
        self.require(named)
    }

    pub fn actor(&self) -> Actor {
        let is_admin =
            self.info.is_admin() && self.info.scopes.iter().any(|s| s.starts_with("admin:"));
        Actor {
            token_id: Some(self.info.token_id),
            ..Actor::principal(
                self.info.owner_id,
                &self.info.username,
                is_admin,
                client_ip(&self.req),
            )
        }
    }

    /// The caller, its token and the policy: what the domain decides by.
    pub fn context(&self, policy: Policy) -> Context {
        Context::new(self.actor(), policy).with_token(CallingToken {
            kind: self.info.kind,
            scopes: self.info.scopes.clone(),
        })
    }
}

/// What an `Authorization` header holds, as far as Bearer auth is concerned.
pub enum BearerHeader<'a> {
    Missing,
    /// Credentials of another scheme (`Basic …`): no Bearer token was sent,
    /// so a 401 names no error (RFC 6750 §3.1).
    OtherScheme,
    /// Not a single well-formed `Bearer <token>` credential.
    Malformed,
    Token(&'a str),
}

pub fn bearer_token(req: &HttpRequest) -> BearerHeader<'_> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return BearerHeader::Missing;
    };
    if values.next().is_some() {
        return BearerHeader::Malformed;
    }
    // `from_utf8` rather than `to_str`, which checks a long JWT byte by byte:
    // the token's characters are checked where it is parsed.
    let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
        return BearerHeader::Malformed;
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerHeader::OtherScheme;
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return BearerHeader::Malformed;
    }
    BearerHeader::Token(token)
}

impl FromRequest for Bearer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered")
                .clone();
            let token = match bearer_token(&req) {
                BearerHeader::Token(t) => t,
                BearerHeader::Missing | BearerHeader::OtherScheme => {
                    return Err(ApiError::NoToken);
                }
                BearerHeader::Malformed => return Err(ApiError::InvalidToken),
            };
            match state.tokens.check(token).await {
                // A token for a registered resource server is for that API only (RFC 8707).
                Ok(info) if info.audience != state.tokens.audience() => {
                    state.metrics.validation(false);
                    Err(ApiError::InvalidToken)
                }
                Ok(info) => {
                    state.metrics.validation(true);
                    Ok(Bearer {
                        info,
                        refused: Cell::new(None),
                        req: req.clone(),
                        state: state.clone(),
                    })
                }
                Err(r) if r.rejection == Rejection::Unavailable => Err(ApiError::Domain(
                    crate::domain::Error::Unavailable(anyhow::anyhow!("token store unavailable")),
                )),
                Err(r) if r.rejection == Rejection::Internal => Err(ApiError::Domain(
                    crate::domain::Error::Internal(anyhow::anyhow!("token lookup failed")),
                )),
                Err(refusal) => {
                    state.metrics.validation(false);
                    refusal.record(
                        &state.tokens.usage,
                        UseOf {
                            ip: super::client_addr(&req),
                            user_agent: user_agent(&req),
                            via: Via::Api,
                            client_id: None,
                            refused: None,
                        },
                    );
                    Err(ApiError::InvalidToken)
                }
            }
        })
    }
}
