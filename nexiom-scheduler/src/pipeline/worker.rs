//! [`PipelineWorker`]: the pipeline pass as a worker of the runtime.

use async_trait::async_trait;
use chrono::Duration;

use super::{DEFAULT_LIMIT, PipelineRunner, default_since};
use crate::error::Result;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`PipelineWorker`].
pub const PIPELINE: &str = "pipeline";

/// Runs [`PipelineRunner::run_pipeline_once`] on a cadence (every minute by
/// default) with the seed's defaults (items of the last hour, at most 100 per
/// step). Its execution log holds the counts' JSON; `items_processed` is the
/// sum of the counts, `items_failed` the steps that failed. A pass in which
/// every plugged step failed is a failed run
/// ([`SchedulerError::PipelineFailed`](crate::SchedulerError::PipelineFailed)),
/// so health checks, metrics and alerts see it.
#[derive(Debug, Clone)]
pub struct PipelineWorker {
    runner: PipelineRunner,
    cadence: Cadence,
    since: Duration,
    limit: u32,
}

impl PipelineWorker {
    /// The worker over `runner`, every minute.
    pub fn new(runner: PipelineRunner) -> Self {
        PipelineWorker {
            runner,
            cadence: Cadence::Every(Duration::minutes(1)),
            since: default_since(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// The same worker on another cadence.
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }

    /// The same worker looking `since` back and handling at most `limit`
    /// items per step.
    pub fn with_window(mut self, since: Duration, limit: u32) -> Self {
        self.since = since;
        self.limit = limit;
        self
    }
}

#[async_trait]
impl Worker for PipelineWorker {
    fn name(&self) -> &str {
        PIPELINE
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        let since = ctx.now.checked_sub_signed(self.since).unwrap_or(ctx.now);
        let counts = self.runner.run_pipeline_once(since, self.limit).await;
        let plugged = self.runner.steps();
        if plugged > 0 && counts.errors.len() >= plugged {
            let errors: Vec<String> = counts
                .errors
                .iter()
                .map(|(step, error)| format!("{step}: {error}"))
                .collect();
            return Err(crate::SchedulerError::PipelineFailed(errors.join("; ")));
        }
        Ok(WorkReport {
            items_processed: i64::try_from(counts.total()).unwrap_or(i64::MAX),
            items_failed: i64::try_from(counts.errors.len()).unwrap_or(i64::MAX),
            results: counts.to_json(),
        })
    }
}
