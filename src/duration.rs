//! Durations as people write them on the command line and in settings:
//! a number and `s`, `m`, `h`, `d` or `w`, at most 100 years.

use std::{fmt, str::FromStr};

/// A duration as written on the command line: a number and `s`, `m`, `h`, `d` or `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur {
    pub seconds: i64,
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err("expected a number followed by s, m, h, d or w (e.g. 30m, 90d)".into());
        }
        let n: i64 = digits.parse().map_err(|_| "number too large".to_owned())?;
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err("expected a number followed by s, m, h, d or w (e.g. 30m, 90d)".into());
            }
        };
        let seconds = n
            .checked_mul(factor)
            .filter(|s| *s <= 100 * 365 * 86_400)
            .ok_or("duration too large")?;
        if seconds == 0 {
            return Err("duration must be positive".into());
        }
        Ok(Self { seconds })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}
