//! The one way a request body is read: in full, within [`BODY_LIMIT`] bytes
//! and [`BODY_DEADLINE`]. actix times out a request's head but not its body,
//! so a client that declared a length and stopped sending held its
//! connection, and the buffer read so far, for as long as it liked. Every
//! body is also held until its answer is sent ([`hold`]), so that one not
//! read to its end closes the connection instead of being drained.

use std::{
    cell::RefCell,
    convert::Infallible,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::{BodySize, MessageBody},
    dev::{Payload, ServiceRequest},
    error::PayloadError,
    http::header,
    web,
};
use futures_util::{Stream, StreamExt};

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
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err(BodyError::TooLarge),
        _ => tokio::time::timeout(BODY_DEADLINE, collect(&mut payload, limit, declared))
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
    }
}

async fn collect(
    payload: &mut Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<web::Bytes, BodyError> {
    // A declared length is a claim, not bytes: room for it grows as it comes.
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(8 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A request's body, shared between the handler (which may read it) and
/// the answer (which keeps it until sent, see [`hold`]).
#[derive(Clone)]
pub struct Held(Rc<RefCell<Payload>>);

/// Keeps a request's body, if it has one, until its answer has been sent:
/// actix looks, when the answer ends, whether the body was read to its end,
/// and if it was not, whether it is still wanted. Still held, it is, and
/// actix closes the connection after the answer; dropped unread (a handler
/// that refused it, a 404, a throttle), a chunked body would be drained for
/// as long as the client kept sending it, with no deadline.
pub fn hold(req: &mut ServiceRequest) -> Option<Held> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return None;
    }
    let held = Held(Rc::new(RefCell::new(payload)));
    req.set_payload(Payload::Stream {
        payload: Box::pin(held.clone()),
    });
    Some(held)
}

impl Stream for Held {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, holding its request's body (see [`hold`]).
    pub struct Answer<B> {
        #[pin]
        body: B,
        held: Option<Held>,
    }
}

impl<B> Answer<B> {
    pub fn new(body: B, held: Option<Held>) -> Self {
        Self { body, held }
    }
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
        if self.held.is_some() {
            return Err(self);
        }
        self.body
            .try_into_bytes()
            .map_err(|body| Self { body, held: None })
    }
}
