//! Pieces of Meta webhook normalization shared by the three Meta connectors: the
//! `{"object", "entry": [...]}` envelope and the Messenger / Instagram
//! `messaging[]` events.

use chrono::{DateTime, Utc};
use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::{ConnectorError, WebhookError};
use crate::time;
use crate::types::NormalizedEvent;

/// The largest body accepted (Meta batches up to 1000 updates; 8 MiB is far
/// above any documented payload and bounds the work on hostile input).
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Parses the envelope and checks `object`; returns the entries.
pub(crate) fn entries(body: &[u8], expected_object: &str) -> Result<Vec<Value>, ConnectorError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::payload("body too large").into());
    }
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::payload(format!("not JSON: {e}")))?;
    let object = v
        .get("object")
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::payload("no object field"))?;
    if object != expected_object {
        return Err(WebhookError::payload(format!(
            "object is {object:?}, expected {expected_object:?}"
        ))
        .into());
    }
    // Taken, not cloned: the body is parsed once and moved into the events.
    match v.get_mut("entry").map(Value::take) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(WebhookError::payload("no entry array").into()),
    }
}

/// A string (or number) field as an owned string.
pub(crate) fn s(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A required id, or a payload error naming it.
pub(crate) fn required(v: &Value, pointer: &str, what: &str) -> Result<String, ConnectorError> {
    s(v, pointer).ok_or_else(|| WebhookError::payload(format!("{what} without {pointer}")).into())
}

/// A required time, or a payload error.
pub(crate) fn required_time(
    t: Option<DateTime<Utc>>,
    what: &str,
) -> Result<DateTime<Utc>, ConnectorError> {
    t.ok_or_else(|| WebhookError::payload(format!("{what} without a valid timestamp")).into())
}

/// Normalizes `entry.messaging[]` (Messenger and Instagram DMs; timestamps in
/// milliseconds). Echoes of our own messages and non-message events (reads,
/// reactions, postbacks) are skipped.
pub(crate) fn messaging_events(
    platform: &Platform,
    entry: &Value,
    out: &mut Vec<NormalizedEvent>,
) -> Result<(), ConnectorError> {
    let account = s(entry, "/id");
    let Some(items) = entry.get("messaging").and_then(Value::as_array) else {
        return Ok(());
    };
    for item in items {
        let Some(message) = item.get("message").filter(|m| m.is_object()) else {
            continue;
        };
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let mid = required(message, "/mid", "message")?;
        let sender = s(item, "/sender/id");
        let occurred = item
            .get("timestamp")
            .and_then(time::millis_value)
            .or_else(|| entry.get("time").and_then(time::millis_value));
        let has_media = message
            .get("attachments")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        out.push(NormalizedEvent {
            platform: platform.clone(),
            account_id: account.clone().or_else(|| s(item, "/recipient/id")),
            event_id: mid,
            kind: EventKind::Message,
            sender_id: sender.clone(),
            sender_name: None,
            text: s(message, "/text"),
            has_media,
            delivery_status: None,
            message_id: None,
            thread_id: sender,
            post_id: None,
            parent_id: s(message, "/reply_to/mid"),
            occurred_at: required_time(occurred, "message")?,
            payload: item.clone(),
        });
    }
    Ok(())
}
