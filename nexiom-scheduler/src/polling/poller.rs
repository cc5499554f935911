//! [`CommentPoller`]: one polling pass over the posts due, and hiding a comment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{ConnectorError, ConnectorRegistry};
use nexiom_core::{
    Channel, ChannelId, Clock, Comment, CommentCheckpoint, CommentId, NewComment, ScheduledPost,
    TenantId,
};
use nexiom_storage::{ClaimedPoll, PollResult, Store};
use tokio::sync::mpsc;
use tracing::warn;

use super::config::PollingConfig;
use super::error::PollingError;
use super::report::{PollFailure, PollReport};
use super::writer::{Pass, Write, write_checks};
use crate::concurrency::{for_each_lane, lanes, sub_lane};
use crate::error::Result;
use crate::inbound::InboundPipeline;
use crate::tokens::ChannelTokens;
use crate::worker::Shutdown;

/// How one post's check ended.
pub(super) enum Checked {
    /// Read to the last page; polling continues (or ends when past the
    /// window).
    Polled,
    /// Read up to the page limit or the claim's deadline, with pages left:
    /// polling continues, and a last check goes on until it reads to the
    /// last page.
    PolledInPart,
    /// Not polled: its channel is rate-limited until then.
    Deferred(DateTime<Utc>),
    /// Never polled: the platform lists no comments.
    Unsupported,
    /// Not polled: the channel is paused (needs re-authorization).
    Paused,
    /// Not polled: its window ended longer ago than
    /// [`PollingConfig::last_check_grace`], so its last check is not made.
    Over,
}

/// What one post's check read, kept even when a later page fails: the
/// comments of the pages read and the checkpoint after the last of them.
#[derive(Default)]
pub(super) struct Stored {
    /// Pages read.
    pub(super) pages: u64,
    /// Comments left out because the store would refuse them.
    pub(super) refused: u64,
    /// Items the connector could not read and left out of their page.
    pub(super) unreadable: u64,
    /// The comments to store.
    pub(super) comments: Vec<NewComment>,
    /// The checkpoint after the last page read.
    pub(super) checkpoint: Option<CommentCheckpoint>,
}

/// Polls the comments of published posts through the connectors, and hides
/// comments. Cheap to clone; clones share the per-channel "not before"
/// instants (the Retry-After of rate-limited channels), which live in memory.
#[derive(Clone)]
pub struct CommentPoller {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) connectors: ConnectorRegistry,
    inbound: Option<InboundPipeline>,
    pub(super) config: PollingConfig,
    pub(super) tokens: ChannelTokens,
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
            tokens: ChannelTokens::new(Arc::clone(&store), Arc::clone(&clock)),
            store,
            clock,
            connectors,
            inbound: None,
            config: PollingConfig::default(),
            not_before: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Gets tokens through `tokens` (share the process's one keeper); by
    /// default the poller has its own over the same store.
    pub fn with_tokens(mut self, tokens: ChannelTokens) -> Self {
        self.tokens = tokens;
        self
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

    /// After a rate limit (or an open circuit), leaves the channel alone
    /// until the platform's Retry-After (the interval when it gave none). A
    /// throttle the platform answered (not this process's own circuit) is
    /// also recorded in the store's channel holds
    /// ([`throttle_channel`](nexiom_storage::PostStore::throttle_channel)),
    /// which every process's poll and publish claims honour: the platform's
    /// budget is the channel's, not one worker's.
    pub(super) async fn hold_if_rate_limited(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        err: &ConnectorError,
    ) {
        if !is_rate_limit(err) {
            return;
        }
        let wait = err
            .retry_after()
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or(self.config.interval);
        let until = self
            .clock
            .now()
            .checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        {
            let mut holds = self.lock();
            let held = holds.entry(channel).or_insert(until);
            *held = (*held).max(until);
        }
        if matches!(err, ConnectorError::RateLimited { .. })
            && let Err(error) = self.store.throttle_channel(tenant, channel, until).await
        {
            tracing::warn!(%channel, %error, "could not record the channel's hold");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, DateTime<Utc>>> {
        self.not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One pass at the clock's time: first the channels' post discovery due
    /// ([`CommentPoller::discover_posts`], at most
    /// [`PollingConfig::discoveries_per_pass`] channels), so the posts made
    /// elsewhere it finds are polled in this same pass; then at most `limit`
    /// posts due (`next_check_at <= now`, and not read to the end of their
    /// window yet: `last_check_at < stop_at`; oldest `next_check_at`
    /// first),
    /// claimed for [`PollingConfig::lease`] (see
    /// [`PollBatchStore::claim_polls`](nexiom_storage::PollBatchStore::claim_polls)):
    ///
    /// - a post on a platform without the comments capability is not polled and
    ///   its `next_check_at` is cleared;
    /// - a post whose channel is rate-limited is not polled; its
    ///   `next_check_at` moves to the channel's Retry-After;
    /// - otherwise every page from the checkpoint's cursor is read (a page
    ///   the platform refuses for good when read from a cursor is read once
    ///   more from the first page: a cursor can outlive what it pointed
    ///   at); then the
    ///   comments read are stored, each once per `(post,
    ///   platform_comment_id)` with its parent, together with the checkpoint
    ///   after the last page read, in one atomic write (a crash before it
    ///   re-reads the pages at the next check and stores nothing twice). On
    ///   the last page the checkpoint keeps the cursor that page was read
    ///   with, so the next check re-reads it and sees what was appended;
    /// - in the same write, `last_check_at = now` and `next_check_at = now +
    ///   interval`; when that is at or after `stop_at`, `next_check_at =
    ///   stop_at`, a last check that reads the window to its end; after a
    ///   check that read from `stop_at` on, `next_check_at` is cleared for
    ///   good (the 7 days are over). A last check that could not read (a
    ///   rate limit, an error, a paused channel) is tried again as any
    ///   check would be, for up to [`PollingConfig::last_check_grace`] after
    ///   `stop_at`. A post whose checks stopped while no worker ran (the
    ///   window over since) gets that last check too; it stores what it
    ///   reads, as a webhook would.
    ///
    /// The writes of the posts checked while the previous write ran go to
    /// the store together ([`PollBatchStore::finish_polls`](nexiom_storage::PollBatchStore::finish_polls):
    /// one statement on Postgres), each only while the post's claim holds; a
    /// post whose claim moved on is not written and is counted in
    /// [`PollReport::posts_lease_lost`].
    ///
    /// A post that fails (the platform refuses, the store fails for it) is
    /// recorded in [`PollReport::failures`], checked again after the interval
    /// (what it read before the failure is stored), and never stops the other
    /// posts; a refusal (`Permanent`, `Forbidden`: a deleted post, a
    /// permission gone) in a row with others waits twice as long as the one
    /// before, up to [`PollingConfig::failure_backoff_max`] (the post's
    /// [`poll_failures`](nexiom_core::ScheduledPost::poll_failures)). A rate limit (`RateLimited`, or an open circuit) stops the
    /// channel until its Retry-After (the interval when the platform did not
    /// say).
    ///
    /// Posts are polled concurrently under [`PollingConfig::concurrency`]: a
    /// channel's posts are spread over at most its cap of lanes, the worker
    /// runs at most `max_in_flight` lanes at once, and a post's pages are read
    /// one after another within its lane. A rate limit stops the channel's
    /// posts not started yet; those already in flight on it get their own
    /// answer (usually the same rate limit). Once `shutdown` fires, each lane
    /// stops after its post in flight; the posts not started are handed back,
    /// due as they were. Fails only when the due discoveries or posts cannot
    /// be claimed.
    pub async fn poll_due(&self, limit: u32, shutdown: Option<&Shutdown>) -> Result<PollReport> {
        let discovered = self
            .discover_posts(self.config.discoveries_per_pass)
            .await?;
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_polls(now, limit, self.config.lease)
            .await?;
        // Poll lag: how long the most overdue claimed post had been due.
        let lag = claimed
            .iter()
            .map(|c| c.due_at)
            .min()
            .map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1e3);
        let pass = Mutex::new(Pass::default());
        let posts_claimed = u64::try_from(claimed.len()).unwrap_or(u64::MAX);
        let (channels, lanes) = self.poll_lanes(claimed).await;
        let (tx, rx) = mpsc::unbounded_channel::<Write>();
        let lanes_done = async move {
            let (tx, channels) = (&tx, &channels);
            for_each_lane(
                lanes,
                self.config.concurrency.worker_cap(),
                |lane| async move {
                    for claim in lane {
                        // A post whose turn comes late in its lane (the
                        // posts before it read many pages) is handed back
                        // rather than checked under a claim about to end.
                        let write = if shutdown.is_some_and(Shutdown::is_triggered)
                            || self.clock.now() >= self.check_deadline(&claim)
                        {
                            Write::hand_back(&claim)
                        } else {
                            self.poll_post(&claim, channels.get(&claim.post.channel_id), now)
                                .await
                        };
                        let _ = tx.send(write);
                    }
                },
            )
            .await;
        };
        tokio::join!(
            lanes_done,
            write_checks(self.store.as_ref(), self.clock.as_ref(), rx, &pass)
        );
        let Pass {
            mut report,
            oldest_new,
        } = pass.into_inner().unwrap_or_else(PoisonError::into_inner);
        report.posts_claimed = posts_claimed;
        report.merge(discovered);
        if let (Some(oldest), Some(inbound)) = (oldest_new, &self.inbound) {
            // The platform's times of what was stored, bounded: an old
            // comment must not open the auto-reply to every tenant's old
            // pending items.
            let since = self
                .clock
                .now()
                .checked_sub_signed(self.config.follow_up_max_age)
                .map_or(oldest, |floor| oldest.max(floor));
            self.follow_up(inbound, since, &mut report).await;
        }
        crate::telemetry::polled(report.comments_stored, lag);
        Ok(report)
    }

    /// Groups claimed posts into lanes: by channel, and within a channel
    /// spread over its cap of lanes (each lane polls its posts one after
    /// another). Returns the channels read on the way.
    async fn poll_lanes(
        &self,
        claimed: Vec<ClaimedPoll>,
    ) -> (HashMap<ChannelId, Channel>, Vec<Vec<ClaimedPoll>>) {
        // The batch's channels in one read per tenant. A channel that cannot
        // be read gets cap 1; its posts fail with the read error when checked.
        let (channels, caps) = crate::channel_reads::channels_and_caps(
            self.store.as_ref(),
            claimed
                .iter()
                .map(|claim| (claim.post.tenant_id, claim.post.channel_id)),
            |platform| self.config.concurrency.channel_cap(platform),
        )
        .await;
        let mut round_robin: HashMap<ChannelId, usize> = HashMap::new();
        let keyed: Vec<((ChannelId, usize), ClaimedPoll)> = claimed
            .into_iter()
            .map(|claim| {
                let channel = claim.post.channel_id;
                let cap = caps.get(&channel).copied().unwrap_or(1);
                let rr = round_robin.entry(channel).or_default();
                ((channel, sub_lane(cap, None, rr)), claim)
            })
            .collect();
        let lanes = lanes(keyed, |(key, _)| *key)
            .into_iter()
            .map(|lane| lane.into_iter().map(|(_, claim)| claim).collect())
            .collect();
        (channels, lanes)
    }

    /// Checks one claimed post; returns what to write back and its counts.
    async fn poll_post(
        &self,
        claim: &ClaimedPoll,
        channel: Option<&Channel>,
        now: DateTime<Utc>,
    ) -> Write {
        let post = &claim.post;
        let mut report = PollReport::default();
        let mut stored = Stored::default();
        let outcome = self.check_post(claim, channel, now, &mut stored).await;
        report.pages_read += stored.pages;
        report.comments_refused += stored.refused;
        report.comments_unreadable += stored.unreadable;
        let stop = self.stop_of(post);
        let mut failures = post.poll_failures;
        if matches!(outcome, Ok(Checked::Polled | Checked::PolledInPart)) {
            failures = 0;
        }
        let (earliest, checked) = match outcome {
            Ok(Checked::Polled) => {
                report.posts_polled += 1;
                (Some(now + self.config.interval), true)
            }
            Ok(Checked::PolledInPart) => {
                report.posts_polled += 1;
                // Past the window's end, not read to it yet.
                let last = stop.is_some_and(|stop| now >= stop);
                (Some(now + self.config.interval), !last)
            }
            Ok(Checked::Deferred(until)) => {
                report.posts_rate_limited += 1;
                (Some(until), false)
            }
            Ok(Checked::Unsupported) => {
                report.posts_unsupported += 1;
                (None, false)
            }
            Ok(Checked::Paused) => {
                report.posts_paused += 1;
                (Some(now + self.config.interval), false)
            }
            Ok(Checked::Over) => {
                report.posts_finished += 1;
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
                // A refusal (a deleted post, a permission gone) stays until
                // something changes: each one in a row waits longer. An
                // outage or a store failure is retried after the interval.
                let refused = matches!(
                    &err,
                    PollingError::Connector(
                        ConnectorError::Permanent { .. } | ConnectorError::Forbidden { .. }
                    )
                );
                if refused {
                    failures = failures.saturating_add(1);
                }
                warn!(tenant_id = %post.tenant_id, post_id = %post.id, error = %err,
                    refusals_in_a_row = failures, "comment polling failed");
                report.failures.push(PollFailure {
                    tenant_id: post.tenant_id,
                    post_id: post.id,
                    error: err.to_string(),
                });
                let interval = self.config.interval;
                let retry = if refused {
                    now.checked_add_signed(self.failure_wait(failures))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC)
                } else {
                    now + interval
                };
                // Past the window's end, a longer wait does not skip the
                // retries the grace still has room for.
                let retry = match stop
                    .filter(|stop| now >= *stop)
                    .and_then(|stop| self.grace_end(stop))
                {
                    Some(end) => retry.min(end - interval).max(now + interval),
                    None => retry,
                };
                (Some(until.unwrap_or(retry)), false)
            }
        };
        // The window is read to its end: a check that would fall at or
        // after `stop` is made at `stop`; a check that read from `stop` on
        // is the last, one that could not is tried again within the grace.
        let next = earliest.and_then(|next| match stop {
            None => Some(next),
            Some(stop) if now >= stop => {
                (!checked && self.grace_end(stop).is_none_or(|end| next < end)).then_some(next)
            }
            Some(stop) => Some(next.min(stop)),
        });
        if next.is_none() && earliest.is_some() {
            report.posts_finished += 1;
        }
        Write {
            result: PollResult {
                tenant_id: post.tenant_id,
                post_id: post.id,
                lease_until: claim.lease_until,
                comments: stored.comments,
                checkpoint: stored.checkpoint,
                last_check_at: checked.then_some(now),
                next_check_at: next,
                poll_failures: failures,
            },
            tally: report,
            counted: true,
        }
    }

    /// The wait after the `failures`-th refused check in a row: the interval,
    /// doubled at each failure after the first, at most
    /// [`PollingConfig::failure_backoff_max`] (never less than the interval).
    pub(super) fn failure_wait(&self, failures: u32) -> Duration {
        let interval = self.config.interval;
        let most = self.config.failure_backoff_max.max(interval);
        let doublings = failures.saturating_sub(1).min(30);
        interval
            .checked_mul(1 << doublings)
            .map_or(most, |wait| wait.min(most))
    }

    /// The end of the time a post's last check may still be made in
    /// (`None`: beyond the representable range).
    pub(super) fn grace_end(&self, stop: DateTime<Utc>) -> Option<DateTime<Utc>> {
        stop.checked_add_signed(self.config.last_check_grace)
    }

    /// When the post's polling ends: its `stop_at`, else `published_at` plus
    /// the window.
    pub(super) fn stop_of(&self, post: &ScheduledPost) -> Option<DateTime<Utc>> {
        post.stop_at
            .or_else(|| post.published_at.map(|at| at + self.config.window))
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
    /// the platform refuses, nothing is recorded. A refused token is renewed
    /// once (the one another holder stored, or a refresh) and the call made
    /// again; a refused renewal pauses the channel and the error says so.
    pub async fn hide_comment(
        &self,
        tenant: TenantId,
        comment: CommentId,
        hide: bool,
    ) -> Result<Comment, PollingError> {
        let stored = self.store.get_comment(tenant, comment).await?;
        let channel = self.store.get_channel(tenant, stored.channel_id).await?;
        let connector = self.connectors.get(channel.platform.as_str())?;
        let ctx = self.tokens.context(connector.as_ref(), &channel).await?;
        let id = &stored.platform_comment_id;
        match connector.hide_comment(&ctx, id, hide).await {
            Ok(()) => {}
            Err(ConnectorError::Unauthorized { .. }) => {
                let used = ctx.access_token.clone();
                let connector_ref = connector.as_ref();
                let fresh = self
                    .tokens
                    .after_unauthorized(&channel, Some(&used), |c| async move {
                        crate::tokens::connector_refresh(connector_ref, &c).await
                    })
                    .await?;
                let ctx = crate::publish::channel_context(&fresh);
                connector.hide_comment(&ctx, id, hide).await?;
            }
            Err(err) => return Err(err.into()),
        }
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
