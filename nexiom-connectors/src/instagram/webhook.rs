//! Instagram webhook normalization (platform-apis §2.6, §2.7): `object =
//! instagram`; `entry[].messaging[]` for DMs (milliseconds), `entry[].changes[]`
//! with field `comments` / `live_comments` for comments (`entry.time` in seconds).
//! The comments example without the `changes` wrapper (`field` / `value` directly
//! under the entry) is accepted too. Comments written by the account itself are
//! skipped (reply loops).

use chrono::{DateTime, Utc};
use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::ConnectorError;
use crate::graph::webhook::{entries, messaging_events, moved_into, reject, required, s, strict};
use crate::time::{self, Unit};
use crate::types::{NormalizedEvent, WebhookItem};

/// All or nothing (see [`strict`]).
pub(crate) fn normalize(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    strict(normalize_events(body, now)?)
}

/// Event by event: `Err` only for a body that is not an Instagram payload.
pub(crate) fn normalize_events(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<WebhookItem>, ConnectorError> {
    let platform = Platform::Instagram;
    let mut out = Vec::new();
    for mut entry in entries(body, "instagram")? {
        messaging_events(&platform, &mut entry, now, &mut out);
        // Where each change's value is: `changes[i].value`, or the entry's
        // own `value` when the entry is a change itself.
        let mut changes: Vec<String> = (0..entry
            .get("changes")
            .and_then(Value::as_array)
            .map_or(0, Vec::len))
            .map(|i| format!("/changes/{i}"))
            .collect();
        if entry.get("field").is_some() && entry.get("value").is_some() {
            changes.push(String::new());
        }
        let account = s(&entry, "/id");
        for at in changes {
            let Some(change) = entry.pointer(&at) else {
                continue;
            };
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            if field != "comments" && field != "live_comments" {
                continue;
            }
            let Some(value) = change.get("value").filter(|v| v.is_object()) else {
                // Kept as a dead letter, as WhatsApp's, not dropped unseen.
                out.push(Err(reject(
                    &platform,
                    account.clone(),
                    change,
                    "/value/id",
                    "comments change without a value object".into(),
                )));
                continue;
            };
            let from = s(value, "/from/id");
            if from.is_some() && from == account {
                continue;
            }
            let read = comment(&entry, value, &account, now);
            let Some(value) = entry.pointer_mut(&format!("{at}/value")) else {
                continue;
            };
            out.push(moved_into(read, value, |value, r| {
                reject(&platform, account.clone(), value, "/id", r)
            }));
        }
    }
    Ok(out)
}

fn comment(
    entry: &Value,
    value: &Value,
    account: &Option<String>,
    now: DateTime<Utc>,
) -> Result<NormalizedEvent, String> {
    let id = required(value, "/id", "comment")?;
    let parent = s(value, "/parent_id");
    // `entry.time` is documented in seconds but seen in milliseconds: read in
    // the unit that makes it plausible.
    let occurred_at = time::event_time(
        &[
            (entry.get("time"), Unit::Secs),
            (value.get("timestamp"), Unit::Graph),
        ],
        now,
        "comment",
    )?;
    Ok(NormalizedEvent {
        platform: Platform::Instagram,
        account_id: account.clone(),
        event_id: id,
        kind: if parent.is_some() {
            EventKind::CommentReply
        } else {
            EventKind::Comment
        },
        sender_id: s(value, "/from/id"),
        sender_name: s(value, "/from/username"),
        text: s(value, "/text"),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: None,
        post_id: s(value, "/media/id"),
        parent_id: parent,
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01")
    }

    #[test]
    fn comments_with_and_without_changes_wrapper_and_dms() {
        let wrapped = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1755779280,"changes":[{"field":"comments","value":{
            "id":"17865799348089039","text":"Nice!","from":{"id":"232323232","username":"test"},
            "media":{"id":"123123123","media_product_type":"FEED"}}}]}]}"#;
        let ev = normalize(wrapped, now()).expect("events");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::Comment);
        assert_eq!(ev[0].post_id.as_deref(), Some("123123123"));
        assert_eq!(ev[0].occurred_at.timestamp(), 1_755_779_280);
        let raw: Value = serde_json::from_slice(wrapped).expect("JSON");
        assert_eq!(ev[0].payload, raw["entry"][0]["changes"][0]["value"]);
        let bare = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1755779280,"field":"comments","value":{
            "id":"c2","text":"reply","parent_id":"c1","from":{"id":"9","username":"u"},"media":{"id":"m"}}}]}"#;
        let ev = normalize(bare, now()).expect("events");
        assert_eq!(ev[0].kind, EventKind::CommentReply);
        assert_eq!(ev[0].parent_id.as_deref(), Some("c1"));
        let raw: Value = serde_json::from_slice(bare).expect("JSON");
        assert_eq!(ev[0].payload, raw["entry"][0]["value"]);
        let own = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1,"changes":[{"field":"comments","value":{"id":"c3","from":{"id":"IGACC"}}}]}]}"#;
        assert!(normalize(own, now()).expect("events").is_empty());
        let dm = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1700000000000,"messaging":[
            {"sender":{"id":"IGSID"},"recipient":{"id":"IGACC"},"timestamp":1700000000123,"message":{"mid":"aWdfZ","text":"hi"}},
            {"sender":{"id":"IGACC"},"recipient":{"id":"IGSID"},"timestamp":1700000000999,"message":{"mid":"echo","text":"x","is_echo":true}}]}]}"#;
        let ev = normalize(dm, now()).expect("events");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event_id, "aWdfZ");
        let raw: Value = serde_json::from_slice(dm).expect("JSON");
        assert_eq!(ev[0].payload, raw["entry"][0]["messaging"][0]);
        assert_eq!(ev[0].occurred_at.timestamp_millis(), 1_700_000_000_123);
    }

    #[test]
    fn entry_time_in_milliseconds_and_implausible_times() {
        // entry.time in milliseconds (read as seconds: year 57971).
        let ms = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1755779280000,"changes":[{"field":"comments","value":{
            "id":"c1","text":"hi","from":{"id":"9"},"media":{"id":"m"}}}]}]}"#;
        let ev = normalize(ms, now()).expect("events");
        assert_eq!(ev[0].occurred_at.timestamp(), 1_755_779_280);
        // A negative time, and a DM stamped in 1970: refused, each on its own.
        let bad = br#"{"object":"instagram","entry":[{"id":"IGACC","time":-1,"changes":[
            {"field":"comments","value":{"id":"c2","from":{"id":"9"}}}],
            "messaging":[{"sender":{"id":"S"},"timestamp":5,"message":{"mid":"m.old","text":"x"}},
                         {"sender":{"id":"S"},"timestamp":1700000000123,"message":{"mid":"m.ok","text":"y"}}]}]}"#;
        let items = normalize_events(bad, now()).expect("a payload");
        assert_eq!(items.len(), 3);
        let old = items[0].as_ref().expect_err("1970");
        assert_eq!(old.event_id.as_deref(), Some("m.old"));
        assert!(old.reason.contains("implausible"));
        assert_eq!(items[1].as_ref().expect("ok").event_id, "m.ok");
        let negative = items[2].as_ref().expect_err("negative");
        assert_eq!(negative.event_id.as_deref(), Some("c2"));
        assert!(negative.reason.contains("implausible"));
        assert!(normalize(bad, now()).is_err());
        // A comment without a time at all, and a Graph timestamp after tomorrow.
        let none = br#"{"object":"instagram","entry":[{"id":"IGACC","changes":[
            {"field":"comments","value":{"id":"c3","from":{"id":"9"}}},
            {"field":"comments","value":{"id":"c4","from":{"id":"9"},"timestamp":"2030-01-01T00:00:00+0000"}}]}]}"#;
        let items = normalize_events(none, now()).expect("a payload");
        assert_eq!(
            items[0].as_ref().expect_err("no time").reason,
            "comment without a valid timestamp"
        );
        assert!(
            items[1]
                .as_ref()
                .expect_err("future")
                .reason
                .contains("implausible")
        );
    }

    #[test]
    fn a_change_without_a_value_is_dead_lettered_beside_its_neighbour() {
        let body = br#"{"object":"instagram","entry":[{"id":"A1","time":1700000000,"changes":[
            {"field":"comments"},
            {"field":"comments","value":{"id":"c1","text":"hi","from":{"id":"u","username":"u"},"media":{"id":"m"}}}]}]}"#;
        let items = normalize_events(body, now()).expect("read");
        assert_eq!(items.len(), 2);
        let rejected = items[0].as_ref().expect_err("no value");
        assert_eq!(rejected.account_id.as_deref(), Some("A1"));
        assert!(
            rejected.reason.contains("without a value"),
            "{}",
            rejected.reason
        );
        assert_eq!(items[1].as_ref().expect("the comment").event_id, "c1");
    }
}
