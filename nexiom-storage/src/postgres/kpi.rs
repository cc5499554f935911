//! [`KpiStore`] on Postgres: `kpi_2h`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Kpi2h, KpiWindow, TenantId};

use super::error::{WriteFailure, db, require_refs, write_error};
use super::kpi_sql::{KPI_ACTIVITY, RECOMPUTE_KPIS};
use super::rows::KpiRow;
use super::{PgStore, bound};
use crate::error::{Result, StorageError};
use crate::traits::KpiStore;
use uuid::Uuid;

/// The settings of a KPI statement's transaction: compiling it (JIT) costs
/// more than it saves at these sizes, and a generic plan (what a prepared
/// statement falls back to) cannot see how many windows and rows the arrays
/// hold. Set in the `BEGIN` round trip.
const PLAN_SETTINGS: &str = "set_config('jit', 'off', true), \
     set_config('plan_cache_mode', 'force_custom_plan', true)";

/// Takes, until the transaction ends, the KPI lock of each tenant (in one
/// order, so two callers never wait on each other in a cycle). Two
/// recomputations of one tenant's rows then run one after the other, and the
/// second's statement, which takes its snapshot after the lock, sees all the
/// first one saw: a slower run started earlier can no longer overwrite a
/// later run's rows with figures from an older snapshot. A tenant's lock is
/// one of [`KPI_LOCKS`], by a hash of its id, so a call over the thousands
/// of tenants of a time zone holds at most that many locks (each takes a
/// slot of the server's shared lock table until commit).
async fn lock_tenants_kpis(
    conn: &mut sqlx::PgConnection,
    tenants: &[Uuid],
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('nexiom:kpi:' || b::text, 0)) \
         FROM (SELECT DISTINCT hashtext(t::text) & ($2 - 1) AS b \
               FROM unnest($1::uuid[]) AS u(t) ORDER BY b) AS s",
    )
    .bind(tenants)
    .bind(KPI_LOCKS)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many KPI locks tenants share (a power of two).
pub(super) const KPI_LOCKS: i32 = 64;

impl PgStore {
    /// [`PgStore::scoped`] with [`PLAN_SETTINGS`], in one round trip.
    async fn scoped_kpi(&self, tenant: TenantId) -> Result<super::Scoped> {
        // A UUID's text form is hex and dashes: nothing to escape.
        self.pool
            .begin_with(format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SELECT set_config('nexiom.tenant_id', '{}', true), {PLAN_SETTINGS}",
                tenant.as_uuid()
            ))
            .await
            .map_err(db)
    }
}

#[async_trait]
impl KpiStore for PgStore {
    async fn kpi_activity(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let mut tx = self.scoped(tenant).await?;
        let quarters: Vec<DateTime<Utc>> = sqlx::query_scalar(KPI_ACTIVITY)
            .bind(tenant.as_uuid())
            .bind(bound(since))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if quarters.is_empty() {
            // Nothing changed, or no such tenant: only then is it asked.
            require_refs(&mut *tx, tenant, &[]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(quarters)
    }

    async fn recompute_kpis(
        &self,
        tenant: TenantId,
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        KpiWindow::validate_list(windows)?;
        let mut tx = self.scoped_kpi(tenant).await?;
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            // Nothing to compute; still answer for an unknown tenant.
            require_refs(&mut *tx, tenant, &[]).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        };
        let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.start).collect();
        let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.end).collect();
        lock_tenants_kpis(&mut tx, &[tenant.as_uuid()])
            .await
            .map_err(db)?;
        let result: std::result::Result<Vec<KpiRow>, _> = sqlx::query_as(RECOMPUTE_KPIS)
            .bind(vec![tenant.as_uuid()])
            .bind(&starts)
            .bind(&ends)
            .bind(computed_at)
            .bind(first.start)
            .bind(last.end)
            .fetch_all(&mut *tx)
            .await;
        match result {
            Ok(rows) => {
                tx.commit().await.map_err(db)?;
                let mut rows: Vec<Kpi2h> = rows.into_iter().map(KpiRow::into_entity).collect();
                rows.sort_by_key(|r| r.window_start);
                Ok(rows)
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &[],
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn recompute_kpis_for(
        &self,
        tenants: &[TenantId],
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        KpiWindow::validate_list(windows)?;
        // Each tenant once: a repeated id would make the upsert hit one row
        // twice, which PostgreSQL refuses.
        let mut ids: Vec<Uuid> = tenants.iter().map(TenantId::as_uuid).collect();
        ids.sort_unstable();
        ids.dedup();
        // A cross-tenant statement: on the scan pool.
        let mut tx = self
            .scan_pool()
            .begin_with(format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT {PLAN_SETTINGS}"
            ))
            .await
            .map_err(db)?;
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let distinct: std::collections::HashSet<&Uuid> = ids.iter().collect();
        if usize::try_from(known).unwrap_or(0) != distinct.len() {
            return Err(StorageError::unknown("tenant", "one of the tenants"));
        }
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Ok(Vec::new());
        };
        let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.start).collect();
        let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.end).collect();
        lock_tenants_kpis(&mut tx, &ids).await.map_err(db)?;
        let rows: Vec<KpiRow> = sqlx::query_as(RECOMPUTE_KPIS)
            .bind(&ids)
            .bind(&starts)
            .bind(&ends)
            .bind(computed_at)
            .bind(first.start)
            .bind(last.end)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let order: std::collections::HashMap<Uuid, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut rows: Vec<Kpi2h> = rows.into_iter().map(KpiRow::into_entity).collect();
        rows.sort_by_key(|r| {
            (
                order
                    .get(&r.tenant_id.as_uuid())
                    .copied()
                    .unwrap_or(usize::MAX),
                r.window_start,
            )
        });
        Ok(rows)
    }

    async fn upsert_kpi(&self, row: Kpi2h) -> Result<Kpi2h> {
        row.validate()?;
        let mut tx = self.scoped(row.tenant_id).await?;
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
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(stored) => {
                tx.commit().await.map_err(db)?;
                Ok(stored.into_entity())
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(row.tenant_id),
                        refs: &[],
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<KpiRow> = sqlx::query_as(
            "SELECT * FROM kpi_2h \
             WHERE tenant_id = $1 AND window_start >= $2 AND window_start < $3 \
             ORDER BY window_start DESC",
        )
        .bind(tenant.as_uuid())
        .bind(bound(from))
        .bind(bound(to))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(KpiRow::into_entity).collect())
    }
}
