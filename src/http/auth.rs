//! Bearer authentication for `/api/v1` (RFC 6750).

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use super::{client_ip, errors::ApiError};
use crate::{
    app::AppState,
    domain::{Actor, PrincipalRef},
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
        Actor {
            principal: Some(PrincipalRef {
                id: self.info.owner_id,
                username: self.info.username.clone(),
            }),
            is_admin: self.info.is_admin()
                && self.info.scopes.iter().any(|s| s.starts_with("admin:")),
            ip: self.ip.clone(),
            token_id: Some(self.info.token_id),
        }
    }
}

/// An Authorization header that is not one well-formed Bearer credential.
#[derive(Debug)]
pub struct NotBearer;

/// The token of an `Authorization: Bearer …` header: `Ok(None)` when there is
/// no Authorization header, `Err` when it is not a Bearer credential.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, NotBearer> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(NotBearer);
    }
    let value = value.to_str().map_err(|_| NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(NotBearer);
    }
    Ok(Some(token))
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
                Ok(Some(t)) => t,
                Ok(None) => return Err(ApiError::NoToken),
                Err(NotBearer) => return Err(ApiError::InvalidToken),
            };
            let ip = client_ip(&req);
            match state.tokens.authenticate(token, ip.as_deref()).await {
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
