//! When a worker runs: a fixed interval, or a wall-clock schedule (a cron
//! expression in a time zone).
//!
//! Cron expressions are parsed and evaluated by [`croner`]: five fields
//! (minute, hour, day of month, month, day of week), six with seconds
//! first, or seven with a year last; `L`, `W` and `#` are supported. The time zone is an IANA name
//! (`Europe/Paris`, `UTC`).
//!
//! Daylight saving time follows croner's documented rules (those of Vixie
//! cron and the Open Cron Pattern Specification):
//! - **spring forward**: a fixed-time job (a single value in each of its
//!   second, minute and hour fields) whose time does not exist that day
//!   (02:30 in Paris on the last Sunday of March) runs once, at the first
//!   minute after the gap (03:00 local time); other jobs (a wildcard, a step,
//!   a range or a list in one of those fields, such as `0 2,14 * * *`) skip
//!   the missing slots;
//! - **fall back**: a fixed-time job whose time happens twice (02:30 on the
//!   last Sunday of October) runs once, at the first of the two (02:30 summer
//!   time); wildcard and step jobs run in both passes.
//!
//! After downtime, a cron worker runs once when the runtime starts if a slot
//! passed since its last run, never once per missed slot (see
//! [`WorkerRuntime`](super::WorkerRuntime)).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use thiserror::Error;

/// Why a cadence could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CadenceError {
    /// The cron expression does not parse.
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidExpression {
        /// The expression given.
        expression: String,
        /// What the parser said.
        reason: String,
    },
    /// The time zone is not an IANA name known to the tz database.
    #[error("unknown time zone {0:?} (expected an IANA name such as \"Europe/Paris\")")]
    UnknownZone(String),
    /// An interval must be longer than zero.
    #[error("a worker interval must be longer than zero, got {0}")]
    NonPositiveInterval(Duration),
}

/// A cron expression in a time zone.
#[derive(Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    zone: Tz,
    cron: Arc<Cron>,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("zone", &self.zone.name())
            .finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone.name())
    }
}

impl CronSchedule {
    /// `expression` evaluated in the time zone named `zone`.
    pub fn new(expression: &str, zone: &str) -> Result<Self, CadenceError> {
        let zone = Tz::from_str(zone).map_err(|_| CadenceError::UnknownZone(zone.to_owned()))?;
        Self::in_zone(expression, zone)
    }

    /// `expression` evaluated in `zone`.
    pub fn in_zone(expression: &str, zone: Tz) -> Result<Self, CadenceError> {
        let cron =
            Cron::from_str(expression.trim()).map_err(|err| CadenceError::InvalidExpression {
                expression: expression.to_owned(),
                reason: err.to_string(),
            })?;
        Ok(CronSchedule {
            expression: expression.trim().to_owned(),
            zone,
            cron: Arc::new(cron),
        })
    }

    /// The expression.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first slot strictly after `after` (`None`: the expression never
    /// matches again, e.g. 30 February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The last slot at or before `at` (`None`: none ever).
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// When a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Every so often, counted from the start of the previous run; the first
    /// run is at the runtime's first step.
    Every(Duration),
    /// At the slots of a wall-clock schedule; at the first step only when a
    /// slot passed since the worker's last recorded run.
    Cron(CronSchedule),
}

impl From<Duration> for Cadence {
    fn from(interval: Duration) -> Self {
        Cadence::Every(interval)
    }
}

impl From<CronSchedule> for Cadence {
    fn from(schedule: CronSchedule) -> Self {
        Cadence::Cron(schedule)
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cadence::Every(d) => write!(f, "every {} s", d.num_seconds()),
            Cadence::Cron(c) => write!(f, "cron {c}"),
        }
    }
}

impl Cadence {
    /// A fixed interval (longer than zero).
    pub fn every(interval: Duration) -> Result<Self, CadenceError> {
        if interval <= Duration::zero() {
            return Err(CadenceError::NonPositiveInterval(interval));
        }
        Ok(Cadence::Every(interval))
    }

    /// A cron expression in the time zone named `zone`.
    pub fn cron(expression: &str, zone: &str) -> Result<Self, CadenceError> {
        CronSchedule::new(expression, zone).map(Cadence::Cron)
    }

    /// The seeds' KPI cadence: every 30 minutes.
    pub fn kpis() -> Self {
        Cadence::Every(Duration::minutes(30))
    }

    /// The seeds' clustering cadence: daily at 03:00, Europe/Paris.
    pub fn clustering() -> Self {
        Cadence::Cron(fixed("0 3 * * *", chrono_tz::Europe::Paris))
    }

    /// The seeds' cleanup cadence: Sunday at 02:00, Europe/Paris.
    pub fn cleanup() -> Self {
        Cadence::Cron(fixed("0 2 * * SUN", chrono_tz::Europe::Paris))
    }

    /// The next run after a run that started at `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Every(d) => now.checked_add_signed(*d),
            Cadence::Cron(c) => c.next_after(now),
        }
    }

    /// The longest time between two runs when all is well (a health check
    /// compares the last successful run with it): the interval, or for a
    /// cron schedule the largest gap between its next slots (at most 8
    /// looked at).
    pub fn period(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Cadence::Every(d) => *d,
            Cadence::Cron(c) => {
                let mut longest = Duration::zero();
                let mut at = now;
                for _ in 0..8 {
                    let Some(next) = c.next_after(at) else { break };
                    if at != now {
                        longest = longest.max(next - at);
                    }
                    at = next;
                }
                longest
            }
        }
    }
}

/// A schedule built from a constant the tests below parse.
fn fixed(expression: &str, zone: Tz) -> CronSchedule {
    match CronSchedule::in_zone(expression, zone) {
        Ok(schedule) => schedule,
        // The expressions passed here are constants checked by the tests.
        Err(err) => unreachable!("built-in cron expression: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Paris;

    fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .expect("a wall-clock time that exists")
            .with_timezone(&Utc)
    }

    fn runs(cadence: &Cadence, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(next) = cadence.next_after(at) {
            if next > to {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    #[test]
    fn built_in_cadences_parse_and_fall_where_the_seeds_say() {
        assert_eq!(Cadence::kpis(), Cadence::Every(Duration::minutes(30)));
        let monday = paris(2026, 6, 1, 12, 0);
        assert_eq!(
            Cadence::clustering().next_after(monday),
            Some(paris(2026, 6, 2, 3, 0))
        );
        assert_eq!(
            Cadence::cleanup().next_after(monday),
            Some(paris(2026, 6, 7, 2, 0))
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(
            Cadence::cron("61 * * * *", "UTC"),
            Err(CadenceError::InvalidExpression { .. })
        ));
        assert!(matches!(
            Cadence::cron("0 3 * * *", "Mars/Olympus"),
            Err(CadenceError::UnknownZone(_))
        ));
        assert!(matches!(
            Cadence::every(Duration::zero()),
            Err(CadenceError::NonPositiveInterval(_))
        ));
        let err = Cadence::cron("nonsense", "UTC").unwrap_err().to_string();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn spring_forward_runs_a_missing_time_once_right_after_the_gap() {
        // 29 March 2026: Paris goes from 02:00 CET to 03:00 CEST.
        let job = Cadence::cron("30 2 * * *", "Europe/Paris").unwrap();
        let got = runs(&job, paris(2026, 3, 28, 12, 0), paris(2026, 3, 30, 12, 0));
        assert_eq!(
            got,
            vec![
                Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(), // 03:00 CEST
                Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap(), // 02:30 CEST
            ]
        );
        // An existing time that day is unaffected.
        let three = Cadence::clustering();
        let got = runs(&three, paris(2026, 3, 28, 12, 0), paris(2026, 3, 29, 12, 0));
        assert_eq!(
            got,
            vec![Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()]
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_time_once_at_its_first_pass() {
        // 25 October 2026: Paris goes from 03:00 CEST back to 02:00 CET.
        let job = Cadence::cron("30 2 * * *", "Europe/Paris").unwrap();
        let got = runs(&job, paris(2026, 10, 24, 12, 0), paris(2026, 10, 26, 12, 0));
        assert_eq!(
            got,
            vec![
                Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap(), // 02:30 CEST
                Utc.with_ymd_and_hms(2026, 10, 26, 1, 30, 0).unwrap(), // 02:30 CET
            ]
        );
        // Searching from just after the first pass (a run that took a few
        // seconds) does not find the second pass either.
        let after_first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 5).unwrap();
        assert_eq!(
            job.next_after(after_first),
            Some(Utc.with_ymd_and_hms(2026, 10, 26, 1, 30, 0).unwrap())
        );
    }

    #[test]
    fn last_slot_and_period() {
        let job = CronSchedule::new("0 3 * * *", "Europe/Paris").unwrap();
        let noon = paris(2026, 6, 2, 12, 0);
        assert_eq!(job.last_at_or_before(noon), Some(paris(2026, 6, 2, 3, 0)));
        assert_eq!(
            job.last_at_or_before(paris(2026, 6, 2, 3, 0)),
            Some(paris(2026, 6, 2, 3, 0))
        );
        assert_eq!(Cadence::Cron(job).period(noon), Duration::hours(24));
        assert_eq!(Cadence::cleanup().period(noon), Duration::days(7));
        assert_eq!(Cadence::kpis().period(noon), Duration::minutes(30));
    }
}
