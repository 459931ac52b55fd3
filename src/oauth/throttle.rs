//! Failed client authentication at `/oauth2/token`, `/oauth2/introspect` and
//! `/oauth2/revoke`, limited per address (INTERFACE §8).
//!
//! Only failures are counted: a failed check consumes a cell of the
//! address's GCRA bucket (`governor`, keyed by address), and a failure with
//! no cell left is answered 429 instead of 401. Credentials are checked
//! whatever the address's state (a cached read and a digest comparison, no
//! password hashing), so a working client behind the same NAT or proxy as
//! an attacker keeps working, on every instance and after a restart, and no
//! failure from another address ever touches it.
//!
//! Memory is bounded whatever an attacker sends: state is keyed by address
//! only (an IPv6 address by its /64, what one host usually gets), trimmed
//! every minute, and capped.

use std::{
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use crate::config::FailureLimit;

/// Addresses tracked at once; past this (a very wide distributed attack)
/// a failure from an untracked address is refused rather than remembered.
const MAX_TRACKED: usize = 100_000;

type Limiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

pub struct ClientAuthThrottle {
    limiter: Limiter,
    /// One cell's worth of time: the longest an empty bucket stays empty.
    interval: Duration,
    /// When `retain_recent` last ran because the cap was reached (ms since `born`).
    last_forced_trim: AtomicU64,
    born: Instant,
}

/// Whether a failure is still answered 401, or the address is over its limit.
pub enum Verdict {
    Allowed,
    /// 429, with the seconds to wait.
    Throttled(u64),
}

impl ClientAuthThrottle {
    pub fn new(limit: FailureLimit) -> Self {
        let interval = limit.interval();
        let quota = Quota::with_period(interval)
            .expect("a positive interval")
            .allow_burst(limit.count);
        Self {
            limiter: RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
            interval,
            last_forced_trim: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// A check that failed: consumes one cell. `Throttled` when there was none left.
    pub fn failed(&self, key: &IpAddr) -> Verdict {
        if self.limiter.len() >= MAX_TRACKED && !self.trim_if_full() {
            return Verdict::Throttled(seconds(self.interval));
        }
        match self.limiter.check_key(key) {
            Ok(_) => Verdict::Allowed,
            Err(not_until) => Verdict::Throttled(seconds(
                not_until.wait_time_from(self.limiter.clock().now()),
            )),
        }
    }

    /// At the cap: forget addresses back to a fresh state (at most once a
    /// second); whether there is room now.
    fn trim_if_full(&self) -> bool {
        let now_ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_forced_trim.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= 1000
            && self
                .last_forced_trim
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
        }
        self.limiter.len() < MAX_TRACKED
    }

    /// Periodic upkeep: drop addresses whose bucket is full again.
    pub fn trim(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Whole seconds, rounded up, at least one (for `Retry-After`).
fn seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl FailureLimit {
    /// Time for one failure to be forgiven.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.per.seconds.unsigned_abs()) / self.count.get()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limit(count: u32, secs: i64) -> FailureLimit {
        FailureLimit {
            count: NonZeroU32::new(count).unwrap(),
            per: crate::duration::Dur { seconds: secs },
        }
    }

    #[test]
    fn only_the_failing_address_is_throttled_once_its_cells_are_spent() {
        let t = ClientAuthThrottle::new(limit(3, 60));
        let ip = crate::address::limit_key(Some("192.0.2.1"));
        let other = crate::address::limit_key(Some("192.0.2.2"));
        for _ in 0..3 {
            assert!(matches!(t.failed(&ip), Verdict::Allowed));
        }
        // One cell comes back every 20 s.
        assert!(matches!(t.failed(&ip), Verdict::Throttled(s) if (1..=20).contains(&s)));
        assert!(matches!(t.failed(&other), Verdict::Allowed));
    }
}
