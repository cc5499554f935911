//! The Instagram connector: a video waits for its container to finish (or
//! fails with it, or gives up while it is still processing), and comments are
//! listed with their replies, answered and hidden.

use nexiom_connectors::{ChannelContext, ConnectorError, PlatformConnector, PublishRequest};
use nexiom_core::{Content, Media, MediaKind};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

async fn mount_ig_container(server: &MockServer, statuses: &[&str]) {
    let with_text: Vec<(&str, &str)> = statuses.iter().map(|s| (*s, "")).collect();
    mount_ig_container_with(server, &with_text).await;
}

/// The container answers each `(status_code, status)` in turn.
async fn mount_ig_container_with(server: &MockServer, statuses: &[(&str, &str)]) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
        .and(body_partial_json(
            json!({"media_type":"REELS","video_url":"https://cdn.example.com/r.mp4"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"C1"})))
        .mount(server)
        .await;
    for (i, (code, text)) in statuses.iter().enumerate() {
        let body = if text.is_empty() {
            json!({"status_code": code, "id": "C1"})
        } else {
            json!({"status_code": code, "status": text, "id": "C1"})
        };
        Mock::given(method("GET"))
            .and(path("/v25.0/C1"))
            .and(query_param("fields", "status_code,status"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
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

/// A container that failed with an error Instagram says to try again (an
/// unknown upload error, 2207053), or that expired, is a passing failure:
/// the next attempt makes a new container. One that failed for its content
/// (an unsupported format, 2207026) is not tried again.
#[tokio::test]
async fn a_container_failing_with_a_try_again_error_is_retried() {
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    for (code, text, transient) in [
        (
            "ERROR",
            "Error: Media upload has failed with error code 2207053",
            true,
        ),
        ("EXPIRED", "", true),
        (
            "ERROR",
            "Error: Media upload has failed with error code 2207026",
            false,
        ),
    ] {
        let server = MockServer::start().await;
        mount_ig_container_with(&server, &[(code, text)]).await;
        let err = instagram(&server.uri())
            .expect("build")
            .publish(&ctx, &reel())
            .await
            .expect_err("failed container");
        if transient {
            assert!(
                matches!(err, ConnectorError::Transient { .. }),
                "{text}: {err:?}"
            );
        } else {
            assert!(
                matches!(err, ConnectorError::Permanent { .. }),
                "{text}: {err:?}"
            );
        }
        let published = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with("/media_publish"))
            .count();
        assert_eq!(published, 0, "nothing is published from a failed container");
    }
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

/// Instagram Login (`graph.instagram.com`): the long-lived Instagram User
/// token is renewed with `GET /refresh_access_token?grant_type=ig_refresh_token`
/// (no version in the path, no app secret), not exchanged as Facebook
/// Login's; a refusal asks for re-authorization.
#[tokio::test]
async fn instagram_login_tokens_are_renewed_with_ig_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", ACCESS_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token":"IGAA-renewed","token_type":"bearer","expires_in":5183944}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ig = instagram(&server.uri())
        .expect("build")
        .with_instagram_login();
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let grant = ig.refresh_token(&ctx).await.expect("renewed");
    assert_eq!(grant.access_token.expose(), "IGAA-renewed");
    assert!(grant.expires_at.is_some());

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error":{
            "message":"Error validating access token: Session has expired",
            "type":"OAuthException","code":190,"fbtrace_id":"Ax1"}})))
        .mount(&server)
        .await;
    let err = instagram(&server.uri())
        .expect("build")
        .with_instagram_login()
        .refresh_token(&ctx)
        .await
        .expect_err("expired");
    assert!(matches!(err, ConnectorError::NeedsReauth { .. }), "{err:?}");
    assert!(!err.to_string().contains(ACCESS_TOKEN));
}

/// A comment's replies past the `replies` field's first page are read from
/// `GET /{ig-comment-id}/replies` with its cursor (platform-apis §2.4) by
/// `list_comments_with_replies`, each naming its comment as parent; a
/// comment without replies costs no call, and `list_new_comments` (every
/// check) lists the field's replies only, with no call of its own.
#[tokio::test]
async fn instagram_replies_past_the_first_page_are_followed() {
    let server = MockServer::start().await;
    let reply = |id: &str, minute: u32| {
        json!({"id": id, "text": format!("Reply {id}"), "timestamp": format!("2026-01-01T10:{minute:02}:00+0000"),
            "username": "bob", "from": {"id": "u2", "username": "bob"}})
    };
    Mock::given(method("GET"))
        .and(path("/v25.0/M1/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "c1", "text": "Top", "timestamp": "2026-01-01T10:00:00+0000", "username": "ann",
             "from": {"id": "u1", "username": "ann"},
             "replies": {"data": [reply("r1", 1)],
                 "paging": {"cursors": {"before": "rb0", "after": "ra1"},
                     "next": format!("{}/v25.0/c1/replies?after=ra1", server.uri())}}},
            {"id": "c2", "text": "Quiet", "timestamp": "2026-01-01T10:05:00+0000", "username": "cy",
             "from": {"id": "u3", "username": "cy"}}],
            "paging": {"cursors": {"before": "b0", "after": "a1"}}})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/c1/replies"))
        .and(query_param("after", "ra1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [reply("r2", 2), reply("r3", 3)],
            "paging": {"cursors": {"before": "rb1", "after": "ra2"},
                "next": format!("{}/v25.0/c1/replies?after=ra2", server.uri())}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/c1/replies"))
        .and(query_param("after", "ra2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [reply("r4", 4)],
            "paging": {"cursors": {"before": "rb2", "after": "ra3"}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/c2/replies"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    let ig = instagram(&server.uri()).expect("build");
    assert!(ig.new_comments_may_precede_the_cursor());
    // Only top-level comments can be replied to.
    assert_eq!(ig.reply_target("r1", Some("c1")), "c1");
    assert_eq!(ig.reply_target("c1", None), "c1");
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let cheap = ig.list_new_comments(&ctx, "M1", None).await.expect("page");
    let ids: Vec<&str> = cheap.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["c1", "r1", "c2"]);
    let page = ig
        .list_comments_with_replies(&ctx, "M1", None)
        .await
        .expect("page");
    let got: Vec<(&str, Option<&str>)> = page
        .comments
        .iter()
        .map(|c| (c.id.as_str(), c.parent_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("c1", None),
            ("r1", Some("c1")),
            ("r2", Some("c1")),
            ("r3", Some("c1")),
            ("r4", Some("c1")),
            ("c2", None),
        ]
    );
    assert_eq!(page.next_cursor, None);
}

/// One comment without its `timestamp` and one reply without its id, among
/// good ones: the page is read without them (each logged), instead of
/// failing, which would stop every later read of the post at this page.
#[tokio::test]
async fn instagram_a_malformed_comment_leaves_its_page_readable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/M1/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "c1", "text": "No time", "username": "ann", "from": {"id": "u1", "username": "ann"}},
            {"id": "c2", "text": "Fine", "timestamp": "2026-01-01T10:05:00+0000", "username": "cy",
             "from": {"id": "u3", "username": "cy"},
             "replies": {"data": [
                 {"text": "No id", "timestamp": "2026-01-01T10:06:00+0000"},
                 {"id": "r1", "text": "Reply", "timestamp": "2026-01-01T10:07:00+0000",
                  "username": "bob", "from": {"id": "u2", "username": "bob"}}]}}],
            "paging": {"cursors": {"before": "b0", "after": "a1"}}})))
        .mount(&server)
        .await;
    let ig = instagram(&server.uri()).expect("build");
    let ctx = ChannelContext::new(IG_USER_ID, ACCESS_TOKEN);
    let page = ig.list_new_comments(&ctx, "M1", None).await.expect("page");
    let ids: Vec<&str> = page.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["c2", "r1"]);
    assert_eq!(page.left_out, 2, "the comment and the reply left out");
}
