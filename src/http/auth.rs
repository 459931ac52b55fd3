//! Bearer authentication for `/api/v1` (RFC 6750).

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use super::{client_ip, errors::ApiError};
use crate::{
    domain::{Actor, CallingToken, Context, Policy},
    state::AppState,
    token_service::AuthInfo,
};

/// The validated caller of an API request.
pub struct Bearer {
    pub info: Arc<AuthInfo>,
    pub ip: Option<String>,
}

impl Bearer {
    /// First line of every handler: the scope it needs.
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.info.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(scope))
        }
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
                self.ip.clone(),
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
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return BearerHeader::Malformed;
    };
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
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
                BearerHeader::Missing => return Err(ApiError::NoToken),
                BearerHeader::Malformed => return Err(ApiError::InvalidToken),
            };
            let ip = client_ip(&req);
            match state.tokens.authenticate(token, ip.as_deref()).await {
                // A token for a registered resource server is for that API only (RFC 8707).
                Ok(info) if info.audience != state.tokens.audience() => {
                    state.metrics.validation(false);
                    Err(ApiError::InvalidToken)
                }
                Ok(info) => {
                    state.metrics.validation(true);
                    Ok(Bearer { info, ip })
                }
                Err(crate::token_service::Rejection::Unavailable) => Err(ApiError::Domain(
                    crate::domain::Error::Internal(anyhow::anyhow!("token store unavailable")),
                )),
                Err(_) => {
                    state.metrics.validation(false);
                    Err(ApiError::InvalidToken)
                }
            }
        })
    }
}
