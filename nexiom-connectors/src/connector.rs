//! The [`PlatformConnector`] trait: the one interface every platform implements.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::Platform;

use crate::capabilities::Capabilities;
use crate::error::ConnectorError;
use crate::lookup::{LookupOutcome, LookupQuery};
use crate::recent::RecentPost;
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, NormalizedEvent, OutboundMessage, PrivateReply,
    PublishRequest, Published, RejectedEvent, SentMessage, TokenGrant, WebhookItem, WebhookSetup,
};
use crate::webhook::WebhookHeaders;

/// A social platform, seen through one small interface.
///
/// Held as `Arc<dyn PlatformConnector>` (the trait is object safe) and looked up
/// by name in a [`ConnectorRegistry`](crate::ConnectorRegistry).
///
/// # Contract
///
/// Every implementation guarantees, and the contract suite
/// (`nexiom_connectors::testing`, feature `testing`) checks:
///
/// - **Validation first.** `publish`, `send_message` and `send_private_reply`
///   check the content against [`capabilities`](PlatformConnector::capabilities)
///   (and messaging policy: windows, one private reply per comment) before any
///   request; a refused request returns
///   [`ConnectorError::Validation`] / [`ConnectorError::Policy`] and sends nothing.
/// - **Errors carry the next step.** Throttling is [`ConnectorError::RateLimited`]
///   (with the platform's wait hint when it gave one), an expired or revoked token is
///   [`ConnectorError::Unauthorized`], 5xx and network failures are
///   [`ConnectorError::Transient`], a refusal is [`ConnectorError::Permanent`], a
///   non-idempotent call that may have happened is [`ConnectorError::OutcomeUnknown`]
///   (a timeout after sending, a 5xx other than `503`, an unreadable success answer).
///   Non-idempotent calls (publish, reply, send) are never retried inside the
///   connector.
/// - **Paging.** Following `next_cursor` from `list_new_comments(.., None)` until it
///   is `None` yields every comment present at the time exactly once.
/// - **Webhooks.** `verify_webhook` checks the signature of the exact raw body in
///   constant time and tells a missing, a malformed and a wrong signature apart;
///   `handle_webhook` never panics, returns `Err` for bodies that are not a
///   documented payload, and returns one event per message / status / comment with
///   the platform's id as `event_id` (so redeliveries deduplicate).
///   `answer_challenge` never signs caller-chosen input with a key that also
///   authenticates bodies (LinkedIn answers only UUID-shaped codes).
///   `handle_webhook_events` reads each event on its own: `Err` only for a
///   body that is not a payload at all, and a malformed event (a missing id, an
///   implausible timestamp) is a [`RejectedEvent`] that does not affect its
///   neighbours.
/// - **Secrets.** No `Debug` output, error message or log line contains a token or
///   an app secret.
/// - **No hidden state per channel.** Credentials come with each call in the
///   [`ChannelContext`]; a connector holds only app-level configuration.
#[async_trait]
pub trait PlatformConnector: Send + Sync + fmt::Debug {
    /// The registry name, lower case (`whatsapp`, `instagram`, …).
    fn name(&self) -> &str;

    /// The platform.
    fn platform(&self) -> Platform;

    /// What the platform accepts through this connector.
    fn capabilities(&self) -> &Capabilities;

    /// Gets a fresh access token for the channel (refresh-token grant or
    /// long-lived token exchange). A refused refresh is
    /// [`ConnectorError::NeedsReauth`].
    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError>;

    /// Publishes content; returns the platform's post id and URL.
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError>;

    /// Whether [`find_published`](PlatformConnector::find_published) is
    /// implemented. Default: `false`.
    fn supports_lookup(&self) -> bool {
        false
    }

    /// Finds the post a publish attempt created, after an ambiguous outcome
    /// ([`ConnectorError::OutcomeUnknown`], or an unreadable answer): by the
    /// query's reference where the platform keeps one, else among the account's
    /// recent posts by time window and exact content (the rule is in
    /// [`crate::lookup`]'s docs). Only idempotent reads, retried by the HTTP core.
    ///
    /// `Ok(NotFound)` is definite: every post since the window start was read.
    /// When the lookup cannot tell, it is an `Err`
    /// ([`ConnectorError::LookupInconclusive`], or the read's own error); never
    /// publish again after an `Err`. Default: unsupported.
    async fn find_published(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        let _ = (ctx, query);
        Err(ConnectorError::unsupported(self.name(), "find_published"))
    }

    /// Whether [`list_recent_posts`](PlatformConnector::list_recent_posts) is
    /// implemented. Default: `false`.
    fn supports_recent_posts(&self) -> bool {
        false
    }

    /// The account's most recent posts, newest first, at most `limit` (capped
    /// at [`MAX_RECENT_POSTS`](crate::MAX_RECENT_POSTS)), whoever made them
    /// (here, in the platform's app, earlier): what post discovery reads to
    /// handle the comments of every post of a channel. Only idempotent reads,
    /// retried by the HTTP core. Default: unsupported.
    async fn list_recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        let _ = (ctx, limit);
        Err(ConnectorError::unsupported(
            self.name(),
            "list_recent_posts",
        ))
    }

    /// Whether a comment added after a listing was read can land on a page
    /// before its last one, so that reading on from the last page's cursor
    /// misses it: replies listed under their top-level comment (Instagram's
    /// `replies` field, LinkedIn's comments on a comment URN), or a listing
    /// whose order the platform does not document. A poller reads the
    /// comments of such a post from the first page again now and then, with
    /// [`list_comments_with_replies`](Self::list_comments_with_replies).
    /// `false` (the default) where every new comment comes after those
    /// already listed (Facebook's chronological `stream`).
    fn new_comments_may_precede_the_cursor(&self) -> bool {
        false
    }

    /// The page [`list_new_comments`](Self::list_new_comments) reads, with
    /// every reply of its comments listed after them, also those the
    /// platform keeps on pages of their own (Instagram's replies past the
    /// `replies` field's first page, LinkedIn's replies on the comment's
    /// URN). It costs a call per such thread, so a poller uses it when it
    /// reads a post from the first page (its first check, and the periodic
    /// re-read), not at every check. The default is `list_new_comments`.
    async fn list_comments_with_replies(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.list_new_comments(ctx, post_id, cursor).await
    }

    /// One page of the comments of `post_id`, starting at `cursor` (`None` = from
    /// the start).
    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError>;

    /// The comment a public reply to `comment_id` is posted under, given the
    /// comment it replies to itself (`parent_id`, for a reply). The default
    /// is `comment_id`; LinkedIn nests comments one level deep, so a reply
    /// to a reply goes under its top-level comment, where LinkedIn's own
    /// interface puts it.
    fn reply_target<'a>(&self, comment_id: &'a str, parent_id: Option<&'a str>) -> &'a str {
        let _ = parent_id;
        comment_id
    }

    /// Replies to a comment publicly; returns the new comment's id.
    async fn reply_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        text: &str,
    ) -> Result<String, ConnectorError>;

    /// Sends a direct message (a WhatsApp message) to one contact.
    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError>;

    /// Subscribes the channel's account to webhooks on the platform.
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError>;

    /// Hides (or unhides) a comment. Default: unsupported.
    async fn hide_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        hide: bool,
    ) -> Result<(), ConnectorError> {
        let _ = (ctx, comment_id, hide);
        Err(ConnectorError::unsupported(self.name(), "hide_comment"))
    }

    /// Sends a private reply: one direct message to the author of a comment, by
    /// reference to the comment (Meta's Private Replies). Default: unsupported.
    ///
    /// The platform allows one per comment, within its window after the comment
    /// (Meta: 7 days). A connector keeps no history, so the caller passes what it
    /// knows in the [`PrivateReply`] (`already_sent`, `comment_created_at`) and
    /// keeps the durable record itself; a reply refused by that policy is a
    /// [`ConnectorError::Policy`] and sends nothing. Not retried inside the
    /// connector (a send is not idempotent).
    async fn send_private_reply(
        &self,
        ctx: &ChannelContext,
        reply: &PrivateReply,
    ) -> Result<SentMessage, ConnectorError> {
        let _ = (ctx, reply);
        Err(ConnectorError::unsupported(
            self.name(),
            "send_private_reply",
        ))
    }

    /// Answers the platform's subscription handshake (the GET with query
    /// parameters: Meta's `hub.*`, LinkedIn's `challengeCode`).
    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError>;

    /// Verifies the signature of a webhook POST over the exact raw body.
    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError>;

    /// Reads a (verified) webhook body into zero or more normalized events,
    /// all or nothing: one malformed event makes the whole body an `Err`.
    /// Ingestion uses [`handle_webhook_events`](Self::handle_webhook_events),
    /// which reads each event on its own.
    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError>;

    /// Reads a (verified) webhook body event by event, at `now`: each event is
    /// normalized or refused on its own ([`RejectedEvent`] with the reason and
    /// the event's raw JSON), so one malformed event never loses its
    /// neighbours. `Err` only when the body is not a payload of the platform
    /// at all (not JSON, another `object`, no event list).
    ///
    /// Event times must be plausible at `now`
    /// ([`check_event_time`](crate::check_event_time)): the built-in
    /// connectors read a Unix time given in the other unit (milliseconds for
    /// seconds or the reverse) where that makes it plausible, and refuse the
    /// event otherwise.
    ///
    /// The default reads the body with [`handle_webhook`](Self::handle_webhook)
    /// (so a malformed event still refuses the whole body) and refuses each
    /// event whose `occurred_at` is implausible at `now`.
    fn handle_webhook_events(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookItem>, ConnectorError> {
        Ok(self
            .handle_webhook(body)?
            .into_iter()
            .map(
                |event| match crate::time::check_event_time(event.occurred_at, now) {
                    Ok(_) => Ok(event),
                    Err(reason) => Err(RejectedEvent::of(&event, reason)),
                },
            )
            .collect())
    }
}

/// Conveniences over any [`PlatformConnector`]; implemented for every connector,
/// never by hand.
#[async_trait]
pub trait PlatformConnectorExt: PlatformConnector {
    /// Verifies then normalizes a webhook POST: nothing is read from a body whose
    /// signature does not verify.
    fn verify_and_handle(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
    ) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        self.verify_webhook(headers, body)?;
        self.handle_webhook(body)
    }

    /// Verifies then reads a webhook POST event by event at `now`
    /// ([`handle_webhook_events`](PlatformConnector::handle_webhook_events)):
    /// nothing is read from a body whose signature does not verify.
    fn verify_and_handle_events(
        &self,
        headers: &WebhookHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookItem>, ConnectorError> {
        self.verify_webhook(headers, body)?;
        self.handle_webhook_events(body, now)
    }

    /// Follows `next_cursor` from the start and returns every comment of the post.
    /// Stops after `max_pages` pages (a guard against a platform that never ends).
    async fn list_all_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        max_pages: usize,
    ) -> Result<Vec<crate::types::RemoteComment>, ConnectorError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let page = self
                .list_new_comments(ctx, post_id, cursor.as_deref())
                .await?;
            all.extend(page.comments);
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => break,
            }
        }
        Ok(all)
    }
}

impl<T: PlatformConnector + ?Sized> PlatformConnectorExt for T {}
