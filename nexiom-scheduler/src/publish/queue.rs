//! [`PublishQueue`]: claims due posts with a lease, advances series, and
//! publishes with the retry rules of the design.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{Channel, ChannelId, Clock, PostPatch, PostStatus, ScheduledPost, TenantId};
use nexiom_storage::Store;
use tracing::{Instrument, info_span};

use super::attempt::Runs;
use super::gateway::{PublishGateway, PublishedPost};
use super::retry::RetryPolicy;
use crate::concurrency::ConcurrencyConfig;
use crate::error::Result;
use crate::tokens::ChannelTokens;
use crate::worker::{BatchConfig, Shutdown};

/// Channels read recently, with when they were read.
type ChannelCache = HashMap<(TenantId, ChannelId), (Channel, DateTime<Utc>)>;

/// The `error_message` of a post whose last attempt may or may not have been
/// published and that could not be checked: a person has to look.
pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// The start of the `error_message` of a queued post that waits for its
/// channel to be reconnected (the platform refused the channel's tokens).
/// Its attempt was counted, but a post whose every attempt is used is still
/// given one more after each reconnection (which only a person makes),
/// rather than failing without a call.
pub const AWAITING_RECONNECTION: &str = "awaiting_reconnection";

/// How the queue claims and publishes.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Lease owner written on claimed posts; unique per worker (default: a
    /// random `publisher-…` name).
    pub worker_id: String,
    /// How long a claim holds before another worker may take the post over
    /// (default 5 minutes). A heartbeat renews the leases of a batch every
    /// third of this while its calls are in flight, so a slow platform never
    /// costs the claim; a worker that died gives its posts back one lease
    /// period after its last beat.
    pub lease: Duration,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// How long comments are polled after publication (default 7 days).
    pub polling_window: Duration,
    /// Platform calls in flight: per worker, and per channel (default 64 and
    /// 1). A channel is published by one worker at a time, so the per-channel
    /// cap holds across worker processes.
    pub concurrency: ConcurrencyConfig,
    /// How long a channel read from storage is reused (default 30 s). A token
    /// refreshed by this worker replaces it at once.
    pub channel_cache_ttl: Duration,
    /// How many recipients of a WhatsApp broadcast one claim sends to, at
    /// most, before the post goes back to the queue due at once (default
    /// 200; a pass also ends after about a minute). A large audience then
    /// takes turns with the other posts of the worker's batches and with the
    /// runtime's other workers, and a stopping worker never waits on it for
    /// long; the next claim, by any worker, goes on with the next recipients.
    pub broadcast_pass: usize,
    /// How long a claimed batch starts new calls (default 10 s). Past it,
    /// each lane finishes its call in flight and hands its other posts back
    /// to the queue, due at once, with no attempt counted; the next claim
    /// takes them with the posts that fell due meanwhile, shared among the
    /// channels when one crowds it. So a post falling due while a batch of
    /// one busy channel's posts runs (one call at a time, at the platform's
    /// pace) waits for about this long, not for the whole batch. Every lane
    /// starts at least one post per batch.
    pub batch_time: Duration,
    /// How late a series occurrence may be created (default `None`: every
    /// occurrence is created and published, however late). With
    /// `Some(max)`, a series template reached more than `max` after its
    /// occurrence (its workers were stopped, say, over a weekend) creates no
    /// post for it, nor for the following occurrences up to the first within
    /// `max` of now: a daily "good morning" series then resumes with one
    /// post, not a burst of the days it missed. The skipped occurrences are
    /// counted in [`QueueReport::occurrences_skipped`] and logged; no post
    /// row is written for them. A limit under five minutes counts as five
    /// minutes (a due occurrence is always somewhat late when claimed).
    pub series_max_lateness: Option<Duration>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            worker_id: format!("publisher-{:016x}", fastrand::u64(..)),
            lease: Duration::minutes(5),
            retry: RetryPolicy::default(),
            polling_window: Duration::days(7),
            concurrency: ConcurrencyConfig::default(),
            channel_cache_ttl: Duration::seconds(30),
            broadcast_pass: 200,
            batch_time: Duration::seconds(10),
            series_max_lateness: None,
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
#[non_exhaustive]
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
    /// A series template reached too late
    /// ([`PublishConfig::series_max_lateness`]): `skipped` occurrences, the
    /// first at `first`, were not created, and the template moved to `next`
    /// (`None`: the series ended).
    OccurrencesSkipped {
        /// The first occurrence skipped.
        first: DateTime<Utc>,
        /// How many were skipped.
        skipped: u32,
        /// The template's next occurrence.
        next: Option<DateTime<Utc>>,
    },
    /// The claim was lost (the lease lapsed and another worker took the post)
    /// or the post changed meanwhile; nothing was written.
    LeaseLost,
    /// The post was handed back untouched (`queued`, lease cleared, no
    /// attempt counted): shutdown was requested before it started, its
    /// batch's time ran out ([`PublishConfig::batch_time`]), or its channel
    /// was asked to wait.
    Released,
    /// The platform refused the channel's tokens for good: the channel is
    /// paused (`needs_reauth`), and the post, its attempt counted, is queued
    /// waiting for a person to reconnect the channel (its `error_message`
    /// starts with [`AWAITING_RECONNECTION`]).
    AwaitingReconnection {
        /// Attempts made so far.
        attempts: u32,
    },
    /// An occurrence of a series stopped on request (cancelled or replaced,
    /// [`ScheduledPost::is_stopped_series`]) after it was first claimed: it
    /// is `cancelled`, with no call to the platform.
    Cancelled,
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
    /// Series occurrences not created because they were too late
    /// ([`PublishConfig::series_max_lateness`]).
    pub occurrences_skipped: u64,
    /// Posts handed back untouched, to be claimed again
    /// ([`PostOutcome::Released`]).
    pub handed_back: u64,
    /// Posts waiting for their channel to be reconnected
    /// ([`PostOutcome::AwaitingReconnection`]).
    pub awaiting_reconnection: u64,
    /// Occurrences cancelled because their series was stopped
    /// ([`PostOutcome::Cancelled`]).
    pub cancelled: u64,
    /// Claims lost, and storage errors while processing.
    pub skipped: u64,
}

impl QueueReport {
    /// Posts handled in a way that is not a failure.
    pub fn processed(&self) -> u64 {
        self.published + self.retrying + self.series_advanced + self.cancelled
    }

    /// The counts as JSON (for execution logs).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "claimed": self.claimed,
            "published": self.published,
            "retrying": self.retrying,
            "failed": self.failed,
            "series_advanced": self.series_advanced,
            "occurrences_skipped": self.occurrences_skipped,
            "handed_back": self.handed_back,
            "awaiting_reconnection": self.awaiting_reconnection,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
        })
    }

    pub(super) fn add(&mut self, outcome: &Result<PostOutcome>) {
        match outcome {
            Ok(PostOutcome::Published(_)) => {
                self.published += 1;
                crate::telemetry::post_outcome("published");
            }
            Ok(PostOutcome::Retrying { .. }) => {
                self.retrying += 1;
                crate::telemetry::post_outcome("retrying");
            }
            Ok(PostOutcome::Failed(error)) => {
                self.failed += 1;
                crate::telemetry::post_outcome(if error.starts_with(OUTCOME_UNKNOWN) {
                    "outcome_unknown"
                } else {
                    "failed"
                });
            }
            Ok(PostOutcome::SeriesAdvanced { .. }) => self.series_advanced += 1,
            Ok(PostOutcome::OccurrencesSkipped { skipped, .. }) => {
                self.series_advanced += 1;
                self.occurrences_skipped += u64::from(*skipped);
            }
            Ok(PostOutcome::Released) => self.handed_back += 1,
            Ok(PostOutcome::AwaitingReconnection { .. }) => self.awaiting_reconnection += 1,
            Ok(PostOutcome::Cancelled) => self.cancelled += 1,
            Ok(PostOutcome::LeaseLost) | Err(_) => self.skipped += 1,
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
///   unless [`PublishConfig::series_max_lateness`] says how late is too
///   late. An occurrence of a series stopped on request
///   ([`ScheduledPost::is_stopped_series`]) that comes back to `queued`
///   after the stop (a retry, a lease taken over) is cancelled when claimed,
///   with no call ([`PostOutcome::Cancelled`]).
/// - Content the channel can never take fails at once, before any call.
/// - Each attempt is a `post_run`, inserted *before* the platform call with
///   attempt number `retry_count + 1`. An attempt is therefore never made twice
///   under one number: if that run already exists, an earlier worker died
///   during the attempt, and the outcome is settled by a lookup (found →
///   `published`; definitely not found → a new attempt under the limit; the
///   lookup failing, or no lookup possible → `failed` / [`OUTCOME_UNKNOWN`]),
///   never by publishing blindly.
/// - At most `retry.max_attempts` attempts, with two exceptions that each
///   need a new token: a call after a successful refresh (`Unauthorized`
///   on the last attempt), and one attempt after each reconnection of a
///   channel that was paused ([`AWAITING_RECONNECTION`]). Rate limits and transient failures
///   queue the post again after [`RetryPolicy::delay_after`] (never sooner than
///   a `Retry-After`); `Unauthorized` refreshes the credentials once and tries
///   again at once; permanent failures fail at once; an ambiguous outcome is
///   looked up: found → `published` with the found id; definitely not found →
///   queued again as a new attempt (with backoff, under the attempt limit);
///   the lookup failing or unsupported → `failed` as [`OUTCOME_UNKNOWN`].
/// - The post's final state and the end of its run are written together
///   ([`Store::settle_posts`](nexiom_storage::PostStore::settle_posts), one
///   statement for all the posts of a batch that finished meanwhile), guarded
///   by the lease: a worker whose lease moved on writes nothing.
/// - A 429 (or 503) with Retry-After holds the channel back until then, in
///   every worker's claims; the channel's other posts in the batch are handed
///   back untouched.
/// - Channels run concurrently, one call at a time per channel by default
///   ([`PublishConfig::concurrency`]); a channel is claimed by one worker at a
///   time.
/// - On success: `published`, `platform_post_id`, `url`, `published_at`, and
///   comment polling armed (`next_check_at = published_at`,
///   `stop_at = published_at + polling_window`).
#[derive(Clone)]
pub struct PublishQueue {
    pub(super) store: Arc<dyn Store>,
    pub(super) gateway: Arc<dyn PublishGateway>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: PublishConfig,
    pub(super) tokens: ChannelTokens,
    channels: Arc<Mutex<ChannelCache>>,
}

impl std::fmt::Debug for PublishQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PublishQueue {
    /// The store it claims from.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A queue over `store`, publishing through `gateway`.
    pub fn new(
        store: Arc<dyn Store>,
        gateway: Arc<dyn PublishGateway>,
        clock: Arc<dyn Clock>,
        config: PublishConfig,
    ) -> Self {
        PublishQueue {
            tokens: ChannelTokens::new(Arc::clone(&store), Arc::clone(&clock)),
            store,
            gateway,
            clock,
            config,
            channels: Arc::default(),
        }
    }

    /// Gets tokens through `tokens` (share the process's one keeper between
    /// the queue, the poller and the inbound pipeline); by default the queue
    /// has its own over the same store.
    pub fn with_tokens(mut self, tokens: ChannelTokens) -> Self {
        self.tokens = tokens;
        self
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
    /// again, and so does a batch that handed posts back when its
    /// [`PublishConfig::batch_time`] ran out), at most `batch.max_batches`
    /// batches. Inside a batch the channels
    /// run concurrently (see [`PublishConfig::concurrency`]), each channel's
    /// posts in `publish_at` order, waiting `batch.item_delay` between two
    /// posts of one channel. Stops starting posts when `shutdown` is
    /// triggered, handing the remaining claims back.
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
            let timed_out = self
                .process_batch(claimed, batch.item_delay, shutdown, &mut report)
                .await;
            // A batch that ran out of time handed posts back, due at once.
            if !full && !timed_out && report.series_advanced == advanced_before {
                break;
            }
        }
        Ok(report)
    }

    /// Hands a claim back untouched (`queued`, lease cleared).
    pub(super) async fn hand_back(&self, post: &ScheduledPost) -> Result<PostOutcome> {
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
    /// docs), writing its outcome at once; its lease is renewed every third
    /// of [`PublishConfig::lease`] meanwhile, so a slow platform never costs
    /// the claim. Storage failures come back as `Err`; the lease then lapses
    /// and the post is taken over later.
    pub async fn process(&self, post: ScheduledPost) -> Result<PostOutcome> {
        let span = info_span!("publish_post", post_id = %post.id, tenant_id = %post.tenant_id);
        let id = [post.id];
        let work = async move {
            if post.recurrence.is_some() {
                self.advance_series(&post).await
            } else {
                let attempted = self.attempt(&post, &Runs::Direct).await;
                self.write_now(attempted.step).await
            }
        }
        .instrument(span);
        let heartbeat = self.heartbeat(&id);
        tokio::pin!(work, heartbeat);
        loop {
            tokio::select! {
                biased;
                outcome = &mut work => return outcome,
                () = &mut heartbeat => {}
            }
        }
    }

    /// The channel, from the cache when read within `channel_cache_ttl`.
    pub(super) async fn channel(&self, tenant: TenantId, id: ChannelId) -> Result<Channel> {
        let now = self.clock.now();
        if let Some((channel, read_at)) = self.cache().get(&(tenant, id))
            && now - *read_at < self.config.channel_cache_ttl
        {
            return Ok(channel.clone());
        }
        let channel = self.store.get_channel(tenant, id).await?;
        self.cache().insert((tenant, id), (channel.clone(), now));
        Ok(channel)
    }

    /// The channels of `keys` (duplicates allowed), from the cache when read
    /// within `channel_cache_ttl`, the others read in one statement per
    /// tenant ([`read_channels`](crate::channel_reads::read_channels)). A channel that cannot be
    /// read is left out (its posts meet the error when attempted, through
    /// [`PublishQueue::channel`]).
    pub(super) async fn channels(
        &self,
        keys: &[(TenantId, ChannelId)],
    ) -> HashMap<(TenantId, ChannelId), Channel> {
        let now = self.clock.now();
        let mut found = HashMap::new();
        let mut missing: Vec<(TenantId, ChannelId)> = Vec::new();
        {
            let cache = self.cache();
            for key in keys {
                if found.contains_key(key) {
                    continue;
                }
                match cache.get(key) {
                    Some((channel, read_at)) if now - *read_at < self.config.channel_cache_ttl => {
                        found.insert(*key, channel.clone());
                    }
                    _ => missing.push(*key),
                }
            }
        }
        let read = crate::channel_reads::read_channels(self.store.as_ref(), missing).await;
        let mut cache = self.cache();
        for (key, channel) in read {
            cache.insert(key, (channel.clone(), now));
            found.insert(key, channel);
        }
        found
    }

    /// Replaces the cached channel (after a token refresh).
    pub(super) fn remember_channel(&self, channel: &Channel) {
        let now = self.clock.now();
        self.cache()
            .insert((channel.tenant_id, channel.id), (channel.clone(), now));
    }

    /// Drops the cached copy of a channel (read again on next use).
    pub(super) fn forget_channel(&self, tenant: TenantId, id: ChannelId) {
        self.cache().remove(&(tenant, id));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ChannelCache> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
