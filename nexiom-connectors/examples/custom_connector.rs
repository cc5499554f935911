//! A fifth platform, written outside the crate: a Telegram Bot API connector
//! that implements `PlatformConnector` and passes the same contract suite as the
//! built-in four.
//!
//! Run the demo (against a local mock server, nothing leaves the machine):
//!
//! ```text
//! cargo run -p nexiom-connectors --example custom_connector
//! ```
//!
//! Run its contract suite (also part of `cargo test -p nexiom-connectors`):
//!
//! ```text
//! cargo test -p nexiom-connectors --example custom_connector
//! ```
//!
//! Telegram shapes used (Bot API): `POST /bot<token>/sendMessage` with
//! `{chat_id, text}` answers `{"ok":true,"result":{"message_id":…,"chat":{…},"date":…}}`;
//! errors are `{"ok":false,"error_code":429,"description":…,"parameters":{"retry_after":35}}`;
//! webhooks deliver one `Update` (`{"update_id", "message": {…}}`) per POST with the
//! `X-Telegram-Bot-Api-Secret-Token` header set by `setWebhook`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use nexiom_connectors::{
    ApiError, Capabilities, ChallengeResponse, ChannelContext, CommentPage, ConnectorError,
    MessageBody, NormalizedEvent, OutboundMessage, PlatformConnector, PublishRequest, Published,
    SentMessage, TokenGrant, WebhookError, WebhookHeaders, WebhookSetup,
};
use nexiom_core::{Content, EventKind, Platform, SecretString};
use serde_json::{Value, json};

const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// A Telegram bot. The channel's `account_id` is the chat (`@channel` or an id),
/// its access token the bot token; the webhook secret is app-level.
#[derive(Clone)]
struct TelegramConnector {
    platform: Platform,
    base_url: String,
    http: reqwest::Client,
    webhook_secret: SecretString,
    capabilities: Capabilities,
}

impl fmt::Debug for TelegramConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConnector")
            .field("base_url", &self.base_url)
            .field("webhook_secret", &self.webhook_secret)
            .finish_non_exhaustive()
    }
}

impl TelegramConnector {
    fn new(base_url: &str, webhook_secret: &str) -> Result<Self, ConnectorError> {
        let platform = Platform::custom("telegram").map_err(|e| ConnectorError::Config {
            reason: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ConnectorError::Config {
                reason: e.to_string(),
            })?;
        Ok(TelegramConnector {
            platform,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            webhook_secret: SecretString::new(webhook_secret),
            capabilities: Capabilities {
                dm: true,
                comments: false,
                media_kinds: Vec::new(),
                max_text_length: 4096,
                max_media_items: 0,
                ..Capabilities::default()
            },
        })
    }

    /// Calls a Bot API method. The bot token is part of the URL, so transport
    /// errors are reported without it.
    async fn call(
        &self,
        ctx: &ChannelContext,
        api: &str,
        body: Value,
    ) -> Result<Value, ConnectorError> {
        let url = format!("{}/bot{}/{api}", self.base_url, ctx.access_token.expose());
        let resp = self.http.post(url).json(&body).send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_connect() {
                ConnectorError::Transient {
                    platform: "telegram".into(),
                    detail: ApiError::message(e.to_string()),
                }
            } else {
                ConnectorError::OutcomeUnknown {
                    platform: "telegram".into(),
                    reason: e.to_string(),
                }
            }
        })?;
        let status = resp.status().as_u16();
        let header_retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(v.get("result").cloned().unwrap_or(Value::Null));
        }
        let detail = ApiError {
            status: Some(status),
            code: v
                .get("error_code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok()),
            message: v
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("no description")
                .replace(ctx.access_token.expose(), "[redacted]"),
            ..ApiError::default()
        };
        let platform = "telegram".to_owned();
        Err(match status {
            429 => ConnectorError::RateLimited {
                platform,
                retry_after: v
                    .pointer("/parameters/retry_after")
                    .and_then(Value::as_u64)
                    .or(header_retry)
                    .map(Duration::from_secs),
                detail,
            },
            401 => ConnectorError::Unauthorized { platform, detail },
            403 => ConnectorError::Forbidden { platform, detail },
            500..=599 => ConnectorError::Transient { platform, detail },
            _ => ConnectorError::Permanent { platform, detail },
        })
    }

    fn text_of(content: &Content) -> String {
        match &content.link {
            Some(link) if !content.text.contains(link.as_str()) => {
                format!("{}\n{link}", content.text).trim().to_owned()
            }
            _ => content.text.clone(),
        }
    }
}

#[async_trait]
impl PlatformConnector for TelegramConnector {
    fn name(&self) -> &str {
        "telegram"
    }

    fn platform(&self) -> Platform {
        self.platform.clone()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn refresh_token(&self, _ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        Err(ConnectorError::Unsupported {
            platform: "telegram".into(),
            operation: "refresh_token (bot tokens do not expire)",
        })
    }

    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        self.capabilities
            .validate("telegram", &request.content, request.schedule_at)?;
        let result = self
            .call(
                ctx,
                "sendMessage",
                json!({"chat_id": ctx.account_id, "text": Self::text_of(&request.content)}),
            )
            .await?;
        let id = result
            .get("message_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ConnectorError::InvalidResponse {
                platform: "telegram".into(),
                reason: "no result.message_id".into(),
            })?
            .to_string();
        let url = ctx
            .account_id
            .strip_prefix('@')
            .map(|channel| format!("https://t.me/{channel}/{id}"));
        Ok(Published {
            platform_post_id: id.clone(),
            url,
            ids: vec![id],
            failed_recipients: Vec::new(),
            unknown_recipients: Vec::new(),
            unsent_recipients: Vec::new(),
            scheduled: false,
        })
    }

    async fn list_new_comments(
        &self,
        _: &ChannelContext,
        _: &str,
        _: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        Err(ConnectorError::Unsupported {
            platform: "telegram".into(),
            operation: "comments",
        })
    }

    async fn reply_comment(
        &self,
        _: &ChannelContext,
        _: &str,
        _: &str,
    ) -> Result<String, ConnectorError> {
        Err(ConnectorError::Unsupported {
            platform: "telegram".into(),
            operation: "comments",
        })
    }

    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        let MessageBody::Content(content) = &message.body else {
            return Err(ConnectorError::Unsupported {
                platform: "telegram".into(),
                operation: "templates",
            });
        };
        self.capabilities.validate("telegram", content, None)?;
        let mut body = json!({"chat_id": message.recipient, "text": Self::text_of(content)});
        if let Some(id) = message
            .reply_to
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
        {
            body["reply_parameters"] = json!({"message_id": id});
        }
        let result = self.call(ctx, "sendMessage", body).await?;
        Ok(SentMessage {
            message_id: result
                .get("message_id")
                .and_then(Value::as_i64)
                .unwrap_or_default()
                .to_string(),
            recipient_id: Some(message.recipient.clone()),
        })
    }

    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        self.call(
            ctx,
            "setWebhook",
            json!({"url": setup.callback_url, "secret_token": self.webhook_secret.expose()}),
        )
        .await
        .map(|_| ())
    }

    fn answer_challenge(
        &self,
        _query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        Err(ConnectorError::Unsupported {
            platform: "telegram".into(),
            operation: "subscription handshake (setWebhook needs none)",
        })
    }

    /// Telegram does not sign bodies; it echoes the `secret_token` given to
    /// `setWebhook`, compared here in constant time.
    ///
    /// Not a signing oracle: there is no handshake endpoint (`answer_challenge`
    /// refuses), and the HMAC below only equalizes comparison time under a fixed,
    /// public key; its output is never sent back to anyone.
    fn verify_webhook(&self, headers: &WebhookHeaders, _body: &[u8]) -> Result<(), ConnectorError> {
        let value = headers
            .get(SECRET_HEADER)
            .ok_or(WebhookError::MissingSignature {
                header: SECRET_HEADER,
            })?;
        let well_formed = !value.is_empty()
            && value.len() <= 256
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !well_formed {
            return Err(WebhookError::MalformedSignature {
                header: SECRET_HEADER,
                reason: "expected 1-256 characters of A-Z, a-z, 0-9, _ and -",
            }
            .into());
        }
        // Constant time: compare HMACs of both values under a fixed key.
        let a = nexiom_connectors::hmac_sha256_hex(b"telegram-compare", value.as_bytes());
        let b = nexiom_connectors::hmac_sha256_hex(
            b"telegram-compare",
            self.webhook_secret.expose().as_bytes(),
        );
        if a == b {
            Ok(())
        } else {
            Err(WebhookError::SignatureMismatch {
                header: SECRET_HEADER,
            }
            .into())
        }
    }

    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        let bad = |r: &str| {
            ConnectorError::from(WebhookError::InvalidPayload {
                reason: r.to_owned(),
            })
        };
        let update: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
        update
            .get("update_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no update_id"))?;
        let Some(msg) = update.get("message").or_else(|| update.get("channel_post")) else {
            return Ok(Vec::new());
        };
        let message_id = msg
            .get("message_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no message_id"))?;
        let chat = msg
            .pointer("/chat/id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no chat.id"))?;
        let date = msg
            .get("date")
            .and_then(Value::as_i64)
            .and_then(|d| DateTime::from_timestamp(d, 0))
            .ok_or_else(|| bad("no date"))?;
        Ok(vec![NormalizedEvent {
            platform: self.platform.clone(),
            account_id: None,
            // Message ids are unique per chat only.
            event_id: format!("{chat}:{message_id}"),
            kind: EventKind::Message,
            sender_id: msg
                .pointer("/from/id")
                .and_then(Value::as_i64)
                .map(|i| i.to_string()),
            sender_name: msg
                .pointer("/from/username")
                .and_then(Value::as_str)
                .map(str::to_owned),
            text: msg
                .get("text")
                .or_else(|| msg.get("caption"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            has_media: msg.get("photo").is_some()
                || msg.get("video").is_some()
                || msg.get("document").is_some(),
            delivery_status: None,
            message_id: None,
            thread_id: Some(chat.to_string()),
            post_id: None,
            parent_id: msg
                .pointer("/reply_to_message/message_id")
                .and_then(Value::as_i64)
                .map(|i| format!("{chat}:{i}")),
            occurred_at: date,
            payload: update.clone(),
        }])
    }
}

mod harness {
    //! The contract-suite harness of the Telegram connector.

    use super::*;
    use nexiom_connectors::testing::{
        ContractHarness, ExpectedEvent, ExpectedPublish, SeedComment, WebhookSample,
    };
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    pub const BOT_TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
    pub const WEBHOOK_SECRET: &str = "my_webhook_secret-42";

    pub struct TelegramHarness;

    #[async_trait]
    impl ContractHarness for TelegramHarness {
        fn name(&self) -> String {
            "telegram (example)".into()
        }
        fn connector(&self, base_url: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
            Ok(Arc::new(TelegramConnector::new(base_url, WEBHOOK_SECRET)?))
        }
        fn context(&self) -> ChannelContext {
            ChannelContext::new("@nexiom_news", BOT_TOKEN)
        }
        fn secrets(&self) -> Vec<String> {
            vec![BOT_TOKEN.into(), WEBHOOK_SECRET.into()]
        }
        fn publish_request(&self) -> PublishRequest {
            PublishRequest::new(Content::text("Hello channel"))
        }
        fn invalid_publish_request(&self) -> Option<PublishRequest> {
            Some(PublishRequest::new(Content::text("x".repeat(4097))))
        }
        async fn mount_publish_success(&self, server: &MockServer) -> ExpectedPublish {
            Mock::given(method("POST"))
                .and(path(format!("/bot{BOT_TOKEN}/sendMessage").as_str()))
                .and(body_partial_json(json!({"chat_id":"@nexiom_news","text":"Hello channel"})))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok":true,"result":{
                    "message_id":42,"chat":{"id":-1001234567890_i64,"title":"Nexiom news","username":"nexiom_news","type":"channel"},
                    "date":1700000000,"text":"Hello channel"}})))
                .mount(server)
                .await;
            ExpectedPublish {
                post_id: "42".into(),
                url: Some("https://t.me/nexiom_news/42".into()),
            }
        }
        async fn mount_publish_failure(&self, server: &MockServer, response: ResponseTemplate) {
            Mock::given(method("POST"))
                .and(path(format!("/bot{BOT_TOKEN}/sendMessage").as_str()))
                .respond_with(response)
                .mount(server)
                .await;
        }
        fn expired_token_response(&self) -> ResponseTemplate {
            ResponseTemplate::new(401)
                .set_body_json(json!({"ok":false,"error_code":401,"description":"Unauthorized"}))
        }
        async fn mount_comment_pages(&self, _: &MockServer, _: &str, _: &[Vec<SeedComment>]) {}
        fn webhook_samples(&self) -> Vec<WebhookSample> {
            let body = json!({"update_id":10000,"message":{"message_id":1365,"date":1441645532,
                "chat":{"id":1111111,"type":"private","first_name":"Test","username":"Test"},
                "from":{"id":1111111,"is_bot":false,"first_name":"Test","username":"Test"},
                "text":"/start"}});
            vec![WebhookSample {
                name: "private message".into(),
                body: serde_json::to_vec(&body).unwrap_or_default(),
                expected: vec![
                    ExpectedEvent::new("1111111:1365", EventKind::Message)
                        .sender("1111111")
                        .text("/start")
                        .at(1_441_645_532),
                ],
            }]
        }
        fn sign(&self, _body: &[u8]) -> WebhookHeaders {
            WebhookHeaders::new().with(SECRET_HEADER, WEBHOOK_SECRET)
        }
        fn malformed_signature(&self) -> WebhookHeaders {
            WebhookHeaders::new().with(SECRET_HEADER, "not allowed!")
        }
        fn signs_bodies(&self) -> bool {
            // Telegram echoes a shared secret; it does not sign the body.
            false
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use nexiom_connectors::testing::{ContractHarness, run_contract_suite};

    let report = run_contract_suite(&harness::TelegramHarness).await;
    println!("contract suite for {}:", report.harness);
    for name in &report.passed {
        println!("  ok      {name}");
    }
    for (name, why) in &report.skipped {
        println!("  skipped {name} ({why})");
    }
    for (name, why) in &report.failed {
        println!("  FAILED  {name}: {why}");
    }

    // The connector is used like any other, through the trait.
    let server = wiremock::MockServer::start().await;
    let expected = harness::TelegramHarness
        .mount_publish_success(&server)
        .await;
    let connector: Arc<dyn PlatformConnector> = Arc::new(TelegramConnector::new(
        &server.uri(),
        harness::WEBHOOK_SECRET,
    )?);
    let registry = nexiom_connectors::ConnectorRegistry::new().with(connector);
    let published = registry
        .get("telegram")?
        .publish(
            &ChannelContext::new("@nexiom_news", harness::BOT_TOKEN),
            &PublishRequest::new(Content::text("Hello channel")),
        )
        .await?;
    println!(
        "published {} at {:?}",
        published.platform_post_id, published.url
    );
    assert_eq!(published.platform_post_id, expected.post_id);
    if report.is_ok() {
        Ok(())
    } else {
        Err("contract suite failed".into())
    }
}

#[cfg(test)]
mod tests {
    use nexiom_connectors::testing::run_contract_suite;

    #[tokio::test]
    async fn telegram_example_passes_the_contract_suite() {
        let report = run_contract_suite(&super::harness::TelegramHarness).await;
        report.assert_passed();
        assert_eq!(report.passed.len(), 9, "{report:?}");
    }
}
