//! Auto-reply step: the reply queue's next AUTO_REPLY items answered through
//! the connector, once each, only while the tenant's AI control is ON.
//!
//! A claimed batch runs in lanes: the replies of one conversation (a
//! message's conversation, a comment's thread) share a lane and go out in
//! queue order; a channel has at most its cap of lanes, and the worker runs
//! at most `max_in_flight` lanes at once. A heartbeat renews the batch's
//! leases while its replies are in flight. What the items need is read for
//! the whole batch; their claims and settlements go through two writers that
//! each put whatever is waiting into one batch (`reply_writers`). One item's
//! turn is in `reply_turn`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{Channel, ChannelId, ClaimedReply, PostId, ReplyOutcome, TenantId};
use nexiom_storage::ReplyAnswer;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::reply_turn::{ClaimRequest, Shared, Turn};
use super::reply_writers::{Batch, Settle, lock};
use super::{InboundError, InboundPipeline};
use crate::concurrency::{ConcurrencyConfig, for_each_lane, lanes, sub_lane};
use crate::publish::RetryPolicy;

/// Replies in flight per channel by default: a reply is one short call, the
/// platforms' messaging limits are per account and well above a few at once,
/// and the replies of one conversation stay in order whatever the cap.
pub const DEFAULT_REPLIES_PER_CHANNEL: usize = 4;

/// How the auto-reply step claims, retries and sends at once.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoReplyConfig {
    /// How long a claim holds before another worker may take the item over
    /// (default 5 minutes). A heartbeat renews it every third of this while
    /// the batch's replies are in flight.
    pub lease: Duration,
    /// Attempts per item (default 3) and the jittered backoff between them
    /// (default 60 s doubling, capped at 1 h), as for publishing.
    pub retry: RetryPolicy,
    /// Replies in flight at once: `max_in_flight` per worker (default 64) and
    /// `per_channel` per channel (default [`DEFAULT_REPLIES_PER_CHANNEL`], 4;
    /// `per_platform` overrides it). The replies of one conversation share a
    /// lane, so they are sent one after another in queue order whatever the
    /// caps; [`ConcurrencyConfig::sequential`] sends one reply at a time.
    pub concurrency: ConcurrencyConfig,
}

impl Default for AutoReplyConfig {
    fn default() -> Self {
        AutoReplyConfig {
            lease: Duration::minutes(5),
            retry: RetryPolicy::default(),
            concurrency: ConcurrencyConfig {
                per_channel: DEFAULT_REPLIES_PER_CHANNEL,
                ..ConcurrencyConfig::default()
            },
        }
    }
}

/// The age under which a pending auto-reply is never taken out of the queue
/// as too old ([`InboundPipeline::expire_stale_replies`]), whatever window
/// its caller answers: an hour.
pub const STALE_REPLY_AGE: Duration = Duration::hours(1);

/// What one auto-reply batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReplyReport {
    /// Replies the platform accepted (the `auto_replied` count of a pipeline
    /// run).
    pub sent: u64,
    /// Attempts that failed in this batch (`retried_later + given_up`).
    pub failed: u64,
    /// Failed attempts put back in the queue for a later try (with backoff).
    pub retried_later: u64,
    /// Items given up in this batch (escalated to a person): attempts
    /// exhausted, a send the platform refused, or a send whose outcome is
    /// unknown.
    pub given_up: u64,
    /// Items put back untouched because the tenant's AI control was switched
    /// OFF between the claim and the send (no attempt counted).
    pub skipped_ai_off: u64,
    /// Items found answered already (their reply claimed by an earlier run or
    /// another worker), now marked `sent`.
    pub already_replied: u64,
    /// Items put back untouched, due again after the wait, because their
    /// channel asked to wait (a Retry-After) earlier in this batch, or an
    /// earlier message of their conversation was left for later (no
    /// attempt counted).
    #[serde(default)]
    pub held_back: u64,
    /// Items whose turn was not recorded because their lease had moved on
    /// (the batch outlived its lease and another worker claimed them): a
    /// reply not claimed yet is then neither stored nor sent, and an outcome
    /// other than `Sent` is not written.
    #[serde(default)]
    pub lease_lost: u64,
    /// Items put back untouched because their channel is paused (its token
    /// refresh was refused: it needs re-authorization); no call made, no
    /// attempt counted. They wait until the channel is reconnected.
    #[serde(default)]
    pub paused: u64,
    /// Items a person answered first (an agent reply sent to the
    /// conversation or the comment): made `superseded`, nothing sent.
    #[serde(default)]
    pub superseded: u64,
    /// Comments found hidden on the platform when their turn came (hidden
    /// after they were claimed): put back untouched, neither answered nor
    /// escalated; the claim takes them again once they are shown.
    #[serde(default)]
    pub hidden: u64,
}

impl AutoReplyReport {
    pub(super) fn merge(&mut self, other: &AutoReplyReport) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.retried_later += other.retried_later;
        self.given_up += other.given_up;
        self.skipped_ai_off += other.skipped_ai_off;
        self.already_replied += other.already_replied;
        self.held_back += other.held_back;
        self.lease_lost += other.lease_lost;
        self.paused += other.paused;
        self.superseded += other.superseded;
        self.hidden += other.hidden;
    }
}

/// The tenant and channel of a claimed item.
fn owner(item: &ClaimedReply) -> (TenantId, ChannelId) {
    match item {
        ClaimedReply::Message(m) => (m.tenant_id, m.channel_id),
        ClaimedReply::Comment(c) => (c.tenant_id, c.channel_id),
    }
}

/// The conversation whose replies must stay in order: a message's
/// conversation; a comment's thread on its post (the top-level comment it
/// answers in, or itself).
fn conversation(item: &ClaimedReply) -> u128 {
    match item {
        ClaimedReply::Message(m) => m.conversation_id.as_uuid().as_u128(),
        ClaimedReply::Comment(c) => comment_thread(
            c.post_id,
            &c.platform_comment_id,
            c.parent_platform_comment_id.as_deref(),
        ),
    }
}

/// The key of a comment's thread (its post and top-level comment), which
/// keeps a thread's items in order wherever they are grouped.
pub(super) fn comment_thread(post: PostId, comment: &str, parent: Option<&str>) -> u128 {
    let root = parent.unwrap_or(comment);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (post, root).hash(&mut hasher);
    u128::from(hasher.finish())
}

impl InboundPipeline {
    /// Takes out of the reply queue, at most `limit`, the items
    /// [`Self::auto_reply_recent_inbound`] would answer but for their age:
    /// received before `since` and at least [`STALE_REPLY_AGE`] ago (a
    /// channel paused for hours then reconnected, AI control switched back
    /// ON after a day, a webhook delivered late). The claim never takes
    /// them, so they would otherwise wait for ever. Each is given up and
    /// escalated to a person (nothing sent, no attempt counted); a comment
    /// hidden on the platform leaves the queue paging no one; an item whose
    /// reply was stored before its worker stopped is settled from that
    /// reply (`sent` when the platform took it). See
    /// [`ReplyQueueStore::expire_pending_replies`](nexiom_storage::ReplyQueueStore::expire_pending_replies).
    /// The pipeline's reply step ([`AutoReplyStep`](crate::AutoReplyStep))
    /// calls it before answering, with its window; a caller answering a
    /// narrower window (the comment poller's follow-up) does not. Returns
    /// how many items left the queue.
    pub async fn expire_stale_replies(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, InboundError> {
        let now = self.clock.now();
        let floor = now
            .checked_sub_signed(STALE_REPLY_AGE)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let before = since.min(floor);
        let expired = self
            .store
            .expire_pending_replies(now, before, limit)
            .await?;
        for subject in &expired {
            tracing::warn!(?subject, %before,
                "auto-reply older than the window taken out of the queue (given up, or settled \
                 from the reply stored before its worker stopped)");
        }
        let count = u64::try_from(expired.len()).unwrap_or(u64::MAX);
        crate::telemetry::replies_expired(count);
        Ok(count)
    }

    /// Answers the next items of the reply queue: claims up to `limit` due
    /// AUTO_REPLY messages and comments of every tenant whose AI control is
    /// ON, created at or after `since`, oldest first (`limit` is global to the
    /// run, not per tenant: one busy tenant cannot make a run longer), shared
    /// round-robin among channels so that one channel's backlog does not hold
    /// the others' replies behind it (see
    /// [`ReplyQueueStore::claim_pending_replies`](nexiom_storage::ReplyQueueStore::claim_pending_replies)),
    /// and answers each: a message through the channel's connector `send_message`
    /// to the contact's handle, a comment through `reply_comment`. The text is
    /// the draft triage kept in the decision (drafted again when missing).
    ///
    /// An answered item is never claimed again, so repeated runs work through
    /// the whole queue (120 pending items, limit 50: three runs).
    ///
    /// Never twice: the reply is stored BEFORE the platform is called, under a
    /// unique key (an outbound message keyed by the inbound it answers; a
    /// comment reply keyed by the comment), so a second run or a concurrent
    /// worker finds the key taken and sends nothing. The platform's answer is
    /// recorded afterwards (provider id and `sent`, or `failed`).
    ///
    /// One item's failure never stops the run; it is recorded on the item
    /// (`reply.error`, `reply.attempts`):
    ///
    /// - before the reply is claimed (no draft, the generator fails, no
    ///   contact handle, no connector, a storage error on that item): retried
    ///   after [`RetryPolicy::delay_after`] (jittered, from the pipeline's
    ///   clock), and after [`AutoReplyConfig::retry`]`.max_attempts` attempts
    ///   (default 3) given up and escalated (triage ESCALATE: a person sees it);
    /// - after the reply is claimed, when the platform refused before acting
    ///   (rate limited, circuit open, `503`, a connect failure, `401`): the
    ///   claim is withdrawn (nothing was sent) and the item retried the same
    ///   way, never sooner than the platform's Retry-After;
    /// - after the reply is claimed otherwise (the platform refused the
    ///   content, or did not answer: it may have acted): the reply is stored
    ///   `failed` and the item is given up and escalated at once. It is never sent again automatically: a
    ///   duplicate is worse than a visible failure. A reclaimed item (its
    ///   worker stopped) whose reply is still `pending` is settled the same
    ///   way, as an outcome unknown.
    ///
    /// Never while AI control is OFF: such items are not claimed, and the
    /// switch is read again for each item just before its reply is claimed;
    /// when it went OFF meanwhile the item is put back, due at once, with no
    /// attempt counted.
    ///
    /// Items received before `since` are not claimed: the pipeline's reply
    /// step gives them up first ([`Self::expire_stale_replies`]).
    ///
    /// Only a failure to claim at all ends the run with an error.
    ///
    /// The claimed items are answered concurrently under
    /// [`AutoReplyConfig::concurrency`]: the replies of one conversation (a
    /// message's conversation; a comment's thread, the top-level comment and
    /// the replies under it) share a lane and are sent one after another in
    /// queue order; a channel runs at most its cap of lanes at once, the
    /// worker at most `max_in_flight`. When a send is refused with a wait
    /// (a 429 with Retry-After, an open circuit), or throttled without one
    /// (then the wait is [`AutoReplyConfig::retry`]'s base delay, 60 s by
    /// default; not for WhatsApp's per-customer pair rate limit), the
    /// channel's items not yet sent in this batch are put back
    /// untouched, due after that wait ([`AutoReplyReport::held_back`]); the
    /// other channels go on. While the
    /// batch runs, a heartbeat renews its unsettled items' leases every third
    /// of [`AutoReplyConfig::lease`].
    ///
    /// The store work is batched: what the items need (recipient, draft,
    /// stored reply) is read for the whole batch, and the reply claims and
    /// the settlements (the platform's answer and the item's outcome) that
    /// arrive while the previous write runs go to the store together
    /// ([`ReplyBatchStore`](nexiom_storage::ReplyBatchStore): one
    /// transaction each on Postgres), each item only while the batch's lease
    /// on it holds; an item whose lease moved on counts in
    /// [`AutoReplyReport::lease_lost`].
    pub async fn auto_reply_recent_inbound(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<AutoReplyReport, InboundError> {
        let config = &self.auto_reply;
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_pending_replies(now, Some(since), limit, config.lease)
            .await?;
        if claimed.is_empty() {
            return Ok(AutoReplyReport::default());
        }
        // The claim set every item's lease to `now + lease`.
        let held_until = now
            .checked_add_signed(config.lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let batch = Batch::new(held_until);
        lock(&batch.unsettled).extend(claimed.iter().map(ClaimedReply::subject));
        // Read for the whole batch; when that fails, each item reads its own.
        let contexts = match self.store.reply_contexts(&claimed).await {
            Ok(contexts) => claimed
                .iter()
                .map(ClaimedReply::subject)
                .zip(contexts)
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "reading the reply batch's contexts failed; each item reads its own");
                HashMap::new()
            }
        };
        let (channels, lanes) = self.reply_lanes(claimed).await;
        let (claim_tx, claim_rx) = mpsc::unbounded_channel::<ClaimRequest>();
        let (settle_tx, settle_rx) = mpsc::unbounded_channel::<Settle>();
        let batch_ref = &batch;
        // Owns the senders: once every lane is done, the writers finish.
        let lanes_done = async move {
            let shared = Shared {
                contexts,
                channels,
                claims: &claim_tx,
            };
            let (shared, settle_tx) = (&shared, &settle_tx);
            for_each_lane(lanes, config.concurrency.worker_cap(), |lane| {
                self.run_lane(lane, shared, batch_ref, settle_tx)
            })
            .await;
        };
        let work = async {
            tokio::join!(
                lanes_done,
                self.claim_writer(claim_rx, &batch),
                self.settle_writer(settle_rx, &batch)
            );
        };
        tokio::select! {
            biased;
            _ = work => {}
            () = self.heartbeat(&batch) => {}
        }
        let report = *lock(&batch.report);
        crate::telemetry::auto_replies(&report);
        Ok(report)
    }

    /// Groups claimed items into lanes: by channel, and within a channel by
    /// one of its `cap` sub-lanes, the items of one conversation always in the
    /// same one (in claim order, which is queue order). Returns the channels
    /// read on the way.
    async fn reply_lanes(
        &self,
        claimed: Vec<ClaimedReply>,
    ) -> (HashMap<ChannelId, Channel>, Vec<Vec<ClaimedReply>>) {
        // The batch's channels in one read per tenant. A channel that cannot
        // be read gets cap 1; its items fail with the read error in their turn.
        let (channels, caps) = crate::channel_reads::channels_and_caps(
            self.store.as_ref(),
            claimed.iter().map(owner),
            |platform| self.auto_reply.concurrency.channel_cap(platform),
        )
        .await;
        let keyed: Vec<((ChannelId, usize), ClaimedReply)> = claimed
            .into_iter()
            .map(|item| {
                let channel = owner(&item).1;
                let cap = caps.get(&channel).copied().unwrap_or(1);
                let lane = sub_lane(cap, Some(conversation(&item)), &mut 0);
                ((channel, lane), item)
            })
            .collect();
        let lanes = lanes(keyed, |(key, _)| *key)
            .into_iter()
            .map(|lane| lane.into_iter().map(|(_, item)| item).collect())
            .collect();
        (channels, lanes)
    }

    /// Answers a lane's items one after another; once their channel asked to
    /// wait, the rest are put back untouched until then, and the wait is
    /// recorded for every process
    /// ([`throttle_channel`](nexiom_storage::PostStore::throttle_channel)). A message not
    /// answered in its turn (to be tried again, or put back) holds its
    /// conversation's later messages in the lane back with it, put back
    /// untouched until the same time, so that a conversation's replies go
    /// out in order. Each item's settlement goes to the settle writer.
    async fn run_lane(
        &self,
        lane: Vec<ClaimedReply>,
        shared: &Shared<'_>,
        batch: &Batch,
        settle_tx: &mpsc::UnboundedSender<Settle>,
    ) {
        // Conversations with a message left for later, and until when.
        let mut waiting: HashMap<u128, Option<DateTime<Utc>>> = HashMap::new();
        for item in lane {
            let subject = item.subject();
            let (tenant, channel) = owner(&item);
            let in_conversation =
                matches!(item, ClaimedReply::Message(_)).then(|| conversation(&item));
            let behind = in_conversation.and_then(|c| waiting.get(&c).copied());
            let mut tally = AutoReplyReport::default();
            let settle = match (batch.hold_of(channel, self.clock.now()), behind) {
                (Some(until), _) => {
                    tally.held_back += 1;
                    Some((
                        ReplyOutcome::Released {
                            next_at: Some(until),
                        },
                        None,
                    ))
                }
                (None, Some(next_at)) => {
                    tally.held_back += 1;
                    Some((ReplyOutcome::Released { next_at }, None))
                }
                (None, None) => {
                    let (settle, wait) = self.settle(item, shared, &mut tally).await;
                    if let Some(until) = wait.and_then(|w| self.clock.now().checked_add_signed(w)) {
                        tracing::warn!(%tenant, %channel, %until, "the channel asked to wait; its other replies in this batch are held back");
                        batch.hold(channel, until);
                        // And every process's: its reply claims, publishing
                        // and polling leave the channel alone until then.
                        if let Err(error) =
                            self.store.throttle_channel(tenant, channel, until).await
                        {
                            tracing::warn!(%tenant, %channel, %error, "the channel's throttle not recorded; other processes may call it before it ends");
                        }
                    }
                    let later = match &settle {
                        Some((ReplyOutcome::Retry { next_at, .. }, _)) => Some(Some(*next_at)),
                        Some((ReplyOutcome::Released { next_at }, _)) => Some(*next_at),
                        _ => None,
                    };
                    if let (Some(c), Some(next_at)) = (in_conversation, later) {
                        waiting.insert(c, next_at);
                    }
                    settle
                }
            };
            batch.add(&tally);
            match settle {
                Some((outcome, answer)) => {
                    let settle = Settle {
                        tenant,
                        subject,
                        answer,
                        outcome,
                    };
                    if settle_tx.send(settle).is_err() {
                        lock(&batch.unsettled).remove(&subject);
                    }
                }
                None => {
                    lock(&batch.unsettled).remove(&subject);
                }
            }
        }
    }

    /// Takes one claimed item through its turn and counts it in `report`.
    /// Returns the item's outcome with the platform's answer to record (none
    /// when its lease moved on: nothing to write), and the wait the channel
    /// asked for, when the platform refused the send with one.
    async fn settle(
        &self,
        item: ClaimedReply,
        shared: &Shared<'_>,
        report: &mut AutoReplyReport,
    ) -> (
        Option<(ReplyOutcome, Option<ReplyAnswer>)>,
        Option<Duration>,
    ) {
        let subject = item.subject();
        let (tenant, attempts) = match &item {
            ClaimedReply::Message(m) => (m.tenant_id, m.reply.as_ref().map_or(0, |r| r.attempts)),
            ClaimedReply::Comment(c) => (c.tenant_id, c.reply.as_ref().map_or(0, |r| r.attempts)),
        };
        let turn = match &item {
            ClaimedReply::Message(m) => self.reply_to_message(shared, tenant, m).await,
            ClaimedReply::Comment(c) => self.reply_to_comment(shared, tenant, c).await,
        };
        let (turn, answer) = turn.unwrap_or_else(|e| (Turn::Retryable(e.to_string(), None), None));
        let mut asked_wait = None;
        // A wait about one customer holds only their reply, not the channel.
        let holds_channel = !matches!(turn, Turn::RetryableAlone(..));
        let outcome = match turn {
            Turn::Sent => {
                report.sent += 1;
                ReplyOutcome::Sent
            }
            Turn::AlreadyReplied => {
                report.already_replied += 1;
                ReplyOutcome::Sent
            }
            Turn::AiOff => {
                report.skipped_ai_off += 1;
                // Not due again at once: the claim leaves switched-off
                // tenants and channels alone, but this answer may come from
                // a cached copy of the settings (or from defaults the store
                // does not know); an item handed back due at once would stay
                // at the head of the queue, run after run.
                let next_at = self.clock.now().checked_add_signed(Duration::minutes(1));
                ReplyOutcome::Released { next_at }
            }
            Turn::Hidden => {
                report.hidden += 1;
                tracing::info!(%tenant, ?subject, "auto-reply waits: the comment is hidden on the platform");
                ReplyOutcome::Released { next_at: None }
            }
            Turn::Paused(reason) => {
                report.paused += 1;
                tracing::warn!(%tenant, ?subject, %reason, "auto-reply waits: the channel is paused");
                ReplyOutcome::Released { next_at: None }
            }
            Turn::LeaseLost => {
                report.lease_lost += 1;
                tracing::warn!(%tenant, ?subject, "auto-reply skipped: the item's lease moved on");
                return (None, None);
            }
            Turn::Superseded => {
                // Settled by the claim itself.
                report.superseded += 1;
                tracing::info!(%tenant, ?subject, "auto-reply dropped: a person answered first");
                return (None, None);
            }
            Turn::Retryable(error, wait) | Turn::RetryableAlone(error, wait) => {
                report.failed += 1;
                if holds_channel {
                    asked_wait = wait;
                }
                let attempt = attempts.saturating_add(1);
                if attempt >= self.auto_reply.retry.max_attempts {
                    report.given_up += 1;
                    tracing::warn!(%tenant, ?subject, %error, attempt, "auto-reply given up; escalated");
                    ReplyOutcome::GiveUp {
                        error: format!("gave up after {attempt} attempts: {error}"),
                    }
                } else {
                    report.retried_later += 1;
                    let next_at = self
                        .clock
                        .now()
                        .checked_add_signed(self.auto_reply.retry.delay_after(attempt, wait))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    tracing::warn!(%tenant, ?subject, %error, attempt, %next_at, "auto-reply failed; retried later");
                    ReplyOutcome::Retry { error, next_at }
                }
            }
            Turn::Final(error) => {
                report.failed += 1;
                report.given_up += 1;
                tracing::warn!(%tenant, ?subject, %error, "auto-reply send failed; escalated, never re-sent");
                ReplyOutcome::GiveUp { error }
            }
        };
        (Some((outcome, answer)), asked_wait)
    }
}
