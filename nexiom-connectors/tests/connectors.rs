//! Connector behaviour beyond the contract suite, against a local wiremock server:
//! Graph throttling codes, messaging policy, broadcasts, the Instagram container
//! flow, Facebook native scheduling and token exchange, LinkedIn refresh and
//! replies, and the HTTP core (retries, breaker, rate budget, ambiguous outcomes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::*;
use nexiom_connectors::{
    BreakerConfig, ChannelContext, ConnectorError, ErrorAction, FacebookConnector, HttpConfig,
    HttpCore, OutboundMessage, PlatformConnector, PlatformConnectorExt, PublishRequest, Template,
    TokenGrant, WebhookSetup, WhatsAppConnector,
};
use nexiom_core::{Content, Credentials, ManualClock, Media, MediaKind};
use serde_json::json;
use wiremock::matchers::{
    body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn wa_ctx() -> ChannelContext {
    ChannelContext::new(WA_PHONE_ID, ACCESS_TOKEN)
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
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

async fn mount_ig_container(server: &MockServer, statuses: &[&str]) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
        .and(body_partial_json(
            json!({"media_type":"REELS","video_url":"https://cdn.example.com/r.mp4"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"C1"})))
        .mount(server)
        .await;
    for (i, s) in statuses.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path("/v25.0/C1"))
            .and(query_param("fields", "status_code,status"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status_code": s, "id": "C1"})),
            )
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).expect("small"))
            .mount(server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media_publish").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"M1"})))
        .mount(server)
        .await;
}

fn reel() -> PublishRequest {
    PublishRequest::new(Content::text("New reel").with_media(Media::new(
        MediaKind::Video,
        "https://cdn.example.com/r.mp4",
    )))
}

#[tokio::test]
async fn instagram_video_waits_for_the_container() {
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let server = MockServer::start().await;
    mount_ig_container(&server, &["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]).await;
    let ig = instagram(&server.uri()).expect("build");
    let p = ig.publish(&ctx, &reel()).await.expect("published");
    assert_eq!(p.platform_post_id, "M1");
    assert_eq!(p.ids, vec!["C1", "M1"]);
    assert_eq!(p.url, None, "the permalink lookup is best effort");

    let server = MockServer::start().await;
    mount_ig_container(&server, &["ERROR"]).await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx, &reel())
        .await
        .expect_err("error container");
    assert!(matches!(err, ConnectorError::Permanent { .. }), "{err:?}");

    let server = MockServer::start().await;
    mount_ig_container(&server, &["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS"]).await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx, &reel())
        .await
        .expect_err("still processing");
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("C1"));
}

#[tokio::test]
async fn instagram_comments_replies_and_hide() {
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/M1/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[
            {"id":"c1","text":"Top","timestamp":"2026-01-01T10:00:00+0000","username":"ann","from":{"id":"u1","username":"ann"},
             "replies":{"data":[{"id":"c2","text":"Reply","timestamp":"2026-01-01T10:05:00+0000","username":"bob","from":{"id":"u2","username":"bob"}}]}}],
            "paging":{"cursors":{"after":"x"}}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/c1/replies"))
        .and(body_partial_json(json!({"message":"Thanks!"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"c3"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v25.0/c2"))
        .and(body_partial_json(json!({"hide":true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success":true})))
        .expect(1)
        .mount(&server)
        .await;
    let ig = instagram(&server.uri()).expect("build");
    let page = ig.list_new_comments(&ctx, "M1", None).await.expect("page");
    assert_eq!(page.next_cursor, None, "no paging.next: last page");
    assert_eq!(page.comments.len(), 2);
    assert_eq!(page.comments[1].parent_id.as_deref(), Some("c1"));
    assert_eq!(
        ig.reply_comment(&ctx, "c1", "Thanks!")
            .await
            .expect("reply"),
        "c3"
    );
    ig.hide_comment(&ctx, "c2", true).await.expect("hide");
    assert!(matches!(
        ig.reply_comment(&ctx, "c1", "  ").await,
        Err(ConnectorError::Validation(_))
    ));
}

#[tokio::test]
async fn facebook_native_scheduling_and_photos() {
    let now = Utc
        .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .expect("t");
    let at = now + chrono::Duration::days(2);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/feed").as_str()))
        .and(body_partial_json(
            json!({"message":"Later","published":false,"scheduled_publish_time": at.timestamp()}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"P_1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/photos").as_str()))
        .and(body_partial_json(
            json!({"url":"https://cdn.example.com/a.jpg","caption":"Look"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id":"PH_9","post_id":"P_2"})),
        )
        .mount(&server)
        .await;
    let fb = FacebookConnector::builder()
        .with_base_url(server.uri())
        .with_http_config(test_http())
        .with_clock(Arc::new(ManualClock::new(now)))
        .build()
        .expect("build");
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let req = PublishRequest {
        schedule_at: Some(at),
        ..PublishRequest::new(Content::text("Later"))
    };
    let p = fb.publish(&ctx, &req).await.expect("scheduled");
    assert!(p.scheduled);
    assert_eq!(p.platform_post_id, "P_1");
    let too_soon = PublishRequest {
        schedule_at: Some(now + chrono::Duration::minutes(3)),
        ..PublishRequest::new(Content::text("Later"))
    };
    assert!(matches!(
        fb.publish(&ctx, &too_soon).await,
        Err(ConnectorError::Validation(_))
    ));
    let photo = PublishRequest::new(Content::text("Look").with_media(Media::new(
        MediaKind::Image,
        "https://cdn.example.com/a.jpg",
    )));
    let p = fb.publish(&ctx, &photo).await.expect("photo");
    assert_eq!(
        p.platform_post_id, "P_2",
        "comments live on the post, not the photo"
    );
    assert_eq!(p.ids, vec!["PH_9", "P_2"]);
}

#[tokio::test]
async fn facebook_token_exchange_and_refusal_without_leaking_secrets() {
    let now = Utc
        .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .expect("t");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("client_id", "1234567890"))
        .and(query_param("fb_exchange_token", ACCESS_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token":"EAAG-long-lived-token","token_type":"bearer","expires_in":5183944}),
        ))
        .mount(&server)
        .await;
    let fb = FacebookConnector::builder()
        .with_base_url(server.uri())
        .with_app_id("1234567890")
        .with_app_secret(APP_SECRET)
        .with_http_config(test_http())
        .with_clock(Arc::new(ManualClock::new(now)))
        .build()
        .expect("build");
    let ctx =
        ChannelContext::new(PAGE_ID, ACCESS_TOKEN).with_refresh_token("keep-this-refresh-token");
    let grant = fb.refresh_token(&ctx).await.expect("exchange");
    assert_eq!(grant.access_token.expose(), "EAAG-long-lived-token");
    assert_eq!(
        grant.expires_at,
        Some(now + chrono::Duration::seconds(5_183_944))
    );
    let mut creds = Credentials {
        access_token: Some(ACCESS_TOKEN.into()),
        refresh_token: Some("keep-this-refresh-token".into()),
        expires_at: None,
    };
    grant.apply_to(&mut creds);
    assert_eq!(
        creds.refresh_token.as_ref().map(|t| t.expose()),
        Some("keep-this-refresh-token")
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error":{
            "message": format!("Invalid token {ACCESS_TOKEN} for app secret {APP_SECRET}"),
            "type":"OAuthException","code":190,"fbtrace_id":"X"}})))
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let err = fb.refresh_token(&ctx).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::NeedsReauth { .. }), "{err:?}");
    assert_eq!(err.action(), ErrorAction::NeedsAttention);
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(ACCESS_TOKEN) && !shown.contains(APP_SECRET),
        "{shown}"
    );
}

#[tokio::test]
async fn meta_handshake_and_setup() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/subscribed_apps").as_str()))
        .and(body_partial_json(
            json!({"subscribed_fields":"feed,messages"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success":"true"})))
        .expect(1)
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let q = |t: &str| {
        vec![
            ("hub.mode".to_owned(), "subscribe".to_owned()),
            ("hub.challenge".to_owned(), "1158201444".to_owned()),
            ("hub.verify_token".to_owned(), t.to_owned()),
        ]
    };
    assert_eq!(
        fb.answer_challenge(&q(VERIFY_TOKEN)).expect("ok").body,
        "1158201444"
    );
    assert!(fb.answer_challenge(&q("nope")).is_err());
    fb.setup_webhook(
        &ChannelContext::new(PAGE_ID, ACCESS_TOKEN),
        &WebhookSetup {
            callback_url: "https://hooks.example.com/meta".into(),
            ..WebhookSetup::default()
        },
    )
    .await
    .expect("subscribed");
}

#[tokio::test]
async fn linkedin_refresh_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=li-refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token":"AQV-new-token","expires_in":5184000,"refresh_token_expires_in":31536000}),
        ))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let mut ctx = ChannelContext::new(LI_ORG, LI_TOKEN).with_refresh_token("li-refresh-1");
    let grant: TokenGrant = li.refresh_token(&ctx).await.expect("grant");
    assert!(grant.refresh_token.is_none());
    assert!(grant.refresh_token_expires_at.is_some());
    grant.apply_to_context(&mut ctx);
    assert_eq!(ctx.access_token.expose(), "AQV-new-token");
    assert_eq!(
        ctx.refresh_token.as_ref().map(|t| t.expose()),
        Some("li-refresh-1")
    );

    let no_refresh = ChannelContext::new(LI_ORG, LI_TOKEN);
    assert!(matches!(
        li.refresh_token(&no_refresh).await,
        Err(ConnectorError::NeedsReauth { .. })
    ));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error":"invalid_request","error_description":"The provided authorization grant or refresh token is invalid, expired or revoked"}),
        ))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let err = li.refresh_token(&ctx).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::NeedsReauth { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(LI_CLIENT_SECRET));
}

#[tokio::test]
async fn linkedin_missing_restli_id_is_an_unknown_outcome_and_replies_name_the_parent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/posts"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let parent = "urn:li:comment:(urn:li:activity:7001,6001)";
    Mock::given(method("POST"))
        .and(path("/rest/socialActions/urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A7001%2C6001%29/comments"))
        .and(header("LinkedIn-Version", "202601"))
        .and(body_partial_json(json!({"actor": LI_ORG, "object":"urn:li:activity:7001",
            "message":{"text":"Thank you"}, "parentComment": parent})))
        .respond_with(ResponseTemplate::new(201).insert_header("x-restli-id", "urn:li:comment:(urn:li:activity:7001,6002)"))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let ctx = ChannelContext::new(LI_ORG, LI_TOKEN);
    let err = li
        .publish(&ctx, &PublishRequest::new(Content::text("Hi")))
        .await
        .expect_err("no id");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(
        li.reply_comment(&ctx, parent, "Thank you")
            .await
            .expect("reply"),
        "urn:li:comment:(urn:li:activity:7001,6002)"
    );
    assert!(matches!(
        li.reply_comment(&ctx, "urn:li:share:1", "x").await,
        Err(ConnectorError::Validation(_))
    ));
    assert!(matches!(
        li.send_message(&ctx, &OutboundMessage::text("x", "y"))
            .await,
        Err(ConnectorError::Unsupported { .. })
    ));
}

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
