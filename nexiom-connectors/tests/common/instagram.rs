//! The Instagram harness: the connector against a local server (`instagram`,
//! account `IG_USER_ID`) and the Graph answers and webhook samples the contract
//! suite expects.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexiom_connectors::testing::{
    ContractHarness, ExpectedEvent, ExpectedPublish, SeedComment, SeedPost, WebhookSample,
};
use nexiom_connectors::{
    ChannelContext, ConnectorError, InstagramConnector, PlatformConnector, PublishRequest,
    WebhookHeaders,
};
use nexiom_core::{Content, EventKind, Media, MediaKind};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{
    ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, expired_graph_token, fixture, graph_time, lookup,
    meta_malformed, meta_sign, mount_graph_pages, test_http,
};

pub struct InstagramHarness;

pub const IG_USER_ID: &str = "17841405309211844";

pub fn instagram(base: &str) -> Result<InstagramConnector, ConnectorError> {
    Ok(InstagramConnector::builder()
        .with_base_url(base)
        .with_app_secret(APP_SECRET)
        .with_verify_token(VERIFY_TOKEN)
        .with_app_id("1234567890")
        .with_http_config(test_http())
        .build()?
        .with_container_polling(Duration::ZERO, 3))
}

fn ig_comment(s: &SeedComment) -> Value {
    json!({"id": s.id, "text": s.text, "timestamp": graph_time(s.created_unix),
           "username": format!("user_{}", s.author_id), "from": {"id": s.author_id, "username": format!("user_{}", s.author_id)},
           "hidden": false})
}

#[async_trait]
impl ContractHarness for InstagramHarness {
    fn name(&self) -> String {
        "instagram".into()
    }
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        Ok(Arc::new(instagram(base_url)?))
    }
    fn context(&self) -> ChannelContext {
        ChannelContext::new(IG_USER_ID, ACCESS_TOKEN)
    }
    async fn mount_recent_posts(&self, server: &MockServer, posts: &[SeedPost]) -> bool {
        lookup::mount_graph(server, IG_USER_ID, "media", ("caption", "timestamp"), posts).await
    }
    fn secrets(&self) -> Vec<String> {
        vec![APP_SECRET.into(), ACCESS_TOKEN.into(), VERIFY_TOKEN.into()]
    }
    fn publish_request(&self) -> PublishRequest {
        PublishRequest::new(
            Content::text("Spring is here #flowers").with_media(Media::new(
                MediaKind::Image,
                "https://cdn.example.com/spring.jpg",
            )),
        )
    }
    fn invalid_publish_request(&self) -> Option<PublishRequest> {
        Some(PublishRequest::new(Content::text("no media on Instagram")))
    }
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
            .and(body_partial_json(json!({"image_url":"https://cdn.example.com/spring.jpg","caption":"Spring is here #flowers"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"17889455560051444"})))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_USER_ID}/media_publish").as_str()))
            .and(body_partial_json(
                json!({"creation_id":"17889455560051444"}),
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id":"17920238422030506"})),
            )
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v25.0/17920238422030506"))
            .and(query_param("fields", "permalink"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"permalink":"https://www.instagram.com/p/C0ntr4ct/","id":"17920238422030506"}),
            ))
            .mount(server)
            .await;
        ExpectedPublish {
            post_id: "17920238422030506".into(),
            url: Some("https://www.instagram.com/p/C0ntr4ct/".into()),
        }
    }
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{IG_USER_ID}/media").as_str()))
            .respond_with(response)
            .mount(server)
            .await;
    }
    fn expired_token_response(&self) -> ResponseTemplate {
        expired_graph_token()
    }
    async fn mount_comment_pages(
        &self,
        server: &MockServer,
        post_id: &str,
        pages: &[Vec<SeedComment>],
    ) {
        mount_graph_pages(server, post_id, pages, ig_comment).await;
    }
    fn webhook_samples(&self) -> Vec<WebhookSample> {
        vec![
            WebhookSample {
                name: "comment".into(),
                body: fixture("instagram_comment.json"),
                expected: vec![
                    ExpectedEvent::new("17865799348089039", EventKind::Comment)
                        .sender("232323232")
                        .text("This is an example.")
                        .post("123123123")
                        .at(1_755_779_280),
                ],
            },
            WebhookSample {
                name: "reply without changes wrapper".into(),
                body: fixture("instagram_comment_reply_unwrapped.json"),
                expected: vec![
                    ExpectedEvent::new("17865799348089040", EventKind::CommentReply)
                        .sender("4545454545")
                        .parent("17865799348089039")
                        .post("123123123")
                        .at(1_755_779_300),
                ],
            },
            WebhookSample {
                name: "direct message (echo skipped)".into(),
                body: fixture("instagram_dm.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1MzA5MjExODQ0",
                        EventKind::Message,
                    )
                    .sender("1234567890123456")
                    .text("Hi, is this still available?")
                    .at(1_755_779_400),
                ],
            },
        ]
    }
    fn sign(&self, body: &[u8]) -> WebhookHeaders {
        meta_sign(body)
    }
    fn malformed_signature(&self) -> WebhookHeaders {
        meta_malformed()
    }
}
