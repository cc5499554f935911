//! The polling and KPI workers on the runtime: their flags, their execution
//! logs, and the KPI worker as the pipeline's metrics step; a run whose
//! batches only end windows, and a failure quoting a NUL.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::MockOp;
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

use super::fixture::{mock, poller, published, sequential_poller, six_comments};
use crate::common::{Env, batch};

pub async fn polling_and_kpi_workers_run_with_flags_logs_and_pipeline_counts(
    store: Arc<dyn Store>,
) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    let kpi = KpiWorker::new(env.store.clone(), env.clock.clone());
    assert_eq!(Worker::cadence(&kpi), Cadence::Every(Duration::minutes(30)));
    let polling = PollCommentsWorker::new(poller);
    assert_eq!(polling.cadence(), Cadence::Every(Duration::minutes(5)));

    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime
        .register_with(Arc::new(polling), batch(10))
        .register(Arc::new(kpi.clone()));
    let shutdown = Shutdown::never();
    let runs = runtime.run_once(&shutdown).await.unwrap();
    let log = |name: &str| -> TaskExecutionLog {
        match runs.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone()) {
            Some(WorkerRun::Ran(log)) => log,
            other => panic!("{name}: {other:?}"),
        }
    };
    let polled = log(POLL_COMMENTS);
    assert_eq!(polled.status, RunStatus::Completed);
    assert_eq!(polled.items_processed, 1);
    assert_eq!(polled.results["comments_stored"], 6);
    let kpis = log(AGGREGATE_KPIS);
    assert_eq!(kpis.status, RunStatus::Completed);
    assert_eq!(kpis.items_processed, 1, "one tenant");
    let rows = kpis.results["rows_upserted"].as_u64().unwrap();
    assert!(rows > 0);
    assert_eq!(
        env.store
            .list_executions(Some(POLL_COMMENTS), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A flag switched off skips the next run, without restart.
    env.store
        .set_worker_flag(POLL_COMMENTS, false, env.clock.now())
        .await
        .unwrap();
    env.advance(Duration::minutes(30));
    let runs = runtime.run_once(&shutdown).await.unwrap();
    assert!(
        runs.iter()
            .any(|(n, r)| n == POLL_COMMENTS && *r == WorkerRun::Disabled)
    );
    assert!(matches!(
        runs.iter()
            .find(|(n, _)| n == AGGREGATE_KPIS)
            .map(|(_, r)| r),
        Some(WorkerRun::Ran(_))
    ));

    // The KPI worker is the pipeline's metrics step.
    let counts = PipelineRunner::new()
        .with_metrics(kpi.clone())
        .run_pipeline_once(env.clock.now() - Duration::hours(1), 100)
        .await;
    assert!(counts.errors.is_empty());
    assert_eq!(
        counts.metrics_collected,
        kpi.aggregate().await.unwrap().rows_upserted
    );
    assert!(counts.metrics_collected > 0);
}

/// The run that polls `poller`'s due posts in batches of 2 on a runtime.
async fn poll_once(env: &Env, poller: CommentPoller) -> TaskExecutionLog {
    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime.register_with(Arc::new(PollCommentsWorker::new(poller)), batch(2));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    match runs.into_iter().find(|(n, _)| n == POLL_COMMENTS) {
        Some((_, WorkerRun::Ran(log))) => log,
        other => panic!("{other:?}"),
    }
}

/// Batches whose posts all reached the end of their window are full
/// batches: the run goes on to the next one (before, it stopped after the
/// first, the finished posts not counting as handled, and the rest waited
/// for the next run, five minutes later, two posts at a time).
pub async fn a_run_goes_past_batches_that_only_end_windows(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(published(&env, env.channel, &format!("fb-{i}"), env.clock.now()).await);
    }
    env.advance(Duration::days(30));
    let log = poll_once(&env, poller(&env, &mock)).await;
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!(log.results["posts_claimed"], 5, "{}", log.results);
    assert_eq!(log.results["posts_finished"], 5, "{}", log.results);
    for post in posts {
        assert_eq!(env.post(post.id).await.next_check_at, None);
    }
}

/// A platform error quoting a NUL character: the run's execution log is
/// completed with the failure (the NUL replaced), not left `running`
/// because its results could not be stored.
pub async fn a_failure_quoting_a_nul_is_logged(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.fail_permanently_next(MockOp::ListComments, "no such post\0(deleted)");
    let log = poll_once(&env, sequential_poller(&env, &mock)).await;
    assert_eq!(log.status, RunStatus::Completed, "{log:?}");
    assert_eq!(log.items_failed, 1);
    let error = log.results["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("no such post\u{FFFD}(deleted)"), "{error}");
    let logs = env
        .store
        .list_executions(Some(POLL_COMMENTS), 10)
        .await
        .unwrap();
    assert!(
        logs.iter().all(|l| l.status == RunStatus::Completed),
        "{logs:?}"
    );
}
