//! The batched statements of the publish queue on Postgres: lease
//! heartbeats, run starts and settlements, each one statement over arrays
//! (`UNNEST`) per batch. Claims are in `post_claim.rs`.

use chrono::{DateTime, Utc};
use nexiom_core::{ChannelId, NewPostRun, PostId, PostRun, PostSettlement, PostStatus, TenantId};
use uuid::Uuid;

use super::error::db;
use super::rows::{PostRunRow, all};
use super::{PgStore, bound};
use crate::error::{Result, StorageError};

impl PgStore {
    pub(super) async fn renew_leases(
        &self,
        lease_owner: &str,
        ids: &[PostId],
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = ids.iter().map(PostId::as_uuid).collect();
        // A cross-tenant heartbeat, keyed by the lease owner.
        let done = sqlx::query(
            "UPDATE scheduled_posts SET lease_expires_at = $3 \
             WHERE id = ANY($2) AND status = 'publishing' AND lease_owner = $1",
        )
        .bind(lease_owner)
        .bind(&ids)
        .bind(bound(expires_at))
        .execute(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    pub(super) async fn start_runs(
        &self,
        lease_owner: &str,
        runs: &[NewPostRun],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<PostRun>>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(runs.len());
        let mut tenants = Vec::with_capacity(runs.len());
        let mut posts = Vec::with_capacity(runs.len());
        let mut attempts = Vec::with_capacity(runs.len());
        let mut started = Vec::with_capacity(runs.len());
        for run in runs {
            run.validate()?;
            ids.push(nexiom_core::PostRunId::generate().as_uuid());
            tenants.push(run.tenant_id.as_uuid());
            posts.push(run.post_id.as_uuid());
            attempts.push(i64::from(run.attempt));
            started.push(bound(run.started_at));
        }
        // A post of another tenant (or none) refuses the whole batch; a taken
        // attempt number, or a post no longer under this owner's unexpired
        // lease, only skips its row (the lease test is a CASE for the reason
        // given in `settle`). The statement itself checks each row's (tenant,
        // post), where a foreign key ran one trigger and took one share lock
        // per row (posts are never deleted, so the check stays true); only a
        // batch that started fewer runs than asked looks for the reason,
        // before its transaction commits. A batch of any tenants, keyed by the
        // lease owner: a cross-tenant write.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        let rows: Vec<PostRunRow> = sqlx::query_as(
            "INSERT INTO post_runs (id, tenant_id, post_id, attempt, started_at, finished_at, \
                 status, error) \
             SELECT u.id, u.tenant_id, u.post_id, u.attempt, u.started_at, NULL, 'running', NULL \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::timestamptz[]) \
                 AS u(id, tenant_id, post_id, attempt, started_at) \
             WHERE EXISTS (SELECT 1 FROM scheduled_posts p \
                 WHERE p.id = ANY($3) AND p.id = u.post_id AND p.tenant_id = u.tenant_id \
                     AND CASE WHEN p.status = 'publishing' AND p.lease_owner = $6 \
                         THEN p.lease_expires_at > $7 ELSE false END) \
             ON CONFLICT (post_id, attempt) DO NOTHING \
             RETURNING *",
        )
        .bind(&ids)
        .bind(&tenants)
        .bind(&posts)
        .bind(&attempts)
        .bind(&started)
        .bind(lease_owner)
        .bind(bound(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if rows.len() < runs.len() {
            let unknown: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM UNNEST($1::uuid[], $2::uuid[]) AS u(tenant_id, post_id) \
                 WHERE NOT EXISTS (SELECT 1 FROM scheduled_posts p \
                     WHERE p.id = u.post_id AND p.tenant_id = u.tenant_id)",
            )
            .bind(&tenants)
            .bind(&posts)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if unknown > 0 {
                return Err(StorageError::UnknownReference {
                    entity: "post",
                    id: "one of the batch".to_owned(),
                });
            }
        }
        tx.commit().await.map_err(db)?;
        let mut by_key: std::collections::HashMap<(PostId, u32), PostRun> =
            all(rows, PostRunRow::into_entity)?
                .into_iter()
                .map(|run| ((run.post_id, run.attempt), run))
                .collect();
        Ok(runs
            .iter()
            .map(|new| by_key.remove(&(new.post_id, new.attempt)))
            .collect())
    }

    pub(super) async fn settle(
        &self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        if settlements.is_empty() {
            return Ok(Vec::new());
        }
        let n = settlements.len();
        let mut ids = Vec::with_capacity(n);
        let mut tenants = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut retry_counts: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut next_attempts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut published: Vec<bool> = Vec::with_capacity(n);
        let mut platform_ids: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut urls: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut published_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut next_checks: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut stops: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut run_ids: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut run_statuses: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut run_errors: Vec<Option<&str>> = Vec::with_capacity(n);
        for s in settlements {
            s.validate()?;
            ids.push(s.post_id.as_uuid());
            tenants.push(s.tenant_id.as_uuid());
            statuses.push(s.status.as_str());
            retry_counts.push(s.retry_count.map(i64::from));
            errors.push(s.error_message.as_deref());
            next_attempts.push(s.next_attempt_at.map(bound));
            published.push(s.published.is_some());
            let p = s.published.as_ref();
            platform_ids.push(p.map(|p| p.platform_post_id.as_str()));
            urls.push(p.and_then(|p| p.url.as_deref()));
            published_ats.push(p.map(|p| bound(p.published_at)));
            next_checks.push(p.and_then(|p| p.next_check_at).map(bound));
            stops.push(p.and_then(|p| p.stop_at).map(bound));
            run_ids.push(s.run.as_ref().map(|r| r.run_id.as_uuid()));
            run_statuses.push(s.run.as_ref().map(|r| r.status.as_str()));
            run_errors.push(s.run.as_ref().and_then(|r| r.error.as_deref()));
        }
        // One statement, so one commit: each post is written only while it is
        // still `publishing` under this owner's lease, and its run (and, for a
        // post settled for good, its still-`scheduled` content job) only when
        // the post was. A post published takes over the external post of its
        // channel with its platform id, if a webhook comment or a discovery
        // run recorded one while the publish's outcome was unclear: that
        // post's comments and checkpoint move to it, and the external post is
        // no longer polled (otherwise each comment would be stored and
        // answered twice, once under each). A batch of any tenants, keyed by the lease owner: a
        // cross-tenant write.
        //
        // The posts are reached through their key (`p.id = ANY($2)`, a
        // bitmap scan of the primary key), and the lease test is written as a
        // CASE. Written plainly (`status = 'publishing' AND lease_owner =
        // $1`), it matches the partial lease index, and the statistics,
        // usually gathered while no post was being published, estimate one
        // such row: the generic plan then scanned the batch once per post
        // being published (a nested loop, quadratic in the batch: 62,250 rows
        // filtered to settle 250). Without the key's array, the CASE's default
        // estimate (half the table) chose a sequential scan instead.
        let query = sqlx::query_scalar::<_, Uuid>(
            "WITH u AS ( \
                 SELECT * FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::int8[], \
                     $6::text[], $7::timestamptz[], $8::bool[], $9::text[], $10::text[], \
                     $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::uuid[], \
                     $15::text[], $16::text[]) \
                 AS u(id, tenant_id, status, retry_count, error_message, next_attempt_at, \
                     published, platform_post_id, url, published_at, next_check_at, stop_at, \
                     run_id, run_status, run_error) \
             ), settled AS ( \
                 UPDATE scheduled_posts p SET \
                     status = u.status, \
                     retry_count = COALESCE(u.retry_count, p.retry_count), \
                     error_message = u.error_message, \
                     next_attempt_at = u.next_attempt_at, \
                     platform_post_id = CASE WHEN u.published THEN u.platform_post_id \
                         ELSE p.platform_post_id END, \
                     url = CASE WHEN u.published THEN u.url ELSE p.url END, \
                     published_at = CASE WHEN u.published THEN u.published_at \
                         ELSE p.published_at END, \
                     next_check_at = CASE WHEN u.published THEN u.next_check_at \
                         ELSE p.next_check_at END, \
                     stop_at = CASE WHEN u.published THEN u.stop_at ELSE p.stop_at END, \
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = $17 \
                 FROM u \
                 WHERE p.id = ANY($2) AND p.id = u.id AND p.tenant_id = u.tenant_id \
                     AND CASE WHEN p.status = 'publishing' THEN p.lease_owner = $1 \
                         ELSE false END \
                 RETURNING p.id, p.tenant_id, p.channel_id, p.status, p.content_job_id, \
                     p.platform_post_id, p.published_at, p.error_message \
             ), twin AS ( \
                 SELECT x.id AS external_id, s.id AS post_id, s.tenant_id FROM settled s \
                 JOIN scheduled_posts x ON x.tenant_id = s.tenant_id \
                     AND x.channel_id = s.channel_id AND x.platform_post_id = s.platform_post_id \
                     AND x.origin = 'external' \
                 WHERE s.status = 'published' \
             ), moved AS ( \
                 UPDATE comments c SET post_id = t.post_id FROM twin t \
                 WHERE c.post_id = t.external_id AND c.tenant_id = t.tenant_id \
             ), carried AS ( \
                 UPDATE comment_checkpoints k SET post_id = t.post_id FROM twin t \
                 WHERE k.post_id = t.external_id AND k.tenant_id = t.tenant_id \
                     AND NOT EXISTS (SELECT 1 FROM comment_checkpoints o \
                         WHERE o.post_id = t.post_id) \
             ), retired AS ( \
                 UPDATE scheduled_posts x SET next_check_at = NULL, \
                     stop_at = COALESCE(x.stop_at, $17), updated_at = $17 \
                 FROM twin t WHERE x.id = t.external_id AND x.tenant_id = t.tenant_id \
             ), ended AS ( \
                 UPDATE post_runs r SET \
                     status = u.run_status, error = u.run_error, finished_at = $17 \
                 FROM u JOIN settled s ON s.id = u.id \
                 WHERE r.id = u.run_id AND r.post_id = u.id \
             ), jobs AS ( \
                 UPDATE content_jobs j SET \
                     status = s.status, \
                     platform_post_id = CASE WHEN s.status = 'published' \
                         THEN s.platform_post_id END, \
                     published_at = CASE WHEN s.status = 'published' THEN s.published_at END, \
                     error_message = CASE WHEN s.status = 'failed' THEN s.error_message END, \
                     updated_at = $17 \
                 FROM settled s \
                 WHERE s.status IN ('published', 'failed') \
                     AND j.tenant_id = s.tenant_id AND j.id = s.content_job_id \
                     AND j.status = 'scheduled' AND j.scheduled_post_id = s.id \
             ) \
             SELECT id FROM settled",
        )
        .bind(lease_owner)
        .bind(&ids)
        .bind(&tenants)
        .bind(&statuses)
        .bind(&retry_counts)
        .bind(&errors)
        .bind(&next_attempts)
        .bind(&published)
        .bind(&platform_ids)
        .bind(&urls)
        .bind(&published_ats)
        .bind(&next_checks)
        .bind(&stops)
        .bind(&run_ids)
        .bind(&run_statuses)
        .bind(&run_errors)
        .bind(bound(at));
        if !settlements.iter().any(|s| s.status == PostStatus::Failed) {
            let written = query.fetch_all(&self.scan_pool).await.map_err(db)?;
            return Ok(written.into_iter().map(PostId::from_uuid).collect());
        }
        // A broadcast settled `failed` whose delivery in doubt was shown sent
        // between the pass's count and this write takes the account again,
        // in the same transaction.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        let written = query.fetch_all(&mut *tx).await.map_err(db)?;
        let failed: Vec<Uuid> = settlements
            .iter()
            .filter(|s| s.status == PostStatus::Failed && written.contains(&s.post_id.as_uuid()))
            .map(|s| s.post_id.as_uuid())
            .collect();
        if !failed.is_empty() {
            super::broadcast_delivery::resettle_broadcasts(&mut tx, &failed, at)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(written.into_iter().map(PostId::from_uuid).collect())
    }

    pub(super) async fn hold_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.scoped(tenant).await?;
        let done = sqlx::query(
            "INSERT INTO channel_throttles (channel_id, tenant_id, until) \
             SELECT $2, $1, $3 WHERE EXISTS ( \
                 SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2) \
             ON CONFLICT (channel_id) DO UPDATE \
                 SET until = GREATEST(channel_throttles.until, EXCLUDED.until)",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(bound(until))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StorageError::not_found("channel", channel));
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
