//! Signed webhook bodies, as WhatsApp and a Facebook page deliver them.

use chrono::{DateTime, Utc};
use nexiom::connectors::{MetaWebhookVerifier, WebhookHeaders};
use nexiom::core::SecretString;
use serde_json::json;

use super::setup::{APP_SECRET, PAGE_ID, PHONE_ID};

pub(super) fn whatsapp_message(
    wamid: &str,
    from: &str,
    name: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_ID },
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": at.timestamp().to_string(),
                           "type": "text", "text": { "body": text } }]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

pub(super) fn facebook_comment(
    post_id: &str,
    comment_id: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Vec<u8> {
    json!({
        "object": "page",
        "entry": [{ "id": PAGE_ID, "time": at.timestamp(), "changes": [{ "field": "feed", "value": {
            "from": { "id": "24033296592948231", "name": "Ann Example" },
            "message": text, "post_id": post_id, "comment_id": comment_id,
            "created_time": at.timestamp(), "item": "comment", "parent_id": post_id, "verb": "add"
        }}]}]
    })
    .to_string()
    .into_bytes()
}

pub(super) fn signed(body: &[u8]) -> WebhookHeaders {
    WebhookHeaders::new().with(
        "X-Hub-Signature-256",
        MetaWebhookVerifier::sign(&SecretString::new(APP_SECRET), body),
    )
}
