//! HTTP wiring: routes, body limits, metrics, and the helpers every handler
//! shares. Errors become responses in `errors`.

pub mod auth;
pub mod errors;
#[cfg(test)]
mod input_props;

use std::time::Instant;

use actix_web::{
    HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::{JsonPayloadError, QueryPayloadError},
    http::header,
    middleware::Next,
    web,
};

use crate::app::AppState;
use errors::ApiError;

/// Request bodies above this are refused with 413 (INTERFACE §7).
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .configure(crate::oauth::configure)
        .configure(crate::api::configure)
        .configure(crate::web::configure)
        .default_service(web::to(not_found));
}

/// Unknown URLs: problem+json for programs, an HTML page for people.
async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let path = req.path();
    if path.starts_with("/api/")
        || path.starts_with("/oauth2/")
        || path.starts_with("/.well-known/")
    {
        ApiError::NoSuchRoute(format!("{} {path}", req.method())).error_response()
    } else {
        errors::WebError::NotFound.error_response()
    }
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
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

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

/// The peer address. Tessera does not trust `X-Forwarded-For` by default.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.db.ping().await {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database unavailable\n")
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
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
