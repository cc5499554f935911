//! End-to-end tests of the inbound pipeline, each run on memory and on
//! PostgreSQL (skipped without `DATABASE_URL`, required under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod inbound {
    pub mod fixture;
    pub mod tests;
}

/// One `#[tokio::test]` per test function and backend.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::inbound::tests::$name(nexiom_storage::conformance::memory_test_store).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable (see README: Tests)")]
                async fn $name() {
                    crate::inbound::tests::$name(nexiom_storage::conformance::postgres_test_store).await;
                }
            )+
        }
    };
}

on_both_backends!(
    replaying_the_fixture_shuffled_from_four_tasks_equals_one_clean_pass,
    triage_decides_each_item_once_and_escalates_generator_errors,
    ai_control_off_sends_nothing_and_escalations_are_recorded,
    auto_replies_are_sent_once_each_even_concurrently,
    dry_run_shows_changes_and_writes_nothing,
    settings_overview_reports_presence_never_values,
    webhooks_are_verified_then_stored_once,
);
