//! Grace periods: how long an old token or client secret keeps working
//! after it was replaced.

use time::{Duration, OffsetDateTime};

use super::{Error, clock};

/// The longest grace period of a regenerated token or a replaced client
/// secret: 72 hours.
pub const MAX_GRACE_SECONDS: i64 = 72 * 3600;

/// Checks a grace period in seconds, naming `field` when it is out of range.
pub fn check_grace(seconds: i64, field: &'static str) -> Result<i64, Error> {
    if (0..=MAX_GRACE_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Error::invalid(
            field,
            format!("must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS} (72 hours)"),
        ))
    }
}

/// When a grace period of `seconds` starting now ends. Times are stored in
/// whole seconds, so the end is rounded up: the old value works for the
/// whole period, never a fraction of a second less. No grace ends now.
pub fn ends_after(seconds: i64) -> OffsetDateTime {
    if seconds == 0 {
        return clock::now();
    }
    let now = OffsetDateTime::now_utc();
    let whole = now.replace_nanosecond(0).expect("0 is a valid nanosecond");
    let up = if now == whole {
        whole
    } else {
        whole + Duration::SECOND
    };
    up + Duration::seconds(seconds)
}
