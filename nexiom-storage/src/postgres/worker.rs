//! [`WorkerStore`] on Postgres: `worker_flags` and `task_executions`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ExecutionId, ExecutionOutcome, RunStatus, TaskExecutionLog, WorkerFlag, validate,
};

use super::error::db;
use super::rows::{ExecutionRow, WorkerFlagRow, all};
use super::{PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::traits::WorkerStore;

#[async_trait]
impl WorkerStore for PgStore {
    async fn get_worker_flag(&self, worker: &str) -> Result<Option<WorkerFlag>> {
        validate::key("worker_name", worker)?;
        let row: Option<WorkerFlagRow> =
            sqlx::query_as("SELECT * FROM worker_flags WHERE worker_name = $1")
                .bind(worker)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(row.map(WorkerFlagRow::into_entity))
    }

    async fn set_worker_flag(
        &self,
        worker: &str,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<WorkerFlag> {
        validate::key("worker_name", worker)?;
        let row: WorkerFlagRow = sqlx::query_as(
            "INSERT INTO worker_flags (worker_name, enabled, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (worker_name) DO UPDATE SET \
                 enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at \
             RETURNING *",
        )
        .bind(worker)
        .bind(enabled)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.into_entity())
    }

    async fn list_worker_flags(&self) -> Result<Vec<WorkerFlag>> {
        let rows: Vec<WorkerFlagRow> =
            sqlx::query_as("SELECT * FROM worker_flags ORDER BY worker_name COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(rows.into_iter().map(WorkerFlagRow::into_entity).collect())
    }

    async fn start_execution(
        &self,
        worker: &str,
        started_at: DateTime<Utc>,
    ) -> Result<TaskExecutionLog> {
        validate::key("worker_name", worker)?;
        let row: ExecutionRow = sqlx::query_as(
            "INSERT INTO task_executions (id, worker_name, status, started_at, finished_at, \
                 duration_ms, items_processed, items_failed, results, error) \
             VALUES ($1, $2, $3, $4, NULL, NULL, 0, 0, $5, NULL) \
             RETURNING *",
        )
        .bind(ExecutionId::generate().as_uuid())
        .bind(worker)
        .bind(RunStatus::Running.as_str())
        .bind(started_at)
        .bind(serde_json::Value::Null)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        row.into_entity()
    }

    async fn finish_execution(
        &self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<TaskExecutionLog> {
        outcome.validate()?;
        // duration_ms = whole milliseconds of finished_at - started_at, truncated
        // toward zero like chrono's `num_milliseconds` (epochs are exact numerics).
        let row: Option<ExecutionRow> = sqlx::query_as(
            "UPDATE task_executions SET \
                 status = $2, finished_at = $3, \
                 duration_ms = trunc((EXTRACT(EPOCH FROM $3::timestamptz) \
                     - EXTRACT(EPOCH FROM started_at)) * 1000)::bigint, \
                 items_processed = $4, items_failed = $5, results = $6, error = $7 \
             WHERE id = $1 \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(outcome.status.as_str())
        .bind(outcome.finished_at)
        .bind(outcome.items_processed)
        .bind(outcome.items_failed)
        .bind(&outcome.results)
        .bind(outcome.error.as_deref())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("execution", id))?
            .into_entity()
    }

    async fn list_executions(
        &self,
        worker: Option<&str>,
        max: u32,
    ) -> Result<Vec<TaskExecutionLog>> {
        validate::opt_key("worker_name", worker)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ExecutionRow> = sqlx::query_as(
            "SELECT * FROM task_executions \
             WHERE ($1::text IS NULL OR worker_name = $1) \
             ORDER BY started_at DESC, id DESC \
             LIMIT $2",
        )
        .bind(worker)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        all(rows, ExecutionRow::into_entity)
    }

    async fn delete_executions_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        // Whole months go with their partition (no row-by-row delete, no
        // bloat); what is left before the cutoff is at most one month's
        // partition (and the default one). Maintenance work: the scan pool.
        let (_, rows_dropped): (i32, i64) = sqlx::query_as(
            "SELECT dropped, rows_dropped FROM nexiom_drop_months_before('task_executions', $1)",
        )
        .bind(bound(cutoff))
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        let done = sqlx::query("DELETE FROM task_executions WHERE started_at < $1")
            .bind(bound(cutoff))
            .execute(&self.scan_pool)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM worker_slots WHERE slot < $1")
            .bind(bound(cutoff))
            .execute(&self.scan_pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(rows_dropped).unwrap_or(0) + done.rows_affected())
    }

    async fn claim_worker_slot(
        &self,
        worker: &str,
        slot: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        validate::key("worker_name", worker)?;
        let claimed = sqlx::query(
            "INSERT INTO worker_slots (worker_name, slot, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (worker_name, slot) DO NOTHING",
        )
        .bind(worker)
        .bind(bound(slot))
        .bind(bound(at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(claimed.rows_affected() == 1)
    }
}
