//! The reusable contract suite (feature `testing`): drives any
//! [`PlatformConnector`] against a local [`wiremock`] server loaded with the
//! platform's documented shapes, and checks the trait's `# Contract`.
//!
//! A connector author implements [`ContractHarness`] — how to build the connector
//! against a base URL, and how to mount the platform's documented responses — and
//! calls [`run_contract_suite`]. Platform differences are expressed by the harness
//! (and by the connector's capabilities), never by `if platform == …` in the suite.
//!
//! Checks (each on a fresh mock server):
//!
//! | check | what |
//! |---|---|
//! | `publish_returns_ids` | a documented success answer yields the post id (and URL) |
//! | `validation_sends_nothing` | refused content is a validation error and no request reaches the server |
//! | `rate_limit_429` | `429` + `Retry-After: 120` is `RateLimited { retry_after: 120 s }` |
//! | `expired_token` | the platform's expired-token answer is `Unauthorized` |
//! | `server_error` | `503` is `Transient` |
//! | `paging_exactly_once` | following cursors over 3 pages yields each comment once, in order |
//! | `webhook_samples` | every documented sample verifies and normalizes to the expected events, whole and event by event |
//! | `tampered_webhooks` | a flipped byte, a missing and a malformed signature are the three distinct errors |
//! | `garbage_webhooks` | non-payloads are errors (event by event: errors or refused events), not panics |
//! | `lookup_by_content_and_window` | `find_published` finds the post with the request's text created after the attempt, not an identical older one; another text is `NotFound` (skipped without lookup) |
//! | `recent_posts_newest_first` | `list_recent_posts` reads the account's posts newest first with id, text and time, and honours the limit (skipped without a listing) |
//! | `no_secret_in_output` | no secret of the harness appears in `Debug` of the connector or context, nor in any error met |

mod lookup;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexiom_core::{DeliveryStatus, EventKind};
use wiremock::{MockServer, ResponseTemplate};

pub use wiremock;

use crate::connector::{PlatformConnector, PlatformConnectorExt};
use crate::error::{ConnectorError, WebhookError};
use crate::types::{ChannelContext, NormalizedEvent, PublishRequest};
use crate::webhook::WebhookHeaders;

/// A comment to serve from the mock server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedComment {
    /// Platform id of the comment.
    pub id: String,
    /// Author's platform id.
    pub author_id: String,
    /// Text.
    pub text: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
}

/// A post of the account to serve from the mock server's recent-post listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPost {
    /// Platform id of the post.
    pub id: String,
    /// Its text (message, caption, commentary).
    pub text: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
}

/// What a successful publish must return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPublish {
    /// The post id.
    pub post_id: String,
    /// The URL, when the connector returns one.
    pub url: Option<String>,
}

/// An event a webhook sample must normalize to. Fields left `None` are not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEvent {
    /// `event_id`.
    pub event_id: String,
    /// `kind`.
    pub kind: EventKind,
    /// `sender_id`.
    pub sender_id: Option<String>,
    /// `text`.
    pub text: Option<String>,
    /// `post_id`.
    pub post_id: Option<String>,
    /// `parent_id`.
    pub parent_id: Option<String>,
    /// `message_id`.
    pub message_id: Option<String>,
    /// `delivery_status`.
    pub delivery_status: Option<DeliveryStatus>,
    /// `occurred_at`, Unix seconds.
    pub occurred_unix: Option<i64>,
}

impl ExpectedEvent {
    /// An expectation on id and kind only.
    pub fn new(event_id: impl Into<String>, kind: EventKind) -> Self {
        ExpectedEvent {
            event_id: event_id.into(),
            kind,
            sender_id: None,
            text: None,
            post_id: None,
            parent_id: None,
            message_id: None,
            delivery_status: None,
            occurred_unix: None,
        }
    }

    /// Also expects this sender.
    pub fn sender(mut self, id: impl Into<String>) -> Self {
        self.sender_id = Some(id.into());
        self
    }

    /// Also expects this text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Also expects this post.
    pub fn post(mut self, id: impl Into<String>) -> Self {
        self.post_id = Some(id.into());
        self
    }

    /// Also expects this parent.
    pub fn parent(mut self, id: impl Into<String>) -> Self {
        self.parent_id = Some(id.into());
        self
    }

    /// Also expects a status event about `message_id` with `status`.
    pub fn status(mut self, message_id: impl Into<String>, status: DeliveryStatus) -> Self {
        self.message_id = Some(message_id.into());
        self.delivery_status = Some(status);
        self
    }

    /// Also expects this time (Unix seconds).
    pub fn at(mut self, unix: i64) -> Self {
        self.occurred_unix = Some(unix);
        self
    }

    fn check(&self, got: &NormalizedEvent) -> Result<(), String> {
        let mut diffs = Vec::new();
        if got.event_id != self.event_id {
            diffs.push(format!(
                "event_id {:?} != {:?}",
                got.event_id, self.event_id
            ));
        }
        if got.kind != self.kind {
            diffs.push(format!("kind {} != {}", got.kind, self.kind));
        }
        let opt =
            |name: &str, got: &Option<String>, want: &Option<String>, diffs: &mut Vec<String>| {
                if want.is_some() && got != want {
                    diffs.push(format!("{name} {got:?} != {want:?}"));
                }
            };
        opt("sender_id", &got.sender_id, &self.sender_id, &mut diffs);
        opt("text", &got.text, &self.text, &mut diffs);
        opt("post_id", &got.post_id, &self.post_id, &mut diffs);
        opt("parent_id", &got.parent_id, &self.parent_id, &mut diffs);
        opt("message_id", &got.message_id, &self.message_id, &mut diffs);
        if self.delivery_status.is_some() && got.delivery_status != self.delivery_status {
            diffs.push(format!(
                "delivery_status {:?} != {:?}",
                got.delivery_status, self.delivery_status
            ));
        }
        if let Some(t) = self.occurred_unix
            && got.occurred_at.timestamp() != t
        {
            diffs.push(format!(
                "occurred_at {} != {t}",
                got.occurred_at.timestamp()
            ));
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(format!("event {}: {}", self.event_id, diffs.join("; ")))
        }
    }
}

/// A documented webhook body and the events it must produce.
#[derive(Debug, Clone)]
pub struct WebhookSample {
    /// A name for reports.
    pub name: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// The expected events, in order.
    pub expected: Vec<ExpectedEvent>,
}

/// What a connector author provides to run the suite.
#[async_trait]
pub trait ContractHarness: Send + Sync {
    /// Name for reports.
    fn name(&self) -> String;

    /// The connector, pointed at `base_url` (the mock server). Disable internal
    /// retries and waits here so the suite stays fast.
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError>;

    /// The channel context the calls are made with.
    fn context(&self) -> ChannelContext;

    /// Secrets that must never appear in any output (tokens, app secrets).
    fn secrets(&self) -> Vec<String>;

    /// A request the connector can publish.
    fn publish_request(&self) -> PublishRequest;

    /// A request validation must refuse before any call, if the platform has one.
    fn invalid_publish_request(&self) -> Option<PublishRequest>;

    /// Mounts the documented success answers of a publish; returns what it must yield.
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish;

    /// Mounts `response` as the answer to the (first) publish request.
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate);

    /// The platform's answer to a call with an expired token.
    fn expired_token_response(&self) -> ResponseTemplate;

    /// The post whose comments are paged.
    fn comment_post_id(&self) -> String {
        "contract-post-1".to_owned()
    }

    /// Mounts `pages` of comments of `post_id` in the platform's paging shape.
    /// Only called when the connector's capabilities include comments.
    async fn mount_comment_pages(
        &self,
        server: &MockServer,
        post_id: &str,
        pages: &[Vec<SeedComment>],
    );

    /// Documented webhook samples.
    fn webhook_samples(&self) -> Vec<WebhookSample>;

    /// Valid signature headers for `body`.
    fn sign(&self, body: &[u8]) -> WebhookHeaders;

    /// A signature header present but not in the documented form.
    fn malformed_signature(&self) -> WebhookHeaders;

    /// Mounts the account's recent posts (newest first, one page) where the
    /// connector's `find_published` and `list_recent_posts` read them. Returns `false` (the default)
    /// when the connector has no lookup: the check is then skipped.
    async fn mount_recent_posts(&self, server: &MockServer, posts: &[SeedPost]) -> bool {
        let _ = (server, posts);
        false
    }

    /// Whether the platform signs the body (Meta, LinkedIn). A platform that only
    /// echoes a shared secret (Telegram) returns `false`: the tampered-body checks
    /// are then skipped, the missing / malformed header checks still run.
    fn signs_bodies(&self) -> bool {
        true
    }
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractReport {
    /// Harness name.
    pub harness: String,
    /// Checks that passed.
    pub passed: Vec<String>,
    /// Checks that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Checks skipped (not applicable to the platform), with the reason.
    pub skipped: Vec<(String, String)>,
}

impl ContractReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// Panics, listing the failures, unless every check passed (for tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.is_ok() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(name, why)| format!("  - {name}: {why}"))
                .collect();
            panic!(
                "contract suite failed for {} ({} passed):\n{}",
                self.harness,
                self.passed.len(),
                list.join("\n")
            );
        }
    }
}

type Check = Result<(), String>;

fn expect(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(msg()) }
}

struct Run<'a> {
    h: &'a dyn ContractHarness,
    report: ContractReport,
    errors_seen: Vec<String>,
}

impl Run<'_> {
    fn record(&mut self, name: &str, result: Check) {
        match result {
            Ok(()) => self.report.passed.push(name.to_owned()),
            Err(why) => self.report.failed.push((name.to_owned(), why)),
        }
    }

    fn seen(&mut self, e: &ConnectorError) {
        self.errors_seen.push(format!("{e} / {e:?}"));
    }

    async fn fresh(&self) -> Result<(MockServer, Arc<dyn PlatformConnector>), String> {
        let server = MockServer::start().await;
        let connector = self
            .h
            .connector(&server.uri())
            .map_err(|e| format!("cannot build the connector: {e}"))?;
        Ok((server, connector))
    }

    async fn publish_returns_ids(&mut self) -> Check {
        let (server, c) = self.fresh().await?;
        let expected = self.h.mount_publish_success(&server).await;
        let got = c
            .publish(&self.h.context(), &self.h.publish_request())
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        expect(got.platform_post_id == expected.post_id, || {
            format!(
                "post id {:?}, expected {:?}",
                got.platform_post_id, expected.post_id
            )
        })?;
        expect(!got.ids.is_empty(), || "no ids returned".into())?;
        if let Some(url) = expected.url {
            expect(got.url.as_deref() == Some(url.as_str()), || {
                format!("url {:?}, expected {url:?}", got.url)
            })?;
        }
        Ok(())
    }

    async fn validation_sends_nothing(&mut self) -> Option<Check> {
        let request = self.h.invalid_publish_request()?;
        let result = async {
            let (server, c) = self.fresh().await?;
            let err = match c.publish(&self.h.context(), &request).await {
                Ok(p) => return Err(format!("invalid content was published: {p:?}")),
                Err(e) => e,
            };
            self.seen(&err);
            expect(matches!(err, ConnectorError::Validation(_)), || {
                format!("expected a validation error, got {err:?}")
            })?;
            let sent = server.received_requests().await.map_or(0, |r| r.len());
            expect(sent == 0, || {
                format!("{sent} request(s) reached the server")
            })
        }
        .await;
        Some(result)
    }

    async fn publish_error(
        &mut self,
        response: ResponseTemplate,
    ) -> Result<ConnectorError, String> {
        let (server, c) = self.fresh().await?;
        self.h.mount_publish_failure(&server, response).await;
        match c
            .publish(&self.h.context(), &self.h.publish_request())
            .await
        {
            Ok(p) => Err(format!("publish succeeded against an error answer: {p:?}")),
            Err(e) => {
                self.seen(&e);
                Ok(e)
            }
        }
    }

    async fn rate_limit_429(&mut self) -> Check {
        let e = self
            .publish_error(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "120")
                    .set_body_json(serde_json::json!({"message": "Too Many Requests"})),
            )
            .await?;
        expect(
            matches!(&e, ConnectorError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
            || format!("expected RateLimited after 120 s, got {e:?}"),
        )
    }

    async fn expired_token(&mut self) -> Check {
        let e = self.publish_error(self.h.expired_token_response()).await?;
        expect(matches!(e, ConnectorError::Unauthorized { .. }), || {
            format!("expected Unauthorized, got {e:?}")
        })
    }

    async fn server_error(&mut self) -> Check {
        let e = self
            .publish_error(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
            .await?;
        expect(matches!(e, ConnectorError::Transient { .. }), || {
            format!("expected Transient, got {e:?}")
        })
    }

    async fn paging_exactly_once(&mut self) -> Option<Check> {
        let result = async {
            let (server, c) = self.fresh().await?;
            if !c.capabilities().comments {
                return Err("skip".to_owned());
            }
            let post = self.h.comment_post_id();
            let pages: Vec<Vec<SeedComment>> = [2usize, 2, 1]
                .iter()
                .scan(0, |n, size| {
                    let page = (0..*size)
                        .map(|i| {
                            let k = *n + i;
                            SeedComment {
                                id: format!("contract-comment-{k}"),
                                author_id: format!("author-{k}"),
                                text: format!("comment number {k}"),
                                created_unix: 1_700_000_000 + k as i64,
                            }
                        })
                        .collect::<Vec<_>>();
                    *n += size;
                    Some(page)
                })
                .collect();
            self.h.mount_comment_pages(&server, &post, &pages).await;
            let got = c
                .list_all_comments(&self.h.context(), &post, 10)
                .await
                .map_err(|e| format!("paging failed: {e}"))?;
            let want: Vec<String> = pages.iter().flatten().map(|s| s.id.clone()).collect();
            let ids: Vec<String> = got.iter().map(|c| c.id.clone()).collect();
            expect(ids == want, || {
                format!("got {ids:?}, expected each of {want:?} once")
            })?;
            let first = pages.iter().flatten().next();
            if let (Some(seed), Some(c)) = (first, got.first()) {
                expect(c.text == seed.text, || {
                    format!("text {:?} != {:?}", c.text, seed.text)
                })?;
                expect(c.created_at.timestamp() == seed.created_unix, || {
                    format!(
                        "created_at {} != {}",
                        c.created_at.timestamp(),
                        seed.created_unix
                    )
                })?;
            }
            Ok(())
        }
        .await;
        match result {
            Err(s) if s == "skip" => None,
            r => Some(r),
        }
    }

    async fn webhook_samples(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        let samples = self.h.webhook_samples();
        expect(!samples.is_empty(), || {
            "the harness has no webhook sample".into()
        })?;
        for s in &samples {
            let headers = self.h.sign(&s.body);
            let events = c
                .verify_and_handle(&headers, &s.body)
                .map_err(|e| format!("sample {}: {e}", s.name))?;
            expect(events.len() == s.expected.len(), || {
                format!(
                    "sample {}: {} events, expected {}: {:?}",
                    s.name,
                    events.len(),
                    s.expected.len(),
                    events.iter().map(|e| &e.event_id).collect::<Vec<_>>()
                )
            })?;
            for (want, got) in s.expected.iter().zip(&events) {
                want.check(got)
                    .map_err(|d| format!("sample {}: {d}", s.name))?;
            }
            // Read event by event (as ingestion does), at the latest event's
            // time: the same events, none refused.
            let now = events
                .iter()
                .map(|e| e.occurred_at)
                .max()
                .unwrap_or_else(chrono::Utc::now);
            let items = c
                .verify_and_handle_events(&headers, &s.body, now)
                .map_err(|e| format!("sample {}, event by event: {e}", s.name))?;
            let per_event: Vec<NormalizedEvent> = items
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|r| format!("sample {}: event refused: {}", s.name, r.reason))?;
            expect(per_event == events, || {
                format!(
                    "sample {}: read event by event, the events differ from handle_webhook's",
                    s.name
                )
            })?;
        }
        Ok(())
    }

    async fn tampered_webhooks(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        for s in self.h.webhook_samples() {
            let headers = self.h.sign(&s.body);
            if self.h.signs_bodies() {
                let mut tampered = s.body.clone();
                if let Some(b) = tampered.get_mut(s.body.len() / 2) {
                    *b ^= 0x01;
                }
                let mismatch = c.verify_webhook(&headers, &tampered);
                expect(
                    matches!(
                        mismatch,
                        Err(ConnectorError::Webhook(
                            WebhookError::SignatureMismatch { .. }
                        ))
                    ),
                    || format!("sample {}: tampered body gave {mismatch:?}", s.name),
                )?;
                let other = self.h.sign(b"another body");
                expect(c.verify_and_handle(&other, &s.body).is_err(), || {
                    format!(
                        "sample {}: a signature of another body was accepted",
                        s.name
                    )
                })?;
            }
            let missing = c.verify_webhook(&WebhookHeaders::new(), &s.body);
            expect(
                matches!(
                    missing,
                    Err(ConnectorError::Webhook(
                        WebhookError::MissingSignature { .. }
                    ))
                ),
                || format!("sample {}: no signature gave {missing:?}", s.name),
            )?;
            let malformed = c.verify_webhook(&self.h.malformed_signature(), &s.body);
            expect(
                matches!(
                    malformed,
                    Err(ConnectorError::Webhook(
                        WebhookError::MalformedSignature { .. }
                    ))
                ),
                || format!("sample {}: malformed signature gave {malformed:?}", s.name),
            )?;
        }
        Ok(())
    }

    async fn garbage_webhooks(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        for body in [
            &b""[..],
            b"not json",
            b"{\"object\":\"nope\"}",
            b"null",
            b"\xff\xfe",
        ] {
            // Event by event, garbage is an `Err` or refused events, never an event.
            if let Ok(items) = c.handle_webhook_events(body, chrono::Utc::now())
                && items.iter().any(Result::is_ok)
            {
                return Err(format!(
                    "{:?} read event by event to an event",
                    String::from_utf8_lossy(body)
                ));
            }
            match c.handle_webhook(body) {
                Err(e) => self.seen(&e),
                Ok(ev) => {
                    return Err(format!(
                        "{:?} normalized to {} events",
                        String::from_utf8_lossy(body),
                        ev.len()
                    ));
                }
            }
        }
        Ok(())
    }

    async fn no_secret_in_output(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        let mut outputs = vec![format!("{c:?}"), format!("{:?}", self.h.context())];
        outputs.extend(self.errors_seen.iter().cloned());
        for secret in self.h.secrets() {
            if secret.len() < 6 {
                continue;
            }
            for out in &outputs {
                expect(!out.contains(&secret), || {
                    format!(
                        "a secret appears in output: {}",
                        out.replace(&secret, "<SECRET>")
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Runs every check against `harness` and reports.
pub async fn run_contract_suite(harness: &dyn ContractHarness) -> ContractReport {
    let mut run = Run {
        h: harness,
        report: ContractReport {
            harness: harness.name(),
            ..ContractReport::default()
        },
        errors_seen: Vec::new(),
    };
    let r = run.publish_returns_ids().await;
    run.record("publish_returns_ids", r);
    match run.validation_sends_nothing().await {
        Some(r) => run.record("validation_sends_nothing", r),
        None => run.report.skipped.push((
            "validation_sends_nothing".into(),
            "no invalid request given".into(),
        )),
    }
    let r = run.rate_limit_429().await;
    run.record("rate_limit_429", r);
    let r = run.expired_token().await;
    run.record("expired_token", r);
    let r = run.server_error().await;
    run.record("server_error", r);
    match run.paging_exactly_once().await {
        Some(r) => run.record("paging_exactly_once", r),
        None => run.report.skipped.push((
            "paging_exactly_once".into(),
            "no comments capability".into(),
        )),
    }
    let r = run.webhook_samples().await;
    run.record("webhook_samples", r);
    let r = run.tampered_webhooks().await;
    run.record("tampered_webhooks", r);
    let r = run.garbage_webhooks().await;
    run.record("garbage_webhooks", r);
    match lookup::lookup_by_content_and_window(harness).await {
        Some(r) => run.record("lookup_by_content_and_window", r),
        None => run.report.skipped.push((
            "lookup_by_content_and_window".into(),
            "no post lookup".into(),
        )),
    }
    match lookup::recent_posts_newest_first(harness).await {
        Some(r) => run.record("recent_posts_newest_first", r),
        None => run.report.skipped.push((
            "recent_posts_newest_first".into(),
            "no recent-post listing".into(),
        )),
    }
    let r = run.no_secret_in_output().await;
    run.record("no_secret_in_output", r);
    run.report
}
