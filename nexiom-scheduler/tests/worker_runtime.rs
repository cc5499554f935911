//! The worker runtime: flags read at every run, execution logs, graceful
//! shutdown, and the pipeline runner over the publish queue.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use common::{Env, batch};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    disabling_a_flag_stops_the_next_run_without_restart,
    every_run_writes_an_execution_log,
    shutdown_finishes_the_post_in_flight_and_hands_back_the_rest,
    pipeline_runs_due_schedules,
    the_pipeline_worker_logs_the_seed_counts,
    the_retention_worker_purges_what_is_old,
    extreme_retention_settings_keep_everything,
    a_hanging_worker_never_holds_the_others_back,
);

fn runtime(env: &Env, gateway: Arc<MockGateway>) -> WorkerRuntime {
    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime
        .register(Arc::new(EnqueueDuePostsWorker::new(
            env.queue("w1", gateway),
        )))
        .register(Arc::new(ReleaseStaleLeasesWorker::new(env.store.clone())))
        .register(Arc::new(CleanupExecutionLogsWorker::new(env.store.clone())));
    runtime
}

fn ran(runs: &[(String, WorkerRun)], name: &str) -> bool {
    runs.iter()
        .any(|(n, r)| n == name && matches!(r, WorkerRun::Ran(_)))
}

async fn disabling_a_flag_stops_the_next_run_without_restart(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let mut runtime = runtime(&env, gateway.clone());
    let shutdown = Shutdown::never();
    let first = runtime.run_once(&shutdown).await.unwrap();
    assert!(ran(&first, ENQUEUE_DUE_POSTS));
    assert!(ran(&first, RELEASE_STALE_LEASES));
    assert!(ran(&first, CLEANUP_EXECUTION_LOGS));

    // Not due again before its cadence.
    let post = env.post_at("Hello", env.clock.now()).await;
    let early = runtime.run_once(&shutdown).await.unwrap();
    assert!(!ran(&early, ENQUEUE_DUE_POSTS));

    env.store
        .set_worker_flag(ENQUEUE_DUE_POSTS, false, env.clock.now())
        .await
        .unwrap();
    env.advance(Duration::minutes(1));
    let off = runtime.run_once(&shutdown).await.unwrap();
    assert!(
        off.iter()
            .any(|(n, r)| n == ENQUEUE_DUE_POSTS && *r == WorkerRun::Disabled)
    );
    assert!(ran(&off, RELEASE_STALE_LEASES), "other workers still run");
    assert!(!ran(&off, CLEANUP_EXECUTION_LOGS), "daily worker not due");
    assert_eq!(env.post(post.id).await.status, PostStatus::Queued);
    assert!(gateway.calls().is_empty());

    env.store
        .set_worker_flag(ENQUEUE_DUE_POSTS, true, env.clock.now())
        .await
        .unwrap();
    env.advance(Duration::minutes(1));
    let on = runtime.run_once(&shutdown).await.unwrap();
    assert!(ran(&on, ENQUEUE_DUE_POSTS));
    assert_eq!(env.post(post.id).await.status, PostStatus::Published);
}

struct Failing;

#[async_trait]
impl Worker for Failing {
    fn name(&self) -> &str {
        "always_fails"
    }
    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(5))
    }
    async fn run(&self, _ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        Err(SchedulerError::ContentRefused("nothing works".into()))
    }
}

async fn every_run_writes_an_execution_log(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::Permanent("refused".into()))]);
    let mut runtime = runtime(&env, gateway);
    runtime.register(Arc::new(Failing));
    env.post_at("one", env.clock.now()).await;
    env.post_at("two", env.clock.now()).await;
    runtime.run_once(&Shutdown::never()).await.unwrap();

    let logs = env
        .store
        .list_executions(Some(ENQUEUE_DUE_POSTS), 10)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!((log.items_processed, log.items_failed), (2, 1));
    assert_eq!(log.results["published"], 1);
    assert_eq!(log.results["failed"], 1);
    assert_eq!(log.duration_ms, Some(0), "manual clock: no time passed");

    let failed = env
        .store
        .list_executions(Some("always_fails"), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, RunStatus::Failed);
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("nothing works")
    );

    // The daily cleanup deletes logs older than the retention.
    env.advance(Duration::days(31));
    runtime.run_once(&Shutdown::never()).await.unwrap();
    let all = env.store.list_executions(None, 100).await.unwrap();
    assert!(
        all.iter().all(|l| l.started_at == env.clock.now()),
        "old logs deleted"
    );
    let cleanup = env
        .store
        .list_executions(Some(CLEANUP_EXECUTION_LOGS), 10)
        .await
        .unwrap();
    assert_eq!(cleanup[0].items_processed, 4, "4 logs of the first step");
    // Then the partitioned tables' statistics (3 tables on Postgres, none in
    // memory), reported in the log.
    let tables = env.store.refresh_statistics().await.unwrap();
    assert_eq!(
        cleanup[0].results["statistics"]["tables_analyzed"], tables,
        "{}",
        cleanup[0].results
    );
}

/// A gateway that asks for shutdown when it receives its first call.
struct StopAfterFirst {
    inner: MockGateway,
    trigger: Mutex<Option<ShutdownTrigger>>,
}

#[async_trait]
impl PublishGateway for StopAfterFirst {
    fn refusal(&self, channel: &Channel, content: &Content) -> Option<String> {
        self.inner.refusal(channel, content)
    }
    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        if let Some(trigger) = self.trigger.lock().unwrap().take() {
            trigger.trigger();
        }
        self.inner.publish(channel, content, reference).await
    }
    fn can_lookup(&self, channel: &Channel) -> bool {
        self.inner.can_lookup(channel)
    }
    async fn lookup(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
        attempted_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<PublishedPost>, PublishFailure> {
        self.inner
            .lookup(channel, content, reference, attempted_at)
            .await
    }
    async fn refresh_credentials(&self, channel: &Channel) -> Result<Credentials, PublishFailure> {
        self.inner.refresh_credentials(channel).await
    }
}

async fn shutdown_finishes_the_post_in_flight_and_hands_back_the_rest(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (trigger, shutdown) = shutdown_channel();
    let gateway = Arc::new(StopAfterFirst {
        inner: MockGateway::new(),
        trigger: Mutex::new(Some(trigger)),
    });
    let queue = PublishQueue::new(
        env.store.clone(),
        gateway.clone(),
        env.clock.clone(),
        PublishConfig::for_worker("w1"),
    );
    for i in 0..3 {
        env.post_at(&format!("post {i}"), env.clock.now()).await;
    }
    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime.register_with(Arc::new(EnqueueDuePostsWorker::new(queue)), batch(10));
    let runs = runtime.run_once(&shutdown).await.unwrap();
    let WorkerRun::Ran(log) = &runs[0].1 else {
        panic!("{runs:?}")
    };
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!(log.results["claimed"], 3);
    assert_eq!(log.results["published"], 1);

    let posts = env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap();
    let published: Vec<_> = posts
        .iter()
        .filter(|p| p.status == PostStatus::Published)
        .collect();
    let queued: Vec<_> = posts
        .iter()
        .filter(|p| p.status == PostStatus::Queued)
        .collect();
    assert_eq!(published.len(), 1, "the post in flight finished");
    assert_eq!(queued.len(), 2, "the others went back to the queue");
    assert!(
        queued
            .iter()
            .all(|p| p.lease_owner.is_none() && p.retry_count == 0)
    );
    for p in &queued {
        assert!(env.runs(p.id).await.is_empty(), "nothing half-written");
    }
    assert_eq!(gateway.inner.calls().len(), 1);

    // The loop itself returns once shutdown is asked for.
    tokio::time::timeout(std::time::Duration::from_secs(10), runtime.run(shutdown))
        .await
        .unwrap();
}

async fn pipeline_runs_due_schedules(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    for i in 0..3 {
        env.post_at(&format!("post {i}"), env.clock.now()).await;
    }
    let runner = PipelineRunner::new()
        .with_router(step_fn(|_, _| async { Ok(0) }))
        .with_schedules(env.queue("pipeline", gateway.clone()));
    let counts = runner
        .run_pipeline_once(env.clock.now() - Duration::hours(1), 2)
        .await;
    assert_eq!(counts.schedules_run, 2, "limit respected");
    assert_eq!(
        (counts.routed, counts.auto_replied, counts.metrics_collected),
        (0, 0, 0)
    );
    let counts = runner.run_pipeline_once(env.clock.now(), 2).await;
    assert_eq!(counts.schedules_run, 1);
    assert_eq!(gateway.calls().len(), 3);
    assert!(counts.errors.is_empty());
}

async fn the_pipeline_worker_logs_the_seed_counts(store: Arc<dyn Store>) {
    let env = Env::new(store.clone()).await;
    let gateway = Arc::new(MockGateway::new());
    for i in 0..3 {
        env.post_at(&format!("post {i}"), env.clock.now()).await;
    }
    let runner = PipelineRunner::new()
        .with_schedules(env.queue("pipeline", gateway.clone()))
        .with_metrics(step_fn(|_, _| async {
            Err(SchedulerError::ContentRefused("metrics down".into()))
        }));
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(Arc::new(
        PipelineWorker::new(runner).with_window(Duration::hours(1), 2),
    ));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    let Some((_, WorkerRun::Ran(log))) = runs.iter().find(|(n, _)| n == PIPELINE) else {
        panic!("the pipeline worker did not run: {runs:?}");
    };
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!(log.items_processed, 2, "limit 2 per step");
    assert_eq!(log.items_failed, 1, "the failing metrics step");
    assert_eq!(log.results["schedules_run"], 2);
    assert_eq!(log.results["routed"], 0);
    assert_eq!(log.results["errors"][0]["step"], "metrics");
    // Every minute by default.
    assert!(
        !runtime
            .run_once(&Shutdown::never())
            .await
            .unwrap()
            .iter()
            .any(|(n, r)| n == PIPELINE && matches!(r, WorkerRun::Ran(_)))
    );
    env.advance(Duration::minutes(1));
    runtime.run_once(&Shutdown::never()).await.unwrap();
    assert_eq!(gateway.calls().len(), 3);

    // A pass in which every plugged step fails is a failed run.
    let broken = PipelineRunner::new().with_router(step_fn(|_, _| async {
        Err(SchedulerError::ContentRefused("router down".into()))
    }));
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(Arc::new(PipelineWorker::new(broken)));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    let Some((_, WorkerRun::Ran(log))) = runs.iter().find(|(n, _)| n == PIPELINE) else {
        panic!("{runs:?}");
    };
    assert_eq!(log.status, RunStatus::Failed);
    assert!(log.error.as_deref().unwrap().contains("router down"));
}

async fn the_retention_worker_purges_what_is_old(store: Arc<dyn Store>) {
    let env = Env::new(store.clone()).await;
    let now = env.clock.now();
    for (key, at) in [
        ("a", now - Duration::days(100)),
        ("b", now - Duration::days(95)),
        ("c", now),
    ] {
        store
            .insert_dead_letter(NewDeadLetter::new(
                Platform::WhatsApp,
                key,
                b"{}",
                "bad",
                at,
            ))
            .await
            .unwrap();
    }
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(Arc::new(RetentionWorker::new(store.clone())));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    let Some((_, WorkerRun::Ran(log))) = runs.iter().find(|(n, _)| n == RETENTION) else {
        panic!("{runs:?}");
    };
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!(log.results["dead_letters"], 2, "{:?}", log.results);
    assert_eq!(store.list_dead_letters(None, 10).await.unwrap().len(), 1);
}

/// Retention settings that would have panicked the runtime (a "keep
/// forever" longer than the calendar) or wiped everything (a negative
/// duration, whose cutoff lies in the future): the first keeps every row,
/// the second fails its run with what to change and removes nothing.
async fn extreme_retention_settings_keep_everything(store: Arc<dyn Store>) {
    let env = Env::new(store.clone()).await;
    let now = env.clock.now();
    store
        .insert_dead_letter(NewDeadLetter::new(
            Platform::WhatsApp,
            "old",
            b"{}",
            "bad",
            now - Duration::days(400),
        ))
        .await
        .unwrap();
    let forever = Duration::MAX;
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime
        .register(Arc::new(
            CleanupExecutionLogsWorker::new(store.clone()).keeping(forever),
        ))
        .register(Arc::new(RetentionWorker::new(store.clone()).with_policy(
            nexiom_storage::RetentionPolicy {
                dead_letters: Some(forever),
                ..nexiom_storage::RetentionPolicy::default()
            },
        )));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    for name in [CLEANUP_EXECUTION_LOGS, RETENTION] {
        let Some((_, WorkerRun::Ran(log))) = runs.iter().find(|(n, _)| n == name) else {
            panic!("{name}: {runs:?}");
        };
        assert_eq!(log.status, RunStatus::Completed, "{name}: {:?}", log.error);
    }
    assert_eq!(store.list_dead_letters(None, 10).await.unwrap().len(), 1);

    let negative = Some(Duration::days(-1));
    for worker in [
        Arc::new(CleanupExecutionLogsWorker::new(store.clone()).with_policy(
            &nexiom_storage::RetentionPolicy {
                execution_logs: negative,
                ..nexiom_storage::RetentionPolicy::default()
            },
        )) as Arc<dyn Worker>,
        Arc::new(RetentionWorker::new(store.clone()).with_policy(
            nexiom_storage::RetentionPolicy {
                dead_letters: negative,
                ..nexiom_storage::RetentionPolicy::default()
            },
        )),
    ] {
        let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
        let name = worker.name().to_owned();
        runtime.register(worker);
        let Some(WorkerRun::Ran(log)) =
            runtime.run_worker(&name, &Shutdown::never()).await.unwrap()
        else {
            panic!("{name} did not run");
        };
        assert_eq!(log.status, RunStatus::Failed);
        assert!(
            log.error.as_deref().unwrap().contains("negative"),
            "{:?}",
            log.error
        );
    }
    assert_eq!(store.list_dead_letters(None, 10).await.unwrap().len(), 1);
    assert!(
        !store
            .list_executions(Some(RETENTION), 10)
            .await
            .unwrap()
            .is_empty(),
        "the logs are kept"
    );
}

/// Hangs in its first run until `release` is notified.
struct Hanging {
    release: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Worker for Hanging {
    fn name(&self) -> &str {
        "hangs"
    }
    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(1))
    }
    async fn run(&self, _ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        self.release.notified().await;
        Ok(WorkReport::default())
    }
}

/// Tells each of its runs.
struct Ticking {
    runs: tokio::sync::mpsc::UnboundedSender<()>,
}

#[async_trait]
impl Worker for Ticking {
    fn name(&self) -> &str {
        "ticks"
    }
    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(1))
    }
    async fn run(&self, _ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        let _ = self.runs.send(());
        Ok(WorkReport::default())
    }
}

/// A worker whose run hangs (notifications to an endpoint that never
/// answers, say), registered first: the other worker still runs at its
/// cadence, twice while the first is stuck; on shutdown the stuck run
/// finishes and the loop returns.
async fn a_hanging_worker_never_holds_the_others_back(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let release = Arc::new(tokio::sync::Notify::new());
    let (runs, mut ran) = tokio::sync::mpsc::unbounded_channel();
    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime
        .register(Arc::new(Hanging {
            release: release.clone(),
        }))
        .register(Arc::new(Ticking { runs }));
    let (trigger, shutdown) = shutdown_channel();
    let running = tokio::spawn(runtime.run(shutdown));
    let within = std::time::Duration::from_secs(10);
    tokio::time::timeout(within, ran.recv())
        .await
        .expect("the other worker's first run, while the first hangs")
        .unwrap();
    env.advance(Duration::minutes(1));
    tokio::time::timeout(within, ran.recv())
        .await
        .expect("its run a minute later, the first still hanging")
        .unwrap();
    trigger.trigger();
    release.notify_one();
    tokio::time::timeout(within, running)
        .await
        .expect("the loop returns on shutdown")
        .unwrap();
}
