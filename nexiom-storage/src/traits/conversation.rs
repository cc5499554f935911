//! Conversations and their messages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Conversations and their messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The open conversation of `(contact, channel)`, or a new open one created at
    /// `at` (`created == true`). Two concurrent calls yield the same conversation.
    async fn insert_open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        at: DateTime<Utc>,
    ) -> Result<Inserted<Conversation>>;
    /// The conversation, or `NotFound`.
    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> Result<Conversation>;
    /// The tenant's conversations, optionally of one status, latest
    /// `last_message_at` first (never-messaged last), at most `limit`.
    async fn list_conversations(
        &self,
        tenant: TenantId,
        status: Option<ConversationStatus>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;
    /// Closes the conversation (a later inbound message opens a new one).
    async fn close_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation>;

    /// Stores a message unless `(channel, provider_message_id)` is already stored
    /// (messages without a provider id are always stored). In the same atomic step
    /// the conversation's `last_message_at` becomes the later of its value and the
    /// message's `created_at`. An outbound message with `in_reply_to` is unique by
    /// that inbound message too: a second reply to the same message returns the
    /// first one with `created == false`.
    async fn insert_message(&self, new: NewMessage) -> Result<Inserted<Message>>;
    /// The message, or `NotFound`.
    async fn get_message(&self, tenant: TenantId, id: MessageId) -> Result<Message>;
    /// The message stored under `(channel, provider_message_id)`, if any.
    async fn find_message_by_provider_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Option<Message>>;
    /// Messages of a conversation, oldest `created_at` first, at most `limit`.
    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// The tenant's messages of `direction` created at or after `since`, oldest
    /// first, at most `limit`.
    async fn list_messages_since(
        &self,
        tenant: TenantId,
        direction: MessageDirection,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Applies a delivery status to the outbound message `(channel,
    /// provider_message_id)`, monotonically (see
    /// [`DeliveryStatus::can_advance_to`]): an older status never overwrites a
    /// newer one. Returns the message as stored after the call, or `None` when no
    /// such message exists.
    async fn update_delivery_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
        status: DeliveryStatus,
    ) -> Result<Option<Message>>;
    /// The tenant's inbound messages that have no triage yet, oldest
    /// `created_at` first, at most `limit` (the triage queue).
    async fn list_untriaged_messages(&self, tenant: TenantId, limit: u32) -> Result<Vec<Message>>;
    /// The tenant's inbound messages triaged `triage` created at or after
    /// `since`, oldest first, at most `limit`.
    async fn list_messages_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Records what the platform answered to sending the outbound message `id`:
    /// its provider id (set only while the message has none; `None` keeps it)
    /// and its delivery status (applied monotonically, as
    /// [`update_delivery_status`](ConversationStore::update_delivery_status)
    /// does). `Conflict` when another message of the channel holds that
    /// provider id.
    async fn record_message_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        provider_message_id: Option<&str>,
        status: DeliveryStatus,
    ) -> Result<Message>;
    /// Records the message's triage, confidence and deciding decision. The decision
    /// id is not checked: decisions outlive the rules and rows they name.
    /// AUTO_REPLY puts an inbound message in the reply queue (its
    /// [`reply`](nexiom_core::Message::reply) becomes `pending`, due at once)
    /// unless it is there already; see [`ReplyQueueStore`].
    ///
    /// [`ReplyQueueStore`]: crate::ReplyQueueStore
    async fn set_message_triage(
        &self,
        tenant: TenantId,
        id: MessageId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Message>;
}
