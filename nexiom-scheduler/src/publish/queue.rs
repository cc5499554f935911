//! [`PublishQueue`]: claims due posts with a lease, advances series, and
//! publishes with the retry rules of the design.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    Channel, ChannelId, Clock, NewPostRun, NewScheduledPost, PostPatch, PostRun, PostRunStatus,
    PostStatus, ScheduledPost, TenantId,
};
use nexiom_storage::{StorageError, Store};
use tracing::{Instrument, debug, info_span, warn};

use super::gateway::{PublishFailure, PublishGateway, PublishedPost};
use super::retry::RetryPolicy;
use crate::error::Result;
use crate::schedule::RecurrenceRule;
use crate::worker::{BatchConfig, Shutdown};

/// Channels read during one batch (posts of a batch often share a channel).
type Channels = HashMap<(TenantId, ChannelId), Channel>;

/// The `error_message` of a post whose last attempt may or may not have been
/// published and that could not be checked: a person has to look.
pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// How the queue claims and publishes.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Lease owner written on claimed posts; unique per worker (default: a
    /// random `publisher-…` name).
    pub worker_id: String,
    /// How long a claim holds before another worker may take the post over
    /// (default 5 minutes; longer than any single publish call may take).
    pub lease: Duration,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// How long comments are polled after publication (default 7 days).
    pub polling_window: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            worker_id: format!("publisher-{:016x}", fastrand::u64(..)),
            lease: Duration::minutes(5),
            retry: RetryPolicy::default(),
            polling_window: Duration::days(7),
        }
    }
}

impl PublishConfig {
    /// The default configuration with `worker_id` as lease owner.
    pub fn for_worker(worker_id: impl Into<String>) -> Self {
        PublishConfig {
            worker_id: worker_id.into(),
            ..PublishConfig::default()
        }
    }
}

/// What happened to one claimed post.
#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// Published (or found published by a lookup).
    Published(PublishedPost),
    /// A failed attempt; the post is queued again for `next_attempt_at`.
    Retrying {
        /// Attempts made so far.
        attempts: u32,
        /// When the next attempt may start.
        next_attempt_at: DateTime<Utc>,
        /// The error of the attempt.
        error: String,
    },
    /// The post failed for good with this `error_message`.
    Failed(String),
    /// A series template: its occurrence at `occurrence_at` exists as a queued
    /// post, and the template moved to `next` (`None`: the series ended).
    SeriesAdvanced {
        /// The occurrence that was created (or found).
        occurrence_at: DateTime<Utc>,
        /// The template's next occurrence.
        next: Option<DateTime<Utc>>,
    },
    /// The claim was lost (the lease lapsed and another worker took the post)
    /// or the post changed meanwhile; nothing was written.
    LeaseLost,
    /// Shutdown was requested before this post was started: its claim was
    /// handed back (`queued`, lease cleared).
    Released,
}

/// Counts of one [`PublishQueue::run_due`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// Posts claimed.
    pub claimed: u64,
    /// Posts published.
    pub published: u64,
    /// Posts queued again after a failed attempt.
    pub retrying: u64,
    /// Posts that failed for good.
    pub failed: u64,
    /// Series templates advanced.
    pub series_advanced: u64,
    /// Claims lost or handed back, and storage errors while processing.
    pub skipped: u64,
}

impl QueueReport {
    /// Posts handled in a way that is not a failure.
    pub fn processed(&self) -> u64 {
        self.published + self.retrying + self.series_advanced
    }

    /// The counts as JSON (for execution logs).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "claimed": self.claimed,
            "published": self.published,
            "retrying": self.retrying,
            "failed": self.failed,
            "series_advanced": self.series_advanced,
            "skipped": self.skipped,
        })
    }

    fn add(&mut self, outcome: &Result<PostOutcome>) {
        match outcome {
            Ok(PostOutcome::Published(_)) => self.published += 1,
            Ok(PostOutcome::Retrying { .. }) => self.retrying += 1,
            Ok(PostOutcome::Failed(_)) => self.failed += 1,
            Ok(PostOutcome::SeriesAdvanced { .. }) => self.series_advanced += 1,
            Ok(PostOutcome::LeaseLost | PostOutcome::Released) | Err(_) => self.skipped += 1,
        }
    }
}

/// The publish queue of one worker: claims due posts with its lease owner and
/// takes each through the publishing rules.
///
/// # Rules (behaviour.md, "Scheduled publishing")
///
/// - A claimed **series template** is not published: its due occurrence is
///   inserted as a post of its own (unique by `(series, occurrence_at)`, so a
///   re-run never makes two), then the template moves to its next occurrence
///   and is queued again, or is retired (`cancelled`) when the rule has none.
///   Occurrences missed while no worker ran are each created in turn, late,
///   never skipped.
/// - Content the channel can never take fails at once, before any call.
/// - Each attempt is a `post_run`, inserted *before* the platform call with
///   attempt number `retry_count + 1`. An attempt is therefore never made twice
///   under one number: if that run already exists, an earlier worker died
///   during the attempt, and the outcome is settled by a lookup (found →
///   `published`; definitely not found → a new attempt under the limit; the
///   lookup failing, or no lookup possible → `failed` / [`OUTCOME_UNKNOWN`]),
///   never by publishing blindly.
/// - At most `retry.max_attempts` attempts. Rate limits and transient failures
///   queue the post again after [`RetryPolicy::delay_after`] (never sooner than
///   a `Retry-After`); `Unauthorized` refreshes the credentials once and tries
///   again at once; permanent failures fail at once; an ambiguous outcome is
///   looked up: found → `published` with the found id; definitely not found →
///   queued again as a new attempt (with backoff, under the attempt limit);
///   the lookup failing or unsupported → `failed` as [`OUTCOME_UNKNOWN`].
/// - The post is written before its run is finished, each write guarded by the
///   lease (`expect_lease_owner`): a worker whose lease lapsed writes nothing.
/// - On success: `published`, `platform_post_id`, `url`, `published_at`, and
///   comment polling armed (`next_check_at = published_at`,
///   `stop_at = published_at + polling_window`).
#[derive(Clone)]
pub struct PublishQueue {
    store: Arc<dyn Store>,
    gateway: Arc<dyn PublishGateway>,
    clock: Arc<dyn Clock>,
    config: PublishConfig,
}

impl std::fmt::Debug for PublishQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PublishQueue {
    /// A queue over `store`, publishing through `gateway`.
    pub fn new(
        store: Arc<dyn Store>,
        gateway: Arc<dyn PublishGateway>,
        clock: Arc<dyn Clock>,
        config: PublishConfig,
    ) -> Self {
        PublishQueue {
            store,
            gateway,
            clock,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PublishConfig {
        &self.config
    }

    /// Claims up to `limit` due posts (one `claim_due_posts` call: `FOR UPDATE
    /// SKIP LOCKED` on Postgres), marking them `publishing` under this worker's
    /// lease. They still have to be processed ([`PublishQueue::process`]).
    pub async fn enqueue_due_posts(&self, limit: u32) -> Result<Vec<ScheduledPost>> {
        let now = self.clock.now();
        Ok(self
            .store
            .claim_due_posts(now, limit, &self.config.worker_id, self.config.lease)
            .await?)
    }

    /// Returns posts whose lease lapsed to the queue; returns how many.
    pub async fn release_stale_leases(&self) -> Result<u64> {
        Ok(self.store.release_stale_leases(self.clock.now()).await?)
    }

    /// Claims and processes due posts in batches of `batch.batch_size` until a
    /// batch comes back short (series templates that were advanced may have
    /// made new occurrences due, so a full batch or an advanced template claims
    /// again), at most `batch.max_batches` batches, waiting `batch.item_delay`
    /// between two posts. Stops between two posts when `shutdown` is triggered,
    /// handing the remaining claims back.
    pub async fn run_due(
        &self,
        batch: &BatchConfig,
        shutdown: Option<&Shutdown>,
    ) -> Result<QueueReport> {
        let batch_size = batch.batch_size.max(1);
        let mut report = QueueReport::default();
        for _ in 0..batch.max_batches.max(1) {
            if shutdown.is_some_and(Shutdown::is_triggered) {
                break;
            }
            let claimed = self.enqueue_due_posts(batch_size).await?;
            let full = claimed.len() as u64 >= u64::from(batch_size);
            report.claimed += claimed.len() as u64;
            let advanced_before = report.series_advanced;
            self.process_batch(claimed, batch.item_delay, shutdown, &mut report)
                .await;
            if !full && report.series_advanced == advanced_before {
                break;
            }
        }
        Ok(report)
    }

    async fn process_batch(
        &self,
        claimed: Vec<ScheduledPost>,
        item_delay: std::time::Duration,
        shutdown: Option<&Shutdown>,
        report: &mut QueueReport,
    ) {
        let mut first = true;
        let mut channels = Channels::new();
        for post in claimed {
            let stopping = shutdown.is_some_and(Shutdown::is_triggered);
            let outcome = if stopping {
                self.hand_back(&post).await
            } else {
                if !first && !item_delay.is_zero() {
                    tokio::time::sleep(item_delay).await;
                }
                first = false;
                self.process_with(post, &mut channels).await
            };
            if let Err(err) = &outcome {
                warn!(error = %err, "publishing a claimed post failed in storage");
            }
            report.add(&outcome);
        }
    }

    /// Hands a claim back untouched (`queued`, lease cleared).
    async fn hand_back(&self, post: &ScheduledPost) -> Result<PostOutcome> {
        let patch = PostPatch {
            status: Some(PostStatus::Queued),
            release_lease: true,
            ..self.guard()
        };
        match self.update(post, patch).await? {
            Some(_) => Ok(PostOutcome::Released),
            None => Ok(PostOutcome::LeaseLost),
        }
    }

    /// Takes one post claimed by this worker through the rules (see the type's
    /// docs). Storage failures come back as `Err`; the lease then lapses and the
    /// post is taken over later.
    pub async fn process(&self, post: ScheduledPost) -> Result<PostOutcome> {
        self.process_with(post, &mut Channels::new()).await
    }

    async fn process_with(
        &self,
        post: ScheduledPost,
        channels: &mut Channels,
    ) -> Result<PostOutcome> {
        let span = info_span!("publish_post", post_id = %post.id, tenant_id = %post.tenant_id);
        async move {
            if post.recurrence.is_some() {
                self.advance_series(&post, channels).await
            } else {
                self.publish(&post, channels).await
            }
        }
        .instrument(span)
        .await
    }

    fn guard(&self) -> PostPatch {
        PostPatch {
            expect_status: Some(PostStatus::Publishing),
            expect_lease_owner: Some(self.config.worker_id.clone()),
            ..PostPatch::default()
        }
    }

    /// Applies a lease-guarded patch; `None` when the guard failed.
    async fn update(
        &self,
        post: &ScheduledPost,
        patch: PostPatch,
    ) -> Result<Option<ScheduledPost>> {
        match self
            .store
            .update_post(post.tenant_id, post.id, patch, self.clock.now())
            .await
        {
            Ok(updated) => Ok(Some(updated)),
            Err(StorageError::Precondition { reason, .. }) => {
                debug!(%reason, "lease lost; nothing written");
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn advance_series(
        &self,
        template: &ScheduledPost,
        channels: &mut Channels,
    ) -> Result<PostOutcome> {
        let Some(recurrence) = template.recurrence.clone() else {
            return self.publish(template, channels).await;
        };
        let occurrence_at = template.publish_at;
        let next = match RecurrenceRule::new(recurrence).and_then(|r| r.next_after(occurrence_at)) {
            Ok(next) => next,
            Err(err) => return self.fail(template, None, err.to_string()).await,
        };
        self.store
            .insert_post(NewScheduledPost {
                tenant_id: template.tenant_id,
                channel_id: template.channel_id,
                content: template.content.clone(),
                publish_at: occurrence_at,
                recurrence: None,
                series_id: Some(template.id),
                occurrence_at: Some(occurrence_at),
                mission_id: template.mission_id,
                content_job_id: template.content_job_id,
                created_at: self.clock.now(),
            })
            .await?;
        let patch = match next {
            Some(next) => PostPatch {
                status: Some(PostStatus::Queued),
                publish_at: Some(next),
                release_lease: true,
                ..self.guard()
            },
            None => PostPatch {
                status: Some(PostStatus::Cancelled),
                release_lease: true,
                ..self.guard()
            },
        };
        match self.update(template, patch).await? {
            Some(_) => Ok(PostOutcome::SeriesAdvanced {
                occurrence_at,
                next,
            }),
            None => Ok(PostOutcome::LeaseLost),
        }
    }

    async fn publish(&self, post: &ScheduledPost, channels: &mut Channels) -> Result<PostOutcome> {
        let key = (post.tenant_id, post.channel_id);
        let mut channel = match channels.get(&key) {
            Some(channel) => channel.clone(),
            None => {
                let channel = self
                    .store
                    .get_channel(post.tenant_id, post.channel_id)
                    .await?;
                channels.insert(key, channel.clone());
                channel
            }
        };
        if let Some(reason) = self.gateway.refusal(&channel, &post.content) {
            return self
                .fail(
                    post,
                    None,
                    format!("the channel can never publish this content: {reason}"),
                )
                .await;
        }
        let reference = post.id.to_string();
        let max = self.config.retry.max_attempts.max(1);
        let mut attempt = post.retry_count + 1;
        let mut refreshed = false;
        loop {
            if attempt > max {
                let last = post
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("no attempt left ({max} made)"));
                return self.fail(post, None, last).await;
            }
            let run = match self
                .store
                .insert_post_run(NewPostRun {
                    tenant_id: post.tenant_id,
                    post_id: post.id,
                    attempt,
                    started_at: self.clock.now(),
                })
                .await
            {
                Ok(run) => run,
                Err(StorageError::Conflict { .. }) => {
                    return self.recover(post, &channel, attempt).await;
                }
                Err(err) => return Err(err.into()),
            };
            let result = self
                .gateway
                .publish(&channel, &post.content, &reference)
                .await;
            match result {
                Ok(published) => return self.succeed(post, &run, attempt, published).await,
                Err(PublishFailure::Ambiguous(message)) => {
                    return self
                        .settle_ambiguous(post, &channel, &run, attempt, &message)
                        .await;
                }
                Err(PublishFailure::Permanent(message)) => {
                    let error = PublishFailure::Permanent(message).to_string();
                    return self.fail(post, Some((&run, attempt)), error).await;
                }
                Err(PublishFailure::Unauthorized(message)) => {
                    let error = PublishFailure::Unauthorized(message).to_string();
                    if refreshed || attempt >= max {
                        let error = if refreshed {
                            format!("{error} (again after refreshing the token)")
                        } else {
                            error
                        };
                        return self.fail(post, Some((&run, attempt)), error).await;
                    }
                    // Record the attempt, refresh once, and go again at once.
                    let patch = PostPatch {
                        retry_count: Some(attempt),
                        error_message: Some(Some(error.clone())),
                        ..self.guard()
                    };
                    if self.update(post, patch).await?.is_none() {
                        return Ok(PostOutcome::LeaseLost);
                    }
                    self.finish_run(post, &run, PostRunStatus::Failed, Some(error))
                        .await?;
                    refreshed = true;
                    match self.gateway.refresh_credentials(&channel).await {
                        Ok(credentials) => {
                            channel = self
                                .store
                                .update_channel_credentials(post.tenant_id, channel.id, credentials)
                                .await?;
                            channels.insert(key, channel.clone());
                        }
                        Err(failure) => {
                            let error = format!("token refresh failed: {failure}");
                            return self.fail(post, None, error).await;
                        }
                    }
                    attempt += 1;
                }
                Err(failure) => {
                    let error = failure.to_string();
                    if attempt >= max {
                        return self.fail(post, Some((&run, attempt)), error).await;
                    }
                    let delay = self
                        .config
                        .retry
                        .delay_after(attempt, failure.retry_after());
                    let next_attempt_at = self.clock.now() + delay;
                    let patch = PostPatch {
                        status: Some(PostStatus::Queued),
                        retry_count: Some(attempt),
                        error_message: Some(Some(error.clone())),
                        next_attempt_at: Some(Some(next_attempt_at)),
                        release_lease: true,
                        ..self.guard()
                    };
                    if self.update(post, patch).await?.is_none() {
                        return Ok(PostOutcome::LeaseLost);
                    }
                    self.finish_run(post, &run, PostRunStatus::Failed, Some(error.clone()))
                        .await?;
                    return Ok(PostOutcome::Retrying {
                        attempts: attempt,
                        next_attempt_at,
                        error,
                    });
                }
            }
        }
    }

    /// An attempt under number `attempt` was already started by a worker that
    /// stopped before recording its outcome: find out by lookup, never by
    /// publishing again.
    async fn recover(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        attempt: u32,
    ) -> Result<PostOutcome> {
        let runs = self.store.list_post_runs(post.tenant_id, post.id).await?;
        let orphan = runs.into_iter().find(|r| r.attempt == attempt);
        warn!(
            attempt,
            "a previous worker stopped during this attempt; checking the platform"
        );
        let can_lookup = self.gateway.can_lookup(channel);
        let found = if can_lookup {
            let attempted_at = orphan.as_ref().map_or(post.publish_at, |r| r.started_at);
            self.gateway
                .lookup(channel, &post.content, &post.id.to_string(), attempted_at)
                .await
        } else {
            Ok(None)
        };
        match (found, orphan) {
            (Ok(Some(published)), Some(run)) => self.succeed(post, &run, attempt, published).await,
            (Ok(Some(published)), None) => self.succeed_without_run(post, attempt, published).await,
            (Ok(None), orphan) if can_lookup => {
                let error = format!(
                    "a worker stopped during attempt {attempt} after it may have been sent; \
                     the post was not found among the account's recent posts"
                );
                let run = orphan.filter(|r| r.status == PostRunStatus::Running);
                self.retry_not_found(post, run.as_ref(), attempt, error)
                    .await
            }
            (outcome, orphan) => {
                let why = match outcome {
                    Err(failure) => format!("; the lookup failed: {failure}"),
                    _ if self.gateway.can_lookup(channel) => {
                        "; the post was not found among the account's recent posts".into()
                    }
                    _ => "; the platform offers no lookup".into(),
                };
                let error = format!(
                    "{OUTCOME_UNKNOWN}: a worker stopped during attempt {attempt} after it may \
                     have been sent{why}; check the account before publishing again"
                );
                let run = orphan.filter(|r| r.status == PostRunStatus::Running);
                self.fail(post, run.as_ref().map(|r| (r, attempt)), error)
                    .await
            }
        }
    }

    async fn settle_ambiguous(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        run: &PostRun,
        attempt: u32,
        message: &str,
    ) -> Result<PostOutcome> {
        let why = if self.gateway.can_lookup(channel) {
            match self
                .gateway
                .lookup(channel, &post.content, &post.id.to_string(), run.started_at)
                .await
            {
                Ok(Some(published)) => return self.succeed(post, run, attempt, published).await,
                Ok(None) => {
                    let error = format!(
                        "no answer after the request was sent ({message}); the post was not \
                         found among the account's recent posts"
                    );
                    return self.retry_not_found(post, Some(run), attempt, error).await;
                }
                Err(failure) => format!("the lookup failed: {failure}"),
            }
        } else {
            "the platform offers no lookup".to_owned()
        };
        let error = format!(
            "{OUTCOME_UNKNOWN}: no answer after the request was sent ({message}); {why}; \
             check the account before publishing again"
        );
        self.fail(post, Some((run, attempt)), error).await
    }

    /// The lookup said the ambiguous attempt `attempt` created no post: queue a
    /// new attempt after the backoff, or fail (definitely unpublished) when no
    /// attempt is left.
    async fn retry_not_found(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        attempt: u32,
        error: String,
    ) -> Result<PostOutcome> {
        let max = self.config.retry.max_attempts.max(1);
        if attempt >= max {
            let error = format!("{error}; no attempt left ({max} made)");
            return match run {
                Some(run) => self.fail(post, Some((run, attempt)), error).await,
                None => {
                    let patch = PostPatch {
                        status: Some(PostStatus::Failed),
                        error_message: Some(Some(error.clone())),
                        retry_count: Some(attempt),
                        next_attempt_at: Some(None),
                        release_lease: true,
                        ..self.guard()
                    };
                    match self.update(post, patch).await? {
                        Some(_) => Ok(PostOutcome::Failed(error)),
                        None => Ok(PostOutcome::LeaseLost),
                    }
                }
            };
        }
        let next_attempt_at = self.clock.now() + self.config.retry.delay_after(attempt, None);
        let patch = PostPatch {
            status: Some(PostStatus::Queued),
            retry_count: Some(attempt),
            error_message: Some(Some(error.clone())),
            next_attempt_at: Some(Some(next_attempt_at)),
            release_lease: true,
            ..self.guard()
        };
        if self.update(post, patch).await?.is_none() {
            return Ok(PostOutcome::LeaseLost);
        }
        if let Some(run) = run {
            self.finish_run(post, run, PostRunStatus::Failed, Some(error.clone()))
                .await?;
        }
        Ok(PostOutcome::Retrying {
            attempts: attempt,
            next_attempt_at,
            error,
        })
    }

    fn published_patch(&self, attempt: u32, published: PublishedPost) -> PostPatch {
        let now = self.clock.now();
        PostPatch {
            status: Some(PostStatus::Published),
            platform_post_id: Some(Some(published.platform_post_id)),
            url: Some(published.url),
            error_message: Some(None),
            retry_count: Some(attempt),
            next_attempt_at: Some(None),
            release_lease: true,
            published_at: Some(Some(now)),
            next_check_at: Some(Some(now)),
            stop_at: Some(now.checked_add_signed(self.config.polling_window)),
            ..self.guard()
        }
    }

    async fn succeed(
        &self,
        post: &ScheduledPost,
        run: &PostRun,
        attempt: u32,
        published: PublishedPost,
    ) -> Result<PostOutcome> {
        let patch = self.published_patch(attempt, published.clone());
        if self.update(post, patch).await?.is_none() {
            return Ok(PostOutcome::LeaseLost);
        }
        self.finish_run(post, run, PostRunStatus::Success, None)
            .await?;
        Ok(PostOutcome::Published(published))
    }

    async fn succeed_without_run(
        &self,
        post: &ScheduledPost,
        attempt: u32,
        published: PublishedPost,
    ) -> Result<PostOutcome> {
        let patch = self.published_patch(attempt, published.clone());
        if self.update(post, patch).await?.is_none() {
            return Ok(PostOutcome::LeaseLost);
        }
        Ok(PostOutcome::Published(published))
    }

    async fn fail(
        &self,
        post: &ScheduledPost,
        run: Option<(&PostRun, u32)>,
        error: String,
    ) -> Result<PostOutcome> {
        let patch = PostPatch {
            status: Some(PostStatus::Failed),
            error_message: Some(Some(error.clone())),
            retry_count: run.map(|(_, attempt)| attempt),
            next_attempt_at: Some(None),
            release_lease: true,
            ..self.guard()
        };
        if self.update(post, patch).await?.is_none() {
            return Ok(PostOutcome::LeaseLost);
        }
        if let Some((run, _)) = run {
            self.finish_run(post, run, PostRunStatus::Failed, Some(error.clone()))
                .await?;
        }
        Ok(PostOutcome::Failed(error))
    }

    async fn finish_run(
        &self,
        post: &ScheduledPost,
        run: &PostRun,
        status: PostRunStatus,
        error: Option<String>,
    ) -> Result<()> {
        self.store
            .finish_post_run(post.tenant_id, run.id, status, error, self.clock.now())
            .await?;
        Ok(())
    }
}
