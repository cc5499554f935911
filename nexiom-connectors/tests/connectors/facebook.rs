//! The Facebook connector: native scheduling and photo posts, the long-lived
//! token exchange and its refusal without leaking a secret, and the Meta
//! webhook handshake and page subscription.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use nexiom_connectors::{
    ChannelContext, ConnectorError, ErrorAction, FacebookConnector, PlatformConnector,
    PublishRequest, WebhookSetup,
};
use nexiom_core::{Content, Credentials, ManualClock, Media, MediaKind};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

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

/// A scheduled post (`published=false`) whose publish call's answer was lost:
/// the Page lists it among its scheduled posts only, so the lookup for an
/// attempt that scheduled finds it there (publishing it again would post it
/// twice when its time comes); once its time has come it is found among the
/// published posts. A lookup for an attempt that did not schedule reads the
/// published posts only.
#[tokio::test]
async fn a_scheduled_post_is_found_among_the_scheduled_ones() {
    use nexiom_connectors::{LookupOutcome, LookupQuery};
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let attempted = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let created = (attempted + chrono::Duration::seconds(2))
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string();
    let content = Content::text("Black Friday, all week");
    let post = json!({"id": format!("{PAGE_ID}_77"), "message": "Black Friday, all week",
                      "created_time": created});
    let edge = |name: &str| format!("/v25.0/{PAGE_ID}/{name}");
    let query = LookupQuery::new(content.clone(), attempted);
    let scheduled_query = query
        .clone()
        .with_schedule_at(attempted + chrono::Duration::hours(2));

    // Still scheduled.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(edge("scheduled_posts").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [post]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(edge("published_posts").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let found = fb
        .find_published(&ctx, &scheduled_query)
        .await
        .expect("lookup");
    assert!(
        matches!(&found, LookupOutcome::Found(p) if p.platform_post_id == format!("{PAGE_ID}_77")),
        "{found:?}"
    );
    assert_eq!(
        fb.find_published(&ctx, &query).await.expect("lookup"),
        LookupOutcome::NotFound,
        "an attempt that did not schedule reads the published posts only"
    );

    // Its time came: published.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(edge("scheduled_posts").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(edge("published_posts").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [post]})))
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let found = fb
        .find_published(&ctx, &scheduled_query)
        .await
        .expect("lookup");
    assert!(matches!(found, LookupOutcome::Found(_)), "{found:?}");
}

/// The Page's posts paged by time (`paging.next` with `until` and a
/// `__paging_token`, no cursor; platform-apis §1): the lookup reads the next
/// page with those parameters (never the link's token) and finds the post
/// there. Before, such a page failed the lookup, and the post ended
/// `outcome_unknown`.
#[tokio::test]
async fn a_lookup_follows_pages_paged_by_time() {
    use nexiom_connectors::{LookupOutcome, LookupQuery};
    use wiremock::matchers::query_param_is_missing;
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let attempted = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let at = |secs: i64| {
        (attempted + chrono::Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%S+0000")
            .to_string()
    };
    let newer: Vec<_> = (0..25)
        .map(|i| {
            json!({"id": format!("{PAGE_ID}_{}", 100 + i), "message": format!("other {i}"),
                        "created_time": at(600 - i)})
        })
        .collect();
    let edge = format!("/v25.0/{PAGE_ID}/published_posts");
    let next = format!(
        "https://graph.facebook.com/v25.0/{PAGE_ID}/published_posts?access_token=LINKTOKEN&limit=25&until=1764580170&__paging_token=enc_AdB"
    );
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(edge.as_str()))
        .and(query_param_is_missing("until"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": newer, "paging": {"previous": "https://graph.facebook.com/x?since=1", "next": next}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(edge.as_str()))
        .and(query_param("until", "1764580170"))
        .and(query_param("__paging_token", "enc_AdB"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": format!("{PAGE_ID}_77"), "message": "Cyber Monday", "created_time": at(2)},
            {"id": format!("{PAGE_ID}_76"), "message": "older", "created_time": at(-3600)}
        ]})))
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let found = fb
        .find_published(
            &ctx,
            &LookupQuery::new(Content::text("Cyber Monday"), attempted),
        )
        .await
        .expect("lookup");
    assert!(
        matches!(&found, LookupOutcome::Found(p) if p.platform_post_id == format!("{PAGE_ID}_77")),
        "{found:?}"
    );
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| !r.url.as_str().contains("LINKTOKEN")),
        "the next link's token is never sent"
    );
}

/// A Messenger message is an attachment or a text: the content's link is
/// sent in the text; content with an image and a text is refused before any
/// call (the API takes one or the other, and the text would be lost).
#[tokio::test]
async fn messenger_sends_the_link_and_refuses_media_with_text() {
    use nexiom_connectors::OutboundMessage;
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{PAGE_ID}/messages").as_str()))
        .and(body_partial_json(json!({
            "recipient": {"id": "psid-1"},
            "message": {"text": "Our sale\nhttps://shop.example.com/sale"}
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "psid-1", "message_id": "m_1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).expect("build");
    let mut linked = OutboundMessage::text("psid-1", "Our sale");
    linked.body = nexiom_connectors::MessageBody::Content(
        Content::text("Our sale").with_link("https://shop.example.com/sale"),
    );
    let sent = fb.send_message(&ctx, &linked).await.expect("sent");
    assert_eq!(sent.message_id, "m_1");

    let mut both = OutboundMessage::text("psid-1", "Look at this");
    both.body = nexiom_connectors::MessageBody::Content(Content::text("Look at this").with_media(
        Media::new(MediaKind::Image, "https://cdn.example.com/a.jpg"),
    ));
    let err = fb.send_message(&ctx, &both).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::Validation(_)), "{err:?}");
    assert!(err.to_string().contains("not both"), "{err}");
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        1
    );
}
