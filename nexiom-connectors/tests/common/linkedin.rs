//! The LinkedIn harness: the connector against a local server (`linkedin`,
//! organization `LI_ORG`) and the REST answers and webhook samples the contract
//! suite expects.

use std::sync::Arc;

use async_trait::async_trait;
use nexiom_connectors::testing::{
    ContractHarness, ExpectedEvent, ExpectedPublish, SeedComment, SeedPost, WebhookSample,
};
use nexiom_connectors::{
    ChannelContext, ConnectorError, LinkedInConnector, LinkedInWebhookVerifier, PlatformConnector,
    PublishRequest, WebhookHeaders,
};
use nexiom_core::{Content, EventKind, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{LI_CLIENT_SECRET, LI_TOKEN, fixture, lookup, test_http};

pub struct LinkedInHarness;

pub const LI_ORG: &str = "urn:li:organization:2414183";
pub const LI_POST: &str = "urn:li:share:7100000000000000000";

pub fn linkedin(base: &str) -> Result<LinkedInConnector, ConnectorError> {
    LinkedInConnector::builder()
        .with_base_url(base)
        .with_oauth_url(base)
        .with_version("202601")
        .with_client_id("li-client-id")
        .with_client_secret(LI_CLIENT_SECRET)
        .with_application_id("9999")
        .with_page_size(2)
        .with_http_config(test_http())
        .build()
}

#[async_trait]
impl ContractHarness for LinkedInHarness {
    fn name(&self) -> String {
        "linkedin".into()
    }
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        Ok(Arc::new(linkedin(base_url)?))
    }
    fn context(&self) -> ChannelContext {
        ChannelContext::new(LI_ORG, LI_TOKEN)
    }
    async fn mount_recent_posts(&self, server: &MockServer, posts: &[SeedPost]) -> bool {
        lookup::mount_linkedin(server, posts).await
    }
    fn secrets(&self) -> Vec<String> {
        vec![LI_CLIENT_SECRET.into(), LI_TOKEN.into()]
    }
    fn publish_request(&self) -> PublishRequest {
        PublishRequest::new(Content::text("Hello LinkedIn"))
    }
    fn invalid_publish_request(&self) -> Option<PublishRequest> {
        Some(PublishRequest::new(Content::text("x".repeat(3001))))
    }
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
        Mock::given(method("POST"))
            .and(path("/rest/posts"))
            .and(header("LinkedIn-Version", "202601"))
            .and(header("X-Restli-Protocol-Version", "2.0.0"))
            .and(header(
                "authorization",
                format!("Bearer {LI_TOKEN}").as_str(),
            ))
            .and(body_partial_json(
                json!({"author": LI_ORG, "commentary": "Hello LinkedIn",
                "visibility": "PUBLIC", "lifecycleState": "PUBLISHED"}),
            ))
            .respond_with(ResponseTemplate::new(201).insert_header("x-restli-id", LI_POST))
            .mount(server)
            .await;
        ExpectedPublish {
            post_id: LI_POST.into(),
            url: Some(format!("https://www.linkedin.com/feed/update/{LI_POST}")),
        }
    }
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/rest/posts"))
            .respond_with(response)
            .mount(server)
            .await;
    }
    fn expired_token_response(&self) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_json(json!({"status":401,"serviceErrorCode":65600,
            "code":"INVALID_ACCESS_TOKEN","message":"Invalid access token"}))
    }
    fn comment_post_id(&self) -> String {
        LI_POST.into()
    }
    async fn mount_comment_pages(
        &self,
        server: &MockServer,
        post_id: &str,
        pages: &[Vec<SeedComment>],
    ) {
        let route = format!(
            "/rest/socialActions/{}/comments",
            post_id.replace(':', "%3A")
        );
        let total: usize = pages.iter().map(Vec::len).sum();
        let mut start = 0;
        for page in pages {
            let elements: Vec<Value> = page
                .iter()
                .map(|s| json!({"actor": s.author_id, "commentUrn": s.id, "id": s.id,
                    "created": {"actor": s.author_id, "time": s.created_unix * 1000},
                    "message": {"text": s.text, "attributes": []}, "object": "urn:li:activity:7100000000000000001"}))
                .collect();
            Mock::given(method("GET"))
                .and(path(route.as_str()))
                .and(query_param("start", start.to_string().as_str()))
                .and(query_param("count", "2"))
                .and(header("LinkedIn-Version", "202601"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "paging": {"start": start, "count": 2, "total": total, "links": []},
                    "elements": elements})))
                .mount(server)
                .await;
            start += page.len();
        }
    }
    fn webhook_samples(&self) -> Vec<WebhookSample> {
        vec![
            WebhookSample {
                name: "bare comment notification".into(),
                body: fixture("linkedin_comment_notification.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "urn:li:comment:(urn:li:activity:7100000000000000001,7100000000000000555)",
                        EventKind::Comment,
                    )
                    .sender("urn:li:person:aBcD3fGh")
                    .text("Love it! (especially the blue)")
                    .post("urn:li:share:7100000000000000000")
                    .at(1_751_000_000),
                ],
            },
            WebhookSample {
                name: "notifications envelope".into(),
                body: fixture("linkedin_notifications_envelope.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "urn:li:comment:(urn:li:activity:7100000000000000001,7100000000000000556)",
                        EventKind::Comment,
                    )
                    .sender("urn:li:person:xYz987")
                    .text("Thanks for the feedback")
                    .at(1_751_000_100),
                    ExpectedEvent::new("1234567892", EventKind::Other).at(1_751_000_200),
                ],
            },
        ]
    }
    fn sign(&self, body: &[u8]) -> WebhookHeaders {
        WebhookHeaders::new().with(
            "X-LI-Signature",
            LinkedInWebhookVerifier::sign(&SecretString::new(LI_CLIENT_SECRET), body),
        )
    }
    fn malformed_signature(&self) -> WebhookHeaders {
        WebhookHeaders::new().with("X-LI-Signature", "hmacsha256=not-hex")
    }
}
