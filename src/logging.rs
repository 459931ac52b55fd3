//! The server's log: plain text on standard error, filtered by `TESSERA_LOG`.

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    EnvFilter,
    filter::{LevelFilter, Targets},
    layer::{Context, Layer, SubscriberExt},
    util::SubscriberInitExt,
};

/// Where client connection errors are logged, at DEBUG.
pub const CLIENT_ERRORS: &str = "tessera::http::client";

/// Installs the log for `tessera serve`.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    // sea-orm's TRACE spans carry each statement's bound values, password
    // hashes among them (the statements alone are sqlx's, at DEBUG): a cap
    // that only removes, whatever `TESSERA_LOG` names.
    let sea_orm_cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("sea_orm", LevelFilter::DEBUG);
    // Colours only on a terminal: a log file or journal gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(filter)
        .with(sea_orm_cap)
        .with(ClientErrors)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(terminal),
        )
        .init();
}

/// actix-http logs each connection it drops for the client's fault (a request
/// it cannot parse, a reset, a body cut short) at ERROR as "stream error: …".
/// Anyone can cause those, and an ERROR line should mean the server needs
/// attention, so they are logged at DEBUG under [`CLIENT_ERRORS`] instead.
/// actix-http's own failures have messages of their own and stay as they are.
struct ClientErrors;

const DISPATCHER: &str = "actix_http::h1::dispatcher";
const STREAM_ERROR: &str = "stream error: ";

impl<S: Subscriber> Layer<S> for ClientErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || meta.target() != DISPATCHER {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match message.0.strip_prefix(STREAM_ERROR) {
            Some(error) => {
                tracing::debug!(target: CLIENT_ERRORS, "connection closed: {error}");
                false
            }
            None => true,
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
