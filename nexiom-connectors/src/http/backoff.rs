//! [`Backoff`]: exponential backoff with jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff: `base * 2^(attempt-1)`, capped at `max`, with "equal
/// jitter" (a random point in the upper half) so that many workers retrying the
/// same platform do not stampede.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Whether to add jitter.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
            jitter: true,
        }
    }
}

impl Backoff {
    /// No delay at all (tests).
    pub fn none() -> Self {
        Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        }
    }

    /// The delay before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        if !self.jitter || raw.is_zero() {
            return raw;
        }
        let half = raw / 2;
        let mut h = RandomState::new().build_hasher();
        h.write_u32(attempt);
        let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_millis(h.finish() % span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: false,
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(500));
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(500));
        let j = Backoff { jitter: true, ..b };
        for attempt in 1..6 {
            let d = j.delay(attempt);
            let raw = b.delay(attempt);
            assert!(
                d >= raw / 2 && d <= raw,
                "{d:?} outside [{:?}, {raw:?}]",
                raw / 2
            );
        }
        assert_eq!(Backoff::none().delay(3), Duration::ZERO);
    }
}
