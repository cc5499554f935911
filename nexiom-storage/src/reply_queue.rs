//! [`ReplyQueueStore`]: the queue of automatic replies, kept as a state on
//! each inbound message and comment triaged AUTO_REPLY.

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedReply, DecisionSubject, DeliveryStatus, ReplyOutcome, ReplyState, ReplyStatus, TenantId,
};

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
    /// that is not `active` wait (they are not claimed), as do the items of
    /// a channel held by a platform's throttle until after `now`
    /// ([`PostStore::throttle_channel`](crate::PostStore::throttle_channel),
    /// whichever process met it), and comments
    /// hidden on the platform (until they are shown again). Each is set
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

    /// Gives up the items the claim would take at `now` were they not
    /// created before `before` (the claim's `since`): `pending` and due, or
    /// `sending` with a lease ended and no reply stored, of a tenant whose AI
    /// control is ON, on an `active` channel whose auto-replies are not
    /// switched off. Such an item is too old for an automatic answer and the
    /// claim never takes it, so without this it would wait in the queue
    /// forever (a channel paused for hours, AI control switched back ON after
    /// a day, a webhook delivered late). Each is settled as a
    /// [`ReplyOutcome::GiveUp`] is (`given_up`, triage ESCALATE, the
    /// escalation notification), with `error` saying why, but without
    /// counting an attempt (none was made); a comment hidden on the platform
    /// is made `superseded` instead, escalating nothing (what the brand hid
    /// pages no one). A `sending` item whose reply was stored (its worker
    /// stopped, or lost its lease, before settling it) is settled from that
    /// reply, as a claim would: `sent` when the platform took the reply,
    /// else given up as of unknown outcome (or failed), never sent again. At most `limit`
    /// items, oldest first, across tenants (worker-queue operation); rows
    /// another writer holds are skipped (taken by a later call). Returns the
    /// items taken out of the queue.
    async fn expire_pending_replies(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DecisionSubject>>;
}

/// The error recorded on an item [`ReplyQueueStore::expire_pending_replies`]
/// gives up.
pub(crate) fn expired_error(created_at: DateTime<Utc>, before: DateTime<Utc>) -> String {
    format!(
        "not answered automatically: received at {created_at}, before the auto-reply \
         window (from {before}); escalated to a person"
    )
}

/// How [`ReplyQueueStore::expire_pending_replies`] settles an item, from
/// the status of the reply stored for it (`None`: none stored): a reply the
/// platform took (`sent`, `delivered`, `read`) answered it; otherwise it is
/// given up (escalated) with the error, never sent again.
pub(crate) fn expiry(
    created_at: DateTime<Utc>,
    before: DateTime<Utc>,
    stored: Option<DeliveryStatus>,
) -> Option<String> {
    match stored {
        None => Some(expired_error(created_at, before)),
        Some(DeliveryStatus::Pending) => Some(format!(
            "outcome unknown: a worker stopped after claiming the reply and before recording \
             the platform's answer, and the item (received at {created_at}) is older than the \
             auto-reply window (from {before}); check the account before answering by hand"
        )),
        Some(DeliveryStatus::Failed) => Some(format!(
            "an earlier reply to this item failed and the item (received at {created_at}) is \
             older than the auto-reply window (from {before}); it is never re-sent"
        )),
        Some(_) => None,
    }
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
