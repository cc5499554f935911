//! `list_recent_posts` of the Facebook, Instagram and LinkedIn connectors
//! against a local wiremock server answering the platforms' documented
//! listings: paging (Graph `after` cursors, LinkedIn `start`/`count` offsets),
//! the limit asked of the platform, and the fields read.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use nexiom_connectors::{ChannelContext, ConnectorError, MAX_RECENT_POSTS, PlatformConnector};
use serde_json::json;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn at(unix: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(unix, 0)
}

#[tokio::test]
async fn facebook_follows_after_cursors_until_the_limit() {
    let server = MockServer::start().await;
    let edge = format!("/v25.0/{PAGE_ID}/published_posts");
    // Page 1: 2 posts and a cursor; page 2 (after=QVFIUk): the rest.
    Mock::given(method("GET"))
        .and(path(edge.as_str()))
        .and(query_param(
            "fields",
            "id,message,created_time,permalink_url",
        ))
        .and(query_param("limit", "3"))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": format!("{PAGE_ID}_3"), "message": "Made in the app",
                 "created_time": "2026-01-03T10:00:00+0000",
                 "permalink_url": "https://www.facebook.com/page/posts/3"},
                {"id": format!("{PAGE_ID}_2"), "created_time": "2026-01-02T10:00:00+0000"}
            ],
            "paging": {"cursors": {"before": "QVFIUb", "after": "QVFIUk"},
                       "next": "https://graph.facebook.com/v25.0/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(edge.as_str()))
        .and(query_param("limit", "1"))
        .and(query_param("after", "QVFIUk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": format!("{PAGE_ID}_1"), "message": "Older",
                 "created_time": "2026-01-01T10:00:00+0000"}
            ],
            "paging": {"cursors": {"before": "QVFIUc", "after": "QVFIUd"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).unwrap();
    assert!(fb.supports_recent_posts());
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    let posts = fb.list_recent_posts(&ctx, 3).await.unwrap();
    let ids: Vec<_> = posts.iter().map(|p| p.id.clone()).collect();
    assert_eq!(
        ids,
        [
            format!("{PAGE_ID}_3"),
            format!("{PAGE_ID}_2"),
            format!("{PAGE_ID}_1")
        ]
    );
    assert_eq!(posts[0].text.as_deref(), Some("Made in the app"));
    assert_eq!(
        posts[0].url.as_deref(),
        Some("https://www.facebook.com/page/posts/3")
    );
    assert_eq!(posts[0].created_at, at(1_767_434_400));
    // A photo without message: no text; no permalink: the post's URL.
    assert_eq!(posts[1].text, None);
    assert_eq!(
        posts[1].url,
        Some(format!("https://www.facebook.com/{PAGE_ID}_2"))
    );
}

#[tokio::test]
async fn instagram_reads_media_and_caps_the_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
        .and(query_param("fields", "id,caption,timestamp,permalink"))
        .and(query_param("limit", MAX_RECENT_POSTS.to_string().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": "17895695668004550", "caption": "Reel from the app",
                 "timestamp": "2026-01-03T10:00:00+0000",
                 "permalink": "https://www.instagram.com/reel/abc/"},
                {"id": "17895695668004551", "timestamp": "2026-01-02T10:00:00+0000"}
            ],
            "paging": {"cursors": {"before": "a", "after": "b"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let ig = instagram(&server.uri()).unwrap();
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let posts = ig.list_recent_posts(&ctx, 10_000).await.unwrap();
    assert_eq!(posts.len(), 2, "the listing ended after one page");
    assert_eq!(posts[0].id, "17895695668004550");
    assert_eq!(posts[0].text.as_deref(), Some("Reel from the app"));
    assert_eq!(
        posts[0].url.as_deref(),
        Some("https://www.instagram.com/reel/abc/")
    );
    assert_eq!(posts[1].created_at, at(1_767_348_000));
}

#[tokio::test]
async fn linkedin_pages_by_offset_until_the_total() {
    let server = MockServer::start().await;
    let element = |n: i64| {
        json!({"id": format!("urn:li:share:70000000000000000{n}"), "author": LI_ORG,
               "commentary": format!("Post {n}"), "createdAt": 1_767_000_000_000_i64 - n,
               "lastModifiedAt": 1_767_000_000_000_i64 - n,
               "lifecycleState": "PUBLISHED", "visibility": "PUBLIC"})
    };
    Mock::given(method("GET"))
        .and(path("/rest/posts"))
        .and(query_param("q", "author"))
        .and(query_param("author", LI_ORG))
        .and(query_param("start", "0"))
        .and(query_param("count", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "elements": [element(1), element(2)],
            "paging": {"start": 0, "count": 5, "total": 3}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/posts"))
        .and(query_param("start", "2"))
        .and(query_param("count", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "elements": [element(3)],
            "paging": {"start": 2, "count": 3, "total": 3}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).unwrap();
    let ctx = ChannelContext::new(LI_ORG, LI_TOKEN);
    let posts = li.list_recent_posts(&ctx, 5).await.unwrap();
    let texts: Vec<_> = posts.iter().filter_map(|p| p.text.as_deref()).collect();
    assert_eq!(texts, ["Post 1", "Post 2", "Post 3"]);
    assert_eq!(
        posts[0].url.as_deref(),
        Some("https://www.linkedin.com/feed/update/urn:li:share:700000000000000001")
    );
    assert_eq!(
        posts[2].created_at.map(|t| t.timestamp_millis()),
        Some(1_766_999_999_997)
    );
}

#[tokio::test]
async fn a_refused_listing_is_an_error_and_whatsapp_lists_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{PAGE_ID}/published_posts").as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#10) This endpoint requires the 'pages_read_engagement' permission",
            "type": "OAuthException", "code": 10}})))
        .mount(&server)
        .await;
    let fb = facebook(&server.uri()).unwrap();
    let ctx = ChannelContext::new(PAGE_ID, ACCESS_TOKEN);
    match fb.list_recent_posts(&ctx, 5).await {
        Err(ConnectorError::Forbidden { .. }) => {}
        other => panic!("expected a missing-permission refusal, got {other:?}"),
    }
    let wa = whatsapp(&server.uri()).unwrap();
    assert!(!wa.supports_recent_posts());
    assert!(matches!(
        wa.list_recent_posts(&ChannelContext::new(WA_PHONE_ID, ACCESS_TOKEN), 5)
            .await,
        Err(ConnectorError::Unsupported { .. })
    ));
}
