//! Instagram: a `media_publish` whose answer is lost (an HTTP 500 after the
//! request was sent) is settled from its container's `status_code`, never by
//! a new container: `PUBLISHED` is found by its caption, `FINISHED` is
//! published again with the same container, `EXPIRED` published nothing.

use nexiom_connectors::testing::SeedPost;
use nexiom_connectors::{ChannelContext, ConnectorError, PlatformConnector, PublishRequest};
use nexiom_core::{Content, Media, MediaKind};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const CAPTION: &str = "Autumn sale #shoes";

fn photo() -> PublishRequest {
    PublishRequest::new(Content::text(CAPTION).with_media(Media::new(
        MediaKind::Image,
        "https://cdn.example.com/a.jpg",
    )))
}

/// A container `C7`; `media_publish` answers each of `answers` in turn (the
/// last one from then on); the container's status reads `statuses` in turn.
async fn mount(server: &MockServer, answers: &[ResponseTemplate], statuses: &[&str]) {
    Mock::given(method("POST"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"C7"})))
        .mount(server)
        .await;
    for (i, answer) in answers.iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_USER_ID}/media_publish").as_str()))
            .respond_with(answer.clone())
            .with_priority(u8::try_from(i + 1).expect("small"));
        let mock = if i + 1 < answers.len() {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(server).await;
    }
    for (i, code) in statuses.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path("/v25.0/C7"))
            .and(query_param("fields", "status_code,status"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status_code": code, "id": "C7"})),
            )
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).expect("small"))
            .mount(server)
            .await;
    }
}

fn lost() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(
        json!({"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}),
    )
}

fn ok(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "id": id }))
}

async fn count(server: &MockServer, method: &str, suffix: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == method && r.url.path().ends_with(suffix))
        .count()
}

fn ctx() -> ChannelContext {
    ChannelContext::new(IG_USER_ID, ACCESS_TOKEN)
}

#[tokio::test]
async fn a_published_container_is_found_by_its_caption_and_not_published_again() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &["PUBLISHED"]).await;
    let now = chrono::Utc::now().timestamp();
    crate::common::lookup::mount_graph(
        &server,
        IG_USER_ID,
        "media",
        ("caption", "timestamp"),
        &[SeedPost {
            id: "M7".into(),
            text: CAPTION.into(),
            created_unix: now,
        }],
    )
    .await;
    let ig = instagram(&server.uri()).expect("build");
    let p = ig.publish(&ctx(), &photo()).await.expect("published");
    assert_eq!(p.platform_post_id, "M7");
    assert_eq!(p.ids, vec!["C7", "M7"]);
    assert_eq!(count(&server, "POST", "/media_publish").await, 1);
    assert_eq!(count(&server, "POST", "/media").await, 1);
}

#[tokio::test]
async fn a_published_container_whose_media_is_not_listed_is_published_without_an_id() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &["PUBLISHED"]).await;
    crate::common::lookup::mount_graph(&server, IG_USER_ID, "media", ("caption", "timestamp"), &[])
        .await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect_err("no id");
    assert!(
        matches!(err, ConnectorError::PublishedWithoutId { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("C7"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(count(&server, "POST", "/media_publish").await, 1);
    assert_eq!(
        count(&server, "GET", "/media").await,
        3,
        "looked for 3 times"
    );
}

/// The media is listed a moment after its container reads `PUBLISHED`: the
/// second read finds it.
#[tokio::test]
async fn a_published_containers_media_listed_late_is_found() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &["PUBLISHED"]).await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    crate::common::lookup::mount_graph(
        &server,
        IG_USER_ID,
        "media",
        ("caption", "timestamp"),
        &[SeedPost {
            id: "M10".into(),
            text: CAPTION.into(),
            created_unix: chrono::Utc::now().timestamp(),
        }],
    )
    .await;
    let p = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect("published");
    assert_eq!(p.platform_post_id, "M10");
    assert_eq!(count(&server, "GET", "/media").await, 2);
    assert_eq!(count(&server, "POST", "/media_publish").await, 1);
}

#[tokio::test]
async fn a_finished_container_is_published_again_with_the_same_container() {
    let server = MockServer::start().await;
    mount(&server, &[lost(), ok("M8")], &["FINISHED"]).await;
    let p = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect("published");
    assert_eq!(p.platform_post_id, "M8");
    assert_eq!(count(&server, "POST", "/media_publish").await, 2);
    assert_eq!(count(&server, "POST", "/media").await, 1, "one container");
    let bodies: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/media_publish"))
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert!(
        bodies.iter().all(|b| b["creation_id"] == "C7"),
        "{bodies:?}"
    );
}

/// The second request refused, the container read again: published meanwhile
/// (by the first request), it is found, not failed.
#[tokio::test]
async fn a_refused_second_request_reads_the_container_again() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(400).set_body_json(json!({"error":{
        "message":"The media has already been published","type":"OAuthException","code":9004}}));
    mount(&server, &[lost(), refused], &["FINISHED", "PUBLISHED"]).await;
    crate::common::lookup::mount_graph(
        &server,
        IG_USER_ID,
        "media",
        ("caption", "timestamp"),
        &[SeedPost {
            id: "M9".into(),
            text: CAPTION.into(),
            created_unix: chrono::Utc::now().timestamp(),
        }],
    )
    .await;
    let p = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect("published");
    assert_eq!(p.platform_post_id, "M9");
    assert_eq!(count(&server, "POST", "/media_publish").await, 2);
}

/// The second request refused (throttled, or a refusal) while the container
/// stays `FINISHED`: the first request may still be under way, so the
/// outcome stays unknown (the queue looks the post up before any new
/// container), never a plain throttle or refusal that would publish again or
/// fail a post that may be out.
#[tokio::test]
async fn a_refused_second_request_on_a_finished_container_leaves_the_outcome_unknown() {
    for refusal in [
        ResponseTemplate::new(429).set_body_json(json!({"error":{
            "message":"Application request limit reached","type":"OAuthException","code":4}})),
        ResponseTemplate::new(400).set_body_json(json!({"error":{
            "message":"Invalid parameter","type":"OAuthException","code":100}})),
    ] {
        let server = MockServer::start().await;
        mount(&server, &[lost(), refusal], &["FINISHED", "FINISHED"]).await;
        let err = instagram(&server.uri())
            .expect("build")
            .publish(&ctx(), &photo())
            .await
            .expect_err("unknown");
        assert!(
            matches!(err, ConnectorError::OutcomeUnknown { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("container C7"), "{err}");
        assert_eq!(count(&server, "POST", "/media_publish").await, 2);
    }
}

#[tokio::test]
async fn a_container_still_finished_after_a_second_lost_answer_is_of_unknown_outcome() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &["FINISHED", "FINISHED"]).await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("container C7"), "{err}");
    assert_eq!(
        count(&server, "POST", "/media_publish").await,
        2,
        "sent again once"
    );
}

#[tokio::test]
async fn an_expired_container_published_nothing() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &["EXPIRED"]).await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect_err("expired");
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert_eq!(count(&server, "POST", "/media_publish").await, 1);
}

#[tokio::test]
async fn an_unreadable_container_leaves_the_outcome_unknown_and_names_it() {
    let server = MockServer::start().await;
    mount(&server, &[lost()], &[]).await;
    Mock::given(method("GET"))
        .and(path("/v25.0/C7"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("container C7"), "{err}");
    assert_eq!(count(&server, "POST", "/media_publish").await, 1);
}

/// A refusal of the first request published nothing: no container read.
#[tokio::test]
async fn a_refused_first_request_is_not_looked_into() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(400).set_body_json(json!({"error":{
        "message":"Invalid parameter","type":"OAuthException","code":100}}));
    mount(&server, &[refused], &[]).await;
    let err = instagram(&server.uri())
        .expect("build")
        .publish(&ctx(), &photo())
        .await
        .expect_err("refused");
    assert!(matches!(err, ConnectorError::Permanent { .. }), "{err:?}");
    assert_eq!(count(&server, "GET", "/C7").await, 0);
}
