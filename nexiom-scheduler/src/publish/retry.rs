//! [`RetryPolicy`]: how many attempts a post gets and how long to wait between
//! them.

use chrono::Duration;

/// At most `max_attempts` attempts; after failed attempt `n` the next one waits
/// `base × 2^(n−1)` with "equal jitter" (a uniformly random delay between half
/// and all of it, so that posts that failed together do not come back together),
/// capped at `max_delay`, and never less than the platform's `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per post, the first one included (default 3).
    pub max_attempts: u32,
    /// Backoff base (default 60 s).
    pub base: Duration,
    /// Cap of the exponential part (default 1 h); a `Retry-After` may exceed it.
    pub max_delay: Duration,
    /// Whether to add jitter (default true; turn off for deterministic tests).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::seconds(60),
            max_delay: Duration::hours(1),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt that follows failed attempt `attempt`
    /// (1-based), honouring `retry_after`.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let factor = 1i32 << exponent;
        let full = self
            .base
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
            .max(Duration::zero());
        let backoff = if self.jitter {
            let half = full / 2;
            let spread = (full - half).num_milliseconds().max(0);
            half + Duration::milliseconds(fastrand::i64(0..=spread))
        } else {
            full
        };
        match retry_after {
            Some(after) if after > backoff => after,
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_without_jitter() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay_after(1, None), Duration::seconds(60));
        assert_eq!(policy.delay_after(2, None), Duration::seconds(120));
        assert_eq!(policy.delay_after(3, None), Duration::seconds(240));
        assert_eq!(policy.delay_after(40, None), Duration::hours(1));
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = (0..200).map(|_| policy.delay_after(2, None)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::seconds(60) && *d <= Duration::seconds(120))
        );
        // 200 draws from a 60-second spread are not all equal.
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        assert!(policy.delay_after(1, Some(Duration::seconds(600))) >= Duration::seconds(600));
        assert!(policy.delay_after(1, Some(Duration::seconds(1))) >= Duration::seconds(30));
    }
}
