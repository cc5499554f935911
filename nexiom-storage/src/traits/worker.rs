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
    /// Deletes runs started before `cutoff`, and the slot claims of slots
    /// before it; returns how many runs.
    async fn delete_executions_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;

    /// Claims one slot of a wall-clock schedule for the caller: `true` for
    /// the first claim of (`worker`, `slot`) in the whole store, `false` for
    /// every later one, whichever process makes it. Worker processes that
    /// share a store call it before a scheduled run, so that each slot is
    /// run by one of them (at most once: a process that stops during the run
    /// does not hand the slot on; the next slot runs as usual). `at` is when
    /// the claim is made.
    async fn claim_worker_slot(
        &self,
        worker: &str,
        slot: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
}
