//! The metrics the library records, scraped in the Prometheus text format
//! after a story run (memory store) and one step of the worker runtime:
//! every documented name is exposed, and those the story exercises carry
//! real counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/story/mod.rs"]
mod story;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use nexiom::core::{Clock, ManualClock};
use nexiom::scheduler::telemetry::{self, METRIC_NAMES};
use nexiom::scheduler::{
    EnqueueDuePostsWorker, MockGateway, PublishConfig, PublishQueue, Shutdown, WorkerRuntime,
};
use nexiom::storage::conformance::memory_test_store;

/// The value of the first sample of `series` (a name with its labels, as
/// written in the exposition), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_exposed_after_a_story_run() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    telemetry::describe();

    let test_store = memory_test_store().await.unwrap();
    let store = test_store.store();
    let outcome = story::run_story(Arc::clone(&store), false).await.unwrap();
    assert_eq!(outcome.posts_published, 2);

    // One step of the runtime: worker runs and the queue depth.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let queue = PublishQueue::new(
        Arc::clone(&store),
        Arc::new(MockGateway::new()),
        clock.clone() as Arc<dyn Clock>,
        PublishConfig::for_worker("scrape"),
    );
    let mut runtime = WorkerRuntime::new(Arc::clone(&store), clock.clone());
    runtime.register(Arc::new(EnqueueDuePostsWorker::new(queue)));
    runtime.run_once(&Shutdown::never()).await.unwrap();

    let text = handle.render();
    for name in METRIC_NAMES {
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name)),
            "{name} is not exposed:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name}")),
            "{name} has no help text"
        );
    }
    // What the story did, counted.
    let at_least_one = [
        "nexiom_posts_published_total",
        "nexiom_events_ingested_total{platform=\"whatsapp\"}",
        "nexiom_events_duplicate_total{platform=\"whatsapp\"}",
        "nexiom_events_routed_total",
        "nexiom_triage_decisions_total{outcome=\"escalate\"}",
        "nexiom_auto_replies_total{result=\"sent\"}",
        "nexiom_comments_polled_total",
        "nexiom_publish_latency_seconds_count{platform=\"facebook\"}",
        "nexiom_worker_runs_total{worker=\"enqueue_due_posts\",status=\"completed\"}",
    ];
    for series in at_least_one {
        let value = sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(value >= 1.0, "{series} = {value}");
    }
    assert_eq!(
        sample(&text, "nexiom_posts_outcome_unknown_total"),
        Some(0.0)
    );
    test_store.cleanup().await;
}
