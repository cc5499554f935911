//! The Facebook harness: the connector against a local server (`facebook`,
//! page `PAGE_ID`) and the Graph answers and webhook samples the contract suite
//! expects.

use std::sync::Arc;

use async_trait::async_trait;
use nexiom_connectors::testing::{
    ContractHarness, ExpectedEvent, ExpectedPublish, SeedComment, SeedPost, WebhookSample,
};
use nexiom_connectors::{
    ChannelContext, ConnectorError, FacebookConnector, PlatformConnector, PublishRequest,
    WebhookHeaders,
};
use nexiom_core::{Content, EventKind, Media, MediaKind};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{
    ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, expired_graph_token, fixture, graph_time, lookup,
    meta_malformed, meta_sign, mount_graph_pages, test_http,
};

pub struct FacebookHarness;

pub const PAGE_ID: &str = "448242228374517";

pub fn facebook(base: &str) -> Result<FacebookConnector, ConnectorError> {
    FacebookConnector::builder()
        .with_base_url(base)
        .with_app_secret(APP_SECRET)
        .with_verify_token(VERIFY_TOKEN)
        .with_app_id("1234567890")
        .with_http_config(test_http())
        .build()
}

fn fb_comment(s: &SeedComment) -> Value {
    json!({"id": s.id, "message": s.text, "created_time": graph_time(s.created_unix),
           "from": {"id": s.author_id, "name": format!("Name {}", s.author_id)}, "is_hidden": false})
}

#[async_trait]
impl ContractHarness for FacebookHarness {
    fn name(&self) -> String {
        "facebook".into()
    }
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        Ok(Arc::new(facebook(base_url)?))
    }
    fn context(&self) -> ChannelContext {
        ChannelContext::new(PAGE_ID, ACCESS_TOKEN)
    }
    async fn mount_recent_posts(&self, server: &MockServer, posts: &[SeedPost]) -> bool {
        let fields = ("message", "created_time");
        lookup::mount_graph(server, PAGE_ID, "published_posts", fields, posts).await
    }
    fn secrets(&self) -> Vec<String> {
        vec![APP_SECRET.into(), ACCESS_TOKEN.into(), VERIFY_TOKEN.into()]
    }
    fn publish_request(&self) -> PublishRequest {
        PublishRequest::new(
            Content::text("Hello from the page").with_link("https://shop.example.com/sale"),
        )
    }
    fn invalid_publish_request(&self) -> Option<PublishRequest> {
        Some(PublishRequest::new(Content::text("a video").with_media(
            Media::new(MediaKind::Video, "https://cdn.example.com/v.mp4"),
        )))
    }
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/feed").as_str()))
            .and(header(
                "authorization",
                format!("Bearer {ACCESS_TOKEN}").as_str(),
            ))
            .and(body_partial_json(
                json!({"message":"Hello from the page","link":"https://shop.example.com/sale"}),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id":"448242228374517_122131676912594941"})),
            )
            .mount(server)
            .await;
        ExpectedPublish {
            post_id: "448242228374517_122131676912594941".into(),
            url: Some("https://www.facebook.com/448242228374517_122131676912594941".into()),
        }
    }
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{PAGE_ID}/feed").as_str()))
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
        mount_graph_pages(server, post_id, pages, fb_comment).await;
    }
    fn webhook_samples(&self) -> Vec<WebhookSample> {
        vec![
            WebhookSample {
                name: "feed comments (own reply skipped)".into(),
                body: fixture("facebook_feed_comments.json"),
                expected: vec![
                    ExpectedEvent::new("122131676912594941_1213590066982748", EventKind::Comment)
                        .sender("24033296592948231")
                        .text("Where can I buy this?")
                        .post("448242228374517_122131676912594941")
                        .at(1_750_000_001),
                    ExpectedEvent::new(
                        "122131676912594941_1213590066982999",
                        EventKind::CommentReply,
                    )
                    .sender("9876543210")
                    .parent("122131676912594941_1213590066982748")
                    .post("448242228374517_122131676912594941")
                    .at(1_750_000_050),
                ],
            },
            WebhookSample {
                name: "messenger message".into(),
                body: fixture("messenger_message.json"),
                expected: vec![
                    ExpectedEvent::new("mid.1457764197618:41d102a3e1ae206a38", EventKind::Message)
                        .sender("1254459154682919")
                        .text("hello, world!")
                        .at(1_458_692_752),
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
