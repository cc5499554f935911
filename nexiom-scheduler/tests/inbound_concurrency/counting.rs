//! A platform that counts its calls in flight, for the concurrency tests and
//! the inbound benchmark (which adds a latency per call).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nexiom_connectors::{
    ApiError, Capabilities, ChallengeResponse, ChannelContext, CommentPage, ConnectorError,
    MockConnector, NormalizedEvent, OutboundMessage, PlatformConnector, PublishRequest, Published,
    RecentPost, SentMessage, TokenGrant, WebhookHeaders, WebhookSetup,
};
use nexiom_core::Platform;
use tokio::sync::Notify;

/// Calls in flight, per account and in all.
#[derive(Debug, Default)]
pub struct Counters {
    in_flight: HashMap<String, usize>,
    peak_per_account: HashMap<String, usize>,
    /// Calls in flight now.
    pub total: usize,
    peak_total: usize,
}

/// A platform over a [`MockConnector`] (which records the calls in call
/// order) that counts the calls in flight, yields inside each call so that
/// lanes interleave, answers 429 (Retry-After 10 min) on the accounts in
/// `throttled`, and holds every call while `gate` is set until it is opened.
/// With `company`, a call also waits (up to 2 s) until two calls have been in
/// flight at once: on Postgres the lanes spend most of their time in the
/// database, so a short yield alone rarely overlaps two calls; a pass that
/// makes one call at a time never sees two, waits out the timeout and fails
/// the test.
#[derive(Debug, Clone)]
pub struct Counting {
    pub mock: MockConnector,
    pub counters: Arc<Mutex<Counters>>,
    pub throttled: Arc<Mutex<HashSet<String>>>,
    pub gate: Option<Arc<Notify>>,
    pub company: bool,
    /// Each counted call takes this long (the benchmark's platform latency).
    pub latency: Option<std::time::Duration>,
}

/// The Retry-After of a throttled account's answer.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

impl Counting {
    pub fn new(mock: MockConnector, counters: &Arc<Mutex<Counters>>) -> Self {
        Counting {
            mock,
            counters: Arc::clone(counters),
            throttled: Arc::default(),
            gate: None,
            company: false,
            latency: None,
        }
    }

    /// Waits until two calls have been in flight at once (an event), at most
    /// 2 s.
    async fn await_company(&self) {
        let joined = || self.counters.lock().unwrap().peak_total >= 2;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while !joined() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .await;
    }

    async fn counted<T>(
        &self,
        account: &str,
        call: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        {
            let mut c = self.counters.lock().unwrap();
            let n = c.in_flight.entry(account.to_owned()).or_default();
            *n += 1;
            let n = *n;
            let peak = c.peak_per_account.entry(account.to_owned()).or_default();
            *peak = (*peak).max(n);
            c.total += 1;
            c.peak_total = c.peak_total.max(c.total);
        }
        // Let the other lanes start their calls.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        if self.company {
            self.await_company().await;
        }
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if let Some(latency) = self.latency {
            tokio::time::sleep(latency).await;
        }
        let answer = if self.throttled.lock().unwrap().contains(account) {
            Err(ConnectorError::RateLimited {
                platform: self.mock.name().to_owned(),
                retry_after: Some(RETRY_AFTER),
                detail: ApiError::message("(#4) Application request limit reached"),
            })
        } else {
            call.await
        };
        let mut c = self.counters.lock().unwrap();
        *c.in_flight.get_mut(account).unwrap() -= 1;
        c.total -= 1;
        answer
    }

    /// The most calls in flight at once, in all and on one account.
    pub fn peaks(&self) -> (usize, usize) {
        let c = self.counters.lock().unwrap();
        let per_account = c.peak_per_account.values().copied().max().unwrap_or(0);
        (c.peak_total, per_account)
    }
}

#[async_trait]
impl PlatformConnector for Counting {
    fn name(&self) -> &str {
        self.mock.name()
    }
    fn platform(&self) -> Platform {
        self.mock.platform()
    }
    fn capabilities(&self) -> &Capabilities {
        self.mock.capabilities()
    }
    async fn refresh_token(&self, ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        self.mock.refresh_token(ctx).await
    }
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        self.mock.publish(ctx, request).await
    }
    async fn list_new_comments(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        let call = self.mock.list_new_comments(ctx, post_id, cursor);
        self.counted(&ctx.account_id, call).await
    }
    async fn reply_comment(
        &self,
        ctx: &ChannelContext,
        comment_id: &str,
        text: &str,
    ) -> Result<String, ConnectorError> {
        let call = self.mock.reply_comment(ctx, comment_id, text);
        self.counted(&ctx.account_id, call).await
    }
    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        let call = self.mock.send_message(ctx, message);
        self.counted(&ctx.account_id, call).await
    }
    fn supports_recent_posts(&self) -> bool {
        true
    }
    async fn list_recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        let call = self.mock.list_recent_posts(ctx, limit);
        self.counted(&ctx.account_id, call).await
    }
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        self.mock.setup_webhook(ctx, setup).await
    }
    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        self.mock.answer_challenge(query)
    }
    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError> {
        self.mock.verify_webhook(headers, body)
    }
    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        self.mock.handle_webhook(body)
    }
}
