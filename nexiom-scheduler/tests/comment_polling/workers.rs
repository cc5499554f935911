//! The polling and KPI workers on the runtime: their flags, their execution
//! logs, and the KPI worker as the pipeline's metrics step.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

use super::fixture::{mock, poller, published, six_comments};
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
