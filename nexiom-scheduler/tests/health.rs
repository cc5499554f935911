//! The health check against the runtime's workers, with a manual clock:
//! ready and live at start, late and stalled when a worker stops running,
//! late but alive when its runs fail, never late when its flag is off.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::Duration;
use common::Env;
use nexiom_core::Clock;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(health_follows_the_workers_runs);

struct Ticker {
    fail: AtomicBool,
}

#[async_trait]
impl Worker for Ticker {
    fn name(&self) -> &str {
        "ticker"
    }
    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(5))
    }
    async fn run(&self, _ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SchedulerError::ContentRefused("platform down".into()));
        }
        Ok(WorkReport::default())
    }
}

async fn health_follows_the_workers_runs(store: Arc<dyn Store>) {
    let env = Env::new(store.clone()).await;
    let ticker = Arc::new(Ticker {
        fail: AtomicBool::new(false),
    });
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(ticker.clone());
    let health = HealthCheck::new(store.clone(), env.clock.clone(), &runtime);
    let shutdown = Shutdown::never();

    // At start: nothing ran yet, but the tolerance (2 × 5 min + 1 min) has
    // not passed.
    let report = health.check().await;
    assert!(report.database.ok && report.migrations.ok, "{report:?}");
    assert!(report.ready() && report.live(), "{report:?}");
    assert_eq!(report.workers[0].tolerance_seconds, 11 * 60);

    runtime.run_once(&shutdown).await.unwrap();
    let ran_at = env.clock.now();
    let report = health.check().await;
    assert_eq!(report.workers[0].last_success, Some(ran_at));
    assert!(report.ready());

    // The runtime stops stepping: late, then stalled.
    env.advance(Duration::minutes(12));
    let report = health.check().await;
    assert!(report.workers[0].late && report.workers[0].stalled);
    assert!(!report.ready() && !report.live());
    let json = report.to_json();
    assert_eq!(json["ready"], false);
    assert_eq!(json["workers"][0]["name"], "ticker");

    // A run in progress (younger than max_run) means busy, not stuck.
    let running = store
        .start_execution("ticker", env.clock.now())
        .await
        .unwrap();
    let report = health.check().await;
    assert!(report.live() && !report.ready(), "{report:?}");
    store
        .finish_execution(
            running.id,
            nexiom_core::ExecutionOutcome {
                status: nexiom_core::RunStatus::Failed,
                finished_at: env.clock.now(),
                items_processed: 0,
                items_failed: 0,
                results: serde_json::Value::Null,
                error: Some("interrupted".into()),
            },
        )
        .await
        .unwrap();
    env.advance(Duration::minutes(12));

    // It runs again but fails: alive, not ready.
    ticker.fail.store(true, Ordering::SeqCst);
    runtime.run_once(&shutdown).await.unwrap();
    let report = health.check().await;
    assert!(report.workers[0].late && !report.workers[0].stalled);
    assert!(!report.ready() && report.live());
    assert_eq!(report.workers[0].last_success, Some(ran_at));

    // Switched off: reported, never late.
    store
        .set_worker_flag("ticker", false, env.clock.now())
        .await
        .unwrap();
    env.advance(Duration::hours(1));
    let report = health.check().await;
    assert!(!report.workers[0].enabled);
    assert!(report.ready() && report.live(), "{report:?}");
}
