//! [`KpiWorker`]: the KPI aggregation on the worker runtime and in the pipeline.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::Clock;
use nexiom_storage::Store;

use super::aggregate::{KpiRunSummary, aggregate_kpis};
use super::config::KpiConfig;
use super::incremental::aggregate_kpis_incremental;
use crate::error::Result;
use crate::pipeline::PipelineStep;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`KpiWorker`].
pub const AGGREGATE_KPIS: &str = "aggregate_kpis";

/// Every 30 minutes: recomputes every tenant's KPI windows of the last 48 hours
/// ([`aggregate_kpis`]). Also the metrics step of the pipeline
/// ([`PipelineRunner::with_metrics`](crate::PipelineRunner::with_metrics)),
/// where it counts the windows upserted as `metrics_collected`.
#[derive(Clone)]
pub struct KpiWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: KpiConfig,
    cadence: Cadence,
    /// When this worker last recomputed the whole span.
    last_full: Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
}

impl std::fmt::Debug for KpiWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiWorker")
            .field("config", &self.config)
            .field("cadence", &self.cadence)
            .finish_non_exhaustive()
    }
}

impl KpiWorker {
    /// The worker over `store`, every 30 minutes, with [`KpiConfig::default`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        KpiWorker {
            store,
            clock,
            config: KpiConfig::default(),
            cadence: Cadence::kpis(),
            last_full: Arc::default(),
        }
    }

    /// The same worker with another configuration.
    pub fn with_config(mut self, config: KpiConfig) -> Self {
        self.config = config;
        self
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

    /// One aggregation at the clock's time: incremental, or the whole span
    /// when [`KpiConfig::incremental`] is off, on the worker's first run and
    /// every [`KpiConfig::full_every`] (which counts what arrived later than
    /// the lateness).
    pub async fn aggregate(&self) -> Result<KpiRunSummary> {
        let now = self.clock.now();
        let full_due = {
            let last = self.last_full.lock().unwrap_or_else(|e| e.into_inner());
            last.is_none_or(|at| now - at >= self.config.full_every)
        };
        if self.config.incremental && !full_due {
            return Ok(aggregate_kpis_incremental(&*self.store, &*self.clock, &self.config).await?);
        }
        let summary = aggregate_kpis(&*self.store, &*self.clock, &self.config).await?;
        if summary.failures.is_empty() {
            *self.last_full.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        }
        Ok(summary)
    }
}

#[async_trait]
impl Worker for KpiWorker {
    fn name(&self) -> &str {
        AGGREGATE_KPIS
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, _ctx: &WorkerContext) -> Result<WorkReport> {
        let summary = self.aggregate().await?;
        let failed = u64::try_from(summary.failures.len()).unwrap_or(u64::MAX);
        Ok(WorkReport {
            items_processed: i64::try_from(summary.tenants_processed + failed).unwrap_or(i64::MAX),
            items_failed: i64::try_from(failed).unwrap_or(i64::MAX),
            results: serde_json::json!({
                "tenants_processed": summary.tenants_processed,
                "rows_upserted": summary.rows_upserted,
                "failures": summary.failures.iter().map(|f| serde_json::json!({
                    "tenant_id": f.tenant_id.to_string(),
                    "error": f.error,
                })).collect::<Vec<_>>(),
            }),
        })
    }
}

/// The metrics step: one aggregation; the count is the windows upserted.
#[async_trait]
impl PipelineStep for KpiWorker {
    async fn run(&self, _since: DateTime<Utc>, _limit: u32) -> Result<u64> {
        Ok(self.aggregate().await?.rows_upserted)
    }
}
