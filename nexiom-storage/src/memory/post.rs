//! [`PostStore`] in memory: scheduled posts (insert, reads, guarded updates,
//! stale leases, posts due for comment polling) and post runs. The publish
//! queue's batched steps (claims, lease heartbeats, run starts, settlements,
//! channel holds) are in `post_batch.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

use nexiom_core::{
    BroadcastAudience, BroadcastTemplate, ChannelId, Inserted, NewPostRun, NewScheduledPost,
    PostFilter, PostId, PostOrigin, PostPatch, PostRun, PostRunId, PostRunStatus, PostSettlement,
    PostStatus, ScheduledPost, TenantId, validate,
};

use super::{
    Inner, MemoryStore, get_scoped, get_scoped_mut, limit_len, require_opt_ref, require_ref,
    truncate_opt,
};
use crate::error::{Result, StorageError};
use crate::traits::PostStore;

impl Inner {
    pub(super) fn insert_post(&mut self, new: NewScheduledPost) -> Result<Inserted<ScheduledPost>> {
        new.validate()?;
        let tenant = new.tenant_id;
        self.require_tenant(tenant)?;
        require_ref(&self.channels, tenant, &new.channel_id, "channel")?;
        require_opt_ref(&self.missions, tenant, new.mission_id.as_ref(), "mission")?;
        require_opt_ref(
            &self.content_jobs,
            tenant,
            new.content_job_id.as_ref(),
            "content_job",
        )?;
        require_opt_ref(&self.posts, tenant, new.series_id.as_ref(), "post")?;

        let occurrence_key = new.series_id.zip(new.occurrence_at);
        if let Some(existing) = occurrence_key
            .and_then(|key| self.occurrence_by_key.get(&key))
            .and_then(|id| self.posts.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }
        let post = ScheduledPost {
            id: PostId::generate(),
            tenant_id: tenant,
            channel_id: new.channel_id,
            content: new.content,
            publish_at: new.publish_at,
            recurrence: new.recurrence,
            series_id: new.series_id,
            occurrence_at: new.occurrence_at,
            status: PostStatus::Queued,
            origin: PostOrigin::Scheduled,
            platform_post_id: None,
            url: None,
            error_message: None,
            retry_count: 0,
            next_attempt_at: None,
            lease_owner: None,
            lease_expires_at: None,
            published_at: None,
            last_check_at: None,
            next_check_at: None,
            stop_at: None,
            poll_failures: 0,
            mission_id: new.mission_id,
            content_job_id: new.content_job_id,
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        if let Some(key) = occurrence_key {
            self.occurrence_by_key.insert(key, post.id);
        }
        self.posts.insert(post.id, post.clone());
        Ok(Inserted::created(post))
    }

    pub(super) fn list_posts(&self, tenant: TenantId, filter: &PostFilter) -> Vec<ScheduledPost> {
        let mut posts: Vec<&ScheduledPost> = self
            .posts
            .values()
            .filter(|p| {
                p.tenant_id == tenant
                    && filter.status.is_none_or(|s| p.status == s)
                    && filter.channel_id.is_none_or(|c| p.channel_id == c)
                    && filter.mission_id.is_none_or(|m| p.mission_id == Some(m))
                    && filter.series_id.is_none_or(|s| p.series_id == Some(s))
                    && filter.from.is_none_or(|from| p.publish_at >= from)
                    && filter.to.is_none_or(|to| p.publish_at < to)
            })
            .collect();
        posts.sort_by_key(|p| (p.publish_at, p.id));
        truncate_opt(&mut posts, filter.limit);
        posts.into_iter().cloned().collect()
    }

    fn count_posts(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        statuses: &[PostStatus],
    ) -> u64 {
        let count = self
            .posts
            .values()
            .filter(|p| {
                p.tenant_id == tenant
                    && p.channel_id == channel
                    && p.publish_at >= from
                    && p.publish_at < to
                    && statuses.contains(&p.status)
                    && p.origin == PostOrigin::Scheduled
            })
            .count();
        u64::try_from(count).unwrap_or(u64::MAX)
    }

    pub(super) fn update_post(
        &mut self,
        tenant: TenantId,
        id: PostId,
        patch: PostPatch,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        patch.validate()?;

        let post = get_scoped_mut(&mut self.posts, tenant, &id, "post")?;
        // Guards first: a failing guard writes nothing.
        if let Some(expected) = patch.expect_status
            && post.status != expected
        {
            return Err(StorageError::precondition(
                "post",
                id,
                format!("expected status {expected}, found {}", post.status),
            ));
        }
        if let Some(owner) = &patch.expect_lease_owner
            && post.lease_owner.as_deref() != Some(owner.as_str())
        {
            let found = post
                .lease_owner
                .as_ref()
                .map_or_else(|| "no lease".to_owned(), |o| format!("the lease of {o:?}"));
            return Err(StorageError::precondition(
                "post",
                id,
                format!("expected the lease of {owner:?}, found {found}"),
            ));
        }

        // Applied to a copy, written back with its notification (if any).
        let was = post.status;
        let mut post = post.clone();
        if let Some(status) = patch.status {
            post.status = status;
        }
        if let Some(content) = patch.content {
            post.content = content;
        }
        if let Some(publish_at) = patch.publish_at {
            post.publish_at = publish_at;
        }
        if let Some(platform_post_id) = patch.platform_post_id {
            post.platform_post_id = platform_post_id;
        }
        if let Some(url) = patch.url {
            post.url = url;
        }
        if let Some(error_message) = patch.error_message {
            post.error_message = error_message;
        }
        if let Some(retry_count) = patch.retry_count {
            post.retry_count = retry_count;
        }
        if let Some(next_attempt_at) = patch.next_attempt_at {
            post.next_attempt_at = next_attempt_at;
        }
        if patch.release_lease {
            post.lease_owner = None;
            post.lease_expires_at = None;
        }
        if let Some(published_at) = patch.published_at {
            post.published_at = published_at;
        }
        if let Some(last_check_at) = patch.last_check_at {
            post.last_check_at = last_check_at;
        }
        if let Some(next_check_at) = patch.next_check_at {
            post.next_check_at = next_check_at;
        }
        if let Some(stop_at) = patch.stop_at {
            post.stop_at = stop_at;
        }
        post.updated_at = at;
        if was == PostStatus::Publishing && post.status == PostStatus::Failed {
            self.notify(crate::outbox::post_failed(&post))?;
        }
        self.posts.insert(post.id, post.clone());
        Ok(post)
    }

    fn release_stale_leases(&mut self, now: DateTime<Utc>) -> u64 {
        let mut released = std::collections::HashSet::new();
        for post in self.posts.values_mut() {
            if post.status == PostStatus::Publishing
                && post.lease_expires_at.is_some_and(|t| t < now)
            {
                post.status = PostStatus::Queued;
                post.lease_owner = None;
                post.lease_expires_at = None;
                post.updated_at = now;
                released.insert(post.id);
            }
        }
        for run in self.post_runs.values_mut() {
            if run.status == PostRunStatus::Running && released.contains(&run.post_id) {
                run.status = PostRunStatus::Failed;
                run.finished_at = Some(now);
                run.error = Some(crate::STALE_RUN_ERROR.to_owned());
            }
        }
        released.len() as u64
    }

    pub(super) fn list_posts_due_for_polling(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Vec<ScheduledPost> {
        if limit == 0 {
            return Vec::new();
        }
        let held: HashSet<ChannelId> = self
            .paused_channels()
            .chain(
                self.channel_throttles
                    .iter()
                    .filter(|(_, until)| **until > now)
                    .map(|(channel, _)| *channel),
            )
            .collect();
        let mut due: Vec<&ScheduledPost> = self
            .posts
            .values()
            .filter(|p| {
                p.status == PostStatus::Published
                    && p.next_check_at.is_some_and(|t| t <= now)
                    && p.stop_at
                        .is_none_or(|stop| p.last_check_at.is_none_or(|last| last < stop))
                    && !held.contains(&p.channel_id)
            })
            .collect();
        due.sort_by_key(|p| (p.next_check_at, p.id));
        due.into_iter().take(limit_len(limit)).cloned().collect()
    }

    pub(super) fn insert_post_run(&mut self, new: NewPostRun) -> Result<PostRun> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        require_ref(&self.posts, new.tenant_id, &new.post_id, "post")?;
        let key = (new.post_id, new.attempt);
        if self.post_run_keys.contains(&key) {
            return Err(StorageError::conflict(
                "post_run",
                format!("post {} and attempt {}", new.post_id, new.attempt),
            ));
        }
        let run = PostRun {
            id: PostRunId::generate(),
            tenant_id: new.tenant_id,
            post_id: new.post_id,
            attempt: new.attempt,
            started_at: new.started_at,
            finished_at: None,
            status: PostRunStatus::Running,
            error: None,
        };
        self.post_run_keys.insert(key);
        self.post_runs.insert(run.id, run.clone());
        Ok(run)
    }

    fn finish_post_run(
        &mut self,
        tenant: TenantId,
        id: PostRunId,
        status: PostRunStatus,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<PostRun> {
        validate::opt_text("error", error.as_deref())?;
        let run = get_scoped_mut(&mut self.post_runs, tenant, &id, "post_run")?;
        run.status = status;
        run.error = error;
        run.finished_at = Some(finished_at);
        Ok(run.clone())
    }

    fn list_post_runs(&self, tenant: TenantId, post: PostId) -> Vec<PostRun> {
        let mut runs: Vec<PostRun> = self
            .post_runs
            .values()
            .filter(|r| r.tenant_id == tenant && r.post_id == post)
            .cloned()
            .collect();
        runs.sort_by_key(|r| (r.attempt, r.id));
        runs
    }
}

#[async_trait]
impl PostStore for MemoryStore {
    async fn insert_post(&self, new: NewScheduledPost) -> Result<Inserted<ScheduledPost>> {
        self.lock().insert_post(new)
    }

    async fn get_post(&self, tenant: TenantId, id: PostId) -> Result<ScheduledPost> {
        get_scoped(&self.lock().posts, tenant, &id, "post").cloned()
    }

    async fn list_posts(&self, tenant: TenantId, filter: PostFilter) -> Result<Vec<ScheduledPost>> {
        Ok(self.lock().list_posts(tenant, &filter))
    }

    async fn count_posts(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        statuses: &[PostStatus],
    ) -> Result<u64> {
        Ok(self.lock().count_posts(tenant, channel, from, to, statuses))
    }

    async fn replace_series(
        &self,
        old: PostId,
        new: NewScheduledPost,
        broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        self.lock().replace_series(old, new, broadcast, at)
    }

    async fn update_post(
        &self,
        tenant: TenantId,
        id: PostId,
        patch: PostPatch,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        self.lock().update_post(tenant, id, patch, at)
    }

    async fn claim_due_posts(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_owner: &str,
        lease: Duration,
    ) -> Result<Vec<ScheduledPost>> {
        self.lock().claim_due_posts(now, limit, lease_owner, lease)
    }

    async fn renew_post_leases(
        &self,
        lease_owner: &str,
        ids: &[PostId],
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self.lock().renew_post_leases(lease_owner, ids, expires_at))
    }

    async fn settle_posts(
        &self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        self.lock().settle_posts(lease_owner, settlements, at)
    }

    async fn throttle_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        until: DateTime<Utc>,
    ) -> Result<()> {
        self.lock().throttle_channel(tenant, channel, until)
    }

    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(self.lock().release_stale_leases(now))
    }

    async fn list_posts_due_for_polling(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduledPost>> {
        Ok(self.lock().list_posts_due_for_polling(now, limit))
    }

    async fn insert_post_run(&self, new: NewPostRun) -> Result<PostRun> {
        self.lock().insert_post_run(new)
    }

    async fn insert_post_runs(
        &self,
        lease_owner: &str,
        runs: &[NewPostRun],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<PostRun>>> {
        self.lock().insert_post_runs(lease_owner, runs, now)
    }

    async fn finish_post_run(
        &self,
        tenant: TenantId,
        id: PostRunId,
        status: PostRunStatus,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<PostRun> {
        self.lock()
            .finish_post_run(tenant, id, status, error, finished_at)
    }

    async fn list_post_runs(&self, tenant: TenantId, post: PostId) -> Result<Vec<PostRun>> {
        Ok(self.lock().list_post_runs(tenant, post))
    }
}
