//! [`KpiWorker`]: the KPI aggregation on the worker runtime and in the pipeline.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{Clock, TenantId};
use nexiom_storage::Store;

use super::aggregate::{KpiRunSummary, aggregate_kpis, aggregate_kpis_each};
use super::config::KpiConfig;
use super::incremental::{aggregate_kpis_incremental, aggregate_kpis_incremental_except};
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
    /// When this worker last recomputed the whole span, and the tenants whose
    /// part of that recompute failed (recomputed whole again at the next run).
    last_full: Arc<std::sync::Mutex<FullRuns>>,
}

/// The state of the full recomputes of one [`KpiWorker`].
#[derive(Debug, Default)]
struct FullRuns {
    /// When the whole span was last recomputed (some zones may have failed).
    at: Option<DateTime<Utc>>,
    /// Tenants whose full recompute failed and is owed.
    owed: BTreeSet<TenantId>,
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
    ///
    /// A zone whose full recompute failed does not make the next runs full
    /// for everyone: each of its tenants is owed a full recompute, made at
    /// each next run tenant by tenant (so the zone's healthy tenants are
    /// done at the first retry and only a failing one stays owed, reported
    /// again meanwhile), while the other tenants go on incrementally.
    pub async fn aggregate(&self) -> Result<KpiRunSummary> {
        let now = self.clock.now();
        // The owed set stays in place during the run: a run dropped midway
        // (or another clone's run) loses none of it.
        let (full_due, owed) = {
            let full = self.full_runs();
            let due = full.at.is_none_or(|at| now - at >= self.config.full_every);
            (due, full.owed.clone())
        };
        let store = &*self.store;
        let clock = &*self.clock;
        if !self.config.incremental {
            return Ok(aggregate_kpis(store, clock, &self.config).await?);
        }
        let summary = if full_due {
            aggregate_kpis(store, clock, &self.config).await?
        } else if owed.is_empty() {
            aggregate_kpis_incremental(store, clock, &self.config).await?
        } else {
            self.incremental_and_owed(&owed).await?
        };
        // A tenant whose full recompute failed is owed one (an incremental
        // run that failed needs none: the next one starts from its last row).
        let failed: BTreeSet<TenantId> = summary.failures.iter().map(|f| f.tenant_id).collect();
        let mut full = self.full_runs();
        if full_due {
            full.at = Some(now);
            full.owed = failed;
        } else {
            for tenant in &owed {
                if !failed.contains(tenant) {
                    full.owed.remove(tenant);
                }
            }
        }
        Ok(summary)
    }

    fn full_runs(&self) -> std::sync::MutexGuard<'_, FullRuns> {
        self.last_full.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An incremental run of every tenant but `owed`, whose whole span is
    /// recomputed instead, tenant by tenant.
    async fn incremental_and_owed(
        &self,
        owed: &BTreeSet<TenantId>,
    ) -> nexiom_storage::Result<KpiRunSummary> {
        let store = &*self.store;
        let clock = &*self.clock;
        let mut summary = aggregate_kpis_each(store, clock, &self.config, owed).await?;
        let rest = aggregate_kpis_incremental_except(store, clock, &self.config, owed).await?;
        summary.tenants_processed += rest.tenants_processed;
        summary.rows_upserted += rest.rows_upserted;
        summary.failures.extend(rest.failures);
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
