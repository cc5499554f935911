//! [`AgentReplyStore`]: replies written by people, claimed once per
//! idempotency key before the platform call and recorded with their outcome.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AgentReply, AgentReplyId, AgentReplyOutcome, AgentReplyTarget, Channel, ContactId,
    NewAgentReply, TenantId,
};

use crate::error::Result;

/// The error of an agent reply settled by
/// [`AgentReplyStore::settle_abandoned_agent_replies`]; it starts with
/// [`OUTCOME_UNKNOWN_PREFIX`](crate::OUTCOME_UNKNOWN_PREFIX).
pub const ABANDONED_AGENT_REPLY_ERROR: &str = "outcome_unknown: the reply was claimed but its \
     sender stopped before the platform's answer was recorded; it may have been sent: check \
     the conversation or comment on the platform, it is never sent again under this key";

/// What the messaging policy and the platform call need to know about a
/// target, read in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReplyContext {
    /// The channel the reply goes out on (credentials included).
    pub channel: Channel,
    /// For a conversation: its contact.
    pub contact_id: Option<ContactId>,
    /// For a conversation: the contact's handle on the channel's platform.
    pub recipient: Option<String>,
    /// For a conversation: when the contact last wrote (its latest inbound
    /// message), which opens the messaging window.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// For a conversation: the provider id of that latest inbound message.
    pub last_inbound_provider_id: Option<String>,
    /// For a comment: its platform id.
    pub comment_platform_id: Option<String>,
    /// For a comment that answers another: the platform id of the comment it
    /// answers (some platforms take replies only under a top-level comment;
    /// see `PlatformConnector::reply_target`).
    pub comment_parent_platform_id: Option<String>,
    /// For a comment: when it was made (the private-reply window runs from
    /// it).
    pub comment_created_at: Option<DateTime<Utc>>,
    /// For a comment: whether a private reply to it was claimed already.
    pub private_reply_claimed: bool,
}

/// The answer to [`AgentReplyStore::claim_agent_reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReplyClaim {
    /// This call claimed the reply: send it, then record the outcome.
    Claimed(AgentReply),
    /// The key was claimed before (by this call's twin or an earlier one):
    /// the stored reply, unchanged. Send nothing.
    Existing(AgentReply),
    /// A private reply to the comment was claimed already under another key
    /// (the platforms allow one per comment). Nothing written.
    PrivateReplyTaken,
}

/// Agent replies.
#[async_trait]
pub trait AgentReplyStore: Send + Sync {
    /// The context of `target` (see [`AgentReplyContext`]). `NotFound` for a
    /// conversation or comment that is not the tenant's.
    async fn agent_reply_context(
        &self,
        tenant: TenantId,
        target: AgentReplyTarget,
    ) -> Result<AgentReplyContext>;
    /// Claims the reply (`sending`) unless the tenant has one under its
    /// idempotency key, atomically: two concurrent calls with one key get
    /// one `Claimed` and one `Existing`. `NotFound` for a target that is not
    /// the tenant's.
    async fn claim_agent_reply(&self, new: NewAgentReply) -> Result<AgentReplyClaim>;
    /// Records the platform's answer to a `sending` reply at `at`: `sent`
    /// with its provider id (a conversation reply also becomes an outbound
    /// message of the conversation, created at `at`, in the same atomic
    /// write, so it counts for the first-response time), or `failed` with
    /// the error. A reply no longer `sending` is returned unchanged. A
    /// `sent` reply also supersedes, in the same write, the automatic
    /// replies still waiting for its target: the conversation's inbound
    /// messages stored by the reply's `created_at` (the ones the person
    /// could see), or the comment, whose reply state is
    /// `pending` or that are not triaged yet become
    /// [`ReplyState::Superseded`](nexiom_core::ReplyState::Superseded), so
    /// that nothing automatic follows a person's answer (one already
    /// `sending` is left to finish).
    async fn finish_agent_reply(
        &self,
        tenant: TenantId,
        id: AgentReplyId,
        outcome: AgentReplyOutcome,
        at: DateTime<Utc>,
    ) -> Result<AgentReply>;
    /// Settles up to `limit` replies of every tenant left `sending` since
    /// before `before`, oldest first: their sender stopped between the claim
    /// and the record of the platform's answer, or that record failed. Each
    /// becomes `failed` at `at` with [`ABANDONED_AGENT_REPLY_ERROR`] (the
    /// reply may have been sent, and is never sent again under its key), so
    /// that it no longer shows as being sent and a retry of its key answers
    /// the settled reply. Returns the replies settled. Pick `before` well
    /// past any platform call's timeout: a reply still in flight would be
    /// settled under its sender, whose answer is then returned unchanged.
    async fn settle_abandoned_agent_replies(
        &self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AgentReply>>;
    /// Withdraws a `sending` reply whose call never reached the platform (a
    /// throttle, an outage, a refused token): the row is removed, so its
    /// idempotency key is free again and a comment's one private reply is
    /// not used up (a concurrent caller that read the claim `sending` may
    /// find the key free afterwards). Returns whether it was withdrawn (a
    /// reply no longer `sending` stays). `NotFound` for a reply that is not
    /// the tenant's.
    async fn withdraw_agent_reply(&self, tenant: TenantId, id: AgentReplyId) -> Result<bool>;
    /// The tenant's reply under `idempotency_key`, if any.
    async fn find_agent_reply(
        &self,
        tenant: TenantId,
        idempotency_key: &str,
    ) -> Result<Option<AgentReply>>;
}
