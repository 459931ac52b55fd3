//! The one way a request body is read: in full, within [`BODY_LIMIT`] bytes
//! and [`BODY_DEADLINE`]. actix times out a request's head but not its body,
//! so a client that declared a length and stopped sending held its
//! connection, and the buffer read so far, for as long as it liked.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::{BodySize, MessageBody},
    dev::{Payload, ServiceResponse},
    http::header,
    web,
};
use futures_util::StreamExt;

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
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { Ok(Self(read(&req, payload, BODY_LIMIT).await)) })
    }
}

/// Reads `payload` to its end, within `limit` bytes and [`BODY_DEADLINE`].
///
/// A body not read to its end is kept (see [`hold_unread`]) until the answer
/// is sent, so that actix closes the connection after it: the rest of a
/// chunked body dropped half way would otherwise be drained for as long as
/// the client kept sending it, with no deadline.
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let read = match declared {
        Some(length) if length > limit => Err(BodyError::TooLarge),
        _ => tokio::time::timeout(BODY_DEADLINE, collect(&mut payload, limit, declared))
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
    };
    if read.is_err() {
        req.extensions_mut().insert(Unread { _payload: payload });
    }
    read
}

async fn collect(
    payload: &mut Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<web::Bytes, BodyError> {
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The rest of a body that was not read, carried from the request to the
/// body of its answer by [`hold_unread`].
pub struct Unread {
    _payload: Payload,
}

pin_project_lite::pin_project! {
    /// An answer's body, holding the unread rest of its request's body (if
    /// any) until it has been sent: actix looks whether that rest is still
    /// wanted when the answer ends, and closes the connection if it is.
    pub struct Answer<B> {
        #[pin]
        body: B,
        unread: Option<Unread>,
    }
}

/// Gives an answer's body the unread rest of its request's body, if any.
pub fn hold_unread<B: MessageBody>(res: ServiceResponse<B>) -> ServiceResponse<Answer<B>> {
    let unread = res.request().extensions_mut().remove::<Unread>();
    res.map_body(|_, body| Answer { body, unread })
}

impl<B: MessageBody> MessageBody for Answer<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }

    fn try_into_bytes(self) -> Result<web::Bytes, Self> {
        // As bytes, the body would drop what it holds before being sent.
        if self.unread.is_some() {
            return Err(self);
        }
        self.body
            .try_into_bytes()
            .map_err(|body| Self { body, unread: None })
    }
}
