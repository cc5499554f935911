//! Pieces of Meta webhook normalization shared by the three Meta connectors: the
//! `{"object", "entry": [...]}` envelope and the Messenger / Instagram
//! `messaging[]` events.

use chrono::{DateTime, Utc};
use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::{ConnectorError, WebhookError};
use crate::time::{self, Unit};
use crate::types::{NormalizedEvent, RejectedEvent, WebhookItem};

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

/// The value at a JSON pointer (`/a/0/b`). The same as [`Value::pointer`],
/// without its allocation of every token (it unescapes `~0` and `~1` into a
/// new string): the webhook paths read a dozen fields per event, and those
/// allocations were a visible share of the receiver's time. A pointer with
/// an escape goes through [`Value::pointer`].
pub(crate) fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.contains('~') {
        return v.pointer(pointer);
    }
    if pointer.is_empty() {
        return Some(v);
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').try_fold(v, |v, token| match v {
        Value::Object(map) => map.get(token),
        Value::Array(list) => {
            // RFC 6901: an index is digits without a leading zero.
            if token.is_empty()
                || (token.len() > 1 && token.starts_with('0'))
                || !token.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            list.get(token.parse::<usize>().ok()?)
        }
        _ => None,
    })
}

/// A string (or number) field as an owned string.
pub(crate) fn s(v: &Value, pointer: &str) -> Option<String> {
    match at(v, pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A required id, or the reason naming it.
pub(crate) fn required(v: &Value, pointer: &str, what: &str) -> Result<String, String> {
    s(v, pointer).ok_or_else(|| format!("{what} without {pointer}"))
}

/// The refusal of one event: its raw JSON `item`, its id at `id_pointer` when
/// there is one, and the reason.
pub(crate) fn reject(
    platform: &Platform,
    account: Option<String>,
    item: &Value,
    id_pointer: &str,
    reason: String,
) -> RejectedEvent {
    RejectedEvent {
        platform: platform.clone(),
        account_id: account,
        event_id: s(item, id_pointer),
        reason,
        payload: item.clone(),
    }
}

/// All or nothing: the events, or the first refusal as a payload error (what
/// [`PlatformConnector::handle_webhook`](crate::PlatformConnector::handle_webhook) answers).
pub(crate) fn strict(items: Vec<WebhookItem>) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    items
        .into_iter()
        .map(|item| item.map_err(|r| WebhookError::payload(r.reason).into()))
        .collect()
}

/// Normalizes `entry.messaging[]` (Messenger and Instagram DMs; timestamps in
/// milliseconds). Echoes of our own messages and non-message events (reads,
/// reactions, postbacks) are skipped; each message is read or refused on its own.
pub(crate) fn messaging_events(
    platform: &Platform,
    entry: &mut Value,
    now: DateTime<Utc>,
    out: &mut Vec<WebhookItem>,
) {
    let account = s(entry, "/id");
    let count = entry
        .get("messaging")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for i in 0..count {
        let item = &entry["messaging"][i];
        let Some(message) = item.get("message").filter(|m| m.is_object()) else {
            continue;
        };
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let account = account.clone().or_else(|| s(item, "/recipient/id"));
        let read = messaging_event(platform, entry, item, message, account.clone(), now);
        let item = &mut entry["messaging"][i];
        out.push(moved_into(read, item, |item, reason| {
            reject(platform, account, item, "/message/mid", reason)
        }));
    }
}

/// An event read from `item`, with `item` moved into its payload (not
/// copied); or the refusal `refuse` makes of `item` and the reason.
pub(crate) fn moved_into(
    read: Result<NormalizedEvent, String>,
    item: &mut Value,
    refuse: impl FnOnce(&Value, String) -> RejectedEvent,
) -> WebhookItem {
    match read {
        Ok(mut event) => {
            event.payload = item.take();
            Ok(event)
        }
        Err(reason) => Err(refuse(item, reason)),
    }
}

fn messaging_event(
    platform: &Platform,
    entry: &Value,
    item: &Value,
    message: &Value,
    account: Option<String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    let mid = required(message, "/mid", "message")?;
    let sender = s(item, "/sender/id");
    let occurred_at = time::event_time(
        &[
            (item.get("timestamp"), Unit::Millis),
            (entry.get("time"), Unit::Millis),
        ],
        now,
        "message",
    )?;
    let has_media = message
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    Ok(NormalizedEvent {
        platform: platform.clone(),
        account_id: account,
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
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_reads_what_value_pointer_reads() {
        let v = serde_json::json!({
            "a": {"b": [10, {"c": "x"}], "": 1, "d/e": 2, "f~g": 3},
            "n": null
        });
        for p in [
            "",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/01",
            "/a/b/-",
            "/a/b/x",
            "/a/",
            "/a/d~1e",
            "/a/f~0g",
            "/n",
            "/n/x",
            "/missing",
            "a",
            "/a/b/1/c/z",
            "/a/b/+1",
            "/a/b/00",
            "/a/b/-1",
            "/a/b/1e0",
            "/a/b/99999999999999999999999",
            "//",
            "/a//",
            "/a/b/",
        ] {
            assert_eq!(at(&v, p), v.pointer(p), "{p:?}");
        }
    }
}
