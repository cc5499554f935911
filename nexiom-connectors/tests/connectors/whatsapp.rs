//! The WhatsApp connector: Graph throttling codes (HTTP 400) read as rate
//! limits with their wait, the 24-hour messaging window refused before any
//! call while templates pass, and a broadcast that reports its later failed
//! recipients without failing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use nexiom_connectors::{
    ChannelContext, ConnectorError, OutboundMessage, PlatformConnector, PublishRequest, Template,
    WhatsAppConnector,
};
use nexiom_core::{Content, ManualClock};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;
use crate::requests;

fn wa_ctx() -> ChannelContext {
    ChannelContext::new(WA_PHONE_ID, ACCESS_TOKEN)
}

fn graph_error(code: i64) -> serde_json::Value {
    json!({"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":code,"fbtrace_id":"AbC"}})
}

#[tokio::test]
async fn graph_throttling_on_http_400_is_a_rate_limit() {
    for code in [4, 80007, 130429, 131056] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(graph_error(code))
                    .insert_header(
                        "x-business-use-case-usage",
                        r#"{"102290129340398":[{"type":"whatsapp","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":2}]}"#,
                    ),
            )
            .mount(&server)
            .await;
        let wa = whatsapp(&server.uri()).expect("build");
        let err = wa
            .send_message(&wa_ctx(), &OutboundMessage::text("+16505551234", "hi"))
            .await
            .expect_err("throttled");
        assert!(
            matches!(&err, ConnectorError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
            "code {code}: {err:?}"
        );
        assert_eq!(
            err.api_error().and_then(|d| d.trace_id.clone()).as_deref(),
            Some("AbC")
        );
    }
}

#[tokio::test]
async fn whatsapp_window_policy_refuses_before_the_call_templates_pass() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{WA_PHONE_ID}/messages").as_str()))
        .and(body_partial_json(json!({"type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages":[{"id":"wamid.T"}]})))
        .mount(&server)
        .await;
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("t");
    let wa = WhatsAppConnector::builder()
        .with_base_url(server.uri())
        .with_http_config(test_http())
        .with_clock(Arc::new(ManualClock::new(now)))
        .build()
        .expect("build");
    let mut text = OutboundMessage::text("+16505551234", "Are you still there?");
    text.last_inbound_at = Some(now - chrono::Duration::hours(30));
    let err = wa.send_message(&wa_ctx(), &text).await.expect_err("policy");
    assert!(matches!(err, ConnectorError::Policy(_)), "{err:?}");
    assert!(err.to_string().contains("template"));
    assert_eq!(requests(&server).await, 0);

    let mut tpl = OutboundMessage::template("+16505551234", Template::new("hello_world", "en_US"));
    tpl.last_inbound_at = text.last_inbound_at;
    let sent = wa.send_message(&wa_ctx(), &tpl).await.expect("template");
    assert_eq!(sent.message_id, "wamid.T");
}

#[tokio::test]
async fn whatsapp_broadcast_reports_later_failures_without_failing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"to":"+111"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"messages":[{"id":"wamid.1"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"to":"+222"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(100)))
        .mount(&server)
        .await;
    let wa = whatsapp(&server.uri()).expect("build");
    let req = PublishRequest {
        recipients: vec!["+111".into(), "+222".into()],
        ..PublishRequest::new(Content::text("News"))
    };
    let p = wa.publish(&wa_ctx(), &req).await.expect("first succeeded");
    assert_eq!(p.platform_post_id, "wamid.1");
    assert_eq!(p.failed_recipients, vec!["+222"]);
    let none = PublishRequest::new(Content::text("News"));
    assert!(matches!(
        wa.publish(&wa_ctx(), &none).await,
        Err(ConnectorError::Validation(_))
    ));
}

/// Each later failure of a broadcast is listed by what it means: refused for
/// good, no clear answer (it may have been sent), refused before acting (a
/// pair rate limit: that recipient only). A throttle of the whole channel
/// stops the broadcast: that recipient and the rest are unsent and never
/// requested.
#[tokio::test]
async fn a_broadcasts_later_failures_are_told_apart() {
    let server = MockServer::start().await;
    let answer = |to: &str, status: u16, body: serde_json::Value| {
        Mock::given(method("POST"))
            .and(body_partial_json(json!({ "to": to })))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
    };
    let ok = |id: &str| json!({"messages":[{"id": id}]});
    answer("+111", 200, ok("wamid.1")).mount(&server).await;
    answer("+222", 400, graph_error(100)).mount(&server).await;
    answer(
        "+333",
        500,
        json!({"error":{"message":"internal","code":2}}),
    )
    .mount(&server)
    .await;
    answer("+444", 400, graph_error(131_056))
        .mount(&server)
        .await;
    answer("+555", 200, ok("wamid.5")).mount(&server).await;
    answer("+5556", 200, json!({"unexpected": true}))
        .mount(&server)
        .await;
    answer("+666", 400, graph_error(130_429))
        .mount(&server)
        .await;
    answer("+777", 200, ok("wamid.7"))
        .expect(0)
        .mount(&server)
        .await;
    let wa = whatsapp(&server.uri()).expect("build");
    let recipients = [
        "+111", "+222", "+333", "+444", "+555", "+5556", "+666", "+777",
    ];
    let req = PublishRequest {
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        ..PublishRequest::new(Content::text("News"))
    };
    let p = wa.publish(&wa_ctx(), &req).await.expect("first succeeded");
    assert_eq!(p.ids, vec!["wamid.1", "wamid.5"]);
    assert_eq!(p.failed_recipients, vec!["+222"]);
    assert_eq!(p.unknown_recipients, vec!["+333", "+5556"]);
    assert_eq!(p.unsent_recipients, vec!["+444", "+666", "+777"]);
}
