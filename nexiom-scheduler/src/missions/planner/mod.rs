//! The orchestrator's decision logic, in one pure function over a day's inputs
//! ([`plan_day`]) and its repetition over a range of days ([`simulate_days`]).
//! Nothing here reads a clock or a store: the caller passes `now` and the
//! [`OrchestrationSnapshot`](nexiom_core::OrchestrationSnapshot), so every rule
//! is testable with plain values.
//!
//! - `day` — [`DayRequest`], [`plan_day`] and [`simulate_days`].
//! - `jobs` — the ready-job [`JobPool`] and a mission's [`expected_phase`].
//! - `slots` — [`SlotConfig`], the local day's bounds ([`local_day`]) and the
//!   choice of distinct publish times.
//! - `summary` — what a plan reports: [`DayPlan`], [`OrchestrationSummary`],
//!   scheduled and skipped missions.

mod day;
mod jobs;
mod slots;
mod summary;

pub use day::{DayRequest, plan_day, simulate_days};
pub use jobs::{JobPool, expected_phase};
pub use slots::{SlotConfig, local_day};
pub use summary::{DayPlan, OrchestrationSummary, ScheduledItem, SkipReason, SkippedMission};

/// Dates and instants shared by the planner's unit tests.
#[cfg(test)]
mod test_dates {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};

    pub(super) fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    pub(super) fn utc(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
    }
}
