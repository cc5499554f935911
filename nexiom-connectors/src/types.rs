//! The values that go in and out of a [`PlatformConnector`](crate::PlatformConnector).

use chrono::{DateTime, Utc};
use nexiom_core::{
    Channel, ChannelId, Content, Credentials, DeliveryStatus, EventKind, NewWebhookEvent, Platform,
    SecretString, TenantId,
};
use serde::{Deserialize, Serialize};

use crate::error::ConnectorError;

/// Who a call is made for: the channel's account id and its credentials.
///
/// Connectors hold only app-level configuration (base URL, API version, app
/// secret); the per-channel token travels with each call in this context. So one
/// connector serves every channel of every tenant, a refreshed token is used by
/// the next call without rebuilding anything, and no connector ever holds a token
/// that a storage row no longer has. `Debug` shows the secrets redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelContext {
    /// The channel, when the caller has one (used for logs and per-channel state).
    pub channel_id: Option<ChannelId>,
    /// The platform's id of the account: WhatsApp phone-number id, IG user id,
    /// Facebook page id, or LinkedIn author URN (`urn:li:organization:…`).
    pub account_id: String,
    /// The access token sent with API calls.
    pub access_token: SecretString,
    /// The refresh token, where the platform issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when known.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ChannelContext {
    /// A context for `account_id` with an access token.
    pub fn new(account_id: impl Into<String>, access_token: impl Into<SecretString>) -> Self {
        ChannelContext {
            channel_id: None,
            account_id: account_id.into(),
            access_token: access_token.into(),
            refresh_token: None,
            expires_at: None,
        }
    }

    /// The same context with a refresh token.
    pub fn with_refresh_token(mut self, token: impl Into<SecretString>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// The context of a stored channel. Fails when the channel has no access token.
    pub fn from_channel(channel: &Channel) -> Result<Self, ConnectorError> {
        let access_token = channel
            .credentials
            .access_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::config(format!("channel {} has no access token", channel.id))
            })?;
        Ok(ChannelContext {
            channel_id: Some(channel.id),
            account_id: channel.external_account_id.clone(),
            access_token,
            refresh_token: channel.credentials.refresh_token.clone(),
            expires_at: channel.credentials.expires_at,
        })
    }

    /// A stable key for per-channel state (breakers, single-flight refresh).
    pub(crate) fn key(&self) -> String {
        match self.channel_id {
            Some(id) => id.to_string(),
            None => self.account_id.clone(),
        }
    }
}

/// A WhatsApp message template (the only kind of message allowed outside the
/// 24-hour customer-service window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Template name as approved in WhatsApp Manager.
    pub name: String,
    /// Language code, for example `en_US`.
    pub language: String,
    /// `components[]` as documented (header / body / button parameters); may be empty.
    #[serde(default)]
    pub components: Vec<serde_json::Value>,
}

impl Template {
    /// A template without parameters.
    pub fn new(name: impl Into<String>, language: impl Into<String>) -> Self {
        Template {
            name: name.into(),
            language: language.into(),
            components: Vec::new(),
        }
    }
}

/// What to publish.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublishRequest {
    /// The content (validated against the connector's capabilities first).
    pub content: Content,
    /// Ask the platform to publish at this time itself (only where
    /// `capabilities().schedule_native`; otherwise a validation error).
    pub schedule_at: Option<DateTime<Utc>>,
    /// WhatsApp: the audience (phone numbers / wa_ids). Other platforms ignore it.
    pub recipients: Vec<String>,
    /// WhatsApp: send this template instead of free-form content.
    pub template: Option<Template>,
    /// An opaque reference echoed back where the platform supports it (WhatsApp
    /// `biz_opaque_callback_data`), to correlate with an outbox row.
    pub reference: Option<String>,
}

impl PublishRequest {
    /// A request to publish `content` now.
    pub fn new(content: Content) -> Self {
        PublishRequest {
            content,
            ..PublishRequest::default()
        }
    }
}

/// A successful publication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The platform's id of the post (comments are listed on it). For WhatsApp, the
    /// message id of the first recipient.
    pub platform_post_id: String,
    /// A permalink, when the platform has one.
    pub url: Option<String>,
    /// Every id the platform returned (WhatsApp: one message id per recipient;
    /// Instagram: the container id then the media id).
    pub ids: Vec<String>,
    /// Recipients of a WhatsApp broadcast the platform refused after the first
    /// succeeded (the content or the number: sending again as it is fails the
    /// same way).
    pub failed_recipients: Vec<String>,
    /// Recipients of a WhatsApp broadcast whose send had no clear answer (a
    /// timeout or a 5xx after the request was received): they may have got
    /// the message, so sending again may make a duplicate.
    #[serde(default)]
    pub unknown_recipients: Vec<String>,
    /// Recipients of a WhatsApp broadcast not sent to, and safe to send to
    /// later: the platform refused before acting (a pair rate limit for that
    /// one recipient, a passing failure), or the channel was throttled, its
    /// circuit opened or its token refused, which stops the broadcast (the
    /// rest are listed here, none attempted).
    #[serde(default)]
    pub unsent_recipients: Vec<String>,
    /// `true` when the platform holds the post for native scheduled publication.
    pub scheduled: bool,
}

/// What a direct message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageBody {
    /// Free-form text and media.
    Content(Content),
    /// A WhatsApp template.
    Template(Template),
}

/// A direct message (or WhatsApp message) to one contact.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// The contact's platform id: phone number / wa_id, IGSID, PSID.
    pub recipient: String,
    /// What to send.
    pub body: MessageBody,
    /// Reply to this platform message id (WhatsApp `context.message_id`).
    pub reply_to: Option<String>,
    /// Echoed back in status webhooks where supported (WhatsApp).
    pub reference: Option<String>,
    /// When the contact last wrote to us. When given, free-form messages outside
    /// the platform's window are refused before the call ([`crate::PolicyError`]);
    /// `None` means the caller does not track it and the platform decides.
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl OutboundMessage {
    /// A text message to `recipient`.
    pub fn text(recipient: impl Into<String>, text: impl Into<String>) -> Self {
        OutboundMessage {
            recipient: recipient.into(),
            body: MessageBody::Content(Content::text(text)),
            reply_to: None,
            reference: None,
            last_inbound_at: None,
        }
    }

    /// A template message to `recipient`.
    pub fn template(recipient: impl Into<String>, template: Template) -> Self {
        OutboundMessage {
            recipient: recipient.into(),
            body: MessageBody::Template(template),
            reply_to: None,
            reference: None,
            last_inbound_at: None,
        }
    }
}

/// A private reply: one direct message to the author of a comment, sent by
/// reference to the comment (Meta "Private Replies": the Send API with
/// `recipient: {"comment_id": …}`).
///
/// Meta allows **one** private reply per comment, within **7 days** of the
/// comment's creation (platform-apis §2.5; Instagram Live comments only during the
/// broadcast). A connector holds no per-channel state, so it cannot know whether a
/// reply was already sent: the caller (the pipeline) keeps that durable record and
/// says so here. With [`already_sent`](PrivateReply::already_sent) set, or a
/// comment older than the window, the send is refused before any request with a
/// [`PolicyError`](crate::PolicyError). Record a successful send (and a platform
/// refusal with Graph code 10900, "activity already replied to") before retrying
/// anything.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateReply {
    /// The platform's id of the comment (or Facebook visitor post) replied to.
    pub comment_id: String,
    /// The message text.
    pub text: String,
    /// When the comment was made (the window runs from here).
    pub comment_created_at: DateTime<Utc>,
    /// Whether a private reply to this comment was already sent, from the
    /// caller's durable record.
    pub already_sent: bool,
}

impl PrivateReply {
    /// A first private reply to `comment_id`, made at `comment_created_at`.
    pub fn new(
        comment_id: impl Into<String>,
        text: impl Into<String>,
        comment_created_at: DateTime<Utc>,
    ) -> Self {
        PrivateReply {
            comment_id: comment_id.into(),
            text: text.into(),
            comment_created_at,
            already_sent: false,
        }
    }

    /// The same reply, marked as (not) already sent by the caller's record.
    pub fn with_already_sent(mut self, already_sent: bool) -> Self {
        self.already_sent = already_sent;
        self
    }
}

/// A message the platform accepted (not yet delivered: delivery comes by webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The platform's message id (`wamid…`, `mid…`).
    pub message_id: String,
    /// The recipient as the platform normalized it, when it said.
    pub recipient_id: Option<String>,
}

/// A comment read from a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteComment {
    /// The platform's comment id (LinkedIn: the comment URN).
    pub id: String,
    /// The parent comment, for a reply in a thread.
    pub parent_id: Option<String>,
    /// Author's platform id.
    pub author_id: Option<String>,
    /// Author's display name or username.
    pub author_name: Option<String>,
    /// Text.
    pub text: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Hidden on the platform.
    pub hidden: bool,
}

/// One page of comments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommentPage {
    /// The comments of this page.
    pub comments: Vec<RemoteComment>,
    /// Pass it to the next `list_new_comments` call; `None` when this was the last
    /// page for now.
    pub next_cursor: Option<String>,
    /// Items of the page (comments or replies) that could not be read and
    /// were left out (logged). A page of three or more comments none of
    /// which can be read is an error instead
    /// ([`ConnectorError::InvalidResponse`]).
    ///
    /// [`ConnectorError::InvalidResponse`]: crate::ConnectorError::InvalidResponse
    #[serde(default)]
    pub left_out: u32,
}

/// New credentials from a token refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: SecretString,
    /// A new refresh token, when the platform issued one. `None` means "keep the
    /// one you have" — never store an empty value over it.
    pub refresh_token: Option<SecretString>,
    /// When the new access token expires, when known.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, when known (LinkedIn's does not reset).
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

impl TokenGrant {
    /// Applies the grant to stored credentials: the access token and expiry are
    /// replaced; the refresh token only when a non-empty new one was issued.
    pub fn apply_to(&self, credentials: &mut Credentials) {
        credentials.access_token = Some(self.access_token.clone());
        credentials.expires_at = self.expires_at;
        if let Some(rt) = self.refresh_token.as_ref().filter(|t| !t.is_empty()) {
            credentials.refresh_token = Some(rt.clone());
        }
    }

    /// Applies the grant to a context (same rule as [`TokenGrant::apply_to`]).
    pub fn apply_to_context(&self, ctx: &mut ChannelContext) {
        ctx.access_token = self.access_token.clone();
        ctx.expires_at = self.expires_at;
        if let Some(rt) = self.refresh_token.as_ref().filter(|t| !t.is_empty()) {
            ctx.refresh_token = Some(rt.clone());
        }
    }
}

/// A webhook subscription to set up on the platform.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookSetup {
    /// The callback URL (HTTPS, publicly reachable).
    pub callback_url: String,
    /// Subscribed fields (Meta: `feed`, `messages`, `comments`…); empty = the
    /// connector's defaults.
    pub fields: Vec<String>,
    /// The object to subscribe when it is not the channel's account: the WABA id
    /// for WhatsApp, the Page id for Instagram with Facebook Login.
    pub object_id: Option<String>,
    /// LinkedIn: the person URN of the admin who subscribes.
    pub subscriber: Option<String>,
}

/// The answer to a webhook subscription handshake (a GET from the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeResponse {
    /// HTTP status to answer with.
    pub status: u16,
    /// Content type of the body.
    pub content_type: &'static str,
    /// The body, verbatim.
    pub body: String,
}

/// One event read from a webhook body, in the same shape for every platform.
///
/// `event_id` is the platform's id of the event and the deduplication key with
/// the platform: the message id for messages (`wamid`, `mid`), the comment id for
/// comments, `"<wamid>:<status>"` for WhatsApp statuses, the notification id for
/// LinkedIn notifications that are not comments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    /// Platform.
    pub platform: Platform,
    /// The account the event is addressed to (routing key to the channel):
    /// WhatsApp phone-number id, IG account id, page id, LinkedIn organization URN.
    pub account_id: Option<String>,
    /// The platform's event id (see above).
    pub event_id: String,
    /// What the event is.
    pub kind: EventKind,
    /// The sender's platform id.
    pub sender_id: Option<String>,
    /// The sender's display name or username, when given.
    pub sender_name: Option<String>,
    /// Text of a message or comment.
    pub text: Option<String>,
    /// Whether media is attached.
    pub has_media: bool,
    /// For status events: the new delivery status.
    pub delivery_status: Option<DeliveryStatus>,
    /// For status events: the outbound message the status is about.
    pub message_id: Option<String>,
    /// The conversation thread: the contact's id for direct messages.
    pub thread_id: Option<String>,
    /// For comments: the post the comment is on.
    pub post_id: Option<String>,
    /// For replies: the parent comment; for messages: the message replied
    /// to; for [`EventKind::Moderation`](nexiom_core::EventKind::Moderation):
    /// the comment moderated.
    pub parent_id: Option<String>,
    /// When the platform says it happened.
    pub occurred_at: DateTime<Utc>,
    /// The raw JSON of this event (the message, status, change or notification).
    pub payload: serde_json::Value,
}

impl NormalizedEvent {
    /// The storage input for this event on `channel_id` of `tenant_id`.
    pub fn to_new_webhook_event(
        &self,
        tenant_id: TenantId,
        channel_id: ChannelId,
        received_at: DateTime<Utc>,
    ) -> NewWebhookEvent {
        NewWebhookEvent {
            tenant_id,
            channel_id,
            platform: self.platform.clone(),
            event_id: self.event_id.clone(),
            kind: self.kind,
            sender_id: self.sender_id.clone(),
            sender_name: self.sender_name.clone(),
            text: self.text.clone(),
            has_media: self.has_media,
            delivery_status: self.delivery_status,
            target_id: self.message_id.clone().or_else(|| self.post_id.clone()),
            parent_id: self.parent_id.clone(),
            occurred_at: self.occurred_at,
            payload: self.payload.clone(),
            received_at,
        }
    }
}

/// An event of a verified webhook body that could not be read into a
/// [`NormalizedEvent`] (a required field missing, an implausible timestamp…).
/// Its neighbours in the body are read on their own; the caller keeps this one
/// as a dead letter so that a person can see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedEvent {
    /// Platform.
    pub platform: Platform,
    /// The account the event is addressed to, when it could be read.
    pub account_id: Option<String>,
    /// The platform's id of the event, when it could be read.
    pub event_id: Option<String>,
    /// Why the event was refused, in words a person can act on.
    pub reason: String,
    /// The raw JSON of this event (the message, status, change or notification).
    pub payload: serde_json::Value,
}

impl RejectedEvent {
    /// The refusal of an already normalized `event`, for `reason`.
    pub fn of(event: &NormalizedEvent, reason: impl Into<String>) -> Self {
        RejectedEvent {
            platform: event.platform.clone(),
            account_id: event.account_id.clone(),
            event_id: Some(event.event_id.clone()),
            reason: reason.into(),
            payload: event.payload.clone(),
        }
    }
}

/// One event of a webhook body, read on its own: normalized, or refused with
/// the reason (see [`PlatformConnector::handle_webhook_events`](crate::PlatformConnector::handle_webhook_events)).
pub type WebhookItem = Result<NormalizedEvent, RejectedEvent>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_never_overwrites_refresh_token_with_nothing() {
        let mut creds = Credentials {
            access_token: Some("old-access".into()),
            refresh_token: Some("keep-me-refresh".into()),
            expires_at: None,
        };
        let grant = TokenGrant {
            access_token: "new-access".into(),
            refresh_token: Some(SecretString::new("")),
            expires_at: None,
            refresh_token_expires_at: None,
        };
        grant.apply_to(&mut creds);
        assert_eq!(
            creds.access_token.as_ref().map(|t| t.expose()),
            Some("new-access")
        );
        assert_eq!(
            creds.refresh_token.as_ref().map(|t| t.expose()),
            Some("keep-me-refresh")
        );
        let mut ctx = ChannelContext::new("1", "a").with_refresh_token("r-original");
        TokenGrant {
            refresh_token: None,
            ..grant
        }
        .apply_to_context(&mut ctx);
        assert_eq!(
            ctx.refresh_token.as_ref().map(|t| t.expose()),
            Some("r-original")
        );
    }

    #[test]
    fn context_debug_is_redacted() {
        let ctx =
            ChannelContext::new("123", "EAAG-secret-token").with_refresh_token("rt-secret-value");
        let dbg = format!("{ctx:?}");
        assert!(!dbg.contains("EAAG-secret-token"));
        assert!(!dbg.contains("rt-secret-value"));
        assert!(dbg.contains("123"));
    }
}
