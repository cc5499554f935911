//! [`KpiStore`] on Postgres: `kpi_2h`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Kpi2h, TenantId};

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use super::rows::KpiRow;
use crate::error::Result;
use crate::traits::KpiStore;

#[async_trait]
impl KpiStore for PgStore {
    async fn upsert_kpi(&self, row: Kpi2h) -> Result<Kpi2h> {
        row.validate()?;
        let result: std::result::Result<KpiRow, _> = sqlx::query_as(
            "INSERT INTO kpi_2h (tenant_id, window_start, window_end, messages_count, \
                 comments_count, frt_p50_seconds, auto_reply_rate, escalate_count, \
                 ignored_count, posts_active, computed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (tenant_id, window_start) DO UPDATE SET \
                 window_end = EXCLUDED.window_end, \
                 messages_count = EXCLUDED.messages_count, \
                 comments_count = EXCLUDED.comments_count, \
                 frt_p50_seconds = EXCLUDED.frt_p50_seconds, \
                 auto_reply_rate = EXCLUDED.auto_reply_rate, \
                 escalate_count = EXCLUDED.escalate_count, \
                 ignored_count = EXCLUDED.ignored_count, \
                 posts_active = EXCLUDED.posts_active, \
                 computed_at = EXCLUDED.computed_at \
             RETURNING *",
        )
        .bind(row.tenant_id.as_uuid())
        .bind(row.window_start)
        .bind(row.window_end)
        .bind(row.messages_count)
        .bind(row.comments_count)
        .bind(row.frt_p50_seconds)
        .bind(row.auto_reply_rate)
        .bind(row.escalate_count)
        .bind(row.ignored_count)
        .bind(row.posts_active)
        .bind(row.computed_at)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(stored) => Ok(stored.into_entity()),
            Err(err) => Err(write_error(
                &self.pool,
                err,
                WriteFailure {
                    tenant: Some(row.tenant_id),
                    refs: &[],
                    conflict: None,
                },
            )
            .await),
        }
    }

    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        let rows: Vec<KpiRow> = sqlx::query_as(
            "SELECT * FROM kpi_2h \
             WHERE tenant_id = $1 AND window_start >= $2 AND window_start < $3 \
             ORDER BY window_start DESC",
        )
        .bind(tenant.as_uuid())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(KpiRow::into_entity).collect())
    }
}
