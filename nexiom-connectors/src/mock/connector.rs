//! [`PlatformConnector`] for the mock: publishing, lookup and recent posts,
//! comments, messages and private replies, and webhooks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Platform, SecretString};

use super::state::{MockConnector, MockOp};
use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ApiError, ConnectorError, WebhookError};
use crate::lookup::{FoundPost, LookupOutcome, LookupQuery, normalize_text};
use crate::recent::{MAX_RECENT_POSTS, RecentPost};
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, MessageBody, NormalizedEvent, OutboundMessage,
    PrivateReply, PublishRequest, Published, SentMessage, TokenGrant, WebhookSetup,
};
use crate::webhook::{MetaWebhookVerifier, WebhookHeaders};

#[async_trait]
impl PlatformConnector for MockConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn platform(&self) -> Platform {
        self.platform.clone()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        let n = self.enter(MockOp::RefreshToken, ctx, None, None, None)?;
        Ok(TokenGrant {
            access_token: SecretString::new(format!("mock-token-{n}")),
            refresh_token: None,
            expires_at: Some(self.clock.now() + chrono::Duration::hours(1)),
            refresh_token_expires_at: None,
        })
    }

    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        // Validation comes first and is not a recorded call: nothing was sent.
        if request.template.is_none() {
            self.validate(&request.content, request.schedule_at)?;
        }
        let n = self.enter(
            MockOp::Publish,
            ctx,
            None,
            Some(&request.content.text),
            None,
        )?;
        let id = format!("mock-post-{n}");
        let url = format!("https://mock.invalid/{}/{id}", self.name);
        let mut s = self.lock();
        let at = self.clock.now();
        let text = request.content.text.clone();
        s.posts
            .push((ctx.account_id.clone(), id.clone(), url.clone(), text, at));
        if s.lost_answers > 0 {
            s.lost_answers -= 1;
            return Err(ConnectorError::OutcomeUnknown {
                platform: self.name.clone(),
                reason: "scripted: timed out after the request was sent".into(),
            });
        }
        Ok(Published {
            url: Some(url),
            ids: vec![id.clone()],
            platform_post_id: id,
            failed_recipients: Vec::new(),
            unknown_recipients: Vec::new(),
            unsent_recipients: Vec::new(),
            scheduled: request.schedule_at.is_some(),
        })
    }

    fn supports_lookup(&self) -> bool {
        self.lookup
    }

    /// Matches the posts this mock created on the context's account, by the
    /// rule of [`crate::lookup`] (text and time window).
    async fn find_published(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        if !self.lookup {
            return Err(ConnectorError::unsupported(&self.name, "find_published"));
        }
        let text = normalize_text(&query.content.text);
        self.enter(
            MockOp::FindPublished,
            ctx,
            query.reference.as_deref(),
            Some(&query.content.text),
            None,
        )?;
        if text.is_empty() {
            return Err(ConnectorError::LookupInconclusive {
                platform: self.name.clone(),
                reason: "the content has no text to match on".into(),
            });
        }
        let start = query.window_start();
        let s = self.lock();
        let found = s
            .posts
            .iter()
            .filter(|(account, _, _, t, at)| {
                *account == ctx.account_id && *at >= start && normalize_text(t) == text
            })
            .min_by_key(|(_, _, _, _, at)| *at)
            .map(|(_, id, url, _, _)| FoundPost {
                platform_post_id: id.clone(),
                url: Some(url.clone()),
            });
        Ok(found.map_or(LookupOutcome::NotFound, LookupOutcome::Found))
    }

    fn supports_recent_posts(&self) -> bool {
        true
    }

    /// The account's posts (published through the mock or seeded with
    /// [`MockConnector::seed_post`]), newest first.
    async fn list_recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        self.enter(MockOp::ListRecentPosts, ctx, None, None, None)?;
        let s = self.lock();
        let mut posts: Vec<_> = s
            .posts
            .iter()
            .enumerate()
            .filter(|(_, (account, ..))| *account == ctx.account_id)
            .collect();
        posts.sort_by_key(|(i, (.., at))| std::cmp::Reverse((*at, *i)));
        Ok(posts
            .into_iter()
            .take(limit.min(MAX_RECENT_POSTS))
            .map(|(_, (_, id, url, text, at))| RecentPost {
                id: id.clone(),
                url: Some(url.clone()),
                text: Some(text.clone()),
                created_at: Some(*at),
            })
            .collect())
    }

    fn new_comments_may_precede_the_cursor(&self) -> bool {
        self.replies_under_comments
    }

    fn reply_target<'a>(&self, comment_id: &'a str, parent_id: Option<&'a str>) -> &'a str {
        match parent_id {
            Some(parent) if self.replies_under_comments => parent,
            _ => comment_id,
        }
    }

    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, false)
    }

    async fn list_comments_with_replies(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.comment_page(ctx, post_id, cursor, true)
    }

    async fn reply_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        if text.trim().is_empty() {
            return Err(crate::error::ValidationError::EmptyContent.into());
        }
        let n = self.enter(
            MockOp::ReplyComment,
            ctx,
            Some(comment_id),
            Some(text),
            None,
        )?;
        Ok(format!("mock-reply-{n}"))
    }

    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        if !self.capabilities.dm {
            return Err(ConnectorError::unsupported(&self.name, "send_message"));
        }
        let text = match &message.body {
            MessageBody::Content(c) => {
                self.validate(c, None)?;
                c.text.clone()
            }
            MessageBody::Template(t) => format!("template:{}", t.name),
        };
        let n = self.enter(
            MockOp::SendMessage,
            ctx,
            Some(&message.recipient),
            Some(&text),
            None,
        )?;
        Ok(SentMessage {
            message_id: format!("mock-msg-{n}"),
            recipient_id: Some(message.recipient.clone()),
        })
    }

    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        self.enter(
            MockOp::SetupWebhook,
            ctx,
            Some(&setup.callback_url),
            None,
            None,
        )?;
        Ok(())
    }

    async fn hide_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        hide: bool,
    ) -> Result<(), ConnectorError> {
        self.enter(MockOp::HideComment, ctx, Some(comment_id), None, None)?;
        let mut s = self.lock();
        for c in s.comments.values_mut().flatten() {
            if c.id == comment_id {
                c.hidden = hide;
            }
        }
        Ok(())
    }

    async fn send_private_reply(
        &self,
        ctx: &ChannelContext,
        reply: &PrivateReply,
    ) -> Result<SentMessage, ConnectorError> {
        if !self.capabilities.dm {
            return Err(ConnectorError::unsupported(
                &self.name,
                "send_private_reply",
            ));
        }
        if reply.text.trim().is_empty() {
            return Err(crate::error::ValidationError::EmptyContent.into());
        }
        crate::policy::check_private_reply(&self.name, reply, self.clock.now())?;
        if self.lock().privately_replied.contains(&reply.comment_id) {
            // What Meta answers when the caller's record missed an earlier reply.
            self.fail_next(
                MockOp::SendPrivateReply,
                1,
                ConnectorError::Permanent {
                    platform: self.name.clone(),
                    detail: ApiError {
                        status: Some(400),
                        code: Some(10900),
                        message: "Activity already replied to".into(),
                        ..ApiError::default()
                    },
                },
            );
        }
        let n = self.enter(
            MockOp::SendPrivateReply,
            ctx,
            Some(&reply.comment_id),
            Some(&reply.text),
            None,
        )?;
        self.lock()
            .privately_replied
            .insert(reply.comment_id.clone());
        Ok(SentMessage {
            message_id: format!("mock-msg-{n}"),
            recipient_id: None,
        })
    }

    /// Meta's `hub.*` handshake: the challenge is echoed, never signed (see
    /// [`MetaWebhookVerifier`]'s "Not a signing oracle").
    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        MetaWebhookVerifier::new(None, Some(self.verify_token.clone()))
            .answer_challenge(query)
            .map_err(Into::into)
    }

    /// Meta's scheme: `X-Hub-Signature-256: sha256=hex(HMAC(secret, body))`.
    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError> {
        MetaWebhookVerifier::new(Some(self.webhook_secret.clone()), None)
            .verify(headers, body)
            .map_err(Into::into)
    }

    /// The body is a JSON array of [`NormalizedEvent`]s (or `{"events": [...]}`).
    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::payload(format!("not JSON: {e}")))?;
        let list = match value {
            serde_json::Value::Object(mut o) => o
                .remove("events")
                .ok_or_else(|| WebhookError::payload("expected an events array"))?,
            v => v,
        };
        serde_json::from_value(list)
            .map_err(|e| WebhookError::payload(format!("not a list of events: {e}")).into())
    }

    /// Each element of the list is read on its own: one that is not a
    /// [`NormalizedEvent`], or whose `occurred_at` is implausible at `now`, is
    /// refused with the reason; the body is an `Err` only when it is not a list.
    fn handle_webhook_events(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::types::WebhookItem>, ConnectorError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::payload(format!("not JSON: {e}")))?;
        let list = match value {
            serde_json::Value::Object(mut o) => o
                .remove("events")
                .ok_or_else(|| WebhookError::payload("expected an events array"))?,
            v => v,
        };
        let serde_json::Value::Array(items) = list else {
            return Err(WebhookError::payload("expected an array of events").into());
        };
        Ok(items
            .into_iter()
            .map(|item| {
                let refuse = |reason: String| crate::types::RejectedEvent {
                    platform: self.platform.clone(),
                    account_id: item
                        .get("account_id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                    event_id: item
                        .get("event_id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                    reason,
                    payload: item.clone(),
                };
                match serde_json::from_value::<NormalizedEvent>(item.clone()) {
                    Ok(event) => crate::time::check_event_time(event.occurred_at, now)
                        .map(|_| event)
                        .map_err(refuse),
                    Err(e) => Err(refuse(format!("not an event: {e}"))),
                }
            })
            .collect())
    }
}

impl MockConnector {
    /// A page of the post's comments from `cursor`, recorded as a
    /// [`MockOp::ListComments`] call (`with_replies` for
    /// `list_comments_with_replies`).
    fn comment_page(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
        with_replies: bool,
    ) -> Result<CommentPage, ConnectorError> {
        self.enter_listing(
            MockOp::ListComments,
            ctx,
            Some(post_id),
            None,
            cursor,
            with_replies,
        )?;
        if let Some((clock, per_page)) = &self.listing_time {
            clock.advance(*per_page);
        }
        let start = match cursor {
            None => 0,
            Some(c) => c
                .split('~')
                .next()
                .unwrap_or_default()
                .parse::<usize>()
                .map_err(|_| ConnectorError::Permanent {
                    platform: self.name.clone(),
                    detail: ApiError::message(format!("invalid cursor {c:?}")),
                })?,
        };
        let s = self.lock();
        let all = s
            .comments
            .get(post_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let end = start.saturating_add(self.page_size).min(all.len());
        let comments = all.get(start..end).map(<[_]>::to_vec).unwrap_or_default();
        Ok(CommentPage {
            comments,
            next_cursor: (end < all.len()).then(|| match self.cursor_padding {
                0 => end.to_string(),
                n => format!("{end}~{}", "c".repeat(n)),
            }),
            left_out: 0,
        })
    }
}
