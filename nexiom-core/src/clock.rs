//! [`Clock`]: where every "what time is it" comes from.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time. Production code uses [`SystemClock`]; tests use
/// [`ManualClock`] and move time by hand instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use nexiom_core::{Clock, ManualClock};
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap());
/// clock.advance(Duration::minutes(5));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 3, 29, 0, 5, 0).unwrap());
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding this lock cannot leave the time half-written.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the time.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}
