//! Facebook Pages (platform-apis §3): feed and photo posts with native scheduling,
//! comments with cursor paging, replies, hide, Messenger sends, page feed and
//! Messenger webhooks, long-lived token exchange.
//!
//! The channel's `account_id` is the **Page id** and its token a Page token.

mod lookup;
mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Clock, MediaKind, Platform};
use serde_json::{Value, json};

use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ConnectorError, Sift, ValidationError};
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

const NAME: &str = "facebook";

const COMMENT_FIELDS: &str = "id,message,created_time,from{id,name},parent{id},is_hidden";

/// Native scheduling window: at least 10 minutes ahead…
const MIN_SCHEDULE_AHEAD_MIN: i64 = 10;
/// …and at most 30 days (the current docs; older ones said 6 months).
const MAX_SCHEDULE_AHEAD_DAYS: i64 = 30;

meta_builder!(FacebookBuilder, FacebookConnector, "facebook", "FACEBOOK");

impl FacebookBuilder {
    /// Builds the connector.
    pub fn build(self) -> Result<FacebookConnector, ConnectorError> {
        let (graph, verifier) = self.parts()?;
        Ok(FacebookConnector {
            clock: graph.core().clock().clone(),
            graph,
            verifier,
            capabilities: FacebookConnector::default_capabilities(),
        })
    }
}

/// The Facebook Pages connector.
#[derive(Debug, Clone)]
pub struct FacebookConnector {
    graph: GraphClient,
    verifier: MetaWebhookVerifier,
    capabilities: Capabilities,
    clock: Arc<dyn Clock>,
}

impl FacebookConnector {
    /// A builder.
    pub fn builder() -> FacebookBuilder {
        FacebookBuilder::new()
    }

    /// What a Page post takes here: text (63 206 characters), a link, one photo
    /// (video goes through the separate Video API, not implemented), native
    /// scheduling. The 10 MB photo limit is commonly cited, not from the stored docs.
    pub fn default_capabilities() -> Capabilities {
        Capabilities {
            dm: true,
            comments: true,
            schedule_native: true,
            media_kinds: vec![MediaKind::Image],
            max_image_mb: Some(10),
            max_video_mb: None,
            max_video_seconds: None,
            max_text_length: 63_206,
            max_caption_length: None,
            max_media_items: 1,
            requires_media: false,
            link_in_text: false,
        }
    }

    fn check_schedule(&self, at: DateTime<Utc>) -> Result<(), ValidationError> {
        let now = self.clock.now();
        if at < now + chrono::Duration::minutes(MIN_SCHEDULE_AHEAD_MIN) {
            return Err(ValidationError::ScheduleOutOfRange {
                reason: format!("{at} must be at least {MIN_SCHEDULE_AHEAD_MIN} minutes ahead"),
            });
        }
        if at > now + chrono::Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
            return Err(ValidationError::ScheduleOutOfRange {
                reason: format!("{at} must be at most {MAX_SCHEDULE_AHEAD_DAYS} days ahead"),
            });
        }
        Ok(())
    }
}

fn comment_from(v: &Value) -> Result<RemoteComment, ConnectorError> {
    let id = id_of(NAME, v, "comment")?;
    let created_at = v
        .get("created_time")
        .and_then(time::graph_time)
        .ok_or_else(|| {
            ConnectorError::invalid_response(
                NAME,
                format!("comment {id} has no valid created_time"),
            )
        })?;
    Ok(RemoteComment {
        parent_id: v
            .pointer("/parent/id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        author_id: v
            .pointer("/from/id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        author_name: v
            .pointer("/from/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        text: v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created_at,
        hidden: v.get("is_hidden").and_then(Value::as_bool).unwrap_or(false),
        id,
    })
}

#[async_trait]
impl PlatformConnector for FacebookConnector {
    fn name(&self) -> &str {
        NAME
    }

    fn platform(&self) -> Platform {
        Platform::Facebook
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Exchanges the token for a long-lived one (`fb_exchange_token`). A Page token
    /// obtained from a long-lived user token does not expire.
    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        self.graph.exchange_token(ctx, self.clock.now()).await
    }

    /// `POST /{page-id}/feed` (text, link) or `/{page-id}/photos` (one image). With
    /// `schedule_at`: `published=false` + `scheduled_publish_time` (10 min to 30
    /// days ahead, checked before the call).
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        let content = &request.content;
        self.capabilities
            .validate(NAME, content, request.schedule_at)?;
        if let Some(at) = request.schedule_at {
            self.check_schedule(at)?;
        }
        let (edge, mut body) = match content.media.first() {
            Some(m) => {
                let caption = lookup::photo_caption(content);
                let mut b = json!({"url": m.url});
                if !caption.is_empty() {
                    b["caption"] = json!(caption);
                }
                ("photos", b)
            }
            None => {
                let mut b = json!({});
                if !content.text.is_empty() {
                    b["message"] = json!(content.text);
                }
                if let Some(link) = &content.link {
                    b["link"] = json!(link);
                }
                ("feed", b)
            }
        };
        if let Some(at) = request.schedule_at {
            body["published"] = json!(false);
            body["scheduled_publish_time"] = json!(at.timestamp());
        }
        let v = self.graph.post(ctx, &[&ctx.account_id, edge], body).await?;
        let id = id_of(NAME, &v, edge)?;
        // A photo answers {"id": photo id, "post_id": page post id}: comments live
        // on the post.
        let post_id = v
            .get("post_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(|| id.clone(), str::to_owned);
        let mut ids = vec![id];
        if !ids.contains(&post_id) {
            ids.push(post_id.clone());
        }
        Ok(Published {
            url: Some(format!("https://www.facebook.com/{post_id}")),
            platform_post_id: post_id,
            ids,
            failed_recipients: Vec::new(),
            unknown_recipients: Vec::new(),
            unsent_recipients: Vec::new(),
            scheduled: request.schedule_at.is_some(),
        })
    }

    fn supports_recent_posts(&self) -> bool {
        true
    }

    /// `GET /{page-id}/published_posts?fields=id,message,created_time,permalink_url&limit=`,
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

    /// `GET /{page-id}/published_posts?fields=id,message,created_time,permalink_url`,
    /// newest first, matched on `message` (the text, or a photo's caption) and
    /// time (see [`crate::lookup`]). For a query with
    /// [`LookupQuery::schedule_at`] (an attempt that scheduled its post), the
    /// Page's `scheduled_posts` are read first: such a post is listed there
    /// until its time comes, and not among the published ones.
    async fn find_published(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        lookup::find(&self.graph, ctx, query).await
    }

    /// `GET /{post-id}/comments?filter=stream&order=chronological`: comments at
    /// every level, oldest first, 50 a page.
    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        let mut query = vec![
            ("fields", COMMENT_FIELDS),
            ("filter", "stream"),
            ("order", "chronological"),
            ("limit", "50"),
        ];
        if let Some(c) = cursor {
            query.push(("after", c));
        }
        let page = self
            .graph
            .get_page(ctx, &[post_id, "comments"], &query)
            .await?;
        let mut sift = Sift::new(NAME);
        let comments = page
            .data
            .iter()
            .filter_map(|item| sift.top(comment_from(item)))
            .collect();
        let left_out = sift.finish()?;
        if page.uncursored_next {
            // An edge paged by time: the comments after this page cannot be
            // read with a cursor; this page's are kept.
            tracing::warn!(
                post_id,
                "a comments page links a next page without a cursor; reading stops here"
            );
        }
        Ok(CommentPage {
            comments,
            next_cursor: page.next_after,
            left_out,
        })
    }

    /// `POST /{comment-id}/comments`.
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
            .post(ctx, &[comment_id, "comments"], json!({"message": text}))
            .await?;
        id_of(NAME, &v, "reply")
    }

    /// Messenger: `POST /{page-id}/messages` with `messaging_type=RESPONSE`;
    /// refused before the call outside the 24 h window. The message is an
    /// attachment or a text (the content's link appended), not both: content
    /// with media and text is refused, nothing sent.
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
                reason: "must be a PSID".into(),
            }
            .into());
        }
        let caps = Capabilities {
            max_text_length: 2000,
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
                json!({"recipient": {"id": message.recipient}, "messaging_type": "RESPONSE", "message": msg}),
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

    /// `POST /{page-id}/subscribed_apps?subscribed_fields=feed,messages`.
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        let object = setup.object_id.as_deref().unwrap_or(&ctx.account_id);
        let fields = if setup.fields.is_empty() {
            "feed,messages".to_owned()
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

    /// `POST /{comment-id}` with `is_hidden`.
    async fn hide_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        hide: bool,
    ) -> Result<(), ConnectorError> {
        self.graph
            .post(ctx, &[comment_id], json!({"is_hidden": hide}))
            .await?;
        Ok(())
    }

    /// Private reply (Messenger): `POST /{page-id}/messages` with
    /// `{"recipient":{"comment_id":…},"message":{"text":…}}`; text up to 2000
    /// characters. Refused before the call when the caller's record says one was
    /// already sent or the comment (or visitor post) is more than 7 days old. The
    /// reply does not open the 24 h window: only the person's answer does.
    async fn send_private_reply(
        &self,
        ctx: &ChannelContext,
        reply: &PrivateReply,
    ) -> Result<SentMessage, ConnectorError> {
        self.graph
            .send_private_reply(ctx, reply, 2000, self.clock.now())
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
    use chrono::TimeZone;
    use nexiom_core::{Content, ManualClock};

    #[test]
    fn schedule_window_is_checked_with_the_clock() {
        let now = Utc
            .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
            .single()
            .expect("t");
        let fb = FacebookConnector::builder()
            .with_clock(Arc::new(ManualClock::new(now)))
            .build()
            .expect("build");
        assert!(
            fb.check_schedule(now + chrono::Duration::minutes(5))
                .is_err()
        );
        assert!(fb.check_schedule(now + chrono::Duration::hours(2)).is_ok());
        assert!(fb.check_schedule(now + chrono::Duration::days(31)).is_err());
        let ok = fb
            .capabilities()
            .validate(NAME, &Content::text("x"), Some(now));
        assert!(ok.is_ok());
    }

    #[test]
    fn comments_keep_their_parent() {
        let c = comment_from(
            &json!({"id":"P_1","message":"hi","created_time":"2026-01-01T10:00:00+0000",
            "from":{"id":"u1","name":"Ann"},"parent":{"id":"P_0"}}),
        )
        .expect("comment");
        assert_eq!(c.parent_id.as_deref(), Some("P_0"));
        assert_eq!(c.author_name.as_deref(), Some("Ann"));
    }
}
