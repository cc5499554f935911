//! External posts and post discovery, under the store's one lock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, Content, DiscoveredPost, DiscoveryOutcome, DiscoveryRun, Inserted, PostDiscovery,
    PostId, PostOrigin, PostStatus, ScheduledPost, TenantId, validate_recent_posts,
};

use super::{Inner, MemoryStore, limit_len, require_ref};
use crate::error::Result;
use crate::external_posts::ExternalPostStore;
use crate::poll_batch::poll_lease;

/// How a discovered external post is polled: from `next_check_at` (`None`:
/// its window is over) until `stop_at`.
pub(super) struct Polling {
    pub next_check_at: Option<DateTime<Utc>>,
    pub stop_at: DateTime<Utc>,
}

impl Inner {
    /// The posts of `published` (just settled `published`) take over the
    /// external post of their channel that has their platform id, if any (a
    /// webhook comment or a discovery run recorded it while the publish's
    /// outcome was unclear): its comments and its checkpoint move to the
    /// post published here, and it is no longer polled. Otherwise both
    /// would be polled, and each comment stored, triaged and answered twice.
    pub(super) fn adopt_external_twins(&mut self, published: &[PostId], at: DateTime<Utc>) {
        let wanted: Vec<(PostId, (TenantId, ChannelId, String))> = published
            .iter()
            .filter_map(|id| self.posts.get(id))
            .filter_map(|p| {
                let pid = p.platform_post_id.clone()?;
                Some((p.id, (p.tenant_id, p.channel_id, pid)))
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let keys: std::collections::HashSet<_> = wanted.iter().map(|(_, k)| k).collect();
        let twins: std::collections::HashMap<(TenantId, ChannelId, String), PostId> = self
            .posts
            .values()
            .filter(|p| p.origin == PostOrigin::External)
            .filter_map(|p| {
                let key = (p.tenant_id, p.channel_id, p.platform_post_id.clone()?);
                keys.contains(&key).then_some((key, p.id))
            })
            .collect();
        for (post, key) in &wanted {
            let Some(&twin) = twins.get(key) else {
                continue;
            };
            let moved: Vec<_> = self
                .comments
                .values()
                .filter(|c| c.post_id == twin)
                .map(|c| (c.id, c.platform_comment_id.clone()))
                .collect();
            for (id, platform_id) in moved {
                if self
                    .comment_by_key
                    .contains_key(&(*post, platform_id.clone()))
                {
                    continue;
                }
                self.comment_by_key.remove(&(twin, platform_id.clone()));
                self.comment_by_key.insert((*post, platform_id), id);
                if let Some(c) = self.comments.get_mut(&id) {
                    c.post_id = *post;
                }
            }
            if !self.checkpoints.contains_key(post)
                && let Some(mut checkpoint) = self.checkpoints.remove(&twin)
            {
                checkpoint.post_id = *post;
                self.checkpoints.insert(*post, checkpoint);
            }
            if let Some(external) = self.posts.get_mut(&twin) {
                external.next_check_at = None;
                // A window that is over: a later discovery run does not
                // start polling it (as on Postgres).
                external.stop_at.get_or_insert(at);
                external.updated_at = at;
            }
        }
    }

    /// The channel's post with `platform_post_id`, the earliest created.
    pub(super) fn post_by_platform_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        platform_post_id: &str,
    ) -> Option<&ScheduledPost> {
        self.posts
            .values()
            .filter(|p| {
                p.tenant_id == tenant
                    && p.channel_id == channel
                    && p.platform_post_id.as_deref() == Some(platform_post_id)
            })
            .min_by_key(|p| (p.created_at, p.id))
    }

    /// Creates an external post (the caller checked that no post of the
    /// channel has its platform id), `published` at `publish_at`.
    pub(super) fn create_external_post(
        &mut self,
        tenant: TenantId,
        channel: ChannelId,
        post: &DiscoveredPost,
        publish_at: DateTime<Utc>,
        polling: Option<Polling>,
        at: DateTime<Utc>,
    ) -> ScheduledPost {
        let (next_check_at, stop_at) = match polling {
            Some(p) => (p.next_check_at, Some(p.stop_at)),
            None => (None, None),
        };
        let stored = ScheduledPost {
            id: PostId::generate(),
            tenant_id: tenant,
            channel_id: channel,
            content: Content::text(post.text.clone().unwrap_or_default()),
            publish_at,
            recurrence: None,
            series_id: None,
            occurrence_at: None,
            status: PostStatus::Published,
            origin: PostOrigin::External,
            platform_post_id: Some(post.platform_post_id.clone()),
            url: post.url.clone(),
            error_message: None,
            retry_count: 0,
            next_attempt_at: None,
            lease_owner: None,
            lease_expires_at: None,
            published_at: post.published_at,
            last_check_at: None,
            next_check_at,
            stop_at,
            poll_failures: 0,
            mission_id: None,
            content_job_id: None,
            created_at: at,
            updated_at: at,
        };
        self.posts.insert(stored.id, stored.clone());
        stored
    }

    fn insert_external_post(
        &mut self,
        tenant: TenantId,
        channel: ChannelId,
        post: &DiscoveredPost,
        at: DateTime<Utc>,
    ) -> Result<Inserted<ScheduledPost>> {
        post.validate()?;
        require_ref(&self.channels, tenant, &channel, "channel")?;
        if let Some(existing) = self.post_by_platform_id(tenant, channel, &post.platform_post_id) {
            return Ok(Inserted::existing(existing.clone()));
        }
        let publish_at = post.published_at.unwrap_or(at);
        Ok(Inserted::created(self.create_external_post(
            tenant, channel, post, publish_at, None, at,
        )))
    }

    fn set_post_discovery(
        &mut self,
        tenant: TenantId,
        channel: ChannelId,
        recent_posts: u32,
        at: DateTime<Utc>,
    ) -> Result<PostDiscovery> {
        validate_recent_posts(recent_posts)?;
        require_ref(&self.channels, tenant, &channel, "channel")?;
        let discovery = self
            .post_discovery
            .entry(channel)
            .and_modify(|d| {
                d.recent_posts = recent_posts;
                d.next_run_at = at;
                d.updated_at = at;
            })
            .or_insert_with(|| PostDiscovery {
                tenant_id: tenant,
                channel_id: channel,
                recent_posts,
                next_run_at: at,
                last_run_at: None,
                last_error: None,
                created_at: at,
                updated_at: at,
            });
        Ok(discovery.clone())
    }

    fn claim_post_discoveries(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<PostDiscovery>> {
        let until = poll_lease(now, lease)?;
        // Channels held back by a platform's throttle wait (as on Postgres).
        let held: std::collections::HashSet<ChannelId> = self
            .channel_throttles
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(channel, _)| *channel)
            .collect();
        let mut due: Vec<&mut PostDiscovery> = self
            .post_discovery
            .values_mut()
            .filter(|d| d.next_run_at <= now && !held.contains(&d.channel_id))
            .collect();
        due.sort_by_key(|d| (d.next_run_at, d.channel_id));
        due.truncate(limit_len(limit));
        Ok(due
            .into_iter()
            .map(|d| {
                d.next_run_at = until;
                d.clone()
            })
            .collect())
    }

    fn record_discovery(&mut self, run: &DiscoveryRun) -> Result<DiscoveryOutcome> {
        run.validate()?;
        let (tenant, channel) = (run.tenant_id, run.channel_id);
        require_ref(&self.channels, tenant, &channel, "channel")?;
        let mut outcome = DiscoveryOutcome::default();
        for listed in &run.posts {
            let stop_at = run.stop_at(listed.published_at);
            let polling = Polling {
                next_check_at: (run.at < stop_at).then_some(run.at),
                stop_at,
            };
            let started = polling.next_check_at.is_some();
            let existing = self
                .post_by_platform_id(tenant, channel, &listed.platform_post_id)
                .map(|p| p.id);
            match existing {
                None => {
                    let publish_at = listed.published_at.unwrap_or(run.at);
                    self.create_external_post(
                        tenant,
                        channel,
                        listed,
                        publish_at,
                        Some(polling),
                        run.at,
                    );
                    outcome.posts_created += 1;
                    outcome.polls_started += u64::from(started);
                }
                Some(id) => {
                    let Some(post) = self.posts.get_mut(&id) else {
                        continue;
                    };
                    let never_polled = post.origin == PostOrigin::External
                        && post.next_check_at.is_none()
                        && post.last_check_at.is_none()
                        && post.stop_at.is_none();
                    if !never_polled {
                        continue;
                    }
                    if post.published_at.is_none() {
                        post.published_at = listed.published_at;
                        if let Some(published) = listed.published_at {
                            post.publish_at = published;
                        }
                    }
                    if post.url.is_none() {
                        post.url = listed.url.clone();
                    }
                    post.next_check_at = polling.next_check_at;
                    post.stop_at = Some(polling.stop_at);
                    post.updated_at = run.at;
                    outcome.polls_started += u64::from(started);
                }
            }
        }
        if let Some(discovery) = self.post_discovery.get_mut(&channel) {
            discovery.next_run_at = run.next_run_at;
            discovery.last_run_at = Some(run.at);
            discovery.last_error = run.error.clone();
            discovery.updated_at = run.at;
        }
        Ok(outcome)
    }
}

#[async_trait]
impl ExternalPostStore for MemoryStore {
    async fn find_post_by_platform_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        platform_post_id: &str,
    ) -> Result<Option<ScheduledPost>> {
        Ok(self
            .lock()
            .post_by_platform_id(tenant, channel, platform_post_id)
            .cloned())
    }

    async fn insert_external_post(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        post: DiscoveredPost,
        at: DateTime<Utc>,
    ) -> Result<Inserted<ScheduledPost>> {
        self.lock().insert_external_post(tenant, channel, &post, at)
    }

    async fn set_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recent_posts: u32,
        at: DateTime<Utc>,
    ) -> Result<PostDiscovery> {
        self.lock()
            .set_post_discovery(tenant, channel, recent_posts, at)
    }

    async fn get_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Option<PostDiscovery>> {
        Ok(self
            .lock()
            .post_discovery
            .get(&channel)
            .filter(|d| d.tenant_id == tenant)
            .cloned())
    }

    async fn clear_post_discovery(&self, tenant: TenantId, channel: ChannelId) -> Result<bool> {
        let mut inner = self.lock();
        let owned = inner
            .post_discovery
            .get(&channel)
            .is_some_and(|d| d.tenant_id == tenant);
        Ok(owned && inner.post_discovery.remove(&channel).is_some())
    }

    async fn claim_post_discoveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<PostDiscovery>> {
        self.lock().claim_post_discoveries(now, limit, lease)
    }

    async fn record_discovery(&self, run: DiscoveryRun) -> Result<DiscoveryOutcome> {
        self.lock().record_discovery(&run)
    }
}
