//! [`ReplyQueueStore`]: the queue of automatic replies, kept as a state on
//! each inbound message and comment triaged AUTO_REPLY.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, ClaimedReply, DecisionSubject, ReplyOutcome, ReplyState, ReplyStatus, TenantId,
};
use uuid::Uuid;

use crate::error::Result;

/// The `error` of a post run closed by
/// [`PostStore::release_stale_leases`](crate::PostStore::release_stale_leases):
/// its worker stopped during the attempt, so whether the platform published
/// the post is unknown. It starts like the publish queue's `outcome_unknown`
/// errors, which settle the same case.
pub const STALE_RUN_ERROR: &str = "outcome_unknown: the worker stopped during this attempt \
     (its lease lapsed); the post may or may not be published, the next claim checks the \
     platform before any new attempt";

/// The reply queue.
///
/// An inbound message or a comment enters it when its triage is set to
/// AUTO_REPLY ([`ConversationStore::set_message_triage`],
/// [`CommentStore::set_comment_triage`]: its [`ReplyStatus`] becomes
/// `pending`, due at once, unless it has one already). From there:
///
/// ```text
/// pending ──claim──▶ sending ──Sent──▶ sent
///    ▲                 │ Retry (attempts + 1, next_at)
///    └─────────────────┤ Released (AI control OFF; no attempt counted)
///                      └─GiveUp (attempts + 1, triage ESCALATE)──▶ given_up
/// ```
///
/// A `sending` item whose lease ended is claimable again (its worker
/// stopped). Items are found through this state (a partial index on Postgres),
/// never by re-reading a time window: an answered item is never returned
/// again, and an item that keeps failing moves behind the others by its
/// backoff instead of blocking them.
///
/// [`ConversationStore::set_message_triage`]: crate::ConversationStore::set_message_triage
/// [`CommentStore::set_comment_triage`]: crate::CommentStore::set_comment_triage
#[async_trait]
pub trait ReplyQueueStore: Send + Sync {
    /// Claims up to `limit` items of every tenant whose AI control is ON
    /// (worker-queue operation, across tenants): `pending` with `next_at`
    /// unset or `<= now`, or `sending` with a lease ended (`lease_until <=
    /// now`); created at or after `since` when given. Items of a channel
    /// that is not `active` wait (they are not claimed). Each is set
    /// `sending` with `lease_until = now + lease` and returned as stored after
    /// the claim, oldest `created_at` first (messages and comments together,
    /// then by id).
    ///
    /// The claim is shared among channels, so that one channel's backlog
    /// (a post gone viral, a flood of messages) does not hold the other
    /// channels' replies behind it. The channels taking part are the `limit`
    /// whose oldest due item is oldest. Their items are read in rounds (at
    /// most 4): the first reads up to `⌈limit / channels⌉` of each channel's
    /// messages and as many of its comments, oldest first; each later round
    /// splits what the claim still lacks among the reads (a channel's
    /// messages, or its comments) that came back full. (Postgres may leave
    /// out a read that cannot change the outcome: the comments of a channel
    /// whose oldest comment is not among the `limit` oldest channels'.) The claimed items are then picked round-robin from what
    /// was read: every channel's oldest, then every channel's second oldest,
    /// and so on, each turn oldest first, up to `limit`. So every channel
    /// taking part gets its oldest due item; a single channel due gives its
    /// `limit` oldest; a channel with few items due leaves the rest of the
    /// claim to the others; and a channel's messages, and its comments, are
    /// taken oldest first. A claim may come back with fewer than `limit`
    /// items while more are due (rounds that ran out, rows another writer
    /// holds at that moment); the next claim takes them.
    ///
    /// Concurrent claimers never receive the same item while its lease holds
    /// (on Postgres claims take turns under an advisory lock held for the
    /// claim's transaction, about 0.1 s for 2,000 items, and skip rows other
    /// writers hold with `FOR UPDATE SKIP LOCKED`; in memory the store's
    /// lock).
    /// `Invalid("lease")` when `now + lease` is out of range.
    async fn claim_pending_replies(
        &self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedReply>>;

    /// Records how a claimed item's turn ended (see
    /// [`ReplyOutcome`]), and returns its state afterwards.
    ///
    /// The outcome applies to an item that is `sending`; `Sent` applies in any
    /// state (the reply exists whatever else was decided meanwhile). Otherwise
    /// (the item was settled by another worker after this one's lease lapsed)
    /// nothing is written and the stored state is returned. `NotFound` when the
    /// item is not the tenant's; `Precondition` when it is not in the reply
    /// queue (never triaged AUTO_REPLY).
    async fn finish_reply(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        outcome: ReplyOutcome,
    ) -> Result<ReplyStatus>;

    /// Withdraws the reply claimed for `subject` when nothing was sent: the
    /// platform refused before acting (rate limited, circuit open, `503`, a
    /// connect failure, an expired token). The claim row (the outbound message
    /// answering the message, or the comment's reply) is deleted only while it
    /// is still `pending` with no provider id, so a later attempt can claim the
    /// reply again; a reply that was sent, failed or has any recorded answer is
    /// never withdrawn. Returns whether a claim was withdrawn. (The
    /// conversation's `last_message_at` keeps the bump of the withdrawn row.)
    async fn withdraw_reply_claim(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<bool>;

    /// Extends to `expires_at` the leases of those of `subjects` that are
    /// still `sending` under the lease `held_until` (the `lease_until` the
    /// caller's claim, or its last renewal, set): the heartbeat of a worker
    /// whose replies are in flight (worker-queue operation, across tenants).
    /// An item settled meanwhile, or claimed again by another worker after
    /// the lease lapsed (which set another `lease_until`), is left alone.
    /// Returns how many were extended.
    async fn renew_reply_leases(
        &self,
        subjects: &[DecisionSubject],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// An error text every backend can store: NUL and other control characters
/// (a platform's or a generator's answer may hold them, and PostgreSQL refuses
/// NUL in text) become spaces, and the text is cut to 2,000 characters, so
/// recording a failure can never fail and leave the item claimed forever.
fn storable_error(error: &str) -> String {
    error
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .take(2_000)
        .collect()
}

/// Applies `outcome` to `reply` (see `ReplyQueueStore::finish_reply`);
/// returns whether the item must be escalated.
pub(crate) fn apply(reply: &mut ReplyStatus, outcome: ReplyOutcome) -> bool {
    let outcome = match outcome {
        ReplyOutcome::Retry { error, next_at } => ReplyOutcome::Retry {
            error: storable_error(&error),
            next_at,
        },
        ReplyOutcome::GiveUp { error } => ReplyOutcome::GiveUp {
            error: storable_error(&error),
        },
        other => other,
    };
    if outcome != ReplyOutcome::Sent && reply.state != ReplyState::Sending {
        return false;
    }
    reply.lease_until = None;
    match outcome {
        ReplyOutcome::Sent => {
            reply.state = ReplyState::Sent;
            reply.error = None;
            reply.next_at = None;
            false
        }
        ReplyOutcome::Released { next_at } => {
            reply.state = ReplyState::Pending;
            reply.next_at = next_at;
            false
        }
        ReplyOutcome::Retry { error, next_at } => {
            reply.state = ReplyState::Pending;
            reply.attempts = reply.attempts.saturating_add(1);
            reply.error = Some(error);
            reply.next_at = Some(next_at);
            false
        }
        ReplyOutcome::GiveUp { error } => {
            reply.state = ReplyState::GivenUp;
            reply.attempts = reply.attempts.saturating_add(1);
            reply.error = Some(error);
            reply.next_at = None;
            true
        }
    }
}

/// A due item's place in the queue as a claim weighs it: its channel, then
/// its age (`created_at`, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuePlace {
    pub(crate) channel: ChannelId,
    pub(crate) at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

/// A place's age: its `created_at`, then its id.
type Age = (DateTime<Utc>, Uuid);

impl QueuePlace {
    fn age(&self) -> Age {
        (self.at, self.id)
    }
}

/// The channels a claim of `limit` items shares them among (see
/// [`ReplyQueueStore::claim_pending_replies`]), and each one's first share.
/// `heads` holds each channel's oldest due item (a channel may come twice,
/// once per kind of item). The channels taking part are the `limit` whose
/// oldest due item is oldest; the share is `⌈limit / channels⌉`.
pub(crate) fn fair_channels(heads: &[QueuePlace], limit: u32) -> (Vec<ChannelId>, u32) {
    let mut oldest: HashMap<ChannelId, QueuePlace> = HashMap::new();
    for head in heads {
        let kept = oldest.entry(head.channel).or_insert(*head);
        if head.age() < kept.age() {
            *kept = *head;
        }
    }
    let mut heads: Vec<QueuePlace> = oldest.into_values().collect();
    heads.sort_by_key(|h| (h.age(), h.channel));
    heads.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let taking = u32::try_from(heads.len()).unwrap_or(u32::MAX).max(1);
    (
        heads.into_iter().map(|h| h.channel).collect(),
        limit.div_ceil(taking),
    )
}

/// Of `candidates` (due items read from the channels [`fair_channels`]
/// chose), the claimed ones, round-robin among channels: every channel's
/// oldest item, then every channel's second oldest, and so on, each turn
/// oldest first, until `limit`; returned oldest first. No channel read is
/// left out while another takes its second item.
pub(crate) fn fair_pick<T>(
    mut candidates: Vec<(QueuePlace, T)>,
    limit: u32,
) -> Vec<(QueuePlace, T)> {
    candidates.sort_by_key(|(p, _)| p.age());
    let mut taken: HashMap<ChannelId, usize> = HashMap::new();
    let mut ranked: Vec<(usize, (QueuePlace, T))> = candidates
        .into_iter()
        .map(|item| {
            let n = taken.entry(item.0.channel).or_insert(0);
            *n += 1;
            (*n, item)
        })
        .collect();
    ranked.sort_by_key(|(rank, (p, _))| (*rank, p.age()));
    ranked.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut picked: Vec<(QueuePlace, T)> = ranked.into_iter().map(|(_, item)| item).collect();
    picked.sort_by_key(|(p, _)| p.age());
    picked
}

/// The most rounds a claim reads (see [`FairRounds`]): each round is a
/// statement per kind of item on Postgres, and a claim that comes back short
/// is made up by the next one.
const MAX_ROUNDS: u32 = 4;

/// One kind of item (`message` or not: comment) of one channel, read from
/// after `after` (its last item read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lane {
    pub(crate) message: bool,
    pub(crate) channel: ChannelId,
    pub(crate) after: Option<(DateTime<Utc>, Uuid)>,
}

/// The reads of a claim shared among channels, the same logic on every
/// backend:
/// each round reads up to `share` more due items of every lane that filled
/// its share last round, oldest first, until the items read reach the
/// claim's `limit`, no lane has more, or [`MAX_ROUNDS`]; the claimed ones
/// are then [`fair_pick`]ed from what was read.
#[derive(Debug)]
pub(crate) struct FairRounds {
    limit: u32,
    share: u32,
    rounds: u32,
    open: Vec<Lane>,
    read: Vec<(QueuePlace, bool)>,
}

impl FairRounds {
    /// The rounds of a claim of `limit` items, given each channel's oldest
    /// due message and oldest due comment (`heads`, `true` for a message):
    /// among the channels [`fair_channels`] chooses, a lane is read for each
    /// kind of item the channel has due.
    pub(crate) fn new(heads: &[(QueuePlace, bool)], limit: u32) -> Self {
        let places: Vec<QueuePlace> = heads.iter().map(|(p, _)| *p).collect();
        let (channels, share) = fair_channels(&places, limit);
        let due: std::collections::HashSet<(bool, ChannelId)> = heads
            .iter()
            .map(|(p, message)| (*message, p.channel))
            .collect();
        let open = channels
            .iter()
            .flat_map(|&channel| {
                [true, false].map(|message| Lane {
                    message,
                    channel,
                    after: None,
                })
            })
            .filter(|lane| due.contains(&(lane.message, lane.channel)))
            .collect();
        FairRounds {
            limit,
            share: share.max(1),
            rounds: 0,
            open,
            read: Vec::new(),
        }
    }

    /// The next round's share per lane and its lanes; `None` when the reads
    /// are done.
    pub(crate) fn next(&self) -> Option<(u32, Vec<Lane>)> {
        let enough = self.read.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX);
        if enough || self.open.is_empty() || self.rounds >= MAX_ROUNDS {
            return None;
        }
        Some((self.share, self.open.clone()))
    }

    /// Records a round's reads (the due items each lane gave, oldest first
    /// within a lane): a lane that gave its whole share stays open from its
    /// last item; the next share splits what the claim still lacks among
    /// the open lanes.
    pub(crate) fn record(&mut self, read: Vec<(QueuePlace, bool)>) {
        // Per lane: how many items it gave, and its last.
        let mut last: HashMap<(bool, ChannelId), (u32, Age)> = HashMap::new();
        for (place, message) in &read {
            let entry = last
                .entry((*message, place.channel))
                .or_insert((0, place.age()));
            entry.0 += 1;
            entry.1 = entry.1.max(place.age());
        }
        let share = self.share;
        self.open
            .retain_mut(|lane| match last.get(&(lane.message, lane.channel)) {
                Some(&(n, after)) if n >= share => {
                    lane.after = Some(after);
                    true
                }
                _ => false,
            });
        self.read.extend(read);
        self.rounds += 1;
        let read = u32::try_from(self.read.len()).unwrap_or(u32::MAX);
        let lanes = u32::try_from(self.open.len()).unwrap_or(u32::MAX).max(1);
        self.share = self.limit.saturating_sub(read).div_ceil(lanes).max(1);
    }

    /// The claimed items, oldest first ([`fair_pick`] of the reads).
    pub(crate) fn finish(self) -> Vec<(QueuePlace, bool)> {
        fair_pick(self.read, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(channel: u128, at: i64, id: u128) -> QueuePlace {
        QueuePlace {
            channel: ChannelId::from_uuid(Uuid::from_u128(channel)),
            at: DateTime::from_timestamp(at, 0).unwrap(),
            id: Uuid::from_u128(id),
        }
    }

    #[test]
    fn a_channels_backlog_shares_the_claim_with_the_others() {
        // Channel 1 has 10 items, older than channel 2's 2.
        let mut items: Vec<(QueuePlace, ())> =
            (0..10).map(|i| (place(1, i, i as u128), ())).collect();
        items.extend((0..2).map(|i| (place(2, 100 + i, 100 + i as u128), ())));
        let heads = [place(1, 0, 0), place(2, 100, 100), place(2, 200, 7)];
        let (channels, share) = fair_channels(&heads, 6);
        assert_eq!((channels.len(), share), (2, 3));
        let per = |picked: &[(QueuePlace, ())]| -> Vec<u128> {
            picked
                .iter()
                .map(|(p, _)| p.channel.as_uuid().as_u128())
                .collect()
        };
        // Channel 2's unused share goes to channel 1.
        assert_eq!(per(&fair_pick(items.clone(), 6)), vec![1, 1, 1, 1, 2, 2]);
        assert_eq!(per(&fair_pick(items, 2)), vec![1, 2], "one each first");
    }

    #[test]
    fn no_channel_taking_part_is_left_out() {
        // Limit 5 over channels of 2, 2, 2 and 1 items: every channel gets
        // its oldest before any gets its second.
        let mut items = Vec::new();
        for c in 0..3u128 {
            for i in 0..2 {
                items.push((place(c, (c * 10) as i64 + i, c * 10 + i as u128), ()));
            }
        }
        items.push((place(3, 50, 50), ()));
        let picked = fair_pick(items, 5);
        let mut channels: Vec<u128> = picked
            .iter()
            .map(|(p, _)| p.channel.as_uuid().as_u128())
            .collect();
        assert_eq!(channels.len(), 5);
        channels.dedup();
        assert_eq!(channels, vec![0, 1, 2, 3], "oldest first, channel 0 twice");
        let heads: Vec<QueuePlace> = (0..5).map(|c| place(c, 10 - c as i64, c)).collect();
        let (channels, share) = fair_channels(&heads, 3);
        assert_eq!(share, 1);
        let ids: Vec<u128> = channels.iter().map(|c| c.as_uuid().as_u128()).collect();
        assert_eq!(ids, vec![4, 3, 2], "the channels with the oldest heads");
        assert_eq!(fair_channels(&[], 10), (Vec::new(), 10));
    }
}
