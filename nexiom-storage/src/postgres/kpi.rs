//! [`KpiStore`] on Postgres: `kpi_2h`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Kpi2h, KpiWindow, TenantId};

use super::error::{WriteFailure, db, require_refs, write_error};
use super::rows::KpiRow;
use super::{PgStore, bound};
use crate::error::Result;
use crate::traits::KpiStore;

/// The KPI aggregation of `recompute_kpis`, one statement. Binds: `$1` tenant,
/// `$2` window starts and `$3` window ends (sorted, non-overlapping), `$4`
/// `computed_at`, `$5` the first start and `$6` the last end.
///
/// Each item finds its window with `width_bucket` over the starts (a binary
/// search) and is kept when it falls before that window's end (windows may leave
/// gaps). Waits come from one pass over the tenant's messages since `$5`,
/// partitioned by conversation and ordered latest first: `lead` gives the
/// message just before (looked up by index for the earliest message of each
/// conversation in the scan, whose predecessor is older than `$5`), and a
/// running `min` over the later rows gives the next outbound time. The
/// arithmetic matches `nexiom_core::compute_kpis` bit for bit (see its docs).
///
/// Decisions are found per item through the unique `(subject_kind, subject_id)`
/// index; the `LATERAL … LIMIT 1` (the key is unique, so it changes nothing)
/// keeps the planner from hash-joining against every tenant's decisions.
const RECOMPUTE_KPIS: &str = r"
WITH w AS (
    SELECT t.window_start, t.window_end, t.b::int AS b
    FROM unnest($2::timestamptz[], $3::timestamptz[])
        WITH ORDINALITY AS t (window_start, window_end, b)
),
inbound_stats AS (
    SELECT w.b, count(*) AS messages_count
    FROM messages m
    JOIN w ON w.b = width_bucket(m.created_at, $2::timestamptz[])
          AND m.created_at < w.window_end
    WHERE m.tenant_id = $1 AND m.direction = 'inbound'
      AND m.created_at >= $5 AND m.created_at < $6
    GROUP BY w.b
),
seq AS (
    SELECT m.id, m.conversation_id, m.direction, m.created_at,
           lead(m.direction) OVER later_first AS previous_direction,
           min(m.created_at) FILTER (WHERE m.direction = 'outbound')
               OVER (later_first ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
               AS reply_at
    FROM messages m
    WHERE m.tenant_id = $1 AND m.created_at >= $5
    WINDOW later_first AS (PARTITION BY m.conversation_id
                           ORDER BY m.created_at DESC, m.id DESC)
),
waits AS (
    SELECT s.created_at,
           extract(epoch FROM s.reply_at - s.created_at)::float8 AS wait
    FROM seq s
    WHERE s.direction = 'inbound' AND s.created_at < $6 AND s.reply_at IS NOT NULL
      AND COALESCE(
            s.previous_direction,
            (SELECT p.direction FROM messages p
             WHERE p.conversation_id = s.conversation_id
               AND (p.created_at, p.id) < (s.created_at, s.id)
             ORDER BY p.created_at DESC, p.id DESC
             LIMIT 1),
            'outbound') = 'outbound'
),
wait_stats AS (
    SELECT w.b, percentile_cont(0.5) WITHIN GROUP (ORDER BY x.wait) AS p50
    FROM waits x
    JOIN w ON w.b = width_bucket(x.created_at, $2::timestamptz[])
          AND x.created_at < w.window_end
    GROUP BY w.b
),
comment_stats AS (
    SELECT w.b, count(*) AS comments_count, count(DISTINCT c.post_id) AS posts_active
    FROM comments c
    JOIN w ON w.b = width_bucket(c.created_at, $2::timestamptz[])
          AND c.created_at < w.window_end
    WHERE c.tenant_id = $1 AND c.created_at >= $5 AND c.created_at < $6
    GROUP BY w.b
),
decided AS (
    SELECT d.triage, m.created_at
    FROM messages m
    CROSS JOIN LATERAL (
        SELECT d.triage FROM ai_decisions d
        WHERE d.subject_kind = 'message' AND d.subject_id = m.id
        LIMIT 1) d
    WHERE m.tenant_id = $1 AND m.created_at >= $5 AND m.created_at < $6
    UNION ALL
    SELECT d.triage, c.created_at
    FROM comments c
    CROSS JOIN LATERAL (
        SELECT d.triage FROM ai_decisions d
        WHERE d.subject_kind = 'comment' AND d.subject_id = c.id
        LIMIT 1) d
    WHERE c.tenant_id = $1 AND c.created_at >= $5 AND c.created_at < $6
),
decision_stats AS (
    SELECT w.b, count(*) AS total,
           count(*) FILTER (WHERE x.triage = 'auto_reply') AS auto_replies,
           count(*) FILTER (WHERE x.triage = 'escalate') AS escalations,
           count(*) FILTER (WHERE x.triage = 'ignore') AS ignored
    FROM decided x
    JOIN w ON w.b = width_bucket(x.created_at, $2::timestamptz[])
          AND x.created_at < w.window_end
    GROUP BY w.b
)
INSERT INTO kpi_2h (tenant_id, window_start, window_end, messages_count,
    comments_count, frt_p50_seconds, auto_reply_rate, escalate_count,
    ignored_count, posts_active, computed_at)
SELECT $1, w.window_start, w.window_end,
       COALESCE(i.messages_count, 0),
       COALESCE(cs.comments_count, 0),
       floor(ws.p50 + 0.5)::bigint,
       ((2000 * ds.auto_replies + ds.total) / (2 * ds.total))::float8 / 1000,
       COALESCE(ds.escalations, 0),
       COALESCE(ds.ignored, 0),
       COALESCE(cs.posts_active, 0),
       $4
FROM w
LEFT JOIN inbound_stats i ON i.b = w.b
LEFT JOIN wait_stats ws ON ws.b = w.b
LEFT JOIN comment_stats cs ON cs.b = w.b
LEFT JOIN decision_stats ds ON ds.b = w.b
ON CONFLICT (tenant_id, window_start) DO UPDATE SET
    window_end = EXCLUDED.window_end,
    messages_count = EXCLUDED.messages_count,
    comments_count = EXCLUDED.comments_count,
    frt_p50_seconds = EXCLUDED.frt_p50_seconds,
    auto_reply_rate = EXCLUDED.auto_reply_rate,
    escalate_count = EXCLUDED.escalate_count,
    ignored_count = EXCLUDED.ignored_count,
    posts_active = EXCLUDED.posts_active,
    computed_at = EXCLUDED.computed_at
RETURNING *
";

/// `kpi_activity`: the quarter hours of what changed since `$2` (see the
/// trait). Binds: `$1` tenant, `$2` since.
const KPI_ACTIVITY: &str = r"
WITH recent AS MATERIALIZED (
    SELECT m.id, m.conversation_id, m.direction, m.created_at
    FROM messages m
    WHERE m.tenant_id = $1 AND m.created_at >= $2
),
touched AS (
    SELECT r.created_at FROM recent r
    UNION ALL
    SELECT n.created_at
    FROM recent r
    CROSS JOIN LATERAL (
        SELECT p.created_at FROM messages p
        WHERE p.conversation_id = r.conversation_id
          AND (p.created_at, p.id) > (r.created_at, r.id)
        ORDER BY p.created_at, p.id
        LIMIT 1) n
    UNION ALL
    SELECT i.created_at
    FROM recent o
    LEFT JOIN LATERAL (
        SELECT p.created_at, p.id FROM messages p
        WHERE p.conversation_id = o.conversation_id AND p.direction = 'outbound'
          AND (p.created_at, p.id) < (o.created_at, o.id)
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT 1) prev ON true
    JOIN messages i ON i.conversation_id = o.conversation_id AND i.direction = 'inbound'
         AND (i.created_at, i.id) < (o.created_at, o.id)
         AND (prev.id IS NULL OR (i.created_at, i.id) > (prev.created_at, prev.id))
    WHERE o.direction = 'outbound'
    UNION ALL
    SELECT c.created_at FROM comments c
    WHERE c.tenant_id = $1 AND c.created_at >= $2
    UNION ALL
    SELECT COALESCE(m.created_at, c.created_at)
    FROM ai_decisions d
    LEFT JOIN messages m ON d.subject_kind = 'message' AND m.id = d.subject_id
    LEFT JOIN comments c ON d.subject_kind = 'comment' AND c.id = d.subject_id
    WHERE d.tenant_id = $1 AND d.created_at >= $2
)
SELECT DISTINCT to_timestamp(floor(extract(epoch FROM t.created_at) / 900) * 900) AS q
FROM touched t
WHERE t.created_at IS NOT NULL
ORDER BY q
";

#[async_trait]
impl KpiStore for PgStore {
    async fn kpi_activity(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let mut tx = self.scoped(tenant).await?;
        require_refs(&mut *tx, tenant, &[]).await?;
        let quarters: Vec<DateTime<Utc>> = sqlx::query_scalar(KPI_ACTIVITY)
            .bind(tenant.as_uuid())
            .bind(bound(since))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
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
        let mut tx = self.scoped(tenant).await?;
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            // Nothing to compute; still answer for an unknown tenant.
            require_refs(&mut *tx, tenant, &[]).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        };
        let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.start).collect();
        let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.end).collect();
        let result: std::result::Result<Vec<KpiRow>, _> = sqlx::query_as(RECOMPUTE_KPIS)
            .bind(tenant.as_uuid())
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
