use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ReplyStatus;
use crate::enums::{ConversationStatus, DeliveryStatus, EventKind, MessageDirection, Triage};
use crate::error::CoreError;
use crate::id::{
    ChannelId, CommentId, ContactChannelId, ContactId, ConversationId, DecisionId, MessageId,
    TenantId, WebhookEventId,
};
use crate::platform::Platform;
use crate::validate;

/// A webhook event: the raw payload as received, plus the normalized fields that
/// routing needs. Unique by `(platform, event_id)`: a second delivery changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Id.
    pub id: WebhookEventId,
    /// Owner (resolved from the channel the webhook names).
    pub tenant_id: TenantId,
    /// The channel the webhook was addressed to.
    pub channel_id: ChannelId,
    /// Platform.
    pub platform: Platform,
    /// The platform's id of the event (message id, comment id, notification id…).
    pub event_id: String,
    /// What the event is about.
    pub kind: EventKind,
    /// The sender's platform id (phone number, IGSID, PSID, person URN), if any.
    pub sender_id: Option<String>,
    /// The sender's display name, if the platform gave one.
    pub sender_name: Option<String>,
    /// Text of a message or comment.
    pub text: Option<String>,
    /// Whether the message or comment carries media.
    pub has_media: bool,
    /// New delivery status, for [`EventKind::Status`] events.
    pub delivery_status: Option<DeliveryStatus>,
    /// The message a status event is about, or the platform post a comment is on.
    pub target_id: Option<String>,
    /// The parent comment of a reply, or the comment a
    /// [`EventKind::Moderation`] event is about, if any.
    pub parent_id: Option<String>,
    /// When the platform says the event happened.
    pub occurred_at: DateTime<Utc>,
    /// The raw JSON of this event as the platform sent it.
    pub payload: serde_json::Value,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
    /// When routing handled it (`None` while unrouted).
    pub routed_at: Option<DateTime<Utc>>,
    /// The conversation routing attached it to, for message events.
    pub conversation_id: Option<ConversationId>,
}

/// Input to store a [`WebhookEvent`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhookEvent {
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Platform.
    pub platform: Platform,
    /// Platform event id (a key).
    pub event_id: String,
    /// Kind.
    pub kind: EventKind,
    /// Sender id.
    pub sender_id: Option<String>,
    /// Sender name.
    pub sender_name: Option<String>,
    /// Text.
    pub text: Option<String>,
    /// Whether media is attached.
    pub has_media: bool,
    /// Delivery status for status events.
    pub delivery_status: Option<DeliveryStatus>,
    /// Target message or post id.
    pub target_id: Option<String>,
    /// Parent comment id.
    pub parent_id: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Raw JSON.
    pub payload: serde_json::Value,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

impl NewWebhookEvent {
    /// Checks the keys, texts, then `payload`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("event_id", &self.event_id)?;
        validate::opt_key("sender_id", self.sender_id.as_deref())?;
        validate::opt_text("sender_name", self.sender_name.as_deref())?;
        validate::opt_text("text", self.text.as_deref())?;
        validate::opt_key("target_id", self.target_id.as_deref())?;
        validate::opt_key("parent_id", self.parent_id.as_deref())?;
        validate::json("payload", &self.payload)
    }
}

/// A person the business talks to, across platforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Display name, if known.
    pub display_name: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// One platform handle of a [`Contact`]. Unique by `(tenant, platform, external_handle)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactChannel {
    /// Id.
    pub id: ContactChannelId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The contact.
    pub contact_id: ContactId,
    /// Platform.
    pub platform: Platform,
    /// The contact's id on that platform (wa_id, IGSID, PSID, person URN).
    pub external_handle: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to resolve-or-create a [`ContactChannel`] (and its [`Contact`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewContactChannel {
    /// Owner.
    pub tenant_id: TenantId,
    /// Platform.
    pub platform: Platform,
    /// Handle (a key).
    pub external_handle: String,
    /// Display name for a new contact.
    pub display_name: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewContactChannel {
    /// Checks `external_handle`, then `display_name`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("external_handle", &self.external_handle)?;
        validate::opt_text("display_name", self.display_name.as_deref())
    }
}

/// A conversation between a contact and a channel. At most one is open per
/// `(contact, channel)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The contact.
    pub contact_id: ContactId,
    /// The business's channel.
    pub channel_id: ChannelId,
    /// Open or closed.
    pub status: ConversationStatus,
    /// Time of the latest message (the maximum, whatever order messages arrive in).
    pub last_message_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A message in a conversation. Unique by `(channel, provider_message_id)` when the
/// platform id is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Channel (same as the conversation's).
    pub channel_id: ChannelId,
    /// Inbound or outbound.
    pub direction: MessageDirection,
    /// Text (empty for media-only messages).
    pub text: String,
    /// Whether media is attached.
    pub has_media: bool,
    /// The platform's message id (wamid, mid…).
    pub provider_message_id: Option<String>,
    /// For an outbound reply, the inbound message it answers (unique: one reply per
    /// inbound message).
    pub in_reply_to: Option<MessageId>,
    /// Triage outcome, once triaged.
    pub triage: Option<Triage>,
    /// Triage confidence, once triaged.
    pub confidence: Option<f64>,
    /// The decision that triaged it.
    pub ai_decision_id: Option<DecisionId>,
    /// Delivery status of an outbound message.
    pub delivery_status: Option<DeliveryStatus>,
    /// The reply-queue state, for an inbound message triaged AUTO_REPLY (or
    /// `superseded`: a person answered before its triage).
    pub reply: Option<ReplyStatus>,
    /// When the message was sent or received (platform time).
    pub created_at: DateTime<Utc>,
    /// When it was stored.
    pub stored_at: DateTime<Utc>,
}

/// Input to store a [`Message`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Owner.
    pub tenant_id: TenantId,
    /// Conversation (must belong to the tenant).
    pub conversation_id: ConversationId,
    /// Direction.
    pub direction: MessageDirection,
    /// Text.
    pub text: String,
    /// Whether media is attached.
    pub has_media: bool,
    /// Platform message id (a key), if known.
    pub provider_message_id: Option<String>,
    /// Inbound message this answers (outbound replies only).
    pub in_reply_to: Option<MessageId>,
    /// Initial delivery status (outbound).
    pub delivery_status: Option<DeliveryStatus>,
    /// Platform time.
    pub created_at: DateTime<Utc>,
    /// Storage time.
    pub stored_at: DateTime<Utc>,
}

impl NewMessage {
    /// Checks `text`, then `provider_message_id`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::text("text", &self.text)?;
        validate::opt_key("provider_message_id", self.provider_message_id.as_deref())
    }
}

/// What one routing call did (see `EventStore::route_unrouted_events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingReport {
    /// Events this call marked routed (whatever they became).
    pub processed: u64,
    /// Inbound messages this call created (an event whose message already
    /// existed counts as processed, not created).
    pub messages_created: u64,
    /// Comments this call created from comment events.
    pub comments_created: u64,
    /// External posts this call created: comment events naming a post of
    /// their channel that no stored post has (a post made elsewhere).
    #[serde(default)]
    pub external_posts_created: u64,
    /// Events that could not be routed, even one at a time, and were set
    /// aside: kept as dead letters of their tenant and marked routed to no
    /// conversation (see `InboundPipeline::route_unrouted_events`).
    #[serde(default)]
    pub set_aside: u64,
    /// Events that failed to route and were left unrouted, for a later
    /// call: the failure may be the database's (every event of their kind
    /// tried failed too), or they could not be set aside (the dead letter or
    /// the mark refused).
    #[serde(default)]
    pub left_unrouted: u64,
}

impl RoutingReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: RoutingReport) {
        self.processed += other.processed;
        self.messages_created += other.messages_created;
        self.comments_created += other.comments_created;
        self.external_posts_created += other.external_posts_created;
        self.set_aside += other.set_aside;
        self.left_unrouted += other.left_unrouted;
    }
}

/// The automatic public reply to a comment. Unique by comment: it is written,
/// `pending`, BEFORE the platform is called, so a comment is never answered
/// twice whatever runs concurrently or crashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentReply {
    /// Owner.
    pub tenant_id: TenantId,
    /// The comment answered (the unique key).
    pub comment_id: CommentId,
    /// The reply text.
    pub text: String,
    /// `pending` until the platform answered, then `sent` or `failed`.
    pub status: DeliveryStatus,
    /// The platform's id of the reply, once sent.
    pub platform_comment_id: Option<String>,
    /// Why the send failed, if it did.
    pub error: Option<String>,
    /// When it was claimed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input to claim a [`CommentReply`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommentReply {
    /// Owner.
    pub tenant_id: TenantId,
    /// The comment to answer (must belong to the tenant).
    pub comment_id: CommentId,
    /// The reply text.
    pub text: String,
    /// Claim time.
    pub created_at: DateTime<Utc>,
}

impl NewCommentReply {
    /// Checks `text`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::text("text", &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_validation_follows_field_order() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut event = NewWebhookEvent {
            tenant_id: TenantId::generate(),
            channel_id: ChannelId::generate(),
            platform: Platform::WhatsApp,
            event_id: "wamid.1".into(),
            kind: EventKind::Message,
            sender_id: None,
            sender_name: None,
            text: Some("hi".into()),
            has_media: false,
            delivery_status: None,
            target_id: None,
            parent_id: None,
            occurred_at: t0,
            payload: serde_json::json!({"text": "a\u{0}b"}),
            received_at: t0,
        };
        assert!(matches!(
            event.validate(),
            Err(CoreError::Invalid {
                field: "payload",
                ..
            })
        ));
        event.event_id = "  ".into();
        assert!(matches!(
            event.validate(),
            Err(CoreError::Invalid {
                field: "event_id",
                ..
            })
        ));
        event.event_id = "wamid.1".into();
        event.payload = serde_json::json!({});
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn message_text_must_not_hold_nul() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let message = NewMessage {
            tenant_id: TenantId::generate(),
            conversation_id: ConversationId::generate(),
            direction: MessageDirection::Inbound,
            text: "a\0".into(),
            has_media: false,
            provider_message_id: Some(String::new()),
            in_reply_to: None,
            delivery_status: None,
            created_at: t0,
            stored_at: t0,
        };
        assert!(matches!(
            message.validate(),
            Err(CoreError::Invalid { field: "text", .. })
        ));
    }
}
