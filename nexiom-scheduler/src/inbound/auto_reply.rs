//! Auto-reply step: the reply queue's next AUTO_REPLY items answered through
//! the connector, once each, only while the tenant's AI control is ON.
//!
//! A claimed batch runs in lanes: the replies of one conversation (a
//! message's conversation, a comment's thread) share a lane and go out in
//! queue order; a channel has at most its cap of lanes, and the worker runs
//! at most `max_in_flight` lanes at once. A heartbeat renews the batch's
//! leases while its replies are in flight. One item's turn is in
//! `reply_turn`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{ChannelId, ClaimedReply, DecisionSubject, ReplyOutcome, TenantId};
use serde::{Deserialize, Serialize};

use super::reply_turn::Turn;
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
    /// channel asked to wait (a Retry-After) earlier in this batch (no
    /// attempt counted).
    #[serde(default)]
    pub held_back: u64,
}

impl AutoReplyReport {
    fn merge(&mut self, other: &AutoReplyReport) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.retried_later += other.retried_later;
        self.given_up += other.given_up;
        self.skipped_ai_off += other.skipped_ai_off;
        self.already_replied += other.already_replied;
        self.held_back += other.held_back;
    }
}

/// What the lanes of one batch share.
#[derive(Default)]
struct Batch {
    report: Mutex<AutoReplyReport>,
    /// The claimed items not settled yet (the heartbeat renews their leases).
    unsettled: Mutex<HashSet<DecisionSubject>>,
    /// Channels that asked to wait, until when.
    holds: Mutex<HashMap<ChannelId, DateTime<Utc>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batch {
    fn add(&self, tally: &AutoReplyReport) {
        lock(&self.report).merge(tally);
    }

    fn hold_of(&self, channel: ChannelId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        lock(&self.holds)
            .get(&channel)
            .copied()
            .filter(|until| *until > now)
    }

    fn hold(&self, channel: ChannelId, until: DateTime<Utc>) {
        let mut holds = lock(&self.holds);
        let held = holds.entry(channel).or_insert(until);
        *held = (*held).max(until);
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
        ClaimedReply::Comment(c) => {
            let root = c
                .parent_platform_comment_id
                .as_deref()
                .unwrap_or(&c.platform_comment_id);
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (c.post_id, root).hash(&mut hasher);
            u128::from(hasher.finish())
        }
    }
}

impl InboundPipeline {
    /// Answers the next items of the reply queue: claims up to `limit` due
    /// AUTO_REPLY messages and comments of every tenant whose AI control is
    /// ON, created at or after `since`, oldest first (`limit` is global to the
    /// run, not per tenant: one busy tenant cannot make a run longer), and
    /// answers each: a message through the channel's connector `send_message`
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
    /// Only a failure to claim at all ends the run with an error.
    ///
    /// The claimed items are answered concurrently under
    /// [`AutoReplyConfig::concurrency`]: the replies of one conversation (a
    /// message's conversation; a comment's thread, the top-level comment and
    /// the replies under it) share a lane and are sent one after another in
    /// queue order; a channel runs at most its cap of lanes at once, the
    /// worker at most `max_in_flight`. When a send is refused with a wait
    /// (a 429 with Retry-After, an open circuit), the channel's items not yet
    /// sent in this batch are put back untouched, due after that wait
    /// ([`AutoReplyReport::held_back`]); the other channels go on. While the
    /// batch runs, a heartbeat renews its unsettled items' leases every third
    /// of [`AutoReplyConfig::lease`].
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
        let batch = Batch::default();
        lock(&batch.unsettled).extend(claimed.iter().map(ClaimedReply::subject));
        let lanes = self.reply_lanes(claimed).await;
        let work = for_each_lane(lanes, config.concurrency.worker_cap(), |lane| {
            self.run_lane(lane, &batch)
        });
        match now.checked_add_signed(config.lease) {
            Some(held_until) => {
                tokio::select! {
                    biased;
                    () = work => {}
                    () = self.heartbeat(&batch.unsettled, held_until) => {}
                }
            }
            None => work.await,
        }
        let report = *lock(&batch.report);
        crate::telemetry::auto_replies(report.sent, report.failed, report.given_up);
        Ok(report)
    }

    /// Groups claimed items into lanes: by channel, and within a channel by
    /// one of its `cap` sub-lanes, the items of one conversation always in the
    /// same one (in claim order, which is queue order).
    async fn reply_lanes(&self, claimed: Vec<ClaimedReply>) -> Vec<Vec<ClaimedReply>> {
        let mut caps: HashMap<ChannelId, usize> = HashMap::new();
        for item in &claimed {
            let (tenant, channel) = owner(item);
            if let Entry::Vacant(slot) = caps.entry(channel) {
                // A channel that cannot be read gets cap 1; its items fail
                // with the read error in their turn.
                let cap = match self.store.get_channel(tenant, channel).await {
                    Ok(found) => self.auto_reply.concurrency.channel_cap(&found.platform),
                    Err(_) => 1,
                };
                slot.insert(cap);
            }
        }
        let keyed: Vec<((ChannelId, usize), ClaimedReply)> = claimed
            .into_iter()
            .map(|item| {
                let channel = owner(&item).1;
                let cap = caps.get(&channel).copied().unwrap_or(1);
                let lane = sub_lane(cap, Some(conversation(&item)), &mut 0);
                ((channel, lane), item)
            })
            .collect();
        lanes(keyed, |(key, _)| *key)
            .into_iter()
            .map(|lane| lane.into_iter().map(|(_, item)| item).collect())
            .collect()
    }

    /// Answers a lane's items one after another; once their channel asked to
    /// wait, the rest are put back untouched until then.
    async fn run_lane(&self, lane: Vec<ClaimedReply>, batch: &Batch) {
        for item in lane {
            let subject = item.subject();
            let (tenant, channel) = owner(&item);
            let mut tally = AutoReplyReport::default();
            match batch.hold_of(channel, self.clock.now()) {
                Some(until) => {
                    tally.held_back += 1;
                    let outcome = ReplyOutcome::Released {
                        next_at: Some(until),
                    };
                    if let Err(error) = self.store.finish_reply(tenant, subject, outcome).await {
                        tracing::warn!(%tenant, ?subject, %error, "held-back item not put back; its lease will lapse");
                    }
                }
                None => {
                    let wait = self.settle(item, &mut tally).await;
                    if let Some(until) = wait.and_then(|w| self.clock.now().checked_add_signed(w)) {
                        tracing::warn!(%tenant, %channel, %until, "the channel asked to wait; its other replies in this batch are held back");
                        batch.hold(channel, until);
                    }
                }
            }
            batch.add(&tally);
            lock(&batch.unsettled).remove(&subject);
        }
    }

    /// Renews the leases of the batch's unsettled items every third of the
    /// lease period, forever (the caller stops it when the batch is done).
    /// `held_until` is the lease the claim set.
    async fn heartbeat(
        &self,
        unsettled: &Mutex<HashSet<DecisionSubject>>,
        mut held_until: DateTime<Utc>,
    ) {
        let lease = self.auto_reply.lease;
        let period = (lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let subjects: Vec<DecisionSubject> = lock(unsettled).iter().copied().collect();
            let Some(expires) = self.clock.now().checked_add_signed(lease) else {
                continue;
            };
            if subjects.is_empty() {
                continue;
            }
            match self
                .store
                .renew_reply_leases(&subjects, held_until, expires)
                .await
            {
                Ok(_) => held_until = expires,
                Err(error) => {
                    tracing::warn!(%error, items = subjects.len(), "renewing the reply batch's leases failed");
                }
            }
        }
    }

    /// Takes one claimed item through its turn, records the outcome on it and
    /// counts it in `report`. Returns the wait the channel asked for, when the
    /// platform refused the send with one.
    async fn settle(&self, item: ClaimedReply, report: &mut AutoReplyReport) -> Option<Duration> {
        let subject = item.subject();
        let (tenant, attempts) = match &item {
            ClaimedReply::Message(m) => (m.tenant_id, m.reply.as_ref().map_or(0, |r| r.attempts)),
            ClaimedReply::Comment(c) => (c.tenant_id, c.reply.as_ref().map_or(0, |r| r.attempts)),
        };
        let turn = match &item {
            ClaimedReply::Message(m) => self.reply_to_message(tenant, m).await,
            ClaimedReply::Comment(c) => self.reply_to_comment(tenant, c).await,
        };
        let turn = turn.unwrap_or_else(|e| Turn::Retryable(e.to_string(), None));
        let mut asked_wait = None;
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
                ReplyOutcome::Released { next_at: None }
            }
            Turn::Retryable(error, wait) => {
                report.failed += 1;
                asked_wait = wait;
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
        if let Err(error) = self.store.finish_reply(tenant, subject, outcome).await {
            // The item stays `sending` until its lease ends; the next claim
            // settles it from its stored reply, never by sending again.
            tracing::warn!(%tenant, ?subject, %error, "auto-reply outcome not recorded");
        }
        asked_wait
    }
}
