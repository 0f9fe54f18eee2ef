//! Failed sign-ins, counted per account and per address over a sliding window: past the limit,
//! sign-in is refused (even with the right password) until the oldest failure leaves the
//! window. Kept in the process's memory: each server instance counts what it sees, which bounds
//! guessing at the limit times the instances.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// How many failures are allowed within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub per_account: usize,
    pub per_address: usize,
    pub window_seconds: i64,
}

impl Default for ThrottleLimits {
    fn default() -> ThrottleLimits {
        ThrottleLimits {
            per_account: 5,
            per_address: 20,
            window_seconds: 900,
        }
    }
}

/// Keys remembered at most; past it the quietest are forgotten (memory stays bounded under a
/// flood of made-up names).
const MAX_KEYS: usize = 100_000;

pub(crate) struct Throttle {
    limits: ThrottleLimits,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    pub(crate) fn new(limits: ThrottleLimits) -> Throttle {
        Throttle {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: Option<IpAddr>) -> (String, Option<String>) {
        (
            format!("account:{account}"),
            address.map(|a| format!("address:{a}")),
        )
    }

    /// Seconds to wait before trying again, when either count is at its limit.
    pub(crate) fn blocked(&self, account: &str, address: Option<IpAddr>, now: i64) -> Option<i64> {
        let (account_key, address_key) = Throttle::keys(account, address);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, limit) in [
            (Some(account_key), self.limits.per_account),
            (address_key, self.limits.per_address),
        ] {
            let Some(key) = key else { continue };
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| *t <= now - self.limits.window_seconds)
                {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let until = oldest + self.limits.window_seconds - now;
                    wait = Some(wait.map_or(until, |w: i64| w.max(until)));
                }
            }
        }
        wait
    }

    pub(crate) fn failed(&self, account: &str, address: Option<IpAddr>, now: i64) {
        let (account_key, address_key) = Throttle::keys(account, address);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_KEYS {
            let window = self.limits.window_seconds;
            failures.retain(|_, times| times.back().is_some_and(|t| *t > now - window));
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        for key in [Some(account_key), address_key].into_iter().flatten() {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Only the last `limit` failures matter.
            while times.len() > self.limits.per_address.max(self.limits.per_account) {
                times.pop_front();
            }
        }
    }

    /// A successful sign-in clears the account's count (not the address's).
    pub(crate) fn succeeded(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_block_until_the_window_moves_on() {
        let throttle = Throttle::new(ThrottleLimits {
            per_account: 3,
            per_address: 5,
            window_seconds: 100,
        });
        let here: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        for t in 0..3 {
            assert_eq!(throttle.blocked("ana", here, t), None);
            throttle.failed("ana", here, t);
        }
        assert_eq!(throttle.blocked("ana", here, 10), Some(90));
        assert_eq!(
            throttle.blocked("ana", None, 10),
            Some(90),
            "the account, from anywhere"
        );
        // The address: five failures over two accounts block a third.
        throttle.failed("bo", here, 5);
        throttle.failed("bo", here, 6);
        assert_eq!(throttle.blocked("cy", here, 10), Some(90));
        assert_eq!(
            throttle.blocked("cy", Some("10.0.0.2".parse().unwrap()), 10),
            None
        );
        assert_eq!(throttle.blocked("ana", None, 99), Some(1));
        assert_eq!(
            throttle.blocked("ana", None, 100),
            None,
            "the first failure left the window"
        );
        throttle.succeeded("bo");
        assert_eq!(throttle.blocked("bo", None, 10), None);
    }
}
