//! [`ReplyBatchStore`]: the reply queue's per-item steps (what a reply needs,
//! its claim under the unique key, its settlement) for many items at once,
//! each item guarded by its lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ClaimedReply, ContactId, CoreError, DecisionSubject, DeliveryStatus, MessageId, ReplyOutcome,
    TenantId, validate,
};

use crate::error::Result;

/// What answering one claimed item needs from the store, read for a batch by
/// [`ReplyBatchStore::reply_contexts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyContext {
    /// A message's contact (`None` for a comment, or when not found).
    pub contact_id: Option<ContactId>,
    /// That contact's display name.
    pub contact_name: Option<String>,
    /// A message's recipient: the contact's first handle (oldest) on the
    /// platform of the message's channel.
    pub recipient: Option<String>,
    /// The draft kept in the item's decision (`snapshot.draft`), when it has
    /// one that is not blank.
    pub draft: Option<String>,
    /// The status of the reply stored for the item already (the outbound
    /// message answering it, or the comment's reply), if there is one.
    pub existing_reply: Option<DeliveryStatus>,
}

/// A reply to claim under its unique key, by [`ReplyBatchStore::claim_replies`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyClaim {
    /// The item's tenant.
    pub tenant_id: TenantId,
    /// The inbound message or comment answered.
    pub subject: DecisionSubject,
    /// The lease the caller holds the item under (its `lease_until`, as
    /// claimed or last renewed).
    pub lease_until: DateTime<Utc>,
    /// The reply's text.
    pub text: String,
    /// When the reply is claimed (its `created_at`).
    pub at: DateTime<Utc>,
}

/// How [`ReplyBatchStore::claim_replies`] treated one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClaimed {
    /// The reply was stored `pending`: the caller sends it. For a message,
    /// the outbound message's id.
    Claimed(Option<MessageId>),
    /// A reply was stored for the item already (an earlier run, another
    /// worker): its status. Nothing was written.
    Existing(Option<DeliveryStatus>),
    /// The tenant's AI control is OFF, or its auto-replies are switched off
    /// on the item's channel (both read in the claim): nothing was written.
    AiOff,
    /// A person answered first (an agent reply to the message's
    /// conversation, claimed once the message was stored and recorded
    /// `sent`, or to the comment): the item was made
    /// [`Superseded`](nexiom_core::ReplyState::Superseded), its lease
    /// released, and no reply was stored. Send nothing.
    Superseded,
    /// The item is no longer `sending` under the caller's lease (settled, or
    /// claimed again by another worker after the lease lapsed), or is not
    /// the tenant's: nothing was written.
    LeaseLost,
}

/// The platform's answer to a claimed reply, recorded on the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyAnswer {
    /// `Sent` or `Failed` (for a message the status only moves forward).
    pub status: DeliveryStatus,
    /// The platform's id of the reply, when it gave one.
    pub provider_id: Option<String>,
    /// Why it failed (kept on a comment's reply).
    pub error: Option<String>,
}

/// One item's settlement, for [`ReplyBatchStore::settle_replies`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplySettlement {
    /// The item's tenant.
    pub tenant_id: TenantId,
    /// The inbound message or comment.
    pub subject: DecisionSubject,
    /// The lease the caller holds the item under.
    pub lease_until: DateTime<Utc>,
    /// The platform's answer to the reply the caller claimed, if it sent one.
    pub answer: Option<ReplyAnswer>,
    /// How the item's turn ended.
    pub outcome: ReplyOutcome,
}

/// The reply queue's per-item steps in batches: worker-queue operations,
/// across tenants, each one atomic (one transaction on Postgres), each item
/// guarded by the lease its caller holds.
#[async_trait]
pub trait ReplyBatchStore: Send + Sync {
    /// What answering each item needs (aligned with `items`); an item not
    /// found gets an empty context.
    async fn reply_contexts(&self, items: &[ClaimedReply]) -> Result<Vec<ReplyContext>>;

    /// Claims the replies (aligned answer): for each item still `sending`
    /// under the claim's lease, of a tenant whose AI control is ON (read in
    /// the same atomic step), the reply is stored `pending` under its unique
    /// key, as [`ConversationStore::insert_message`](crate::ConversationStore::insert_message)
    /// (an outbound message answering the message, in its conversation,
    /// whose `last_message_at` moves) or
    /// [`CommentStore::insert_comment_reply`](crate::CommentStore::insert_comment_reply)
    /// would, unless one is stored already. `Invalid` (nothing written) when
    /// a text is not valid or an item appears twice.
    async fn claim_replies(&self, claims: &[ReplyClaim]) -> Result<Vec<ReplyClaimed>>;

    /// Settles items (aligned answer: whether the outcome was applied). The
    /// answer, when given, is recorded on the item's reply whatever the
    /// lease (the platform acted): a message's provider id (when it had
    /// none) and status (forward only), a comment reply's status, id, error
    /// and `updated_at = at`. The outcome is applied as
    /// [`ReplyQueueStore::finish_reply`](crate::ReplyQueueStore::finish_reply)
    /// does, but only while the item is `sending` under the settlement's
    /// lease (`Sent` applies in any state); otherwise it is not written, and
    /// the answer says `false`. An item not found or not in the reply queue
    /// is `false` too. `Invalid` (nothing written) when an answer's id or
    /// error is not valid or an item appears twice.
    async fn settle_replies(
        &self,
        settlements: &[ReplySettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>>;
}

/// Checks the claims and refuses an item named twice.
pub(crate) fn check_claims(claims: &[ReplyClaim]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for claim in claims {
        validate::text("text", &claim.text)?;
        if !seen.insert(claim.subject) {
            return Err(CoreError::invalid("claims", "an item appears twice").into());
        }
    }
    Ok(())
}

/// Checks the settlements and refuses an item named twice.
pub(crate) fn check_settlements(settlements: &[ReplySettlement]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for s in settlements {
        if let Some(answer) = &s.answer {
            validate::opt_key("provider_id", answer.provider_id.as_deref())?;
            validate::opt_text("error", answer.error.as_deref())?;
        }
        if !seen.insert(s.subject) {
            return Err(CoreError::invalid("settlements", "an item appears twice").into());
        }
    }
    Ok(())
}

/// The draft of a decision snapshot, when not blank.
pub(crate) fn draft_of(snapshot: &serde_json::Value) -> Option<String> {
    snapshot
        .get("draft")
        .and_then(|d| d.as_str())
        .filter(|d| !d.trim().is_empty())
        .map(str::to_owned)
}
