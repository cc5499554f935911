//! Rows of `worker_flags` and `task_executions`.

use chrono::{DateTime, Utc};
use nexiom_core::{TaskExecutionLog, WorkerFlag};
use uuid::Uuid;

use super::convert::parse;
use crate::error::Result;

/// `worker_flags`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct WorkerFlagRow {
    worker_name: String,
    enabled: bool,
    updated_at: DateTime<Utc>,
}

impl WorkerFlagRow {
    pub(in crate::postgres) fn into_entity(self) -> WorkerFlag {
        WorkerFlag {
            worker_name: self.worker_name,
            enabled: self.enabled,
            updated_at: self.updated_at,
        }
    }
}

/// `task_executions`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ExecutionRow {
    id: Uuid,
    worker_name: String,
    status: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    items_processed: i64,
    items_failed: i64,
    results: serde_json::Value,
    error: Option<String>,
}

impl ExecutionRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<TaskExecutionLog> {
        Ok(TaskExecutionLog {
            id: self.id.into(),
            worker_name: self.worker_name,
            status: parse("run status", &self.status)?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.duration_ms,
            items_processed: self.items_processed,
            items_failed: self.items_failed,
            results: self.results,
            error: self.error,
        })
    }
}
