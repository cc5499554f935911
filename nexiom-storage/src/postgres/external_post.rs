//! [`ExternalPostStore`] on Postgres: external posts are `scheduled_posts`
//! rows of origin `external`, unique by `(tenant_id, channel_id,
//! platform_post_id)` (a partial unique index), so concurrent routers, pollers
//! and discovery runs create each at most once (`ON CONFLICT DO NOTHING`);
//! discovery settings are `post_discovery` rows.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, Content, DiscoveredPost, DiscoveryOutcome, DiscoveryRun, Inserted, PostDiscovery,
    PostId, ScheduledPost, TenantId, validate_recent_posts,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::error::{Ref, WriteFailure, corrupt, db, require_refs, write_error};
use super::rows::PostRow;
use super::{PgStore, bound, limit};
use crate::error::Result;
use crate::external_posts::ExternalPostStore;
use crate::poll_batch::poll_lease;

/// The columns of a new external post after `id, tenant_id, channel_id`.
const EXTERNAL_COLUMNS: &str = "content, publish_at, status, origin, platform_post_id, url, \
     retry_count, published_at, next_check_at, stop_at, created_at, updated_at";

/// `post_discovery`.
#[derive(Debug, sqlx::FromRow)]
struct DiscoveryRow {
    channel_id: Uuid,
    tenant_id: Uuid,
    recent_posts: i64,
    next_run_at: DateTime<Utc>,
    last_run_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DiscoveryRow {
    fn into_entity(self) -> Result<PostDiscovery> {
        Ok(PostDiscovery {
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            recent_posts: u32::try_from(self.recent_posts)
                .map_err(|e| corrupt("recent_posts", e))?,
            next_run_at: self.next_run_at,
            last_run_at: self.last_run_at,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A discovery run's posts as parallel arrays, with each post's polling
/// (`next_check_at` only while inside the window).
struct Listed {
    ids: Vec<Uuid>,
    pids: Vec<String>,
    urls: Vec<Option<String>>,
    contents: Vec<Json<Content>>,
    published: Vec<Option<DateTime<Utc>>>,
    next_checks: Vec<Option<DateTime<Utc>>>,
    stops: Vec<DateTime<Utc>>,
}

impl Listed {
    fn of(run: &DiscoveryRun) -> Listed {
        let n = run.posts.len();
        let mut listed = Listed {
            ids: Vec::with_capacity(n),
            pids: Vec::with_capacity(n),
            urls: Vec::with_capacity(n),
            contents: Vec::with_capacity(n),
            published: Vec::with_capacity(n),
            next_checks: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
        };
        for post in &run.posts {
            let stop = run.stop_at(post.published_at);
            listed.ids.push(PostId::generate().as_uuid());
            listed.pids.push(post.platform_post_id.clone());
            listed.urls.push(post.url.clone());
            listed
                .contents
                .push(Json(Content::text(post.text.clone().unwrap_or_default())));
            listed.published.push(post.published_at.map(bound));
            listed
                .next_checks
                .push((run.at < stop).then_some(bound(run.at)));
            listed.stops.push(bound(stop));
        }
        listed
    }
}

/// The listed posts, one row per platform id (its first listing), as SQL.
const LISTED: &str = "SELECT DISTINCT ON (pid) * FROM unnest($3::uuid[], $4::text[], \
         $5::text[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[]) \
         WITH ORDINALITY AS l (id, pid, url, content, published_at, next_check_at, stop_at, ord) \
     ORDER BY pid, ord";

#[async_trait]
impl ExternalPostStore for PgStore {
    async fn find_post_by_platform_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        platform_post_id: &str,
    ) -> Result<Option<ScheduledPost>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<PostRow> = sqlx::query_as(
            "SELECT * FROM scheduled_posts \
             WHERE tenant_id = $1 AND channel_id = $2 AND platform_post_id = $3 \
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(platform_post_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(PostRow::into_entity).transpose()
    }

    async fn insert_external_post(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        post: DiscoveredPost,
        at: DateTime<Utc>,
    ) -> Result<Inserted<ScheduledPost>> {
        post.validate()?;
        let mut tx = self.scoped(tenant).await?;
        require_refs(&mut *tx, tenant, &[Ref::Channel(channel)]).await?;
        let inserted: Option<PostRow> = sqlx::query_as(&format!(
            "INSERT INTO scheduled_posts (id, tenant_id, channel_id, {EXTERNAL_COLUMNS}) \
             SELECT $1, $2, $3, $5, $6, 'published', 'external', $4, $7, 0, $8, NULL, NULL, \
                 $9, $9 \
             WHERE NOT EXISTS (SELECT 1 FROM scheduled_posts p \
                 WHERE p.tenant_id = $2 AND p.channel_id = $3 AND p.platform_post_id = $4) \
             ON CONFLICT (tenant_id, channel_id, platform_post_id) WHERE origin = 'external' \
                 DO NOTHING \
             RETURNING *"
        ))
        .bind(PostId::generate().as_uuid())
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(&post.platform_post_id)
        .bind(Json(Content::text(post.text.clone().unwrap_or_default())))
        .bind(bound(post.published_at.unwrap_or(at)))
        .bind(&post.url)
        .bind(post.published_at.map(bound))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if let Some(row) = inserted {
            return Ok(Inserted::created(row.into_entity()?));
        }
        // A post of the channel has the id (created before, or concurrently).
        self.find_post_by_platform_id(tenant, channel, &post.platform_post_id)
            .await?
            .map(Inserted::existing)
            .ok_or_else(|| {
                crate::StorageError::backend(
                    "postgres: the external post conflicted with a post that cannot be read",
                )
            })
    }

    async fn set_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recent_posts: u32,
        at: DateTime<Utc>,
    ) -> Result<PostDiscovery> {
        validate_recent_posts(recent_posts)?;
        let refs = [Ref::Channel(channel)];
        let mut tx = self.scoped(tenant).await?;
        // The channel must be the tenant's before anything is written: the
        // foreign key checks only a row inserted, never the `DO UPDATE` of
        // a row already there, which would be another tenant's discovery of
        // its own channel. The WHERE keeps that row untouched all the same.
        require_refs(&mut *tx, tenant, &refs).await?;
        let row: std::result::Result<DiscoveryRow, _> = sqlx::query_as(
            "INSERT INTO post_discovery (channel_id, tenant_id, recent_posts, next_run_at, \
                 last_run_at, last_error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, NULL, $4, $4) \
             ON CONFLICT (channel_id) DO UPDATE SET recent_posts = EXCLUDED.recent_posts, \
                 next_run_at = EXCLUDED.next_run_at, updated_at = EXCLUDED.updated_at \
             WHERE post_discovery.tenant_id = EXCLUDED.tenant_id \
             RETURNING *",
        )
        .bind(channel.as_uuid())
        .bind(tenant.as_uuid())
        .bind(i64::from(recent_posts))
        .bind(bound(at))
        .fetch_one(&mut *tx)
        .await;
        match row {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn get_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Option<PostDiscovery>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<DiscoveryRow> =
            sqlx::query_as("SELECT * FROM post_discovery WHERE tenant_id = $1 AND channel_id = $2")
                .bind(tenant.as_uuid())
                .bind(channel.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(DiscoveryRow::into_entity).transpose()
    }

    async fn clear_post_discovery(&self, tenant: TenantId, channel: ChannelId) -> Result<bool> {
        let mut tx = self.scoped(tenant).await?;
        let done =
            sqlx::query("DELETE FROM post_discovery WHERE tenant_id = $1 AND channel_id = $2")
                .bind(tenant.as_uuid())
                .bind(channel.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_post_discoveries(
        &self,
        now: DateTime<Utc>,
        max: u32,
        lease: Duration,
    ) -> Result<Vec<PostDiscovery>> {
        let until = poll_lease(now, lease)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant claim: the due rows, locked (another claimer skips
        // them), move to the end of the lease.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        let rows: Vec<(DateTime<Utc>, Uuid)> = sqlx::query_as(
            "WITH due AS ( \
                 SELECT channel_id, next_run_at FROM post_discovery \
                 WHERE next_run_at <= $1 \
                     AND channel_id NOT IN ( \
                         SELECT channel_id FROM channel_throttles WHERE until > $1) \
                 ORDER BY next_run_at, channel_id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED \
             ) \
             UPDATE post_discovery d SET next_run_at = $3 \
             FROM due WHERE d.channel_id = due.channel_id \
             RETURNING due.next_run_at, d.channel_id",
        )
        .bind(bound(now))
        .bind(limit(max))
        .bind(bound(until))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut order = rows;
        order.sort();
        let ids: Vec<Uuid> = order.iter().map(|(_, id)| *id).collect();
        let claimed: Vec<DiscoveryRow> =
            sqlx::query_as("SELECT * FROM post_discovery WHERE channel_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut claimed = claimed
            .into_iter()
            .map(DiscoveryRow::into_entity)
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|d| ids.iter().position(|id| *id == d.channel_id.as_uuid()));
        Ok(claimed)
    }

    async fn record_discovery(&self, run: DiscoveryRun) -> Result<DiscoveryOutcome> {
        run.validate()?;
        let (tenant, channel) = (run.tenant_id, run.channel_id);
        let listed = Listed::of(&run);
        let mut tx = self.scoped(tenant).await?;
        require_refs(&mut *tx, tenant, &[Ref::Channel(channel)]).await?;
        // New posts: the listed ids no post of the channel has (a concurrent
        // creator of the same id wins; this one then skips it).
        let created: Vec<bool> = sqlx::query_scalar(&format!(
            "WITH listed AS ({LISTED}) \
             INSERT INTO scheduled_posts (id, tenant_id, channel_id, {EXTERNAL_COLUMNS}) \
             SELECT l.id, $1, $2, l.content, COALESCE(l.published_at, $10), 'published', \
                 'external', l.pid, l.url, 0, l.published_at, l.next_check_at, l.stop_at, \
                 $10, $10 \
             FROM listed l \
             WHERE NOT EXISTS (SELECT 1 FROM scheduled_posts p \
                 WHERE p.tenant_id = $1 AND p.channel_id = $2 AND p.platform_post_id = l.pid) \
             ORDER BY l.pid \
             ON CONFLICT (tenant_id, channel_id, platform_post_id) WHERE origin = 'external' \
                 DO NOTHING \
             RETURNING next_check_at IS NOT NULL"
        ))
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(&listed.ids)
        .bind(&listed.pids)
        .bind(&listed.urls)
        .bind(&listed.contents)
        .bind(&listed.published)
        .bind(&listed.next_checks)
        .bind(&listed.stops)
        .bind(bound(run.at))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        // External posts known from a comment only (never polled, no polling
        // end): their listed time and URL, and their polling.
        let started: Vec<bool> = sqlx::query_scalar(&format!(
            "WITH listed AS ({LISTED}) \
             UPDATE scheduled_posts p SET \
                 published_at = COALESCE(p.published_at, l.published_at), \
                 publish_at = CASE WHEN p.published_at IS NULL AND l.published_at IS NOT NULL \
                     THEN l.published_at ELSE p.publish_at END, \
                 url = COALESCE(p.url, l.url), \
                 next_check_at = l.next_check_at, stop_at = l.stop_at, updated_at = $10 \
             FROM listed l \
             WHERE p.tenant_id = $1 AND p.channel_id = $2 AND p.platform_post_id = l.pid \
                 AND p.origin = 'external' AND p.next_check_at IS NULL \
                 AND p.last_check_at IS NULL AND p.stop_at IS NULL \
             RETURNING l.next_check_at IS NOT NULL"
        ))
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(&listed.ids)
        .bind(&listed.pids)
        .bind(&listed.urls)
        .bind(&listed.contents)
        .bind(&listed.published)
        .bind(&listed.next_checks)
        .bind(&listed.stops)
        .bind(bound(run.at))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE post_discovery SET next_run_at = $3, last_run_at = $4, last_error = $5, \
                 updated_at = $4 \
             WHERE tenant_id = $1 AND channel_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(bound(run.next_run_at))
        .bind(bound(run.at))
        .bind(&run.error)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let count = |flags: &[bool]| flags.iter().filter(|f| **f).count() as u64;
        Ok(DiscoveryOutcome {
            posts_created: created.len() as u64,
            polls_started: count(&created) + count(&started),
        })
    }
}
