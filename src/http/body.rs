//! The one way a request body is read: in full, within [`BODY_LIMIT`] bytes
//! and [`BODY_DEADLINE`]. actix times out a request's head but not its body,
//! so a client that declared a length and stopped sending held its
//! connection, and the buffer read so far, for as long as it liked.

use std::{convert::Infallible, future::Future, pin::Pin, time::Duration};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, web};

/// Request bodies above this are refused with 413 (INTERFACE §7).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a whole body may take to arrive. 64 KiB at the slowest link
/// still in use takes a few seconds.
pub const BODY_DEADLINE: Duration = Duration::from_secs(20);

/// Why a body was not read; each layer answers it in its own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`BODY_LIMIT`]: 413.
    TooLarge,
    /// Not all there within [`BODY_DEADLINE`]: 408.
    TimedOut,
    /// Cut short or malformed (chunked encoding, say): 400.
    Unreadable,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => write!(f, "request bodies are limited to {BODY_LIMIT} bytes"),
            Self::TimedOut => write!(
                f,
                "the request body did not arrive within {} seconds",
                BODY_DEADLINE.as_secs()
            ),
            Self::Unreadable => f.write_str("the request body ended early or is malformed"),
        }
    }
}

/// A request body, or why it was not read (never an extractor error: the
/// handler decides when to look, e.g. after its scope check).
pub struct Body(pub Result<web::Bytes, BodyError>);

impl FromRequest for Body {
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Infallible>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            // actix closes the connection after the answer when a body with
            // a declared length was not read to its end.
            let read = match tokio::time::timeout(BODY_DEADLINE, bytes).await {
                Err(_) => Err(BodyError::TimedOut),
                Ok(Ok(bytes)) => Ok(bytes),
                Ok(Err(e))
                    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    Err(BodyError::TooLarge)
                }
                Ok(Err(_)) => Err(BodyError::Unreadable),
            };
            Ok(Self(read))
        })
    }
}
