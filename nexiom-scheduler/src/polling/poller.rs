//! [`CommentPoller`]: one polling pass over the posts due, and hiding a comment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{ChannelContext, ConnectorError, ConnectorRegistry};
use nexiom_core::{
    ChannelId, Clock, Comment, CommentCheckpoint, CommentId, NewComment, PostId, PostPatch,
    PostStatus, ScheduledPost, TenantId,
};
use nexiom_storage::Store;
use tracing::warn;

use super::error::PollingError;
use crate::error::Result;
use crate::inbound::InboundPipeline;
use crate::worker::Shutdown;

/// How comments are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollingConfig {
    /// Time between two checks of a post (default 5 minutes).
    pub interval: Duration,
    /// How long after publication a post is polled when it has no `stop_at`
    /// (default 7 days; publishing sets `stop_at = published_at + 7 days`).
    pub window: Duration,
    /// Pages read per post and pass at most (default 100), so that a platform
    /// that keeps handing out cursors cannot hold the pass; the rest is read
    /// at the next check, from the saved cursor.
    pub max_pages: u32,
    /// Items per tenant the follow-up triage and auto-reply steps handle per
    /// pass (default 500).
    pub follow_up_limit: u32,
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            interval: Duration::minutes(5),
            window: Duration::days(7),
            max_pages: 100,
            follow_up_limit: 500,
        }
    }
}

/// A post whose polling failed in a pass (the other posts were still polled).
#[derive(Debug, Clone, PartialEq)]
pub struct PollFailure {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// What went wrong, as the connector or the store said.
    pub error: String,
}

/// What one polling pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollReport {
    /// Posts whose comments were read to the last page (or `max_pages`).
    pub posts_polled: u64,
    /// Pages of comments read.
    pub pages_read: u64,
    /// Comments stored by this pass (a comment stored already, by an earlier
    /// pass or by the webhook, is not counted).
    pub comments_stored: u64,
    /// Posts skipped or stopped because their channel is rate-limited; they are
    /// checked again after the platform's Retry-After.
    pub posts_rate_limited: u64,
    /// Posts on a platform without the comments capability (or never given a
    /// platform id): their polling is stopped for good.
    pub posts_unsupported: u64,
    /// Posts whose polling ended in this pass (7 days after publication).
    pub posts_finished: u64,
    /// Comments triaged by the follow-up triage step.
    pub triaged: u64,
    /// Replies sent by the follow-up auto-reply step.
    pub auto_replied: u64,
    /// Posts that failed, with the reason.
    pub failures: Vec<PollFailure>,
    /// Why the follow-up triage or auto-reply step failed, if it did (the
    /// comments are stored; the pipeline's own steps pick them up later).
    pub follow_up_error: Option<String>,
}

impl PollReport {
    /// The report as JSON, for an execution log.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "posts_polled": self.posts_polled,
            "pages_read": self.pages_read,
            "comments_stored": self.comments_stored,
            "posts_rate_limited": self.posts_rate_limited,
            "posts_unsupported": self.posts_unsupported,
            "posts_finished": self.posts_finished,
            "triaged": self.triaged,
            "auto_replied": self.auto_replied,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "tenant_id": f.tenant_id.to_string(),
                "post_id": f.post_id.to_string(),
                "error": f.error,
            })).collect::<Vec<_>>(),
            "follow_up_error": self.follow_up_error,
        })
    }
}

/// How one post's check ended.
enum Checked {
    /// Read; polling continues (or ends when past the window).
    Polled,
    /// Not polled: its channel is rate-limited until then.
    Deferred(DateTime<Utc>),
    /// Never polled: the platform lists no comments.
    Unsupported,
}

/// What one post's check stored, kept even when a later page fails.
#[derive(Default)]
struct Stored {
    pages: u64,
    new: u64,
    oldest_new: Option<DateTime<Utc>>,
}

/// Polls the comments of published posts through the connectors, and hides
/// comments. Cheap to clone; clones share the per-channel "not before"
/// instants (the Retry-After of rate-limited channels), which live in memory.
#[derive(Clone)]
pub struct CommentPoller {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    connectors: ConnectorRegistry,
    inbound: Option<InboundPipeline>,
    config: PollingConfig,
    not_before: Arc<Mutex<HashMap<ChannelId, DateTime<Utc>>>>,
}

impl std::fmt::Debug for CommentPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommentPoller")
            .field("connectors", &self.connectors.names())
            .field("inbound", &self.inbound.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CommentPoller {
    /// A poller over `store` asking the `connectors` (by platform name), with
    /// [`PollingConfig::default`] and no follow-up steps.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: ConnectorRegistry,
    ) -> Self {
        CommentPoller {
            store,
            clock,
            connectors,
            inbound: None,
            config: PollingConfig::default(),
            not_before: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same poller with another configuration.
    pub fn with_config(mut self, config: PollingConfig) -> Self {
        self.config = config;
        self
    }

    /// After a pass that stored new comments, runs `inbound`'s triage and
    /// auto-reply steps (the ones that handle webhook comments), so each new
    /// comment is triaged and, when AUTO_REPLY and AI control is ON, answered
    /// once through `reply_comment`.
    pub fn with_inbound(mut self, inbound: InboundPipeline) -> Self {
        self.inbound = Some(inbound);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PollingConfig {
        &self.config
    }

    /// Until when the channel is not asked (after a rate limit), if it is not.
    pub fn channel_not_before(&self, channel: ChannelId) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        self.lock()
            .get(&channel)
            .copied()
            .filter(|until| *until > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, DateTime<Utc>>> {
        self.not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One pass at the clock's time over at most `limit` posts due
    /// (`next_check_at <= now < stop_at`, oldest `next_check_at` first):
    ///
    /// - a post on a platform without the comments capability is not polled and
    ///   its `next_check_at` is cleared;
    /// - a post whose channel is rate-limited is not polled; its
    ///   `next_check_at` moves to the channel's Retry-After;
    /// - otherwise every page from the checkpoint's cursor is read, each
    ///   comment stored once per `(post, platform_comment_id)` with its parent,
    ///   and the checkpoint saved after each page's comments are stored (a
    ///   crash in between re-reads the page and stores nothing twice). On the
    ///   last page the checkpoint keeps the cursor that page was read with, so
    ///   the next check re-reads it and sees what was appended;
    /// - then `last_check_at = now` and `next_check_at = now + interval`, or
    ///   `next_check_at` cleared for good when that is at or after `stop_at`
    ///   (the 7 days are over).
    ///
    /// A post that fails (the platform refuses, the store fails for it) is
    /// recorded in [`PollReport::failures`], checked again after the interval,
    /// and never stops the other posts. A rate limit (`RateLimited`, or an open
    /// circuit) stops the channel until its Retry-After (the interval when the
    /// platform did not say). Returns between two posts once `shutdown` fires.
    /// Fails only when the due posts cannot be listed.
    pub async fn poll_due(&self, limit: u32, shutdown: Option<&Shutdown>) -> Result<PollReport> {
        let now = self.clock.now();
        let posts = self.store.list_posts_due_for_polling(now, limit).await?;
        let mut report = PollReport::default();
        let mut oldest_new: Option<DateTime<Utc>> = None;
        for post in posts {
            if shutdown.is_some_and(Shutdown::is_triggered) {
                break;
            }
            let mut stored = Stored::default();
            let outcome = self.check_post(&post, now, &mut stored).await;
            report.pages_read += stored.pages;
            report.comments_stored += stored.new;
            oldest_new = match (oldest_new, stored.oldest_new) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let stop = self.stop_of(&post);
            let (earliest, checked) = match outcome {
                Ok(Checked::Polled) => {
                    report.posts_polled += 1;
                    (Some(now + self.config.interval), true)
                }
                Ok(Checked::Deferred(until)) => {
                    report.posts_rate_limited += 1;
                    (Some(until), false)
                }
                Ok(Checked::Unsupported) => {
                    report.posts_unsupported += 1;
                    (None, false)
                }
                Err(err) => {
                    let until = match &err {
                        PollingError::Connector(e) if is_rate_limit(e) => {
                            report.posts_rate_limited += 1;
                            self.channel_not_before(post.channel_id)
                        }
                        _ => None,
                    };
                    warn!(tenant_id = %post.tenant_id, post_id = %post.id, error = %err, "comment polling failed");
                    report.failures.push(PollFailure {
                        tenant_id: post.tenant_id,
                        post_id: post.id,
                        error: err.to_string(),
                    });
                    (Some(until.unwrap_or(now + self.config.interval)), false)
                }
            };
            let next = earliest.filter(|next| stop.is_none_or(|stop| *next < stop));
            if next.is_none() && earliest.is_some() {
                report.posts_finished += 1;
            }
            if let Err(err) = self.reschedule(&post, now, checked, next).await {
                warn!(tenant_id = %post.tenant_id, post_id = %post.id, error = %err, "could not reschedule comment polling");
                report.failures.push(PollFailure {
                    tenant_id: post.tenant_id,
                    post_id: post.id,
                    error: err.to_string(),
                });
            }
        }
        if let (Some(since), Some(inbound)) = (oldest_new, &self.inbound) {
            self.follow_up(inbound, since, &mut report).await;
        }
        Ok(report)
    }

    /// When the post's polling ends: its `stop_at`, else `published_at` plus
    /// the window.
    fn stop_of(&self, post: &ScheduledPost) -> Option<DateTime<Utc>> {
        post.stop_at
            .or_else(|| post.published_at.map(|at| at + self.config.window))
    }

    async fn reschedule(
        &self,
        post: &ScheduledPost,
        now: DateTime<Utc>,
        checked: bool,
        next: Option<DateTime<Utc>>,
    ) -> Result<ScheduledPost, PollingError> {
        let patch = PostPatch {
            last_check_at: checked.then_some(Some(now)),
            next_check_at: Some(next),
            expect_status: Some(PostStatus::Published),
            ..PostPatch::default()
        };
        Ok(self
            .store
            .update_post(post.tenant_id, post.id, patch, now)
            .await?)
    }

    /// Reads and stores the post's new comments.
    async fn check_post(
        &self,
        post: &ScheduledPost,
        now: DateTime<Utc>,
        stored: &mut Stored,
    ) -> Result<Checked, PollingError> {
        if let Some(until) = self.channel_not_before(post.channel_id) {
            return Ok(Checked::Deferred(until));
        }
        let channel = self
            .store
            .get_channel(post.tenant_id, post.channel_id)
            .await?;
        let connector = self.connectors.get(channel.platform.as_str())?;
        if !connector.capabilities().comments {
            return Ok(Checked::Unsupported);
        }
        let Some(platform_post_id) = post.platform_post_id.as_deref() else {
            return Ok(Checked::Unsupported);
        };
        let ctx = ChannelContext::from_channel(&channel)?;
        let checkpoint = self.store.get_checkpoint(post.tenant_id, post.id).await?;
        let mut cursor = checkpoint.as_ref().and_then(|c| c.last_cursor.clone());
        let mut last_seen = checkpoint.as_ref().and_then(|c| c.last_seen_at);
        for _ in 0..self.config.max_pages.max(1) {
            let page = match connector
                .list_new_comments(&ctx, platform_post_id, cursor.as_deref())
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    if is_rate_limit(&err) {
                        let wait = err
                            .retry_after()
                            .and_then(|d| Duration::from_std(d).ok())
                            .unwrap_or(self.config.interval);
                        self.lock().insert(post.channel_id, now + wait);
                    }
                    return Err(err.into());
                }
            };
            stored.pages += 1;
            for remote in &page.comments {
                let inserted = self
                    .store
                    .insert_comment(NewComment {
                        tenant_id: post.tenant_id,
                        post_id: post.id,
                        platform_comment_id: remote.id.clone(),
                        parent_platform_comment_id: remote.parent_id.clone(),
                        author_id: remote.author_id.clone(),
                        author_name: remote.author_name.clone(),
                        text: remote.text.clone(),
                        created_at: remote.created_at,
                        stored_at: now,
                    })
                    .await?;
                if inserted.created {
                    stored.new += 1;
                    stored.oldest_new = Some(
                        stored
                            .oldest_new
                            .map_or(remote.created_at, |t| t.min(remote.created_at)),
                    );
                }
                last_seen = Some(last_seen.map_or(remote.created_at, |t| t.max(remote.created_at)));
            }
            // Only now that the page's comments are stored does the cursor move.
            let next = page
                .next_cursor
                .filter(|next| Some(next) != cursor.as_ref());
            let resume = next.clone().or_else(|| cursor.clone());
            let changed = checkpoint
                .as_ref()
                .is_none_or(|c| c.last_cursor != resume || c.last_seen_at != last_seen)
                || next.is_some();
            if changed {
                self.store
                    .save_checkpoint(CommentCheckpoint {
                        tenant_id: post.tenant_id,
                        post_id: post.id,
                        last_cursor: resume,
                        last_seen_at: last_seen,
                        updated_at: now,
                    })
                    .await?;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(Checked::Polled)
    }

    /// Triage, then auto-reply, of what the pass stored.
    async fn follow_up(
        &self,
        inbound: &InboundPipeline,
        since: DateTime<Utc>,
        report: &mut PollReport,
    ) {
        let limit = self.config.follow_up_limit;
        match inbound.triage_new_items(limit).await {
            Ok(triage) => report.triaged = triage.comments,
            Err(err) => {
                warn!(error = %err, "triage after comment polling failed");
                report.follow_up_error = Some(err.to_string());
                return;
            }
        }
        match inbound.auto_reply_recent_inbound(since, limit).await {
            Ok(replies) => report.auto_replied = replies.sent,
            Err(err) => {
                warn!(error = %err, "auto-reply after comment polling failed");
                report.follow_up_error = Some(err.to_string());
            }
        }
    }

    /// Hides (`hide = true`) or shows again a stored comment on the platform,
    /// through its channel's connector, then records it on the comment. When
    /// the platform refuses, nothing is recorded.
    pub async fn hide_comment(
        &self,
        tenant: TenantId,
        comment: CommentId,
        hide: bool,
    ) -> Result<Comment, PollingError> {
        let stored = self.store.get_comment(tenant, comment).await?;
        let channel = self.store.get_channel(tenant, stored.channel_id).await?;
        let connector = self.connectors.get(channel.platform.as_str())?;
        let ctx = ChannelContext::from_channel(&channel)?;
        connector
            .hide_comment(&ctx, &stored.platform_comment_id, hide)
            .await?;
        Ok(self.store.set_comment_hidden(tenant, comment, hide).await?)
    }
}

/// Whether the error asks to leave the channel alone for a while.
fn is_rate_limit(err: &ConnectorError) -> bool {
    matches!(
        err,
        ConnectorError::RateLimited { .. } | ConnectorError::CircuitOpen { .. }
    )
}
