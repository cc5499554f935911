//! Ambiguous publishes settled by the connectors' own post lookup: the publish
//! queue with the real Facebook, Instagram and LinkedIn connectors against a
//! local fake platform (wiremock), on memory and on Postgres.
//!
//! In each case the publish request reaches the fake, which answers 500 (for a
//! non-idempotent call, `OutcomeUnknown`). Then:
//! - the lookup finds the post → `published` with the fake's id, one publish call;
//! - the lookup reads every recent post and none matches → a new attempt (two
//!   publish calls, one post record);
//! - the lookup's GET answers 500 every time → `outcome_unknown`, one publish call.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::{batch, t0};
use nexiom_connectors::{
    Backoff, BreakerConfig, FacebookConnector, HttpConfig, InstagramConnector, LinkedInConnector,
    PlatformConnector,
};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both_backends!(
    facebook_lookup_finds_the_post,
    facebook_lookup_not_found_publishes_again,
    facebook_lookup_failing_is_outcome_unknown,
    instagram_lookup_finds_the_post,
    instagram_lookup_not_found_publishes_again,
    instagram_lookup_failing_is_outcome_unknown,
    linkedin_lookup_finds_the_post,
    linkedin_lookup_not_found_publishes_again,
    linkedin_lookup_failing_is_outcome_unknown,
);

const TEXT: &str = "Spring menu\nis out!";

#[derive(Clone, Copy)]
enum Kind {
    Facebook,
    Instagram,
    LinkedIn,
}

enum Lookup {
    /// The listing holds the post the failed publish created.
    Finds,
    /// The listing holds only older posts.
    Misses,
    /// The listing's GET answers 500 every time.
    Fails,
}

struct Fake {
    kind: Kind,
    server: MockServer,
    account: String,
}

fn http() -> HttpConfig {
    HttpConfig {
        timeout: StdDuration::from_secs(5),
        max_retries: 1,
        backoff: Backoff::none(),
        breaker: BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        ..HttpConfig::default()
    }
}

/// Graph's `2026-11-22T09:00:01+0000`, `secs` after t0.
fn graph_time(secs: i64) -> String {
    (t0() + Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

fn millis(secs: i64) -> i64 {
    (t0() + Duration::seconds(secs)).timestamp_millis()
}

impl Fake {
    async fn start(kind: Kind) -> Fake {
        let account = match kind {
            Kind::Facebook => "page-1".to_owned(),
            Kind::Instagram => "17841400000000001".to_owned(),
            Kind::LinkedIn => "urn:li:organization:5515715".to_owned(),
        };
        Fake {
            kind,
            server: MockServer::start().await,
            account,
        }
    }

    fn platform(&self) -> Platform {
        match self.kind {
            Kind::Facebook => Platform::Facebook,
            Kind::Instagram => Platform::Instagram,
            Kind::LinkedIn => Platform::LinkedIn,
        }
    }

    fn connector(&self) -> Arc<dyn PlatformConnector> {
        let base = self.server.uri();
        match self.kind {
            Kind::Facebook => Arc::new(
                FacebookConnector::builder()
                    .with_base_url(&base)
                    .with_version("v25.0")
                    .with_app_secret("app-secret")
                    .with_http_config(http())
                    .build()
                    .unwrap(),
            ),
            Kind::Instagram => Arc::new(
                InstagramConnector::builder()
                    .with_base_url(&base)
                    .with_version("v25.0")
                    .with_app_secret("app-secret")
                    .with_http_config(http())
                    .build()
                    .unwrap(),
            ),
            Kind::LinkedIn => Arc::new(
                LinkedInConnector::builder()
                    .with_base_url(&base)
                    .with_oauth_url(&base)
                    .with_version("202601")
                    .with_http_config(http())
                    .build()
                    .unwrap(),
            ),
        }
    }

    fn content(&self) -> Content {
        match self.kind {
            Kind::Instagram => Content::text(TEXT)
                .with_media(Media::new(MediaKind::Image, "https://cdn.example/menu.jpg")),
            _ => Content::text(TEXT),
        }
    }

    /// The path of the publish call whose answer is lost.
    fn publish_path(&self) -> String {
        match self.kind {
            Kind::Facebook => format!("/v25.0/{}/feed", self.account),
            Kind::Instagram => format!("/v25.0/{}/media_publish", self.account),
            Kind::LinkedIn => "/rest/posts".to_owned(),
        }
    }

    fn listing_path(&self) -> String {
        match self.kind {
            Kind::Facebook => format!("/v25.0/{}/published_posts", self.account),
            Kind::Instagram => format!("/v25.0/{}/media", self.account),
            Kind::LinkedIn => "/rest/posts".to_owned(),
        }
    }

    /// The id the first (lost) publish created, and the second one's.
    fn ids(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Facebook => ("page-1_1001", "page-1_1002"),
            Kind::Instagram => ("media-1001", "media-1002"),
            Kind::LinkedIn => ("urn:li:share:1001", "urn:li:share:1002"),
        }
    }

    fn listing(&self, with_post: bool) -> serde_json::Value {
        let (created, _) = self.ids();
        // An identical post from the day before: outside the window.
        let old = -86_400;
        let mut posts = Vec::new();
        match self.kind {
            Kind::Facebook => {
                if with_post {
                    // The Page normalized the line break: still a match.
                    posts.push(json!({"id": created, "message": "Spring menu is out!",
                        "created_time": graph_time(1),
                        "permalink_url": format!("https://www.facebook.com/{created}")}));
                }
                posts.push(json!({"id": "page-1_900", "message": TEXT,
                    "created_time": graph_time(old)}));
                json!({"data": posts, "paging": {"cursors": {"after": "x"}}})
            }
            Kind::Instagram => {
                if with_post {
                    posts.push(json!({"id": created, "caption": TEXT,
                        "timestamp": graph_time(1),
                        "permalink": "https://www.instagram.com/p/abc/"}));
                }
                posts.push(json!({"id": "media-900", "caption": TEXT,
                    "timestamp": graph_time(old)}));
                json!({"data": posts, "paging": {"cursors": {"after": "x"}}})
            }
            Kind::LinkedIn => {
                if with_post {
                    posts.push(json!({"id": created, "commentary": TEXT,
                        "createdAt": millis(1), "lastModifiedAt": millis(1)}));
                }
                posts.push(json!({"id": "urn:li:share:900", "commentary": TEXT,
                    "createdAt": millis(old), "lastModifiedAt": millis(old)}));
                json!({"elements": posts, "paging": {"start": 0, "count": 20}})
            }
        }
    }

    /// The first publish answers 500 (the post may exist); later ones succeed.
    async fn mount(&self, lookup: Lookup) {
        let (_, second) = self.ids();
        if let Kind::Instagram = self.kind {
            Mock::given(method("POST"))
                .and(path(format!("/v25.0/{}/media", self.account)))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cont-1"})))
                .mount(&self.server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path(self.publish_path()))
            .respond_with(ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "An unknown error occurred", "code": 1}}),
            ))
            .up_to_n_times(1)
            .mount(&self.server)
            .await;
        let ok = match self.kind {
            Kind::LinkedIn => ResponseTemplate::new(201).insert_header("x-restli-id", second),
            _ => ResponseTemplate::new(200).set_body_json(json!({"id": second})),
        };
        Mock::given(method("POST"))
            .and(path(self.publish_path()))
            .respond_with(ok)
            .mount(&self.server)
            .await;
        let listing = match lookup {
            Lookup::Finds => ResponseTemplate::new(200).set_body_json(self.listing(true)),
            Lookup::Misses => ResponseTemplate::new(200).set_body_json(self.listing(false)),
            Lookup::Fails => ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "Please retry your request later.", "code": 2}}),
            ),
        };
        Mock::given(method("GET"))
            .and(path(self.listing_path()))
            .respond_with(listing)
            .mount(&self.server)
            .await;
    }

    async fn count(&self, verb: &str, p: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == p)
            .count()
    }

    async fn publishes(&self) -> usize {
        self.count("POST", &self.publish_path()).await
    }

    async fn lookups(&self) -> usize {
        self.count("GET", &self.listing_path()).await
    }
}

struct Setup {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    post: ScheduledPost,
    queue: PublishQueue,
}

async fn setup(store: Arc<dyn Store>, fake: &Fake) -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: fake.platform(),
            external_account_id: fake.account.clone(),
            name: "Account".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("page-token")),
                ..Credentials::default()
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    let post = store
        .insert_post(NewScheduledPost::one_off(
            tenant.id,
            channel.id,
            fake.content(),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let config = PublishConfig {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..PublishConfig::for_worker("w1")
    };
    let gateway = Arc::new(ConnectorGateway::single(fake.connector()));
    let queue = PublishQueue::new(store.clone(), gateway, clock.clone(), config);
    Setup {
        store,
        clock,
        tenant: tenant.id,
        post,
        queue,
    }
}

impl Setup {
    async fn stored(&self) -> ScheduledPost {
        self.store
            .get_post(self.tenant, self.post.id)
            .await
            .unwrap()
    }

    async fn runs(&self) -> Vec<PostRun> {
        self.store
            .list_post_runs(self.tenant, self.post.id)
            .await
            .unwrap()
    }
}

async fn finds_the_post(store: Arc<dyn Store>, kind: Kind) {
    let fake = Fake::start(kind).await;
    fake.mount(Lookup::Finds).await;
    let s = setup(store, &fake).await;
    let report = s.queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1, "{report:?}");
    let stored = s.stored().await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some(fake.ids().0));
    assert!(stored.url.is_some());
    assert_eq!(fake.publishes().await, 1, "exactly one publish call");
    assert_eq!(fake.lookups().await, 1);
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, PostRunStatus::Success);
}

async fn not_found_publishes_again(store: Arc<dyn Store>, kind: Kind) {
    let fake = Fake::start(kind).await;
    fake.mount(Lookup::Misses).await;
    let s = setup(store, &fake).await;
    let report = s.queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");
    assert_eq!(s.stored().await.status, PostStatus::Queued);
    assert_eq!(
        fake.publishes().await,
        1,
        "no second call before the backoff"
    );
    s.clock.advance(Duration::minutes(10));
    let report = s.queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1, "{report:?}");
    let stored = s.stored().await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some(fake.ids().1));
    assert_eq!(
        fake.publishes().await,
        2,
        "one new attempt, after a definite not-found"
    );
    assert_eq!(
        fake.lookups().await,
        2,
        "after the 500, and again before the new attempt"
    );
    assert_eq!(s.runs().await.len(), 2);
    let posts = s
        .store
        .list_posts(s.tenant, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), 1, "one post record");
}

async fn failing_is_outcome_unknown(store: Arc<dyn Store>, kind: Kind) {
    let fake = Fake::start(kind).await;
    fake.mount(Lookup::Fails).await;
    let s = setup(store, &fake).await;
    // A lookup that keeps failing (a 5xx after the HTTP core's retry) is
    // made again before each later attempt, never followed by a publish;
    // with no attempt left the post is `outcome_unknown`.
    let report = s.queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");
    let mut failed = 0;
    for _ in 0..3 {
        s.clock.advance(Duration::hours(1));
        failed += s.queue.run_due(&batch(10), None).await.unwrap().failed;
    }
    assert_eq!(failed, 1);
    let stored = s.stored().await;
    assert_eq!(stored.status, PostStatus::Failed);
    let error = stored.error_message.unwrap();
    assert!(error.starts_with(OUTCOME_UNKNOWN), "{error}");
    assert!(
        error.contains("lookup before publishing again failed"),
        "{error}"
    );
    assert!(
        fake.lookups().await >= 4,
        "the GET is retried by the HTTP core, and made again before each attempt"
    );
    s.clock.advance(Duration::hours(3));
    s.queue.release_stale_leases().await.unwrap();
    assert_eq!(s.queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(fake.publishes().await, 1, "never a second publish call");
}

async fn facebook_lookup_finds_the_post(store: Arc<dyn Store>) {
    finds_the_post(store, Kind::Facebook).await;
}
async fn facebook_lookup_not_found_publishes_again(store: Arc<dyn Store>) {
    not_found_publishes_again(store, Kind::Facebook).await;
}
async fn facebook_lookup_failing_is_outcome_unknown(store: Arc<dyn Store>) {
    failing_is_outcome_unknown(store, Kind::Facebook).await;
}
async fn instagram_lookup_finds_the_post(store: Arc<dyn Store>) {
    finds_the_post(store, Kind::Instagram).await;
}
async fn instagram_lookup_not_found_publishes_again(store: Arc<dyn Store>) {
    not_found_publishes_again(store, Kind::Instagram).await;
}
async fn instagram_lookup_failing_is_outcome_unknown(store: Arc<dyn Store>) {
    failing_is_outcome_unknown(store, Kind::Instagram).await;
}
async fn linkedin_lookup_finds_the_post(store: Arc<dyn Store>) {
    finds_the_post(store, Kind::LinkedIn).await;
}
async fn linkedin_lookup_not_found_publishes_again(store: Arc<dyn Store>) {
    not_found_publishes_again(store, Kind::LinkedIn).await;
}
async fn linkedin_lookup_failing_is_outcome_unknown(store: Arc<dyn Store>) {
    failing_is_outcome_unknown(store, Kind::LinkedIn).await;
}
