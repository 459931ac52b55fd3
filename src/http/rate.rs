//! A plain per-address rate limit (GCRA through `governor`, keyed as the
//! client-authentication throttle keys addresses), for endpoints anyone may
//! call, such as leak reports.

use std::time::Duration;

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};

use crate::config::FailureLimit;

/// Addresses tracked at once before stale ones are trimmed.
const MAX_TRACKED: usize = 100_000;

type Limiter =
    RateLimiter<std::net::IpAddr, DefaultKeyedStateStore<std::net::IpAddr>, DefaultClock>;

pub struct PerAddress {
    limiter: Limiter,
    clock: DefaultClock,
}

impl PerAddress {
    pub fn new(limit: FailureLimit) -> Self {
        let quota = Quota::with_period(limit.interval())
            .expect("a positive interval")
            .allow_burst(limit.count);
        Self {
            limiter: RateLimiter::dashmap(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the address's allowance; `Err` holds the
    /// seconds to wait (for `Retry-After`).
    pub fn check(&self, ip: Option<&str>) -> Result<(), u64> {
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
        }
        let key = crate::address::limit_key(ip);
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(self.clock.now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}
