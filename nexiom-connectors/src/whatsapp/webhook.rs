//! WhatsApp webhook normalization (platform-apis §1.3, §1.4): `object =
//! whatsapp_business_account` → `entry[]` → `changes[]` → `value` with either
//! `messages[]` (+ `contacts[]`) or `statuses[]`.

use std::collections::HashMap;

use nexiom_core::{DeliveryStatus, EventKind, Platform};
use serde_json::Value;

use crate::error::{ConnectorError, WebhookError};
use crate::graph::webhook::{entries, required, required_time, s};
use crate::time;
use crate::types::NormalizedEvent;

const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

pub(crate) fn normalize(body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    let mut out = Vec::new();
    for entry in entries(body, "whatsapp_business_account")? {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            continue;
        };
        for change in changes {
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                continue;
            }
            let value = change
                .get("value")
                .filter(|v| v.is_object())
                .ok_or_else(|| WebhookError::payload("change without a value object"))?;
            normalize_value(value, &mut out)?;
        }
    }
    Ok(out)
}

fn normalize_value(value: &Value, out: &mut Vec<NormalizedEvent>) -> Result<(), ConnectorError> {
    let account = s(value, "/metadata/phone_number_id");
    let names: HashMap<String, String> = value
        .get("contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((s(c, "/wa_id")?, s(c, "/profile/name")?)))
        .collect();
    for m in value
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = required(m, "/id", "message")?;
        let from = s(m, "/from");
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("unknown");
        let text = match kind {
            "text" => s(m, "/text/body"),
            "button" => s(m, "/button/text"),
            "interactive" => s(m, "/interactive/button_reply/title")
                .or_else(|| s(m, "/interactive/list_reply/title")),
            "reaction" => s(m, "/reaction/emoji"),
            k if MEDIA_TYPES.contains(&k) => s(m, &format!("/{k}/caption")),
            _ => None,
        };
        out.push(NormalizedEvent {
            platform: Platform::WhatsApp,
            account_id: account.clone(),
            event_id: id,
            kind: EventKind::Message,
            sender_name: from.as_ref().and_then(|f| names.get(f).cloned()),
            sender_id: from.clone(),
            text,
            has_media: MEDIA_TYPES.contains(&kind),
            delivery_status: None,
            message_id: None,
            thread_id: from,
            post_id: None,
            parent_id: s(m, "/context/id"),
            occurred_at: required_time(m.get("timestamp").and_then(time::secs_value), "message")?,
            payload: m.clone(),
        });
    }
    for st in value
        .get("statuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = required(st, "/id", "status")?;
        let status_text = required(st, "/status", "status")?;
        // Unknown statuses (e.g. "deleted", "warning") are kept as `Other`.
        let status = status_text.parse::<DeliveryStatus>().ok();
        let recipient = s(st, "/recipient_id");
        out.push(NormalizedEvent {
            platform: Platform::WhatsApp,
            account_id: account.clone(),
            event_id: format!("{id}:{status_text}"),
            kind: if status.is_some() {
                EventKind::Status
            } else {
                EventKind::Other
            },
            sender_id: None,
            sender_name: None,
            text: s(st, "/errors/0/title").or_else(|| s(st, "/errors/0/message")),
            has_media: false,
            delivery_status: status,
            message_id: Some(id),
            thread_id: recipient,
            post_id: None,
            parent_id: None,
            occurred_at: required_time(st.get("timestamp").and_then(time::secs_value), "status")?,
            payload: st.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_message_and_status() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PNID"},
            "contacts":[{"profile":{"name":"Kerry"},"wa_id":"16315551234"}],
            "messages":[{"from":"16315551234","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"Bonjour \u00e9"}}]}},
            {"field":"messages","value":{"metadata":{"phone_number_id":"PNID"},
            "statuses":[{"id":"wamid.OUT","status":"delivered","timestamp":"1700000100","recipient_id":"16315551234"}]}}]}]}"#;
        let ev = normalize(body).expect("events");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event_id, "wamid.A");
        assert_eq!(ev[0].sender_name.as_deref(), Some("Kerry"));
        assert_eq!(ev[0].text.as_deref(), Some("Bonjour é"));
        assert_eq!(ev[0].account_id.as_deref(), Some("PNID"));
        assert_eq!(ev[0].occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(ev[1].kind, EventKind::Status);
        assert_eq!(ev[1].event_id, "wamid.OUT:delivered");
        assert_eq!(ev[1].delivery_status, Some(DeliveryStatus::Delivered));
        assert_eq!(ev[1].message_id.as_deref(), Some("wamid.OUT"));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"not json"[..],
            br#"{"object":"page","entry":[]}"#,
            br#"{"object":"whatsapp_business_account"}"#,
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"type":"text"}]}}]}]}"#,
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x","timestamp":"soon"}]}}]}]}"#,
        ] {
            assert!(normalize(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let empty = normalize(br#"{"object":"whatsapp_business_account","entry":[]}"#).expect("ok");
        assert!(empty.is_empty());
    }
}
