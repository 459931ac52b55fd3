//! Time as Tessera stores it: UTC, whole seconds. SQLite keeps timestamps as
//! RFC 3339 text, which sorts in time order only when every value has the same
//! precision, and JWT times are whole seconds anyway.
//!
//! Times from outside (request bodies, query strings) go through
//! [`checked_utc`]: a valid RFC 3339 time such as `9999-12-31T23:30:00-01:00`
//! lies outside the calendar once moved to UTC, and the unchecked conversion
//! panics. Arithmetic on such times uses `checked_add`/`checked_sub`.

use time::{OffsetDateTime, UtcOffset};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

/// `t` in UTC, whole seconds; `None` when that falls outside the years
/// −9999 to 9999.
pub fn checked_utc(t: OffsetDateTime) -> Option<OffsetDateTime> {
    t.checked_to_offset(UtcOffset::UTC)?
        .replace_nanosecond(0)
        .ok()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An RFC 3339 time from outside, in UTC whole seconds; the error says why.
pub fn parse_rfc3339(raw: &str) -> Result<OffsetDateTime, &'static str> {
    let t = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "must be an RFC 3339 timestamp, e.g. 2030-01-31T12:00:00Z")?;
    // Year 0000 at the earliest: RFC 3339 (and so every answer that would
    // show the time) has no years before it.
    checked_utc(t)
        .filter(|t| t.year() >= 0)
        .ok_or("is outside the years 0000 to 9999 in UTC")
}

pub fn from_unix(seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// Serde helpers for RFC 3339 timestamps in JSON.
pub mod serde_rfc3339 {
    pub use time::serde::rfc3339::*;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_past_the_calendar_in_utc_are_refused_not_panicked_on() {
        for raw in ["9999-12-31T23:30:00-01:00", "9999-12-31T23:59:59-23:59"] {
            assert!(parse_rfc3339(raw).is_err(), "{raw}");
        }
        // Year −1 in UTC: no RFC 3339 text could show it.
        assert!(parse_rfc3339("0000-01-01T00:00:00+23:59").is_err());
        let t = parse_rfc3339("0000-01-01T00:00:00-01:00").unwrap();
        assert_eq!(rfc3339(t), "0000-01-01T01:00:00Z");
        let t = parse_rfc3339("2030-01-31T12:00:00.999+02:00").unwrap();
        assert_eq!(rfc3339(t), "2030-01-31T10:00:00Z");
    }

    proptest! {
        #[test]
        fn any_rfc3339_text_parses_or_is_refused(
            y in 0i32..=9999, mo in 0u8..=13, d in 0u8..=32, h in 0u8..=24, mi in 0u8..=60,
            s in 0u8..=60, neg in any::<bool>(), oh in 0u8..=25, om in 0u8..=60,
            junk in ".{0,4}",
        ) {
            let sign = if neg { '-' } else { '+' };
            let raw = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{oh:02}:{om:02}{junk}");
            if let Ok(t) = parse_rfc3339(&raw) {
                prop_assert_eq!(t.offset(), UtcOffset::UTC);
                prop_assert_eq!(t.nanosecond(), 0);
                // Whatever is accepted can be shown again.
                prop_assert!(!rfc3339(t).is_empty(), "{}", raw);
            }
        }

        #[test]
        fn any_text_at_all_parses_or_is_refused(raw in any::<String>()) {
            let _ = parse_rfc3339(&raw);
        }
    }
}
