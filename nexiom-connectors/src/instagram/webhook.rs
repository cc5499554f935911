//! Instagram webhook normalization (platform-apis §2.6, §2.7): `object =
//! instagram`; `entry[].messaging[]` for DMs (milliseconds), `entry[].changes[]`
//! with field `comments` / `live_comments` for comments (`entry.time` in seconds).
//! The comments example without the `changes` wrapper (`field` / `value` directly
//! under the entry) is accepted too. Comments written by the account itself are
//! skipped (reply loops).

use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::ConnectorError;
use crate::graph::webhook::{entries, messaging_events, required, required_time, s};
use crate::time;
use crate::types::NormalizedEvent;

pub(crate) fn normalize(body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    let platform = Platform::Instagram;
    let mut out = Vec::new();
    for entry in entries(body, "instagram")? {
        messaging_events(&platform, &entry, &mut out)?;
        let mut changes: Vec<&Value> = entry
            .get("changes")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if entry.get("field").is_some() && entry.get("value").is_some() {
            changes.push(&entry);
        }
        let account = s(&entry, "/id");
        for change in changes {
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            if field != "comments" && field != "live_comments" {
                continue;
            }
            let Some(value) = change.get("value").filter(|v| v.is_object()) else {
                continue;
            };
            let id = required(value, "/id", "comment")?;
            let from = s(value, "/from/id");
            if from.is_some() && from == account {
                continue;
            }
            let parent = s(value, "/parent_id");
            let occurred = entry
                .get("time")
                .and_then(time::secs_value)
                .or_else(|| value.get("timestamp").and_then(time::graph_time));
            out.push(NormalizedEvent {
                platform: platform.clone(),
                account_id: account.clone(),
                event_id: id,
                kind: if parent.is_some() {
                    EventKind::CommentReply
                } else {
                    EventKind::Comment
                },
                sender_id: from,
                sender_name: s(value, "/from/username"),
                text: s(value, "/text"),
                has_media: false,
                delivery_status: None,
                message_id: None,
                thread_id: None,
                post_id: s(value, "/media/id"),
                parent_id: parent,
                occurred_at: required_time(occurred, "comment")?,
                payload: value.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_with_and_without_changes_wrapper_and_dms() {
        let wrapped = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1755779280,"changes":[{"field":"comments","value":{
            "id":"17865799348089039","text":"Nice!","from":{"id":"232323232","username":"test"},
            "media":{"id":"123123123","media_product_type":"FEED"}}}]}]}"#;
        let ev = normalize(wrapped).expect("events");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::Comment);
        assert_eq!(ev[0].post_id.as_deref(), Some("123123123"));
        assert_eq!(ev[0].occurred_at.timestamp(), 1_755_779_280);
        let bare = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1755779280,"field":"comments","value":{
            "id":"c2","text":"reply","parent_id":"c1","from":{"id":"9","username":"u"},"media":{"id":"m"}}}]}"#;
        let ev = normalize(bare).expect("events");
        assert_eq!(ev[0].kind, EventKind::CommentReply);
        assert_eq!(ev[0].parent_id.as_deref(), Some("c1"));
        let own = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1,"changes":[{"field":"comments","value":{"id":"c3","from":{"id":"IGACC"}}}]}]}"#;
        assert!(normalize(own).expect("events").is_empty());
        let dm = br#"{"object":"instagram","entry":[{"id":"IGACC","time":1700000000000,"messaging":[
            {"sender":{"id":"IGSID"},"recipient":{"id":"IGACC"},"timestamp":1700000000123,"message":{"mid":"aWdfZ","text":"hi"}},
            {"sender":{"id":"IGACC"},"recipient":{"id":"IGSID"},"timestamp":1700000000999,"message":{"mid":"echo","text":"x","is_echo":true}}]}]}"#;
        let ev = normalize(dm).expect("events");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event_id, "aWdfZ");
        assert_eq!(ev[0].occurred_at.timestamp_millis(), 1_700_000_000_123);
    }
}
