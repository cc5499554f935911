//! The quickstart story (`examples/story/mod.rs`) end to end, on memory and on
//! Postgres (when `DATABASE_URL` is set), asserting its outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/story/mod.rs"]
mod story;

use nexiom::storage::conformance::{TestStore, memory_test_store, postgres_test_store};

async fn check(test_store: Option<TestStore>) {
    let Some(test_store) = test_store else { return };
    let o = story::run_story(test_store.store(), false).await.unwrap();

    // Missions → posts; series; publishing with one throttled attempt.
    assert_eq!(o.mission_posts_scheduled, 1, "one post per mission per day");
    assert!(o.series_created);
    assert_eq!(o.mission_post_attempts, 2, "throttled once, then published");
    assert_eq!(
        o.posts_published, 2,
        "the mission post and the first series occurrence"
    );
    // Polling: the comment on the mission post is stored once, triaged and answered.
    assert!(o.comment_polling);
    assert_eq!(o.comments_polled, 1);
    assert_eq!(o.poll_auto_replied, 1);

    // Webhooks: 4 signed events + 1 redelivery; the forged one refused.
    assert_eq!(o.ingested.stored, 4);
    assert_eq!(o.ingested.duplicates, 1);
    assert_eq!(o.ingested.unknown_accounts, 0);
    assert!(o.bad_signature_refused);
    assert_eq!(o.routed, 3, "routed before the AI-off step");

    // Triage: one of each.
    assert_eq!(o.ignored, 1);
    assert_eq!(o.escalated, 1);
    assert_eq!(o.auto_reply, 1);
    assert_eq!(o.replies_sent, 1);

    // AI control off: nothing more is sent.
    assert_eq!(o.replies_after_off, 0);
    assert_eq!(o.triage_after_off, Some(nexiom::core::Triage::Ignore));
    assert_eq!(o.platform_requests_after_off, 0);

    // The standard pipeline pass did every step, and its JSON has exactly
    // the seed's keys (plus the list of errors, empty).
    let p = &o.pipeline;
    assert_eq!(p.routed, 3);
    assert_eq!(p.auto_replied, 1);
    assert_eq!(p.schedules_run, 1, "the post that fell due");
    assert!(p.metrics_collected > 0);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let json = p.to_json();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "auto_replied",
            "errors",
            "metrics_collected",
            "routed",
            "schedules_run"
        ]
    );
    assert_eq!(json["errors"], serde_json::json!([]));

    // KPIs saw the activity.
    assert!(o.kpi_windows_with_activity >= 1);
    assert_eq!(o.kpi_messages, 3, "three inbound messages");

    test_store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_memory() {
    check(memory_test_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn story_on_postgres() {
    check(postgres_test_store().await).await;
}
