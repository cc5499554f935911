//! Instagram Graph API (platform-apis §2): two-step publishing (container, status
//! check for video, `media_publish`), comments with cursor paging, replies, hide,
//! DMs, and comment / messaging webhooks.
//!
//! The channel's `account_id` is the **IG user id**. The default host is
//! `graph.facebook.com` (Instagram API with Facebook Login); point the base URL at
//! `graph.instagram.com` for Instagram Login (its tokens are then renewed with
//! `ig_refresh_token`).

mod comments;
mod lookup;
mod publish;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexiom_core::{Clock, MediaKind, Platform};
use serde_json::{Value, json};

use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ConnectorError, ValidationError};
use crate::graph::{GraphClient, builder::meta_builder, id_of};
use crate::lookup::{LookupOutcome, LookupQuery};
use crate::policy;
use crate::recent::RecentPost;
use crate::time;
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, MessageBody, NormalizedEvent, OutboundMessage,
    PrivateReply, PublishRequest, Published, RemoteComment, SentMessage, TokenGrant, WebhookSetup,
};
use crate::webhook::{MetaWebhookVerifier, WebhookHeaders};

const NAME: &str = "instagram";

meta_builder!(
    InstagramBuilder,
    InstagramConnector,
    "instagram",
    "INSTAGRAM"
);

impl InstagramBuilder {
    /// Builds the connector. Video containers are polled every 60 s, at most 5
    /// times (the documented guidance); change it with
    /// [`InstagramConnector::with_container_polling`].
    pub fn build(self) -> Result<InstagramConnector, ConnectorError> {
        let (graph, verifier) = self.parts()?;
        Ok(InstagramConnector {
            clock: graph.core().clock().clone(),
            instagram_login: graph.is_instagram_login_host(),
            graph,
            verifier,
            capabilities: InstagramConnector::default_capabilities(),
            poll_interval: Duration::from_secs(60),
            poll_attempts: 5,
        })
    }
}

/// The Instagram connector.
#[derive(Debug, Clone)]
pub struct InstagramConnector {
    graph: GraphClient,
    verifier: MetaWebhookVerifier,
    capabilities: Capabilities,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
    poll_attempts: u32,
    /// Tokens are Instagram User tokens (Instagram Login), refreshed with
    /// `ig_refresh_token`; else Facebook Login's, exchanged.
    instagram_login: bool,
}

impl InstagramConnector {
    /// A builder.
    pub fn builder() -> InstagramBuilder {
        InstagramBuilder::new()
    }

    /// The same connector with Instagram Login's tokens (refreshed with
    /// `GET /refresh_access_token?grant_type=ig_refresh_token`). Set by
    /// itself when the base URL is `graph.instagram.com`; for a base URL that
    /// stands for it (a proxy, a test server).
    pub fn with_instagram_login(mut self) -> Self {
        self.instagram_login = true;
        self
    }

    /// The same connector polling video containers `attempts` times, `interval`
    /// apart (use `Duration::ZERO` in tests).
    pub fn with_container_polling(mut self, interval: Duration, attempts: u32) -> Self {
        self.poll_interval = interval;
        self.poll_attempts = attempts.max(1);
        self
    }

    /// What Instagram accepts here: one image or one reel (carousels are not
    /// implemented), a caption of 2200 characters, media required. Image 8 MB and
    /// reel 15 min are commonly cited limits, not from the stored docs.
    pub fn default_capabilities() -> Capabilities {
        Capabilities {
            dm: true,
            comments: true,
            schedule_native: false,
            media_kinds: vec![MediaKind::Image, MediaKind::Video],
            max_image_mb: Some(8),
            max_video_mb: None,
            max_video_seconds: Some(900),
            max_text_length: 2200,
            max_caption_length: None,
            max_media_items: 1,
            requires_media: true,
            link_in_text: true,
        }
    }
}

fn comment_from(v: &Value, parent: Option<&str>) -> Result<RemoteComment, ConnectorError> {
    let id = id_of(NAME, v, "comment")?;
    let created_at = v
        .get("timestamp")
        .and_then(time::graph_time)
        .ok_or_else(|| {
            ConnectorError::invalid_response(NAME, format!("comment {id} has no valid timestamp"))
        })?;
    Ok(RemoteComment {
        parent_id: v
            .get("parent_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| parent.map(str::to_owned)),
        author_id: v
            .pointer("/from/id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        author_name: v
            .get("username")
            .or_else(|| v.pointer("/from/username"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        text: v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created_at,
        hidden: v.get("hidden").and_then(Value::as_bool).unwrap_or(false),
        id,
    })
}

#[async_trait]
impl PlatformConnector for InstagramConnector {
    fn name(&self) -> &str {
        NAME
    }

    fn platform(&self) -> Platform {
        Platform::Instagram
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Facebook Login: exchanges the token for a long-lived one
    /// (`fb_exchange_token`). Instagram Login (`graph.instagram.com`, or
    /// [`InstagramConnector::with_instagram_login`]): renews the long-lived
    /// Instagram User token (`ig_refresh_token`), which the exchange refuses.
    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        if self.instagram_login {
            self.graph
                .refresh_instagram_token(ctx, self.clock.now())
                .await
        } else {
            self.graph.exchange_token(ctx, self.clock.now()).await
        }
    }

    fn supports_recent_posts(&self) -> bool {
        true
    }

    /// `GET /{ig-user-id}/media?fields=id,caption,timestamp,permalink&limit=`,
    /// newest first, following `after` cursors.
    async fn list_recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        lookup::recent(&self.graph, ctx, limit).await
    }

    fn supports_lookup(&self) -> bool {
        true
    }

    /// `GET /{ig-user-id}/media?fields=id,caption,timestamp,permalink`, newest
    /// first, matched on the caption and time (see [`crate::lookup`]). The
    /// container id of an attempt is not kept across calls, so this lookup
    /// (after a worker stopped during a publish, or before publishing again)
    /// reads captions; `publish` itself settles a lost `media_publish` answer
    /// from its container's `status_code`.
    async fn find_published(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        lookup::find(&self.graph, ctx, query).await
    }

    /// Creates the container, waits for it when it is a video, publishes it.
    /// When `media_publish` gets no answer, the container's `status_code`
    /// says whether it was published: `PUBLISHED` is found by its caption
    /// (else [`ConnectorError::PublishedWithoutId`]), `FINISHED` is published
    /// again with the same container, once; see the `publish` module.
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        self.publish_media(ctx, request).await
    }

    /// A reply is listed under its top-level comment, on that comment's page.
    fn new_comments_may_precede_the_cursor(&self) -> bool {
        true
    }

    /// Top-level comments (50 a page), each followed by the replies of its
    /// `replies` field.
    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, false).await
    }

    /// As `list_new_comments`, and each comment's replies past the
    /// `replies` field's first page (`GET /{comment-id}/replies`).
    async fn list_comments_with_replies(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, true).await
    }

    /// A reply to a reply goes under the top-level comment: only top-level
    /// comments can be replied to.
    fn reply_target<'a>(&self, comment_id: &'a str, parent_id: Option<&'a str>) -> &'a str {
        parent_id.unwrap_or(comment_id)
    }

    /// `POST /{comment-id}/replies`. Only top-level comments can be replied to.
    async fn reply_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        if text.trim().is_empty() {
            return Err(ValidationError::EmptyContent.into());
        }
        let v = self
            .graph
            .post(ctx, &[comment_id, "replies"], json!({"message": text}))
            .await?;
        id_of(NAME, &v, "reply")
    }

    /// `POST /{IG_ID}/messages`. Text under 1000 characters (the content's
    /// link appended); refused before the call outside the 24 h window. The
    /// message is an attachment or a text, not both: content with media and
    /// text is refused, nothing sent.
    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        let MessageBody::Content(content) = &message.body else {
            return Err(ValidationError::InvalidField {
                field: "body",
                reason: "templates are a WhatsApp feature".into(),
            }
            .into());
        };
        if message.recipient.trim().is_empty() {
            return Err(ValidationError::InvalidField {
                field: "recipient",
                reason: "must be an IGSID".into(),
            }
            .into());
        }
        let caps = Capabilities {
            max_text_length: 999,
            requires_media: false,
            // The link goes in the message's text.
            link_in_text: true,
            ..self.capabilities.clone()
        };
        caps.validate(NAME, content, None)?;
        policy::check_window(
            NAME,
            message,
            self.clock.now(),
            "a reply by a person with the HUMAN_AGENT tag within 7 days",
        )?;
        let msg = crate::graph::send_api_message(content)?;
        let v = self
            .graph
            .post(
                ctx,
                &[&ctx.account_id, "messages"],
                json!({"recipient": {"id": message.recipient}, "message": msg}),
            )
            .await?;
        let id = v
            .get("message_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid_response(NAME, "no message_id in the answer"))?;
        Ok(SentMessage {
            message_id: id.to_owned(),
            recipient_id: v
                .get("recipient_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// `POST /{id}/subscribed_apps` for `setup.object_id` (the connected Page on
    /// the Facebook Login path) or the IG account.
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        let object = setup.object_id.as_deref().unwrap_or(&ctx.account_id);
        let fields = if setup.fields.is_empty() {
            "comments,messages".to_owned()
        } else {
            setup.fields.join(",")
        };
        self.graph
            .post(
                ctx,
                &[object, "subscribed_apps"],
                json!({"subscribed_fields": fields}),
            )
            .await?;
        Ok(())
    }

    /// `POST /{comment-id}` with `hide=true|false`.
    async fn hide_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        hide: bool,
    ) -> Result<(), ConnectorError> {
        self.graph
            .post(ctx, &[comment_id], json!({"hide": hide}))
            .await?;
        Ok(())
    }

    /// Private reply: `POST /{IG_ID}/messages` with
    /// `{"recipient":{"comment_id":…},"message":{"text":…}}`; text under 1000
    /// characters. Refused before the call when the caller's record says one was
    /// already sent or the comment is more than 7 days old. (Instagram Live
    /// comments can be answered only during the broadcast; the connector cannot
    /// tell, the platform refuses.)
    async fn send_private_reply(
        &self,
        ctx: &ChannelContext,
        reply: &PrivateReply,
    ) -> Result<SentMessage, ConnectorError> {
        self.graph
            .send_private_reply(ctx, reply, 999, self.clock.now())
            .await
    }

    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        Ok(self.verifier.answer_challenge(query)?)
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError> {
        Ok(self.verifier.verify(headers, body)?)
    }

    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        webhook::normalize(body, self.clock.now())
    }

    fn handle_webhook_events(
        &self,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::types::WebhookItem>, ConnectorError> {
        webhook::normalize_events(body, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_read_documented_fields() {
        let c = comment_from(
            &json!({"timestamp":"2017-08-31T18:10:30+0000","text":"I love this!","id":"17873440459141021",
                    "from":{"id":"IGSID1","username":"jo"},"hidden":false}),
            None,
        )
        .expect("comment");
        assert_eq!(c.id, "17873440459141021");
        assert_eq!(c.author_name.as_deref(), Some("jo"));
        assert_eq!(c.created_at.timestamp(), 1_504_203_030);
        let r = comment_from(
            &json!({"id":"2","timestamp":"2017-08-31T18:10:30+0000"}),
            Some("1"),
        )
        .expect("reply");
        assert_eq!(r.parent_id.as_deref(), Some("1"));
        assert!(comment_from(&json!({"id":"3"}), None).is_err());
    }

    #[test]
    fn instagram_login_is_told_by_its_host() {
        let build = |base: &str| {
            InstagramConnector::builder()
                .with_base_url(base)
                .build()
                .expect("build")
        };
        assert!(build("https://graph.instagram.com").instagram_login);
        assert!(!build("https://graph.facebook.com").instagram_login);
    }
}
