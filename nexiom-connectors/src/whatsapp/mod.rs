//! WhatsApp Cloud API (platform-apis §1): text, media and template messages to
//! `/{phone-number-id}/messages`, inbound message and status webhooks.
//!
//! The channel's `account_id` is the **phone-number id**. "Publishing" sends the
//! content (or a template) to each recipient of the request, one message each.

mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use nexiom_core::{Clock, Content, MediaKind, Platform};
use serde_json::{Value, json};

use crate::capabilities::Capabilities;
use crate::connector::PlatformConnector;
use crate::error::{ConnectorError, ValidationError};
use crate::graph::{GraphClient, builder::meta_builder};
use crate::policy;
use crate::types::{
    ChallengeResponse, ChannelContext, CommentPage, MessageBody, NormalizedEvent, OutboundMessage,
    PublishRequest, Published, SentMessage, TokenGrant, WebhookSetup,
};
use crate::webhook::{MetaWebhookVerifier, WebhookHeaders};

const NAME: &str = "whatsapp";

meta_builder!(WhatsAppBuilder, WhatsAppConnector, "whatsapp", "WHATSAPP");

impl WhatsAppBuilder {
    /// Builds the connector.
    pub fn build(self) -> Result<WhatsAppConnector, ConnectorError> {
        let (graph, verifier) = self.parts()?;
        Ok(WhatsAppConnector {
            clock: graph.core().clock().clone(),
            graph,
            verifier,
            capabilities: WhatsAppConnector::default_capabilities(),
        })
    }
}

/// The WhatsApp Cloud API connector.
#[derive(Debug, Clone)]
pub struct WhatsAppConnector {
    graph: GraphClient,
    verifier: MetaWebhookVerifier,
    capabilities: Capabilities,
    clock: Arc<dyn Clock>,
}

impl WhatsAppConnector {
    /// A builder.
    pub fn builder() -> WhatsAppBuilder {
        WhatsAppBuilder::new()
    }

    /// What WhatsApp accepts: 4096 characters of text, 1024 of caption, one media
    /// item (image ≤ 5 MB documented; video 16 MB is the commonly cited limit,
    /// unverified here).
    pub fn default_capabilities() -> Capabilities {
        Capabilities {
            dm: true,
            comments: false,
            schedule_native: false,
            media_kinds: vec![
                MediaKind::Image,
                MediaKind::Video,
                MediaKind::Audio,
                MediaKind::Document,
            ],
            max_image_mb: Some(5),
            max_video_mb: Some(16),
            max_video_seconds: None,
            max_text_length: 4096,
            max_caption_length: Some(1024),
            max_media_items: 1,
            requires_media: false,
            link_in_text: true,
        }
    }

    async fn send(
        &self,
        ctx: &ChannelContext,
        payload: Value,
    ) -> Result<SentMessage, ConnectorError> {
        let v = self
            .graph
            .post(ctx, &[&ctx.account_id, "messages"], payload)
            .await?;
        let message_id = v
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConnectorError::invalid_response(NAME, "no messages[0].id in the answer")
            })?;
        Ok(SentMessage {
            message_id: message_id.to_owned(),
            recipient_id: v
                .pointer("/contacts/0/wa_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn check_recipient(recipient: &str) -> Result<(), ValidationError> {
    let digits = recipient.trim_start_matches('+');
    if digits.is_empty() || digits.len() > 20 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ValidationError::InvalidField {
            field: "recipient",
            reason: format!("{recipient:?} is not a phone number or wa_id"),
        });
    }
    Ok(())
}

/// The documented `/messages` body for one recipient.
pub(crate) fn message_payload(
    to: &str,
    body: &MessageBody,
    reply_to: Option<&str>,
    reference: Option<&str>,
) -> Value {
    let mut p = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    });
    match body {
        MessageBody::Template(t) => {
            let mut template = json!({"name": t.name, "language": {"code": t.language}});
            if !t.components.is_empty() {
                template["components"] = Value::Array(t.components.clone());
            }
            p["type"] = json!("template");
            p["template"] = template;
        }
        MessageBody::Content(c) => content_payload(&mut p, c),
    }
    if let Some(id) = reply_to {
        p["context"] = json!({"message_id": id});
    }
    if let Some(r) = reference {
        p["biz_opaque_callback_data"] = json!(r);
    }
    p
}

/// Checks what the payload cannot carry: an audio message has no caption,
/// so its text (or link) would be dropped without a word.
fn check_content(c: &Content) -> Result<(), ValidationError> {
    let audio = c.media.first().is_some_and(|m| m.kind == MediaKind::Audio);
    if audio && !c.text_with_link().trim().is_empty() {
        return Err(ValidationError::InvalidField {
            field: "text",
            reason: "a WhatsApp audio message carries no caption: send the text as a message \
                     of its own"
                .into(),
        });
    }
    Ok(())
}

fn content_payload(p: &mut Value, c: &Content) {
    let text = c.text_with_link();
    match c.media.first() {
        Some(m) => {
            let kind = m.kind.as_str();
            let mut media = json!({"link": m.url});
            if m.kind != MediaKind::Audio && !text.is_empty() {
                media["caption"] = json!(text);
            }
            p["type"] = json!(kind);
            p[kind] = media;
        }
        None => {
            p["type"] = json!("text");
            p["text"] = json!({"preview_url": c.link.is_some(), "body": text});
        }
    }
}

#[async_trait]
impl PlatformConnector for WhatsAppConnector {
    fn name(&self) -> &str {
        NAME
    }

    fn platform(&self) -> Platform {
        Platform::WhatsApp
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// WhatsApp system-user tokens do not expire and have no refresh flow.
    async fn refresh_token(&self, _ctx: &ChannelContext) -> Result<TokenGrant, ConnectorError> {
        Err(ConnectorError::unsupported(
            NAME,
            "refresh_token (system-user tokens do not expire; replace the token)",
        ))
    }

    /// Sends the content (or the template) to every recipient, in order. If the
    /// first send fails the error is returned (nothing was sent). A later
    /// failure is listed by what it means, and not retried (the others already
    /// got the message): refused for good in `failed_recipients`; no clear
    /// answer (it may have been sent) in `unknown_recipients`; refused before
    /// acting in `unsent_recipients`, which also take, unattempted, every
    /// recipient after a failure of the whole channel (throttled, circuit
    /// open, token refused, permission missing: the broadcast stops there). A pair rate limit is
    /// about its one recipient, and the others go on.
    async fn publish(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        let body = match &request.template {
            Some(t) => MessageBody::Template(t.clone()),
            None => {
                self.capabilities
                    .validate(NAME, &request.content, request.schedule_at)?;
                check_content(&request.content)?;
                MessageBody::Content(request.content.clone())
            }
        };
        if request.schedule_at.is_some() {
            return Err(ValidationError::SchedulingUnsupported {
                platform: NAME.into(),
            }
            .into());
        }
        if request.recipients.is_empty() {
            return Err(ValidationError::InvalidField {
                field: "recipients",
                reason: "WhatsApp publishing needs at least one recipient".into(),
            }
            .into());
        }
        for r in &request.recipients {
            check_recipient(r)?;
        }
        let mut ids = Vec::new();
        let (mut failed, mut unknown, mut unsent) = (Vec::new(), Vec::new(), Vec::new());
        for (i, to) in request.recipients.iter().enumerate() {
            let payload = message_payload(to, &body, None, request.reference.as_deref());
            let e = match self.send(ctx, payload).await {
                Ok(sent) => {
                    ids.push(sent.message_id);
                    continue;
                }
                Err(e) if i == 0 => return Err(e),
                Err(e) => e,
            };
            tracing::warn!(recipient_index = i, error = %e, "WhatsApp broadcast send failed");
            let whole_channel = (e.stops_a_listing() && !e.is_pair_rate_limit())
                || matches!(e, ConnectorError::Forbidden { .. });
            if whole_channel {
                // The channel, not this recipient (throttled, circuit open,
                // token refused, permission missing): nothing more goes out.
                unsent.extend(request.recipients[i..].iter().cloned());
                break;
            }
            match e {
                // No clear answer, or an answer that could not be read after
                // the platform accepted the request: it may have been sent.
                ConnectorError::OutcomeUnknown { .. } | ConnectorError::InvalidResponse { .. } => {
                    unknown.push(to.clone())
                }
                e if e.is_retryable() => unsent.push(to.clone()),
                _ => failed.push(to.clone()),
            }
        }
        let first = ids.first().cloned().unwrap_or_default();
        Ok(Published {
            platform_post_id: first,
            url: None,
            ids,
            failed_recipients: failed,
            unknown_recipients: unknown,
            unsent_recipients: unsent,
            scheduled: false,
        })
    }

    async fn list_new_comments(
        &self,
        _ctx: &ChannelContext,
        _post_id: &str,
        _cursor: Option<&str>,
    ) -> Result<CommentPage, ConnectorError> {
        Err(ConnectorError::unsupported(NAME, "comments"))
    }

    async fn reply_comment(
        &self,
        _ctx: &ChannelContext,
        _comment_id: &str,
        _text: &str,
    ) -> Result<String, ConnectorError> {
        Err(ConnectorError::unsupported(NAME, "comments"))
    }

    /// Sends one message. A free-form message more than 24 h after the contact's
    /// last inbound message is refused before the call: only a template is allowed.
    async fn send_message(
        &self,
        ctx: &ChannelContext,
        message: &OutboundMessage,
    ) -> Result<SentMessage, ConnectorError> {
        check_recipient(&message.recipient)?;
        if let MessageBody::Content(c) = &message.body {
            self.capabilities.validate(NAME, c, None)?;
            check_content(c)?;
        }
        policy::check_window(NAME, message, self.clock.now(), "a template message")?;
        let payload = message_payload(
            &message.recipient,
            &message.body,
            message.reply_to.as_deref(),
            message.reference.as_deref(),
        );
        self.send(ctx, payload).await
    }

    /// `POST /{WABA-ID}/subscribed_apps`; `setup.object_id` must be the WABA id
    /// (the phone-number id cannot subscribe).
    async fn setup_webhook(
        &self,
        ctx: &ChannelContext,
        setup: &WebhookSetup,
    ) -> Result<(), ConnectorError> {
        let waba = setup
            .object_id
            .as_deref()
            .ok_or(ValidationError::InvalidField {
                field: "object_id",
                reason: "WhatsApp subscribes the WhatsApp Business Account: give its id".into(),
            })?;
        self.graph
            .post(ctx, &[waba, "subscribed_apps"], json!({}))
            .await?;
        Ok(())
    }

    fn answer_challenge(
        &self,
        query: &[(String, String)],
    ) -> Result<ChallengeResponse, ConnectorError> {
        Ok(self.verifier.answer_challenge(query)?)
    }

    fn verify_webhook(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), ConnectorError> {
        Ok(self.verifier.verify(headers, body)?)
    }

    fn handle_webhook(&self, body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
        webhook::normalize(body, self.clock.now())
    }

    fn handle_webhook_events(
        &self,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::types::WebhookItem>, ConnectorError> {
        webhook::normalize_events(body, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Template;
    use nexiom_core::Media;

    #[test]
    fn an_audio_message_with_a_text_is_refused() {
        let audio = Media::new(MediaKind::Audio, "https://cdn.example.com/a.ogg");
        let with_text = Content::text("Listen").with_media(audio.clone());
        assert!(check_content(&with_text).is_err());
        let with_link = Content::text("")
            .with_link("https://shop.example.com")
            .with_media(audio.clone());
        assert!(check_content(&with_link).is_err());
        assert!(check_content(&Content::text("").with_media(audio)).is_ok());
        let image = Media::new(MediaKind::Image, "https://cdn.example.com/a.jpg");
        assert!(check_content(&Content::text("caption").with_media(image)).is_ok());
    }

    #[test]
    fn payloads_match_the_documented_shapes() {
        let text = message_payload(
            "15551234567",
            &MessageBody::Content(Content::text("Hello")),
            None,
            None,
        );
        assert_eq!(
            text,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567",
                   "type":"text","text":{"preview_url":false,"body":"Hello"}})
        );
        let image = message_payload(
            "+16505551234",
            &MessageBody::Content(
                Content::text("The best succulent ever?")
                    .with_media(Media::new(MediaKind::Image, "https://cdn.example/s.jpg")),
            ),
            Some("wamid.prev"),
            Some("outbox-42"),
        );
        assert_eq!(image["type"], "image");
        assert_eq!(image["image"]["link"], "https://cdn.example/s.jpg");
        assert_eq!(image["image"]["caption"], "The best succulent ever?");
        assert_eq!(image["context"]["message_id"], "wamid.prev");
        assert_eq!(image["biz_opaque_callback_data"], "outbox-42");
        let mut t = Template::new("order_update_v1", "en_US");
        t.components = vec![json!({"type":"body","parameters":[{"type":"text","text":"Alex"}]})];
        let tpl = message_payload("12015550123", &MessageBody::Template(t), None, None);
        assert_eq!(tpl["template"]["name"], "order_update_v1");
        assert_eq!(tpl["template"]["language"]["code"], "en_US");
        assert_eq!(
            tpl["template"]["components"][0]["parameters"][0]["text"],
            "Alex"
        );
        let link = message_payload(
            "1",
            &MessageBody::Content(Content::text("See").with_link("https://x.example")),
            None,
            None,
        );
        assert_eq!(link["text"]["body"], "See\nhttps://x.example");
        assert_eq!(link["text"]["preview_url"], true);
    }

    #[test]
    fn recipients_are_checked() {
        assert!(check_recipient("+33612345678").is_ok());
        assert!(check_recipient("15551234567").is_ok());
        assert!(check_recipient("").is_err());
        assert!(check_recipient("abc").is_err());
        assert!(check_recipient("+").is_err());
    }
}
