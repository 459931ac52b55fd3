//! Time as Tessera stores it: UTC, whole seconds. SQLite keeps timestamps as
//! RFC 3339 text, which sorts in time order only when every value has the same
//! precision, and JWT times are whole seconds anyway.

use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

pub fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn from_unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// Serde helpers for RFC 3339 timestamps in JSON.
pub mod serde_rfc3339 {
    pub use time::serde::rfc3339::*;
}
