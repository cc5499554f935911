//! The mock's types and shared state: the operations, the recorded calls, the
//! connector and its builder methods, and the step every call goes through
//! (record it, then answer the scripted failure or go on).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use nexiom_core::{Clock, Content, ManualClock, Platform, SecretString, SystemClock};

use crate::capabilities::Capabilities;
use crate::error::ConnectorError;
use crate::types::{ChannelContext, RemoteComment};

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
    /// Whether a comment listing asked for every reply
    /// (`list_comments_with_replies`); both listings record
    /// [`MockOp::ListComments`].
    pub with_replies: bool,
    /// Whether the call succeeded.
    pub ok: bool,
    /// When the call was made (by the mock's clock).
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Per operation, what its next calls do: `Some` fails, `None` goes through.
    pub(super) scripted: HashMap<MockOp, VecDeque<Option<ConnectorError>>>,
    pub(super) calls: Vec<MockCall>,
    pub(super) comments: HashMap<String, Vec<RemoteComment>>,
    /// Comments that received a private reply (the platform's own record).
    pub(super) privately_replied: HashSet<String>,
    pub(super) counter: u64,
    /// Posts created: (account, id, url, text, created at).
    pub(super) posts: Vec<(String, String, String, String, DateTime<Utc>)>,
    /// Publish calls still to answer `OutcomeUnknown` after creating the post.
    pub(super) lost_answers: usize,
}

/// A scriptable in-process connector. Clones share their script and records.
#[derive(Clone)]
pub struct MockConnector {
    pub(super) name: String,
    pub(super) platform: Platform,
    pub(super) capabilities: Capabilities,
    pub(super) page_size: usize,
    /// Bytes appended to each comments cursor (platforms' cursors are opaque
    /// and can be long).
    pub(super) cursor_padding: usize,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) webhook_secret: SecretString,
    pub(super) verify_token: SecretString,
    pub(super) lookup: bool,
    pub(super) replies_under_comments: bool,
    /// A manual clock each comment listing moves forward, and by how much.
    pub(super) listing_time: Option<(Arc<ManualClock>, chrono::Duration)>,
    pub(super) state: Arc<Mutex<State>>,
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
            cursor_padding: 0,
            clock: Arc::new(SystemClock),
            webhook_secret: SecretString::new(MOCK_WEBHOOK_SECRET),
            verify_token: SecretString::new(MOCK_VERIFY_TOKEN),
            lookup: true,
            replies_under_comments: false,
            listing_time: None,
            state: Arc::default(),
        }
    }

    /// The same mock taking `per_page` of `clock`'s time for each comment
    /// page it lists (the clock moves forward by that much at each call), as
    /// a slow platform would.
    pub fn with_listing_time(
        mut self,
        clock: Arc<ManualClock>,
        per_page: chrono::Duration,
    ) -> Self {
        self.listing_time = Some((clock, per_page));
        self
    }

    /// The same mock with other capabilities (validation uses them).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The same mock telling pollers that a new comment may come before the
    /// last page's cursor
    /// ([`new_comments_may_precede_the_cursor`](crate::PlatformConnector::new_comments_may_precede_the_cursor)),
    /// as Instagram's and LinkedIn's replies do (with
    /// [`MockConnector::insert_comment_after`] a test places one there), and
    /// taking a reply to a reply under its top-level comment
    /// ([`reply_target`](crate::PlatformConnector::reply_target)), as
    /// Instagram does.
    pub fn with_replies_under_comments(mut self) -> Self {
        self.replies_under_comments = true;
        self
    }

    /// The same mock with comments cursors `n` bytes longer (the page's
    /// offset, `~`, then padding), as a platform's opaque cursors can be.
    pub fn with_cursor_padding(mut self, n: usize) -> Self {
        self.cursor_padding = n;
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

    /// The same mock without post lookup (`supports_lookup` false,
    /// `find_published` unsupported).
    pub fn without_lookup(mut self) -> Self {
        self.lookup = false;
        self
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call, then returns the scripted failure for `op` (or `Any`),
    /// or the next counter value.
    pub(super) fn enter(
        &self,
        op: MockOp,
        ctx: &ChannelContext,
        target: Option<&str>,
        text: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<u64, ConnectorError> {
        self.enter_listing(op, ctx, target, text, cursor, false)
    }

    /// [`enter`](Self::enter), recording whether a listing asked for every
    /// reply.
    pub(super) fn enter_listing(
        &self,
        op: MockOp,
        ctx: &ChannelContext,
        target: Option<&str>,
        text: Option<&str>,
        cursor: Option<&str>,
        with_replies: bool,
    ) -> Result<u64, ConnectorError> {
        let now = self.clock.now();
        let mut s = self.lock();
        let scripted = match s.scripted.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(step) => step,
            None => s
                .scripted
                .get_mut(&MockOp::Any)
                .and_then(VecDeque::pop_front)
                .flatten(),
        };
        s.calls.push(MockCall {
            op,
            account_id: ctx.account_id.clone(),
            target: target.map(str::to_owned),
            text: text.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
            with_replies,
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

    pub(super) fn validate(
        &self,
        content: &Content,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ConnectorError> {
        self.capabilities
            .validate(&self.name, content, at)
            .map_err(ConnectorError::from)
    }
}
