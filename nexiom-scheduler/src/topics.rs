//! [`ClusterDailyWorker`]: the topic runs of every tenant on the worker runtime.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use nexiom_storage::Store;
use nexiom_topics::TopicRunner;
use tracing::warn;

use crate::error::Result;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`ClusterDailyWorker`].
pub const CLUSTER_DAILY: &str = "cluster_daily";

/// Daily at 03:00 Europe/Paris ([`Cadence::clustering`]; change it with
/// [`ClusterDailyWorker::on`] or [`ClusterDailyWorker::every`]): for every tenant,
/// [`TopicRunner::run_tenant`] — the last 24 hours, the last 7 days, and each
/// post with at least 20 comments. A tenant whose run fails is reported in
/// the execution log (`items_failed`, `failures`) and the others go on.
///
/// On a cron schedule (the default) each slot is run by one of the worker
/// processes sharing the store ([`WorkerRuntime`](crate::WorkerRuntime)
/// claims it). On an interval ([`ClusterDailyWorker::every`]) every process
/// runs it: register it in one process only.
#[derive(Clone)]
pub struct ClusterDailyWorker {
    store: Arc<dyn Store>,
    runner: TopicRunner,
    cadence: Cadence,
}

impl std::fmt::Debug for ClusterDailyWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDailyWorker")
            .field("runner", &self.runner)
            .field("cadence", &self.cadence)
            .finish_non_exhaustive()
    }
}

impl ClusterDailyWorker {
    /// The worker over `store`, daily at 03:00 Europe/Paris.
    pub fn new(store: Arc<dyn Store>, runner: TopicRunner) -> Self {
        ClusterDailyWorker {
            store,
            runner,
            cadence: Cadence::clustering(),
        }
    }

    /// The same worker every `interval`.
    pub fn every(mut self, interval: Duration) -> Self {
        self.cadence = Cadence::Every(interval);
        self
    }

    /// The same worker on another cadence (an interval or a
    /// [`CronSchedule`](crate::CronSchedule)).
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }
}

#[async_trait]
impl Worker for ClusterDailyWorker {
    fn name(&self) -> &str {
        CLUSTER_DAILY
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        let tenants = self.store.list_tenants().await?;
        let mut processed = 0i64;
        let mut failures = Vec::new();
        let mut runs = Vec::new();
        for tenant in &tenants {
            if ctx.shutdown.is_triggered() {
                break;
            }
            // A tenant whose settings switch this worker off is skipped.
            if crate::tenant_config::switched_off(self.store.as_ref(), tenant.id, CLUSTER_DAILY)
                .await
            {
                continue;
            }
            processed += 1;
            match self.runner.run_tenant(tenant, ctx.now).await {
                Ok(reports) => runs.extend(reports.into_iter().map(|r| {
                    serde_json::json!({
                        "tenant_id": tenant.id.to_string(),
                        "scope": r.scope,
                        "items": r.items,
                        "topics": r.topics,
                        "new_topics": r.new_topics,
                        "unassigned": r.unassigned,
                    })
                })),
                Err(err) => {
                    warn!(tenant = %tenant.id, error = %err, "topic run failed");
                    failures.push(serde_json::json!({
                        "tenant_id": tenant.id.to_string(),
                        "error": err.to_string(),
                    }));
                }
            }
        }
        Ok(WorkReport {
            items_processed: processed,
            items_failed: i64::try_from(failures.len()).unwrap_or(i64::MAX),
            results: serde_json::json!({ "runs": runs, "failures": failures }),
        })
    }
}
