//! [`PostStore`] on Postgres: `scheduled_posts` and `post_runs`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastTemplate, ChannelId, Inserted, NewPostRun, NewScheduledPost,
    PostFilter, PostId, PostPatch, PostRun, PostRunId, PostRunStatus, PostSettlement, PostStatus,
    ScheduledPost, TenantId, validate,
};
use sqlx::types::Json;

use super::error::{Ref, WriteFailure, db, require_refs, write_error};
use super::rows::{PostGuardRow, PostRow, PostRunRow, all};
use super::{PgStore, bound, limit, opt_limit};
use crate::error::{Result, StorageError};
use crate::traits::PostStore;

/// How many times `update_post` re-applies a patch whose guard failed in the
/// statement but holds again when re-read (the row changed in between).
pub(super) const GUARD_ATTEMPTS: usize = 3;

/// The references a new post makes, in the order they are checked.
pub(super) fn post_refs(new: &NewScheduledPost) -> Vec<Ref> {
    let mut refs = vec![Ref::Channel(new.channel_id)];
    refs.extend(new.mission_id.map(Ref::Mission));
    refs.extend(new.content_job_id.map(Ref::ContentJob));
    refs.extend(new.series_id.map(Ref::Post));
    refs
}

/// Why a guard of `patch` does not hold for the stored `guard`, if it does not.
fn guard_mismatch(patch: &PostPatch, guard: &PostGuardRow) -> Option<String> {
    if let Some(expected) = patch.expect_status
        && guard.status != expected.as_str()
    {
        return Some(format!(
            "status is {}, expected {}",
            guard.status,
            expected.as_str()
        ));
    }
    if let Some(expected) = &patch.expect_lease_owner
        && guard.lease_owner.as_deref() != Some(expected.as_str())
    {
        return Some(match &guard.lease_owner {
            Some(owner) => format!("lease is held by {owner:?}, expected {expected:?}"),
            None => format!("no lease is held, expected one held by {expected:?}"),
        });
    }
    None
}

#[async_trait]
impl PostStore for PgStore {
    async fn insert_post(&self, new: NewScheduledPost) -> Result<Inserted<ScheduledPost>> {
        new.validate()?;
        let refs = post_refs(&new);
        let recurrence = new.recurrence.as_ref();
        let mut tx = self.scoped(new.tenant_id).await?;
        let inserted: std::result::Result<Option<PostRow>, _> = sqlx::query_as(
            "INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, rrule, \
                 dtstart, time_zone, series_id, occurrence_at, status, platform_post_id, url, \
                 error_message, retry_count, next_attempt_at, lease_owner, lease_expires_at, \
                 published_at, last_check_at, next_check_at, stop_at, mission_id, \
                 content_job_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', NULL, NULL, NULL, 0, \
                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, $11, $12, $13, $13) \
             ON CONFLICT (series_id, occurrence_at) WHERE series_id IS NOT NULL DO NOTHING \
             RETURNING *",
        )
        .bind(PostId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.channel_id.as_uuid())
        .bind(Json(&new.content))
        .bind(new.publish_at)
        .bind(recurrence.map(|r| r.rrule.as_str()))
        .bind(recurrence.map(|r| r.dtstart))
        .bind(recurrence.map(|r| r.time_zone.name()))
        .bind(new.series_id.map(|s| s.as_uuid()))
        .bind(new.occurrence_at)
        .bind(new.mission_id.map(|m| m.as_uuid()))
        .bind(new.content_job_id.map(|j| j.as_uuid()))
        .bind(new.created_at)
        .fetch_optional(&mut *tx)
        .await;
        match inserted {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::created(row.into_entity()?));
            }
            Ok(None) => {}
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        }
        // The occurrence exists: references first, then the stored occurrence
        // (of the same series, hence of the same tenant).
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        let existing: Option<PostRow> = sqlx::query_as(
            "SELECT * FROM scheduled_posts \
             WHERE tenant_id = $1 AND series_id = $2 AND occurrence_at = $3",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.series_id.map(|s| s.as_uuid()))
        .bind(new.occurrence_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(
                "postgres: the occurrence conflicted with a stored one that cannot be read",
            )),
        }
    }

    async fn get_post(&self, tenant: TenantId, id: PostId) -> Result<ScheduledPost> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<PostRow> =
            sqlx::query_as("SELECT * FROM scheduled_posts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("post", id))?
            .into_entity()
    }

    async fn list_posts(&self, tenant: TenantId, filter: PostFilter) -> Result<Vec<ScheduledPost>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<PostRow> = sqlx::query_as(
            "SELECT * FROM scheduled_posts \
             WHERE tenant_id = $1 \
                 AND ($2::text IS NULL OR status = $2) \
                 AND ($3::uuid IS NULL OR channel_id = $3) \
                 AND ($4::uuid IS NULL OR mission_id = $4) \
                 AND ($5::uuid IS NULL OR series_id = $5) \
                 AND ($6::timestamptz IS NULL OR publish_at >= $6) \
                 AND ($7::timestamptz IS NULL OR publish_at < $7) \
             ORDER BY publish_at, id \
             LIMIT $8",
        )
        .bind(tenant.as_uuid())
        .bind(filter.status.map(PostStatus::as_str))
        .bind(filter.channel_id.map(|c| c.as_uuid()))
        .bind(filter.mission_id.map(|m| m.as_uuid()))
        .bind(filter.series_id.map(|s| s.as_uuid()))
        .bind(filter.from.map(bound))
        .bind(filter.to.map(bound))
        .bind(opt_limit(filter.limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, PostRow::into_entity)
    }

    async fn count_posts(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        statuses: &[PostStatus],
    ) -> Result<u64> {
        if statuses.is_empty() {
            return Ok(0);
        }
        let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
        let mut tx = self.scoped(tenant).await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM scheduled_posts \
             WHERE tenant_id = $1 AND channel_id = $2 AND publish_at >= $3 AND publish_at < $4 \
                 AND status = ANY($5) AND origin = 'scheduled'",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(bound(from))
        .bind(bound(to))
        .bind(statuses)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn replace_series(
        &self,
        old: PostId,
        new: NewScheduledPost,
        broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        self.replace_series_in_one(old, new, broadcast, at).await
    }

    async fn update_post(
        &self,
        tenant: TenantId,
        id: PostId,
        patch: PostPatch,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        patch.validate()?;
        // One statement: every field is set only when the patch names it, and the
        // guards are conditions of the WHERE clause, so a failed guard writes
        // nothing. When no row is updated, a read tells NotFound from
        // Precondition.
        fn set<T>(field: &Option<Option<T>>) -> (bool, Option<&T>) {
            match field {
                Some(value) => (true, value.as_ref()),
                None => (false, None),
            }
        }
        let (set_post_id, post_id) = set(&patch.platform_post_id);
        let (set_url, url) = set(&patch.url);
        let (set_error, error_message) = set(&patch.error_message);
        let (set_next_attempt, next_attempt_at) = set(&patch.next_attempt_at);
        let (set_published, published_at) = set(&patch.published_at);
        let (set_last_check, last_check_at) = set(&patch.last_check_at);
        let (set_next_check, next_check_at) = set(&patch.next_check_at);
        let (set_stop, stop_at) = set(&patch.stop_at);
        let mut tx = self.scoped(tenant).await?;
        for _ in 0..GUARD_ATTEMPTS {
            let updated: Option<PostRow> = sqlx::query_as(
                "UPDATE scheduled_posts SET \
                     status = COALESCE($3, status), \
                     content = COALESCE($4, content), \
                     publish_at = COALESCE($5, publish_at), \
                     platform_post_id = CASE WHEN $6 THEN $7 ELSE platform_post_id END, \
                     url = CASE WHEN $8 THEN $9 ELSE url END, \
                     error_message = CASE WHEN $10 THEN $11 ELSE error_message END, \
                     retry_count = COALESCE($12, retry_count), \
                     next_attempt_at = CASE WHEN $13 THEN $14 ELSE next_attempt_at END, \
                     lease_owner = CASE WHEN $15 THEN NULL ELSE lease_owner END, \
                     lease_expires_at = CASE WHEN $15 THEN NULL ELSE lease_expires_at END, \
                     published_at = CASE WHEN $16 THEN $17 ELSE published_at END, \
                     last_check_at = CASE WHEN $18 THEN $19 ELSE last_check_at END, \
                     next_check_at = CASE WHEN $20 THEN $21 ELSE next_check_at END, \
                     stop_at = CASE WHEN $22 THEN $23 ELSE stop_at END, \
                     updated_at = $24 \
                 WHERE tenant_id = $1 AND id = $2 \
                     AND ($25::text IS NULL OR status = $25) \
                     AND ($26::text IS NULL OR lease_owner = $26) \
                 RETURNING *",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(patch.status.map(PostStatus::as_str))
            .bind(patch.content.as_ref().map(Json))
            .bind(patch.publish_at)
            .bind(set_post_id)
            .bind(post_id)
            .bind(set_url)
            .bind(url)
            .bind(set_error)
            .bind(error_message)
            .bind(patch.retry_count.map(i64::from))
            .bind(set_next_attempt)
            .bind(next_attempt_at)
            .bind(patch.release_lease)
            .bind(set_published)
            .bind(published_at)
            .bind(set_last_check)
            .bind(last_check_at)
            .bind(set_next_check)
            .bind(next_check_at)
            .bind(set_stop)
            .bind(stop_at)
            .bind(at)
            .bind(patch.expect_status.map(PostStatus::as_str))
            .bind(patch.expect_lease_owner.as_deref())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(row) = updated {
                tx.commit().await.map_err(db)?;
                return row.into_entity();
            }
            let guard: Option<PostGuardRow> = sqlx::query_as(
                "SELECT status, lease_owner FROM scheduled_posts \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(guard) = guard else {
                return Err(StorageError::not_found("post", id));
            };
            if let Some(reason) = guard_mismatch(&patch, &guard) {
                return Err(StorageError::precondition("post", id, reason));
            }
            // The guards hold now: the post changed between the two statements.
        }
        Err(StorageError::precondition(
            "post",
            id,
            "the post kept changing while the patch was applied",
        ))
    }

    async fn claim_due_posts(
        &self,
        now: DateTime<Utc>,
        max: u32,
        lease_owner: &str,
        lease: Duration,
    ) -> Result<Vec<ScheduledPost>> {
        self.claim_posts(now, max, lease_owner, lease).await
    }

    async fn renew_post_leases(
        &self,
        lease_owner: &str,
        ids: &[PostId],
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        self.renew_leases(lease_owner, ids, expires_at).await
    }

    async fn settle_posts(
        &self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        self.settle(lease_owner, settlements, at).await
    }

    async fn throttle_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        until: DateTime<Utc>,
    ) -> Result<()> {
        self.hold_channel(tenant, channel, until).await
    }

    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64> {
        // A cross-tenant scan. One statement: the posts taken back and their
        // runs left `running` are closed together, or neither is.
        let released: i64 = sqlx::query_scalar(
            "WITH released AS ( \
                 UPDATE scheduled_posts SET \
                     status = 'queued', lease_owner = NULL, lease_expires_at = NULL, \
                     updated_at = $1 \
                 WHERE status = 'publishing' AND lease_expires_at < $1 \
                 RETURNING id \
             ), closed AS ( \
                 UPDATE post_runs SET status = 'failed', finished_at = $1, error = $2 \
                 WHERE status = 'running' AND post_id IN (SELECT id FROM released) \
             ) \
             SELECT count(*) FROM released",
        )
        .bind(bound(now))
        .bind(crate::STALE_RUN_ERROR)
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn list_posts_due_for_polling(
        &self,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<ScheduledPost>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant scan.
        let rows: Vec<PostRow> = sqlx::query_as(
            "SELECT * FROM scheduled_posts \
             WHERE status = 'published' AND next_check_at <= $1 \
                 AND (stop_at IS NULL OR last_check_at IS NULL OR last_check_at < stop_at) \
                 AND channel_id NOT IN (SELECT id FROM channels WHERE status <> 'active') \
                 AND channel_id NOT IN ( \
                     SELECT channel_id FROM channel_throttles WHERE until > $1) \
             ORDER BY next_check_at, id \
             LIMIT $2",
        )
        .bind(bound(now))
        .bind(limit(max))
        .fetch_all(&self.scan_pool)
        .await
        .map_err(db)?;
        all(rows, PostRow::into_entity)
    }

    async fn insert_post_run(&self, new: NewPostRun) -> Result<PostRun> {
        new.validate()?;
        let refs = [Ref::Post(new.post_id)];
        let mut tx = self.scoped(new.tenant_id).await?;
        // The statement checks the post (no foreign key: see
        // `insert_post_runs`); a post it cannot see is named by the lookup.
        let result: std::result::Result<Option<PostRunRow>, _> = sqlx::query_as(
            "INSERT INTO post_runs (id, tenant_id, post_id, attempt, started_at, finished_at, \
                 status, error) \
             SELECT $1, $2, $3, $4, $5, NULL, 'running', NULL \
             WHERE EXISTS (SELECT 1 FROM scheduled_posts WHERE tenant_id = $2 AND id = $3) \
             RETURNING *",
        )
        .bind(PostRunId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.post_id.as_uuid())
        .bind(i64::from(new.attempt))
        .bind(new.started_at)
        .fetch_optional(&mut *tx)
        .await;
        match result {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Ok(None) => {
                require_refs(&mut *tx, new.tenant_id, &refs).await?;
                Err(StorageError::unknown("post", new.post_id))
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: Some((
                            "post_run",
                            format!("post {} and attempt {}", new.post_id, new.attempt),
                        )),
                    },
                )
                .await)
            }
        }
    }

    async fn insert_post_runs(
        &self,
        lease_owner: &str,
        runs: &[NewPostRun],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<PostRun>>> {
        self.start_runs(lease_owner, runs, now).await
    }

    async fn finish_post_run(
        &self,
        tenant: TenantId,
        id: PostRunId,
        status: PostRunStatus,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<PostRun> {
        validate::opt_text("error", error.as_deref())?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<PostRunRow> = sqlx::query_as(
            "UPDATE post_runs SET status = $3, error = $4, finished_at = $5 \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .bind(error.as_deref())
        .bind(finished_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("post_run", id))?
            .into_entity()
    }

    async fn list_post_runs(&self, tenant: TenantId, post: PostId) -> Result<Vec<PostRun>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<PostRunRow> = sqlx::query_as(
            "SELECT * FROM post_runs WHERE tenant_id = $1 AND post_id = $2 \
             ORDER BY attempt, id",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, PostRunRow::into_entity)
    }
}
