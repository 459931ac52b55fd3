//! Grace periods: how long an old token or client secret keeps working
//! after it was replaced.

use super::Error;

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
