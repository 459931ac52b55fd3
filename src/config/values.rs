//! Parsers for setting values that are more than a word: durations and their
//! lists, `COUNT/DUR` limits and the SMTP URL. Each error is one line.

use std::{fmt, str::FromStr};

use anyhow::bail;

use crate::duration::Dur;

/// A duration setting: `raw`, or `default` when unset; a bad value is one
/// line naming the setting.
pub(super) fn dur_setting(
    raw: Option<String>,
    default: &str,
    what: &str,
    var: &str,
) -> anyhow::Result<Dur> {
    let raw = raw.unwrap_or_else(|| default.to_owned());
    raw.parse::<Dur>()
        .map_err(|e| anyhow::anyhow!("invalid {what} ({var}) {raw:?}: {e}"))
}

/// `DUR,DUR,…` (at least one).
pub(super) fn dur_list(raw: &str) -> Result<Vec<Dur>, String> {
    raw.split(',')
        .map(|part| part.parse::<Dur>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e} (a comma-separated list such as 14d,7d,1d)"))
}

/// An SMTP URL Tessera can use; the message never repeats it (it may hold a
/// password).
pub(super) fn check_smtp_url(raw: &str) -> anyhow::Result<()> {
    const SHAPE: &str =
        "expected smtp://[user:pass@]host[:port] or smtps://[user:pass@]host[:port]";
    let url = url::Url::parse(raw)
        .map_err(|e| anyhow::anyhow!("invalid SMTP URL (TESSERA_SMTP_URL): {e}; {SHAPE}"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none_or(str::is_empty) {
        bail!("invalid SMTP URL (TESSERA_SMTP_URL): {SHAPE}");
    }
    // Half a credential would be dropped, and mail sent without signing in.
    match (url.username().is_empty(), url.password().is_none()) {
        (true, false) => {
            bail!("invalid SMTP URL (TESSERA_SMTP_URL): a password without a user name; {SHAPE}")
        }
        (false, true) => {
            bail!("invalid SMTP URL (TESSERA_SMTP_URL): a user name without a password; {SHAPE}")
        }
        _ => Ok(()),
    }
}

/// A number of events per duration, written `COUNT/DUR` (`30/5m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureLimit {
    pub count: std::num::NonZeroU32,
    pub per: Dur,
}

impl FromStr for FailureLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const SHAPE: &str = "expected COUNT/DUR, e.g. 30/5m";
        let (count, per) = s.trim().split_once('/').ok_or(SHAPE)?;
        let count: u32 = count.trim().parse().map_err(|_| SHAPE)?;
        let count = std::num::NonZeroU32::new(count)
            .filter(|c| c.get() <= 1_000_000)
            .ok_or("COUNT must be between 1 and 1000000")?;
        let per: Dur = per.parse()?;
        Ok(Self { count, per })
    }
}

impl fmt::Display for FailureLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per)
    }
}
