//! The HTTP core under the connectors: idempotent reads retried and writes
//! never, a per-channel circuit breaker and a pause on high app usage, a
//! timeout after sending as an unknown outcome and a refused connection as
//! transient, and one core shared by several connectors.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexiom_connectors::{
    BreakerConfig, ChannelContext, ConnectorError, ErrorAction, FacebookConnector, HttpConfig,
    HttpCore, PlatformConnector, PlatformConnectorExt, PublishRequest, WhatsAppConnector,
};
use nexiom_core::{Content, ManualClock};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;
use crate::requests;

fn fb_with(server: &MockServer, http: HttpConfig) -> FacebookConnector {
    FacebookConnector::builder()
        .with_base_url(server.uri())
        .with_http_config(http)
        .build()
        .expect("build")
}

#[tokio::test]
async fn idempotent_reads_are_retried_writes_are_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[]})))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let fb = fb_with(
        &server,
        HttpConfig {
            max_retries: 1,
            ..test_http()
        },
    );
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let page = fb
        .list_new_comments(&ctx, "P_1", None)
        .await
        .expect("retried");
    assert!(page.comments.is_empty());
    assert_eq!(requests(&server).await, 2);
    let err = fb
        .publish(&ctx, &PublishRequest::new(Content::text("x")))
        .await
        .expect_err("500");
    assert!(matches!(err, ConnectorError::OutcomeUnknown { .. }));
    assert_eq!(
        requests(&server).await,
        3,
        "a publish is never retried by the core"
    );
}

#[tokio::test]
async fn breaker_opens_per_channel_and_usage_pauses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/P_bad/comments"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/P_hot/comments"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data":[]}))
                .insert_header(
                    "x-app-usage",
                    r#"{"call_count":98,"total_cputime":20,"total_time":30}"#,
                ),
        )
        .mount(&server)
        .await;
    let fb = fb_with(
        &server,
        HttpConfig {
            breaker: BreakerConfig {
                failure_threshold: 2,
                cooldown: Duration::from_secs(60),
                ..BreakerConfig::default()
            },
            ..test_http()
        },
    );
    let bad = ChannelContext::new("page-bad", ACCESS_TOKEN);
    for _ in 0..2 {
        assert!(matches!(
            fb.list_new_comments(&bad, "P_bad", None).await,
            Err(ConnectorError::Transient { .. })
        ));
    }
    let before = requests(&server).await;
    let err = fb
        .list_new_comments(&bad, "P_bad", None)
        .await
        .expect_err("open");
    assert!(matches!(err, ConnectorError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(
        requests(&server).await,
        before,
        "an open breaker sends nothing"
    );

    let hot = ChannelContext::new("page-hot", ACCESS_TOKEN);
    fb.list_new_comments(&hot, "P_hot", None)
        .await
        .expect("first call");
    let err = fb
        .list_new_comments(&hot, "P_hot", None)
        .await
        .expect_err("paused");
    assert!(
        matches!(
            err,
            ConnectorError::RateLimited {
                retry_after: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_after_sending_are_unknown_outcomes_refused_connections_are_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id":"late"}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&server)
        .await;
    let fb = fb_with(
        &server,
        HttpConfig {
            timeout: Duration::from_millis(300),
            ..test_http()
        },
    );
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let err = fb
        .publish(&ctx, &PublishRequest::new(Content::text("x")))
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(err.action(), ErrorAction::NeedsAttention);

    // Nothing listens on port 9 of localhost: the request never left.
    let closed = FacebookConnector::builder()
        .with_base_url("http://127.0.0.1:9")
        .with_http_config(test_http())
        .build()
        .expect("build");
    let err = closed
        .publish(&ctx, &PublishRequest::new(Content::text("x")))
        .await
        .expect_err("refused");
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(ACCESS_TOKEN));
}

#[tokio::test]
async fn connectors_can_share_one_http_core() {
    let core = HttpCore::new(test_http(), Arc::new(ManualClock::new(Utc::now()))).expect("core");
    let server = MockServer::start().await;
    let fb = FacebookConnector::builder()
        .with_base_url(server.uri())
        .with_http_core(core.clone())
        .build()
        .expect("fb");
    let wa = WhatsAppConnector::builder()
        .with_base_url(server.uri())
        .with_http_core(core)
        .build()
        .expect("wa");
    let registry = nexiom_connectors::ConnectorRegistry::new()
        .with(Arc::new(fb))
        .with(Arc::new(wa));
    assert_eq!(registry.names(), vec!["facebook", "whatsapp"]);
    let all = registry
        .get("facebook")
        .expect("facebook")
        .list_all_comments(&ChannelContext::new(PAGE_ID, ACCESS_TOKEN), "P", 3)
        .await;
    // The server has no mocks: a 404 is a permanent error, surfaced as such.
    assert!(
        matches!(all, Err(ConnectorError::Permanent { .. })),
        "{all:?}"
    );
}
