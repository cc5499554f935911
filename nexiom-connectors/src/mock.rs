//! [`MockConnector`]: an in-process, scriptable connector for scheduler and
//! pipeline tests. No network, no sleeping.
//!
//! By default every call succeeds. Script failures per operation (or for any
//! operation) with [`MockConnector::fail_next`] and its shorthands; seed comments
//! with [`MockConnector::seed_comments`]; read back every call with
//! [`MockConnector::calls`].
//!
//! `send_private_reply` applies the same policy as the Meta connectors (refused
//! before the call, not recorded, when the [`PrivateReply`] says one was already
//! sent or the comment is over 7 days old by the mock's clock) and, like the
//! platform, refuses a second private reply to the same comment with a recorded
//! [`ConnectorError::Permanent`] carrying Graph code 10900.
//!
//! ```
//! # tokio_test_block(async {
//! use std::time::Duration;
//! use nexiom_connectors::{ChannelContext, ConnectorError, MockConnector, MockOp,
//!     PlatformConnector, PublishRequest};
//! use nexiom_core::{Content, Platform};
//!
//! let mock = MockConnector::new(Platform::Facebook);
//! mock.rate_limit_next(MockOp::Publish, Duration::from_secs(30));
//! let ctx = ChannelContext::new("page-1", "token");
//! let req = PublishRequest::new(Content::text("hello"));
//! assert!(matches!(mock.publish(&ctx, &req).await, Err(ConnectorError::RateLimited { .. })));
//! let ok = mock.publish(&ctx, &req).await.unwrap();
//! assert_eq!(ok.platform_post_id, "mock-post-1");
//! assert_eq!(mock.calls_of(MockOp::Publish).len(), 2);
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Clock, Content, Platform, SecretString, SystemClock};

use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ApiError, ConnectorError, WebhookError};
use crate::lookup::{FoundPost, LookupOutcome, LookupQuery, normalize_text};
use crate::recent::{MAX_RECENT_POSTS, RecentPost};
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, MessageBody, NormalizedEvent, OutboundMessage,
    PrivateReply, PublishRequest, Published, RemoteComment, SentMessage, TokenGrant, WebhookSetup,
};
use crate::webhook::{MetaWebhookVerifier, WebhookHeaders};

/// An operation of the connector, to script and to filter recorded calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MockOp {
    /// `refresh_token`.
    RefreshToken,
    /// `publish`.
    Publish,
    /// `list_new_comments`.
    ListComments,
    /// `reply_comment`.
    ReplyComment,
    /// `send_message`.
    SendMessage,
    /// `setup_webhook`.
    SetupWebhook,
    /// `hide_comment`.
    HideComment,
    /// `send_private_reply`.
    SendPrivateReply,
    /// `find_published`.
    FindPublished,
    /// `list_recent_posts`.
    ListRecentPosts,
    /// Scripting only: the next call of any operation.
    Any,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct MockCall {
    /// The operation.
    pub op: MockOp,
    /// The context's account id.
    pub account_id: String,
    /// The main argument: post id, comment id, recipient, content text…
    pub target: Option<String>,
    /// Text sent (publish, reply, message), when any.
    pub text: Option<String>,
    /// The cursor of a `list_new_comments` call.
    pub cursor: Option<String>,
    /// Whether the call succeeded.
    pub ok: bool,
    /// When the call was made (by the mock's clock).
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    scripted: HashMap<MockOp, VecDeque<ConnectorError>>,
    calls: Vec<MockCall>,
    comments: HashMap<String, Vec<RemoteComment>>,
    /// Comments that received a private reply (the platform's own record).
    privately_replied: HashSet<String>,
    counter: u64,
    /// Posts created: (account, id, url, text, created at).
    posts: Vec<(String, String, String, String, DateTime<Utc>)>,
    /// Publish calls still to answer `OutcomeUnknown` after creating the post.
    lost_answers: usize,
}

/// A scriptable in-process connector. Clones share their script and records.
#[derive(Clone)]
pub struct MockConnector {
    name: String,
    platform: Platform,
    capabilities: Capabilities,
    page_size: usize,
    clock: Arc<dyn Clock>,
    webhook_secret: SecretString,
    verify_token: SecretString,
    lookup: bool,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MockConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockConnector")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// The app secret a [`MockConnector`] checks `X-Hub-Signature-256` with, unless
/// changed with [`MockConnector::with_webhook_secret`].
pub const MOCK_WEBHOOK_SECRET: &str = "mock-app-secret";

/// The verify token of the mock's `hub.*` handshake.
pub const MOCK_VERIFY_TOKEN: &str = "mock-verify-token";

impl MockConnector {
    /// A mock for `platform`, named after it, with permissive capabilities, pages
    /// of 2 comments and the system clock.
    pub fn new(platform: Platform) -> Self {
        MockConnector {
            name: platform.as_str().to_owned(),
            platform,
            capabilities: Capabilities::default(),
            page_size: 2,
            clock: Arc::new(SystemClock),
            webhook_secret: SecretString::new(MOCK_WEBHOOK_SECRET),
            verify_token: SecretString::new(MOCK_VERIFY_TOKEN),
            lookup: true,
            state: Arc::default(),
        }
    }

    /// The same mock with other capabilities (validation uses them).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The same mock with `n` comments per page (at least 1).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The same mock reading time from `clock` (call records, token expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same mock checking webhook signatures with `secret`.
    pub fn with_webhook_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.webhook_secret = secret.into();
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `times` calls of `op` fail with `error` (queued after anything
    /// already scripted for `op`).
    pub fn fail_next(&self, op: MockOp, times: usize, error: ConnectorError) {
        let mut s = self.lock();
        let q = s.scripted.entry(op).or_default();
        for _ in 0..times {
            q.push_back(error.clone());
        }
    }

    /// The next `times` calls of `op` fail with a [`ConnectorError::Transient`].
    pub fn fail_transient(&self, op: MockOp, times: usize) {
        self.fail_next(
            op,
            times,
            ConnectorError::Transient {
                platform: self.name.clone(),
                detail: ApiError::message("scripted transient failure"),
            },
        );
    }

    /// The next call of `op` is rate limited with `retry_after`.
    pub fn rate_limit_next(&self, op: MockOp, retry_after: Duration) {
        self.fail_next(
            op,
            1,
            ConnectorError::RateLimited {
                platform: self.name.clone(),
                retry_after: Some(retry_after),
                detail: ApiError::message("scripted rate limit"),
            },
        );
    }

    /// The next call of `op` is unauthorized (expired token).
    pub fn unauthorized_next(&self, op: MockOp) {
        self.fail_next(
            op,
            1,
            ConnectorError::Unauthorized {
                platform: self.name.clone(),
                detail: ApiError::message("scripted expired token"),
            },
        );
    }

    /// The next call of `op` fails permanently.
    pub fn fail_permanently_next(&self, op: MockOp, message: &str) {
        self.fail_next(
            op,
            1,
            ConnectorError::Permanent {
                platform: self.name.clone(),
                detail: ApiError::message(message),
            },
        );
    }

    /// The same mock without post lookup (`supports_lookup` false,
    /// `find_published` unsupported).
    pub fn without_lookup(mut self) -> Self {
        self.lookup = false;
        self
    }

    /// The next publish call creates the post (a later `find_published` finds
    /// it) but answers [`ConnectorError::OutcomeUnknown`], as a timeout after
    /// sending would. A scripted `OutcomeUnknown` ([`MockConnector::fail_next`])
    /// creates nothing.
    pub fn publish_then_lose_answer(&self) {
        self.lock().lost_answers += 1;
    }

    /// Forgets every scripted failure.
    pub fn clear_script(&self) {
        self.lock().scripted.clear();
    }

    /// Adds comments to `post_id` (listed in the order given, after earlier ones).
    pub fn seed_comments(&self, post_id: &str, comments: impl IntoIterator<Item = RemoteComment>) {
        self.lock()
            .comments
            .entry(post_id.to_owned())
            .or_default()
            .extend(comments);
    }

    /// Adds a post made on `account` outside this mock's `publish` (in the
    /// platform's app, before the channel was connected), created at `at`:
    /// `list_recent_posts` lists it with the published ones, newest first.
    pub fn seed_post(&self, account: &str, id: &str, text: &str, at: DateTime<Utc>) {
        let url = format!("https://mock.invalid/{}/{id}", self.name);
        self.lock()
            .posts
            .push((account.to_owned(), id.to_owned(), url, text.to_owned(), at));
    }

    /// A simple comment for seeding: id, author and text, written now.
    pub fn comment(&self, id: &str, author: &str, text: &str) -> RemoteComment {
        RemoteComment {
            id: id.to_owned(),
            parent_id: None,
            author_id: Some(author.to_owned()),
            author_name: Some(author.to_owned()),
            text: text.to_owned(),
            created_at: self.clock.now(),
            hidden: false,
        }
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        self.lock().calls.clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, op: MockOp) -> Vec<MockCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    /// Forgets recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Records the call, then returns the scripted failure for `op` (or `Any`),
    /// or the next counter value.
    fn enter(
        &self,
        op: MockOp,
        ctx: &ChannelContext,
        target: Option<&str>,
        text: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<u64, ConnectorError> {
        let now = self.clock.now();
        let mut s = self.lock();
        let scripted = s
            .scripted
            .get_mut(&op)
            .and_then(VecDeque::pop_front)
            .or_else(|| {
                s.scripted
                    .get_mut(&MockOp::Any)
                    .and_then(VecDeque::pop_front)
            });
        s.calls.push(MockCall {
            op,
            account_id: ctx.account_id.clone(),
            target: target.map(str::to_owned),
            text: text.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
            ok: scripted.is_none(),
            at: now,
        });
        match scripted {
            Some(e) => Err(e),
            None => {
                s.counter += 1;
                Ok(s.counter)
            }
        }
    }

    fn validate(&self, content: &Content, at: Option<DateTime<Utc>>) -> Result<(), ConnectorError> {
        self.capabilities
            .validate(&self.name, content, at)
            .map_err(ConnectorError::from)
    }
}

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

    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        self.enter(MockOp::ListComments, ctx, Some(post_id), None, cursor)?;
        let start = match cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| ConnectorError::Permanent {
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
            next_cursor: (end < all.len()).then(|| end.to_string()),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PolicyError;
    use chrono::TimeZone;
    use nexiom_core::{ManualClock, MediaKind};

    fn ctx() -> ChannelContext {
        ChannelContext::new("acct-1", "secret-token-value")
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn scripted_failures_then_success_and_records() {
        block(async {
            let clock = ManualClock::new(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                    .single()
                    .expect("t"),
            );
            let m = MockConnector::new(Platform::Instagram).with_clock(Arc::new(clock.clone()));
            m.fail_transient(MockOp::Publish, 2);
            m.unauthorized_next(MockOp::Any);
            let req = PublishRequest::new(Content::text("hi"));
            for _ in 0..2 {
                let e = m.publish(&ctx(), &req).await.expect_err("scripted");
                assert!(matches!(e, ConnectorError::Transient { .. }));
            }
            let e = m.publish(&ctx(), &req).await.expect_err("any");
            assert!(matches!(e, ConnectorError::Unauthorized { .. }));
            let ok = m.publish(&ctx(), &req).await.expect("ok");
            assert_eq!(ok.platform_post_id, "mock-post-1");
            let calls = m.calls_of(MockOp::Publish);
            assert_eq!(calls.len(), 4);
            assert_eq!(calls.iter().filter(|c| c.ok).count(), 1);
            assert_eq!(calls[0].text.as_deref(), Some("hi"));
            assert_eq!(calls[0].at, clock.now());
        });
    }

    #[test]
    fn validation_fails_before_any_call() {
        block(async {
            let m = MockConnector::new(Platform::LinkedIn).with_capabilities(Capabilities {
                max_text_length: 3,
                media_kinds: vec![MediaKind::Image],
                ..Capabilities::default()
            });
            let e = m
                .publish(&ctx(), &PublishRequest::new(Content::text("too long")))
                .await
                .expect_err("too long");
            assert!(matches!(e, ConnectorError::Validation(_)));
            assert!(m.calls().is_empty());
        });
    }

    #[test]
    fn seeded_comments_page_exactly_once() {
        block(async {
            let m = MockConnector::new(Platform::Facebook).with_page_size(2);
            let seeded: Vec<_> = (0..5)
                .map(|i| m.comment(&format!("c{i}"), "u", "hello"))
                .collect();
            m.seed_comments("post-1", seeded);
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = m
                    .list_new_comments(&ctx(), "post-1", cursor.as_deref())
                    .await
                    .expect("page");
                seen.extend(page.comments.into_iter().map(|c| c.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, vec!["c0", "c1", "c2", "c3", "c4"]);
            let empty = m
                .list_new_comments(&ctx(), "other", None)
                .await
                .expect("empty");
            assert!(empty.comments.is_empty() && empty.next_cursor.is_none());
            assert!(
                m.list_new_comments(&ctx(), "post-1", Some("x"))
                    .await
                    .is_err()
            );
            m.hide_comment(&ctx(), "c1", true).await.expect("hide");
            let page = m
                .list_new_comments(&ctx(), "post-1", None)
                .await
                .expect("page");
            assert!(page.comments[1].hidden);
        });
    }

    #[test]
    fn webhooks_and_debug() {
        let m = MockConnector::new(Platform::WhatsApp);
        let body = br#"[]"#;
        let sig = MetaWebhookVerifier::sign(&SecretString::new(MOCK_WEBHOOK_SECRET), body);
        let h = WebhookHeaders::new().with("X-Hub-Signature-256", sig);
        assert!(m.verify_webhook(&h, body).is_ok());
        assert!(m.verify_webhook(&h, b"[ ]").is_err());
        assert_eq!(m.handle_webhook(body).expect("events"), vec![]);
        assert!(m.handle_webhook(b"{").is_err());
        assert!(m.handle_webhook(b"{\"x\":1}").is_err());
        let now = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("t");
        let items = m
            .handle_webhook_events(br#"[{"event_id":"half"}]"#, now)
            .expect("a list");
        let refused = items[0].as_ref().expect_err("not an event");
        assert_eq!(refused.event_id.as_deref(), Some("half"));
        assert!(refused.reason.starts_with("not an event"));
        assert!(m.handle_webhook_events(b"{\"x\":1}", now).is_err());
        assert!(m.handle_webhook_events(b"7", now).is_err());
        assert!(!format!("{m:?}").contains(MOCK_WEBHOOK_SECRET));
    }

    #[test]
    fn private_replies_follow_the_policy_and_are_recorded() {
        block(async {
            let t0 = Utc
                .with_ymd_and_hms(2026, 1, 10, 0, 0, 0)
                .single()
                .expect("t");
            let clock = ManualClock::new(t0);
            let m = MockConnector::new(Platform::Instagram).with_clock(Arc::new(clock.clone()));
            let reply = PrivateReply::new("c1", "Here is the link", t0 - chrono::Duration::days(1));
            let sent = m.send_private_reply(&ctx(), &reply).await.expect("first");
            assert_eq!(sent.message_id, "mock-msg-1");
            let calls = m.calls_of(MockOp::SendPrivateReply);
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].target.as_deref(), Some("c1"));
            assert_eq!(calls[0].text.as_deref(), Some("Here is the link"));
            assert!(calls[0].ok);

            // The caller's record says it was sent: refused, nothing recorded.
            let e = m
                .send_private_reply(&ctx(), &reply.clone().with_already_sent(true))
                .await
                .expect_err("second");
            assert!(matches!(
                e,
                ConnectorError::Policy(PolicyError::PrivateReplyAlreadySent { .. })
            ));
            // The caller forgot: the "platform" refuses, as Meta does (code 10900).
            let e = m
                .send_private_reply(&ctx(), &reply)
                .await
                .expect_err("platform");
            assert_eq!(e.api_error().and_then(|d| d.code), Some(10900));
            assert_eq!(m.calls_of(MockOp::SendPrivateReply).len(), 2);

            // Outside the window by the mock's clock: refused, not recorded.
            clock.advance(chrono::Duration::days(7));
            let other = PrivateReply::new("c2", "hi", t0 - chrono::Duration::days(1));
            let e = m
                .send_private_reply(&ctx(), &other)
                .await
                .expect_err("late");
            assert!(matches!(
                e,
                ConnectorError::Policy(PolicyError::OutsidePrivateReplyWindow { .. })
            ));
            assert_eq!(m.calls_of(MockOp::SendPrivateReply).len(), 2);

            // Scripting works as for any operation.
            m.rate_limit_next(MockOp::SendPrivateReply, Duration::from_secs(5));
            let fresh = PrivateReply::new("c3", "hi", clock.now());
            assert!(matches!(
                m.send_private_reply(&ctx(), &fresh).await,
                Err(ConnectorError::RateLimited { .. })
            ));
            assert!(m.send_private_reply(&ctx(), &fresh).await.is_ok());
        });
    }
}
