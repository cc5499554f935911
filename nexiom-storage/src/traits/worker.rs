//! Worker flags and execution logs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Worker flags and execution logs.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// The worker's flag, if one was ever set.
    async fn get_worker_flag(&self, worker: &str) -> Result<Option<WorkerFlag>>;
    /// Creates or replaces the worker's flag.
    async fn set_worker_flag(
        &self,
        worker: &str,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<WorkerFlag>;
    /// Every flag, by worker name.
    async fn list_worker_flags(&self) -> Result<Vec<WorkerFlag>>;

    /// Records the start of a run (`running`).
    async fn start_execution(
        &self,
        worker: &str,
        started_at: DateTime<Utc>,
    ) -> Result<TaskExecutionLog>;
    /// Records the end of a run; `duration_ms` is computed from the two instants.
    async fn finish_execution(
        &self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<TaskExecutionLog>;
    /// Runs, optionally of one worker, newest first.
    async fn list_executions(
        &self,
        worker: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TaskExecutionLog>>;
    /// Deletes runs started before `cutoff`; returns how many.
    async fn delete_executions_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}
