//! Worker flags and execution logs.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ExecutionId, ExecutionOutcome, RunStatus, TaskExecutionLog, WorkerFlag, validate,
};

use super::{Inner, MemoryStore, limit_len};
use crate::error::{Result, StorageError};
use crate::traits::WorkerStore;

impl Inner {
    fn finish_execution(
        &mut self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<TaskExecutionLog> {
        outcome.validate()?;
        let log = self
            .executions
            .get_mut(&id)
            .ok_or_else(|| StorageError::not_found("execution", id))?;
        log.status = outcome.status;
        log.finished_at = Some(outcome.finished_at);
        log.duration_ms = Some((outcome.finished_at - log.started_at).num_milliseconds());
        log.items_processed = outcome.items_processed;
        log.items_failed = outcome.items_failed;
        log.results = outcome.results;
        log.error = outcome.error;
        Ok(log.clone())
    }

    fn list_executions(&self, worker: Option<&str>, limit: u32) -> Vec<TaskExecutionLog> {
        if limit == 0 {
            return Vec::new();
        }
        let mut logs: Vec<&TaskExecutionLog> = self
            .executions
            .values()
            .filter(|l| worker.is_none_or(|w| l.worker_name == w))
            .collect();
        // Newest first.
        logs.sort_by_key(|l| Reverse((l.started_at, l.id)));
        logs.into_iter().take(limit_len(limit)).cloned().collect()
    }
}

#[async_trait]
impl WorkerStore for MemoryStore {
    async fn get_worker_flag(&self, worker: &str) -> Result<Option<WorkerFlag>> {
        validate::key("worker_name", worker)?;
        Ok(self.lock().worker_flags.get(worker).cloned())
    }

    async fn set_worker_flag(
        &self,
        worker: &str,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<WorkerFlag> {
        validate::key("worker_name", worker)?;
        let flag = WorkerFlag {
            worker_name: worker.to_owned(),
            enabled,
            updated_at: at,
        };
        self.lock()
            .worker_flags
            .insert(flag.worker_name.clone(), flag.clone());
        Ok(flag)
    }

    async fn list_worker_flags(&self) -> Result<Vec<WorkerFlag>> {
        // A `BTreeMap<String, _>` iterates in byte order of the names.
        Ok(self.lock().worker_flags.values().cloned().collect())
    }

    async fn start_execution(
        &self,
        worker: &str,
        started_at: DateTime<Utc>,
    ) -> Result<TaskExecutionLog> {
        validate::key("worker_name", worker)?;
        let log = TaskExecutionLog {
            id: ExecutionId::generate(),
            worker_name: worker.to_owned(),
            status: RunStatus::Running,
            started_at,
            finished_at: None,
            duration_ms: None,
            items_processed: 0,
            items_failed: 0,
            results: serde_json::Value::Null,
            error: None,
        };
        self.lock().executions.insert(log.id, log.clone());
        Ok(log)
    }

    async fn finish_execution(
        &self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<TaskExecutionLog> {
        self.lock().finish_execution(id, outcome)
    }

    async fn list_executions(
        &self,
        worker: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TaskExecutionLog>> {
        validate::opt_key("worker_name", worker)?;
        Ok(self.lock().list_executions(worker, limit))
    }

    async fn delete_executions_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.lock();
        let before = inner.executions.len();
        inner.executions.retain(|_, l| l.started_at >= cutoff);
        let deleted = before - inner.executions.len();
        inner.worker_slots.retain(|(_, slot)| *slot >= cutoff);
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }

    async fn claim_worker_slot(
        &self,
        worker: &str,
        slot: DateTime<Utc>,
        _at: DateTime<Utc>,
    ) -> Result<bool> {
        validate::key("worker_name", worker)?;
        Ok(self.lock().worker_slots.insert((worker.to_owned(), slot)))
    }
}
