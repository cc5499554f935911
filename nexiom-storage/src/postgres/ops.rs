//! [`OpsStore`] on Postgres: both reads use the scan pool (they span
//! tenants).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::db;
use super::{PgStore, bound};
use crate::error::Result;
use crate::ops::{OpsStore, QueueStats, SchemaStatus, expected_schema_version};

/// The tables partitioned by month (migrations 0022, 0032 and 0033).
const PARTITIONED: [&str; 3] = ["task_executions", "webhook_events", "messages"];

#[async_trait]
impl OpsStore for PgStore {
    async fn schema_status(&self) -> Result<SchemaStatus> {
        // `to_regclass` answers NULL before the first migration instead of
        // failing, so "reachable but not migrated" is told apart.
        let applied: Option<i64> = sqlx::query_scalar(
            "SELECT CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN NULL \
                 ELSE (SELECT max(version) FROM _sqlx_migrations WHERE success) END",
        )
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(SchemaStatus {
            applied,
            expected: expected_schema_version(),
        })
    }

    async fn publish_queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let (due, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(publish_at) FROM scheduled_posts \
             WHERE status = 'queued' AND publish_at <= $1 \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $1)",
        )
        .bind(bound(now))
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(QueueStats {
            due: u64::try_from(due).unwrap_or(0),
            oldest_due_at: oldest,
        })
    }

    async fn prepare_partitions(&self, now: DateTime<Utc>, months_ahead: u32) -> Result<u64> {
        let ahead = now
            .checked_add_months(chrono::Months::new(months_ahead))
            .unwrap_or(now);
        let mut created = 0;
        for table in PARTITIONED {
            let n: i32 = sqlx::query_scalar("SELECT nexiom_month_partitions($1, $2, $3)")
                .bind(table)
                .bind(bound(now))
                .bind(bound(ahead))
                .fetch_one(&self.scan_pool)
                .await
                .map_err(db)?;
            created += u64::try_from(n).unwrap_or(0);
        }
        Ok(created)
    }

    async fn refresh_statistics(&self) -> Result<u64> {
        // One table per transaction (autocommit): `ANALYZE` holds a lock on
        // the table's partitions until its transaction ends, which makes a
        // partition's creation or drop wait. A table whose lock is not
        // granted within 10 s does not stop the others; the first such
        // error is returned once all were tried.
        let mut analyzed = 0;
        let mut failed = None;
        for table in PARTITIONED {
            let done: std::result::Result<bool, _> =
                sqlx::query_scalar("SELECT nexiom_analyze_partitioned($1)")
                    .bind(table)
                    .fetch_one(&self.scan_pool)
                    .await;
            match done {
                Ok(true) => analyzed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(table, error = %e, "statistics not refreshed");
                    failed.get_or_insert(db(e));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(analyzed),
        }
    }

    async fn channels_needing_reauth(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM channels WHERE status = 'needs_reauth'")
                .fetch_one(&self.scan_pool)
                .await
                .map_err(db)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
