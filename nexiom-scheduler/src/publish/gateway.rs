//! [`PublishGateway`]: the little the publish queue needs from a platform
//! connector, and the failure kinds that drive its retry rules.
//!
//! The queue is written against this trait rather than a concrete connector so
//! that its state machine (attempts, backoff, token refresh, ambiguous outcomes)
//! is independent of HTTP details; [`ConnectorGateway`](crate::ConnectorGateway)
//! maps the connectors of `nexiom-connectors` onto it.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{BroadcastTemplate, Channel, Content, Credentials};

/// A post the platform accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    /// The platform's id of the post.
    pub platform_post_id: String,
    /// Its public URL, when the platform gives one.
    pub url: Option<String>,
}

/// Why a publish (or lookup, or refresh) call failed, in the terms the retry
/// rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFailure {
    /// Throttled (HTTP 429 or the platform's rate-limit error). Retried, never
    /// sooner than `retry_after` when the platform gave one.
    RateLimited {
        /// What the platform said.
        message: String,
        /// The platform's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The request did not reach the platform or the platform failed before
    /// acting on it (connection refused, 5xx): retried with backoff.
    Transient {
        /// What went wrong.
        message: String,
        /// A `Retry-After` the platform gave with a 5xx, if any.
        retry_after: Option<Duration>,
    },
    /// The token was refused: refreshed once, then retried.
    Unauthorized(String),
    /// The platform refused the content or the request for good: no retry.
    Permanent(String),
    /// The request was sent but no answer came (timeout, dropped connection):
    /// the post may or may not exist. Never blindly retried.
    Ambiguous(String),
    /// The platform says the post was published but its id could not be
    /// read (Instagram: the attempt's container is `PUBLISHED` after a lost
    /// answer). Looked up once for its id; never published again: not
    /// found, the post ends `outcome_unknown`.
    PublishedWithoutId(String),
    /// The platform refuses the channel's sender or the message's template
    /// whatever the recipient (a permission missing, a business account
    /// locked or unpaid, a template that does not exist, is paused or
    /// disabled: [`ConnectorError::refuses_every_recipient`](nexiom_connectors::ConnectorError::refuses_every_recipient)).
    /// A post fails as for `Permanent`; a broadcast stops its fan-out and
    /// tries again two hours later (failing the post after `max_attempts`
    /// such refusals), instead of failing every recipient.
    SenderRefused(String),
    /// The platform refused to refresh the channel's token (from
    /// [`PublishGateway::refresh_credentials`]): the channel needs a person
    /// to reconnect it; its posts wait, queued.
    NeedsReauth(String),
}

impl PublishFailure {
    /// The failure's message.
    pub fn message(&self) -> &str {
        match self {
            PublishFailure::RateLimited { message, .. }
            | PublishFailure::Transient { message, .. } => message,
            PublishFailure::Unauthorized(m)
            | PublishFailure::Permanent(m)
            | PublishFailure::Ambiguous(m)
            | PublishFailure::PublishedWithoutId(m)
            | PublishFailure::SenderRefused(m)
            | PublishFailure::NeedsReauth(m) => m,
        }
    }

    /// The platform's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PublishFailure::RateLimited { retry_after, .. }
            | PublishFailure::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PublishFailure::RateLimited { .. } => "rate limited",
            PublishFailure::Transient { .. } => "transient failure",
            PublishFailure::Unauthorized(_) => "unauthorized",
            PublishFailure::Permanent(_) => "refused",
            PublishFailure::Ambiguous(_) => "no answer after the request was sent",
            PublishFailure::PublishedWithoutId(_) => "published, under an id not known",
            PublishFailure::SenderRefused(_) => "refused for every recipient",
            PublishFailure::NeedsReauth(_) => "the channel needs re-authorization",
        }
    }
}

impl fmt::Display for PublishFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

/// One recipient's message of a broadcast (a post on a messaging channel:
/// WhatsApp). Either the post's free-form content, sent only inside the
/// recipient's 24-hour window, or an approved template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecipientMessage<'a> {
    /// The recipient's phone number or wa_id.
    pub recipient: &'a str,
    /// The free-form content (`template` unset).
    pub content: &'a Content,
    /// The template to send instead of the content.
    pub template: Option<&'a BroadcastTemplate>,
    /// Unique per (post, recipient): the delivery id, echoed back by the
    /// platform's status webhooks.
    pub reference: &'a str,
    /// When the recipient last wrote to the channel (the connector refuses
    /// free-form content outside the window before any call).
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// What the publish queue calls on a platform.
///
/// # Contract
///
/// - `refusal` is pure and cheap: it tells whether the content can *never* be
///   published on the channel (too long, a media kind or size the platform does
///   not take). It is checked at scheduling time and again before any call.
/// - `publish` makes at most one publish request. `reference` is unique per post
///   (the post id); an implementation that can look posts up embeds it (or a
///   hash of the content) so that [`PublishGateway::lookup`] can find the post.
/// - A failure is classified as [`PublishFailure`]; a timeout or dropped
///   connection *after* the request was written is `Ambiguous`, never
///   `Transient`.
/// - `lookup` answers `Ok(None)` only when the post is definitely not there
///   (the queue then makes a new attempt, under the attempt limit); an `Err`
///   means the lookup cannot tell (the post ends `outcome_unknown`).
///   `can_lookup` false means it is never called.
#[async_trait]
pub trait PublishGateway: Send + Sync {
    /// Why `content` can never be published on `channel`, or `None`.
    fn refusal(&self, channel: &Channel, content: &Content) -> Option<String>;

    /// Publishes `content` on `channel` (one request).
    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure>;

    /// Whether [`PublishGateway::lookup`] is supported on `channel`.
    fn can_lookup(&self, channel: &Channel) -> bool;

    /// Looks for the post an attempt started at `attempted_at` published with
    /// `reference` (or `content`) among the account's recent posts.
    async fn lookup(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
        attempted_at: DateTime<Utc>,
    ) -> Result<Option<PublishedPost>, PublishFailure>;

    /// Refreshes the channel's credentials (after an `Unauthorized`, or
    /// ahead of their expiry). A refusal of the platform is
    /// [`PublishFailure::NeedsReauth`]. The queue refreshes through
    /// [`ChannelTokens`](crate::ChannelTokens): one refresh per channel at a
    /// time, stored before use.
    async fn refresh_credentials(&self, channel: &Channel) -> Result<Credentials, PublishFailure>;

    /// Sends one recipient's message of a broadcast (one request) and returns
    /// the platform's message id. The default refuses: a gateway without
    /// messaging cannot publish on a broadcast channel.
    async fn send_to_recipient(
        &self,
        channel: &Channel,
        message: RecipientMessage<'_>,
    ) -> Result<String, PublishFailure> {
        let _ = message;
        Err(PublishFailure::Permanent(format!(
            "this gateway cannot send messages on {}",
            channel.platform
        )))
    }
}
