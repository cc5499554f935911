//! Scenario tests of the mission orchestrator and the mission reads, with
//! hand-computed expectations. Each scenario is written once and runs on the
//! memory store and on PostgreSQL (when `DATABASE_URL` is set).
//!
//! Dates are in June 2026, Europe/Paris (UTC+2, no DST change), with the
//! default slots: a cap of `C` puts posts at 09:00 + i × 12 h / C local time.
// Test helpers unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

mod missions {
    pub mod daily_cap;
    pub mod dry_run;
    pub mod eligibility;
    pub mod fixture;
    pub mod reads;
    pub mod selection;
}

/// One `#[tokio::test]` per scenario (`module::function` under `missions/`)
/// and backend.
macro_rules! scenarios {
    ($($module:ident::$name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::memory_test_store().await else { return };
                    crate::missions::$module::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable (see README: Tests)")]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::postgres_test_store().await else { return };
                    crate::missions::$module::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
    };
}

scenarios!(
    daily_cap::cap_reached_by_existing_posts,
    daily_cap::mission_already_posted_that_day,
    selection::priority_ordering,
    selection::ties_broken_by_exact_phase_end_date_then_job_age,
    selection::phase_boundaries_for_missions_of_1_2_3_7_and_10_days,
    selection::fallback_to_the_nearest_phase,
    eligibility::mission_outside_its_dates,
    eligibility::paused_mission,
    eligibility::date_in_the_past_and_times_never_in_the_past,
    daily_cap::rerun_schedules_nothing,
    daily_cap::two_concurrent_runs_with_cap_3_schedule_exactly_3,
    dry_run::dry_run_writes_nothing_and_matches_the_commit,
    reads::mission_reads,
);
