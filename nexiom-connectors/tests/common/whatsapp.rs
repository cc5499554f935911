//! The WhatsApp harness: the connector against a local server (`whatsapp`,
//! phone number id `WA_PHONE_ID`) and the Cloud API answers and webhook samples
//! the contract suite expects.

use std::sync::Arc;

use async_trait::async_trait;
use nexiom_connectors::testing::{
    ContractHarness, ExpectedEvent, ExpectedPublish, SeedComment, WebhookSample,
};
use nexiom_connectors::{
    ChannelContext, ConnectorError, PlatformConnector, PublishRequest, WebhookHeaders,
    WhatsAppConnector,
};
use nexiom_core::{Content, DeliveryStatus, EventKind};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{
    ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN, expired_graph_token, fixture, meta_malformed,
    meta_sign, test_http,
};

pub struct WhatsAppHarness;

pub const WA_PHONE_ID: &str = "106540352242922";

pub fn whatsapp(base: &str) -> Result<WhatsAppConnector, ConnectorError> {
    WhatsAppConnector::builder()
        .with_base_url(base)
        .with_app_secret(APP_SECRET)
        .with_verify_token(VERIFY_TOKEN)
        .with_http_config(test_http())
        .build()
}

#[async_trait]
impl ContractHarness for WhatsAppHarness {
    fn name(&self) -> String {
        "whatsapp".into()
    }
    fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        Ok(Arc::new(whatsapp(base_url)?))
    }
    fn context(&self) -> ChannelContext {
        ChannelContext::new(WA_PHONE_ID, ACCESS_TOKEN)
    }
    fn secrets(&self) -> Vec<String> {
        vec![APP_SECRET.into(), ACCESS_TOKEN.into(), VERIFY_TOKEN.into()]
    }
    fn publish_request(&self) -> PublishRequest {
        PublishRequest {
            recipients: vec!["+16505551234".into()],
            ..PublishRequest::new(Content::text("Hello"))
        }
    }
    fn invalid_publish_request(&self) -> Option<PublishRequest> {
        Some(PublishRequest {
            recipients: vec!["+16505551234".into()],
            ..PublishRequest::new(Content::text("x".repeat(4097)))
        })
    }
    async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{WA_PHONE_ID}/messages").as_str()))
            .and(header("authorization", format!("Bearer {ACCESS_TOKEN}").as_str()))
            .and(body_partial_json(json!({"messaging_product":"whatsapp","to":"+16505551234","type":"text","text":{"body":"Hello"}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product":"whatsapp",
                "contacts":[{"input":"+16505551234","wa_id":"16505551234"}],
                "messages":[{"id":"wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"}]})))
            .mount(server)
            .await;
        ExpectedPublish {
            post_id: "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA".into(),
            url: None,
        }
    }
    async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/v25.0/{WA_PHONE_ID}/messages").as_str()))
            .respond_with(response)
            .mount(server)
            .await;
    }
    fn expired_token_response(&self) -> ResponseTemplate {
        expired_graph_token()
    }
    async fn mount_comment_pages(
        &self,
        _server: &MockServer,
        _post_id: &str,
        _pages: &[Vec<SeedComment>],
    ) {
    }
    fn webhook_samples(&self) -> Vec<WebhookSample> {
        vec![
            WebhookSample {
                name: "text message".into(),
                body: fixture("whatsapp_text_message.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                        EventKind::Message,
                    )
                    .sender("16505551234")
                    .text("Does it come in another color? été 🌻")
                    .at(1_749_416_383),
                ],
            },
            WebhookSample {
                name: "image reply".into(),
                body: fixture("whatsapp_image_reply.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                        EventKind::Message,
                    )
                    .sender("16505551234")
                    .text("Like this one")
                    .parent("wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA")
                    .at(1_750_090_702),
                ],
            },
            WebhookSample {
                name: "statuses".into(),
                body: fixture("whatsapp_statuses.json"),
                expected: vec![
                    ExpectedEvent::new(
                        "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA:delivered",
                        EventKind::Status,
                    )
                    .status(
                        "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA",
                        DeliveryStatus::Delivered,
                    )
                    .at(1_750_263_773),
                    ExpectedEvent::new(
                        "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJFQUJGRTk5MkM5OTYxNjRCQUEA:failed",
                        EventKind::Status,
                    )
                    .status(
                        "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJFQUJGRTk5MkM5OTYxNjRCQUEA",
                        DeliveryStatus::Failed,
                    )
                    .text("Re-engagement message"),
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
