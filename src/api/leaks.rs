//! `POST /api/v1/leaks` (INTERFACE §12): no authentication; the answer is
//! the same whatever the strings were.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::support::Problem;
use crate::{
    domain::leaks::{self, Verified},
    http::{
        body::{self, BodyError},
        client_ip,
        errors::ApiError,
    },
    secret::Digest,
    state::AppState,
};

/// Strings per report.
pub const MAX_STRINGS: usize = 100;
/// Bytes per string (the longest token the service accepts).
pub const MAX_STRING: usize = 16 * 1024;
/// The body: every string at its longest, with room for JSON around them.
const BODY_LIMIT: usize = MAX_STRINGS * (MAX_STRING + 16) + 1024;

/// No `Debug`: the strings are live secrets until they are revoked.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// Up to 100 strings, each at most 16 KiB: tokens or client secrets found in the wild.
    pub tokens: Vec<String>,
}

/// Reports leaked tokens or client secrets. Every live token among them is
/// revoked and every live client secret removed, and their owners are told;
/// the answer is 202 whatever was found. Limited per address (429).
#[utoipa::path(
    operation_id = "report_leaks",
    tag = "leaks",
    request_body = LeakReport,
    security(()),
    responses(
        (status = 202, description = "Received; says nothing about what was found"),
        (status = 400, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 429, body = Problem),
    )
)]
#[post("/leaks")]
pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    state
        .leak_reports
        .check(ip.as_deref())
        .map_err(ApiError::TooManyRequests)?;
    if !super::support::is_json(&req) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ));
    }
    // Read after the throttle, not before it as the shared extractor would.
    let body = body::read(&req, payload.into_inner(), BODY_LIMIT)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => {
                ApiError::PayloadTooLarge(format!("a leak report is limited to {BODY_LIMIT} bytes"))
            }
            other => ApiError::from(other),
        })?;
    let report: LeakReport = super::support::from_json(&body, true)?;
    if report.tokens.len() > MAX_STRINGS {
        return Err(ApiError::InvalidField {
            field: "tokens".into(),
            message: format!("at most {MAX_STRINGS} strings per report"),
        });
    }
    if let Some(i) = report.tokens.iter().position(|t| t.len() > MAX_STRING) {
        return Err(ApiError::PayloadTooLarge(format!(
            "tokens[{i}]: each string is limited to {MAX_STRING} bytes"
        )));
    }
    let received = report.tokens.len();
    // Every string is digested and every one that parses as a JWT is
    // verified, found or not; both lookups always run.
    let mut verified = Vec::new();
    let mut digests = Vec::with_capacity(received);
    for text in report.tokens.iter().map(|t| t.trim()) {
        let digest = Digest::of(text);
        // Through the token service: a kid unknown here (a key made a moment
        // ago elsewhere) reloads the keys instead of passing for garbage.
        if let Ok(claims) = state.tokens.verify(text).await {
            verified.push(Verified {
                jti: claims.jti,
                digest,
            });
        }
        digests.push(digest);
    }
    let outcome = leaks::report(
        &state.db,
        ip,
        verified,
        digests,
        state.settings.smtp_url.is_some(),
    )
    .await?;
    tracing::info!(
        tokens = outcome.tokens,
        secrets = outcome.secrets,
        "leak report"
    );
    Ok(HttpResponse::Accepted().json(json!({ "received": received })))
}
