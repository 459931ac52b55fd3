//! Failed client authentication at `/oauth2/token`, `/oauth2/introspect` and
//! `/oauth2/revoke`, limited per address (INTERFACE §8).
//!
//! Only failures are counted: a failed check consumes a cell of the
//! address's GCRA bucket (`governor`, keyed by address). Once the bucket is
//! empty the address is *blocked* until a cell comes back, and while it is,
//! credentials from it are refused with 429 **without being checked**, so
//! guessing stops — except credentials whose secret succeeded recently
//! (kept as its SHA-256 digest in `known_good`): they are checked as usual,
//! so a working client behind the same NAT or proxy as an attacker keeps
//! working, and no failure from another address ever touches it.
//!
//! Memory is bounded whatever an attacker sends: state is keyed by address
//! only (an IPv6 address by its /64, what one host usually gets), trimmed
//! every minute, and capped; the two caches have fixed capacities.

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

use crate::{config::FailureLimit, secret::Digest};

/// Addresses tracked at once; past this (a very wide distributed attack)
/// a failure from an untracked address is refused rather than remembered.
const MAX_TRACKED: usize = 100_000;
/// Secrets remembered as working, and for how long after their last success.
const MAX_KNOWN_GOOD: u64 = 100_000;
const KNOWN_GOOD_FOR: Duration = Duration::from_secs(24 * 3600);

type Limiter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

pub struct ClientAuthThrottle {
    limiter: Limiter,
    /// Addresses whose bucket is empty, and until when.
    blocked: moka::sync::Cache<IpAddr, Instant>,
    known_good: moka::sync::Cache<Digest, ()>,
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
            blocked: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED as u64)
                .time_to_live(interval)
                .build(),
            known_good: moka::sync::Cache::builder()
                .max_capacity(MAX_KNOWN_GOOD)
                .time_to_idle(KNOWN_GOOD_FOR)
                .build(),
            interval,
            last_forced_trim: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Before checking: `Throttled` when the address is over its limit and
    /// the secret is not one that worked recently. Consumes nothing.
    pub fn before_check(&self, key: &IpAddr, secret: &Digest) -> Verdict {
        match self.blocked.get(key) {
            Some(until) if !self.known_good.contains_key(secret) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Verdict::Allowed
                } else {
                    Verdict::Throttled(seconds(left))
                }
            }
            _ => Verdict::Allowed,
        }
    }

    /// A check that succeeded: this secret keeps working from a blocked address.
    pub fn succeeded(&self, secret: Digest) {
        // A read refreshes the idle timer; a write (far dearer) only the
        // first time.
        if self.known_good.get(&secret).is_none() {
            self.known_good.insert(secret, ());
        }
    }

    /// A check that failed: consumes one cell. `Throttled` when there was none left.
    pub fn failed(&self, key: &IpAddr) -> Verdict {
        if self.limiter.len() >= MAX_TRACKED && !self.trim_if_full() {
            return Verdict::Throttled(seconds(self.interval));
        }
        let now = Instant::now();
        match self.limiter.check_key(key) {
            Ok(state) => {
                if state.remaining_burst_capacity() == 0 {
                    self.blocked.insert(*key, now + self.interval);
                }
                Verdict::Allowed
            }
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(self.limiter.clock().now())
                    .max(Duration::from_secs(1));
                self.blocked.insert(*key, now + wait);
                Verdict::Throttled(seconds(wait))
            }
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
        self.blocked.run_pending_tasks();
        self.known_good.run_pending_tasks();
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
    fn only_failures_count_and_known_secrets_pass_a_blocked_address() {
        let t = ClientAuthThrottle::new(limit(3, 60));
        let ip = crate::address::limit_key(Some("192.0.2.1"));
        let other = crate::address::limit_key(Some("192.0.2.2"));
        let good = Digest::of("good");
        let bad = Digest::of("bad");
        t.succeeded(good);
        for _ in 0..3 {
            assert!(matches!(t.before_check(&ip, &bad), Verdict::Allowed));
            assert!(matches!(t.failed(&ip), Verdict::Allowed));
        }
        assert!(matches!(t.before_check(&ip, &bad), Verdict::Throttled(s) if s <= 20));
        assert!(matches!(t.before_check(&ip, &good), Verdict::Allowed));
        assert!(matches!(t.before_check(&other, &bad), Verdict::Allowed));
        assert!(matches!(t.failed(&ip), Verdict::Throttled(_)));
    }
}
