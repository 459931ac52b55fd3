//! The one place where errors become HTTP responses:
//! - `ApiError` for `/api/v1`: RFC 9457 problem+json, RFC 6750 challenges;
//! - `OAuthError` for `/oauth2/*`: RFC 6749 `{error, error_description}`.
//!
//! A 500 says nothing to the client; the cause goes to the log.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde_json::json;

use super::body::BodyError;
use crate::domain;

/// `Retry-After` of a 503 while the database cannot serve, in seconds.
const OUTAGE_RETRY_AFTER: u64 = 5;

fn log_outage(cause: &anyhow::Error) {
    tracing::error!(error = %format!("{cause:#}"), "database unavailable");
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] domain::Error),
    /// No token at all: a bare challenge (RFC 6750 §3.1).
    #[error("authentication required")]
    NoToken,
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A validation error found at the edge, naming a field by its JSON path.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// No route matches the method and path: distinct from a missing resource.
    #[error("no such route: {0}")]
    NoSuchRoute(String),
    /// The path names a route, but not for this method (RFC 9110 §15.5.6);
    /// the methods it has, for `Allow`.
    #[error("{method} is not allowed here (allowed: {allow})")]
    MethodNotAllowed { method: String, allow: String },
    /// Over a per-address limit; the seconds to wait.
    #[error("too many requests from this address: retry in {0} s")]
    TooManyRequests(u64),
    /// The body did not arrive in time (RFC 9110 §15.5.9).
    #[error("{0}")]
    RequestTimeout(String),
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => Self::PayloadTooLarge(e.to_string()),
            BodyError::TimedOut => Self::RequestTimeout(e.to_string()),
            BodyError::Unreadable => Self::BadRequest(e.to_string()),
        }
    }
}

impl ApiError {
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use domain::Error as E;
        match self {
            Self::Domain(E::Invalid { .. }) | Self::InvalidField { .. } => {
                (StatusCode::BAD_REQUEST, "validation", "Invalid request")
            }
            Self::Domain(E::Conflict(_)) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Domain(E::NotFound(_)) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Domain(E::Forbidden(_)) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::Domain(E::ClientRefused) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            }
            Self::Domain(E::Internal(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            Self::Domain(E::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::NoToken => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid-token", "Invalid token"),
            Self::InsufficientScope(_) => (
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
            ),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::NoSuchRoute(_) => (StatusCode::NOT_FOUND, "no-such-route", "No such route"),
            Self::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Self::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, kind, title) = self.kind();
        let detail = match self {
            Self::Domain(domain::Error::Internal(cause)) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                "The server could not complete the request.".to_owned()
            }
            Self::Domain(domain::Error::Unavailable(cause)) => {
                log_outage(cause);
                "The database is unavailable just now: try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("https://tessera.dev/problems/{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        match self {
            Self::Domain(domain::Error::Invalid { field, .. }) => body["field"] = json!(field),
            Self::InvalidField { field, .. } => body["field"] = json!(field),
            _ => {}
        }
        let mut res = HttpResponse::build(status);
        res.content_type("application/problem+json");
        match self {
            Self::NoToken => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="tessera""#));
            }
            Self::InvalidToken => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    r#"Bearer realm="tessera", error="invalid_token", error_description="The access token is invalid, expired or revoked""#,
                ));
            }
            Self::InsufficientScope(scope) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        r#"Bearer realm="tessera", error="insufficient_scope", scope="{scope}""#
                    ),
                ));
            }
            Self::TooManyRequests(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            Self::Domain(domain::Error::Unavailable(_)) => {
                res.insert_header((header::RETRY_AFTER, OUTAGE_RETRY_AFTER));
            }
            Self::MethodNotAllowed { allow, .. } => {
                res.insert_header((header::ALLOW, allow.as_str()));
            }

            _ => {}
        }
        res.body(body.to_string())
    }
}

/// RFC 6749 §5.2 (and RFC 7662/7009, which reuse it).
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// `WWW-Authenticate` to send with a 401/403.
    pub challenge: Option<String>,
    /// `Retry-After` (seconds) to send with a 429 or 503.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`; `basic` when the client tried HTTP Basic.
    pub fn invalid_client(basic: bool) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        if basic {
            e.challenge = Some(r#"Basic realm="tessera", charset="UTF-8""#.into());
        }
        e
    }

    /// 429 `invalid_client` (RFC 6585): this address failed client
    /// authentication too often, so a failure from it is answered this way
    /// until a failure is forgiven (a working client's request still
    /// succeeds).
    pub fn throttled(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            format!(
                "too many failed client authentications from this address: try again in {retry_after_secs} seconds"
            ),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// A body not read: 413, 408 or 400, in the OAuth shape.
    pub fn body(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
        };
        Self::new(status, "invalid_request", e.to_string())
    }

    /// 503 `temporarily_unavailable`: the database cannot serve now.
    pub fn unavailable(cause: &anyhow::Error) -> Self {
        log_outage(cause);
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service is temporarily unavailable: try again shortly",
        );
        e.retry_after = Some(OUTAGE_RETRY_AFTER);
        e
    }

    /// A token that got no verdict (its record or keys could not be read):
    /// 503 when the database is out, 500 otherwise; `None` for a verdict.
    pub fn no_verdict(rejection: &crate::token_service::Rejection) -> Option<Self> {
        use crate::token_service::Rejection;
        match rejection {
            Rejection::Unavailable => Some(Self::unavailable(&anyhow::anyhow!(
                "token store unavailable"
            ))),
            Rejection::Internal => Some(Self::server_error("token lookup failed")),
            _ => None,
        }
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error at an OAuth endpoint");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }
}

/// Domain refusals at the token endpoint, in RFC 6749 §5.2 terms.
impl From<domain::Error> for OAuthError {
    fn from(e: domain::Error) -> Self {
        match e {
            domain::Error::Invalid {
                field: "scope",
                message,
            } => Self::new(StatusCode::BAD_REQUEST, "invalid_scope", message),
            // RFC 8707 §2: an unknown resource, or a scope it does not own.
            domain::Error::Invalid {
                field: "resource",
                message,
            } => Self::new(StatusCode::BAD_REQUEST, "invalid_target", message),
            domain::Error::Forbidden(message) => {
                Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", message)
            }
            domain::Error::ClientRefused => Self::invalid_client(false),
            domain::Error::Internal(cause) => Self::server_error(format!("{cause:#}")),
            domain::Error::Unavailable(cause) => Self::unavailable(&cause),
            other => Self::invalid_request(other.to_string()),
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.content_type("application/json")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if let Some(challenge) = &self.challenge {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds));
        }
        res.body(json!({"error": self.code, "error_description": self.description}).to_string())
    }
}

/// Errors of the browser pages: an HTML page that says what went wrong in
/// words (and, for a missing session, a redirect to the sign-in page).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Domain(#[from] domain::Error),
    /// No session: to the sign-in page, which returns to `next` (a
    /// same-site path) after signing in. `unsaved`: a form was sent, and
    /// the sign-in page says it was not saved.
    #[error("sign in to continue")]
    SignInRequired { next: Option<String>, unsaved: bool },
    #[error(
        "This form has expired or did not come from this site (its security token is missing or wrong). Go back, reload the page and try again."
    )]
    Csrf,
    #[error("This page is for administrators only.")]
    AdminOnly,
    #[error("There is no such page.")]
    NotFound,
    #[error(
        "This form is larger than the server accepts (64 KiB). Shorten what you entered and try again."
    )]
    PayloadTooLarge,
    #[error("This form did not arrive in time. Try again.")]
    RequestTimeout,
    #[error(
        "This form was not sent as a web form (application/x-www-form-urlencoded). Use the form on the page."
    )]
    UnsupportedMediaType,
    #[error("{0}")]
    BadRequest(String),
    /// Single sign-on did not complete (the provider, the callback), in words.
    #[error("{0}")]
    SignInFailed(String),
    /// Single sign-on did not complete because the provider could not be
    /// reached or answered nonsense: its failure, not the browser's.
    #[error("{0}")]
    SignInUpstream(String),
    /// The provider vouched for the person, but Tessera refuses them.
    #[error("{0}")]
    SignInRefused(String),
}

impl WebError {
    fn kind(&self) -> (StatusCode, &'static str) {
        use domain::Error as E;
        match self {
            Self::Domain(E::Invalid { .. }) | Self::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "That did not work")
            }
            Self::Domain(E::Conflict(_)) => (StatusCode::CONFLICT, "That did not work"),
            Self::Domain(E::NotFound(_)) | Self::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            Self::Domain(E::Forbidden(_) | E::ClientRefused) | Self::AdminOnly => {
                (StatusCode::FORBIDDEN, "Not allowed")
            }
            Self::Csrf => (StatusCode::FORBIDDEN, "Form refused"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Form too large"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "Form not received"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Form refused"),
            Self::Domain(E::Internal(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
            }
            Self::Domain(E::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly")
            }
            Self::SignInRequired { .. } => (StatusCode::SEE_OTHER, "Sign in"),
            Self::SignInFailed(_) => (StatusCode::BAD_REQUEST, "Sign-in did not work"),
            Self::SignInUpstream(_) => (StatusCode::BAD_GATEWAY, "Sign-in did not work"),
            Self::SignInRefused(_) => (StatusCode::FORBIDDEN, "Sign-in refused"),
        }
    }

    /// What the page says, in words.
    pub fn message(&self) -> String {
        match self {
            Self::Domain(domain::Error::Internal(cause)) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error on a web page");
                "The server could not complete the request. Try again; if it keeps happening, the server log has the cause.".to_owned()
            }
            Self::Domain(domain::Error::Unavailable(cause)) => {
                log_outage(cause);
                "The server cannot reach its database just now. Try again in a few seconds."
                    .to_owned()
            }
            Self::Domain(domain::Error::Invalid { field, message }) => {
                format!("{}: {message}", field.replace('_', " "))
            }
            Self::Domain(domain::Error::NotFound(what)) => format!("There is no such {what}."),
            other => other.to_string(),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.kind().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, title) = self.kind();
        if let Self::SignInRequired { next, unsaved } = self {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(path) = next {
                query.append_pair("next", path);
            }
            if *unsaved {
                query.append_pair("notice", "unsaved");
            }
            let to = match query.finish() {
                q if q.is_empty() => "/login".to_owned(),
                q => format!("/login?{q}"),
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let message = self.message();
        let mut res = super::page::error_page(status, title, &message);
        if let Self::Domain(domain::Error::Unavailable(_)) = self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(OUTAGE_RETRY_AFTER),
            );
        }
        // The web layer re-renders this with the navigation when signed in.
        res.extensions_mut().insert(super::page::ErrorShown {
            status,
            title,
            message,
        });
        res
    }
}
