//! What every handler shares over HTTP: body limits and extractor errors,
//! the client's address, Bearer authentication (`auth`), the request
//! middleware, and the one mapping of errors to responses and error pages
//! (`errors`). Routes are registered at start-up (`crate::app`).

pub mod auth;
pub mod errors;
pub mod page;
pub mod rate;

use std::time::Instant;

use actix_web::{
    HttpRequest,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::{JsonPayloadError, QueryPayloadError},
    http::header,
    middleware::Next,
    web,
};

use crate::state::AppState;
use errors::ApiError;

/// Request bodies above this are refused with 413 (INTERFACE §7).
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge(format!("request bodies are limited to {BODY_LIMIT} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("invalid request body: {other}")),
    };
    e.into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

/// The peer address. Tessera does not trust `X-Forwarded-For` by default.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// Counts and times every request by its route pattern (not its path, which
/// would carry ids) and a known method, and adds headers every response
/// should have. See `crate::metrics` for why labels come from closed sets.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    if let Some(state) = state {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| crate::metrics::UNMATCHED.to_owned());
        state.metrics.request(
            &method,
            &route,
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}
