//! Page webhook normalization (platform-apis §3.5, §3.6): `object = page`;
//! `entry[].changes[]` with field `feed` (comments: `item = comment`, seconds) and
//! `entry[].messaging[]` (Messenger, milliseconds).
//!
//! - A top-level comment has `parent_id == post_id`: it gets no parent. A reply's
//!   `parent_id` is the parent comment.
//! - `verb = add` is keyed by the comment id; other verbs (`edited`, `remove`,
//!   `hide`…) become [`EventKind::Other`] keyed `"<comment_id>:<verb>:<time>"`.
//! - Comments written by the Page itself are skipped (reply loops).

use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::ConnectorError;
use crate::graph::webhook::{entries, messaging_events, required, required_time, s};
use crate::time;
use crate::types::NormalizedEvent;

pub(crate) fn normalize(body: &[u8]) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    let platform = Platform::Facebook;
    let mut out = Vec::new();
    for entry in entries(body, "page")? {
        messaging_events(&platform, &entry, &mut out)?;
        let account = s(&entry, "/id");
        for change in entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if change.get("field").and_then(Value::as_str) != Some("feed") {
                continue;
            }
            let Some(value) = change.get("value").filter(|v| v.is_object()) else {
                continue;
            };
            if value.get("item").and_then(Value::as_str) != Some("comment") {
                continue;
            }
            let comment_id = required(value, "/comment_id", "comment")?;
            let from = s(value, "/from/id");
            if from.is_some() && from == account {
                continue;
            }
            let post_id = s(value, "/post_id");
            let parent = s(value, "/parent_id").filter(|p| Some(p) != post_id.as_ref());
            let verb = value.get("verb").and_then(Value::as_str).unwrap_or("add");
            let occurred = value
                .get("created_time")
                .and_then(time::graph_time)
                .or_else(|| entry.get("time").and_then(time::secs_value));
            let occurred_at = required_time(occurred, "comment")?;
            let (event_id, kind) = if verb == "add" {
                let kind = if parent.is_some() {
                    EventKind::CommentReply
                } else {
                    EventKind::Comment
                };
                (comment_id, kind)
            } else {
                (
                    format!("{comment_id}:{verb}:{}", occurred_at.timestamp()),
                    EventKind::Other,
                )
            };
            out.push(NormalizedEvent {
                platform: platform.clone(),
                account_id: account.clone(),
                event_id,
                kind,
                sender_id: from,
                sender_name: s(value, "/from/name"),
                text: s(value, "/message"),
                has_media: value.get("photo").is_some() || value.get("video").is_some(),
                delivery_status: None,
                message_id: None,
                thread_id: None,
                post_id,
                parent_id: parent,
                occurred_at,
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
    fn top_level_comment_has_no_parent_reply_has_one() {
        let body = br#"{"object":"page","entry":[{"id":"448242228374517","time":1700000000,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"122131676912594941_1","post_id":"448242228374517_122131676912594941",
             "parent_id":"448242228374517_122131676912594941","from":{"id":"u1","name":"Ann"},"message":"Top","created_time":1700000001}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"122131676912594941_2","post_id":"448242228374517_122131676912594941",
             "parent_id":"122131676912594941_1","from":{"id":"u2","name":"Bob"},"message":"Reply","created_time":1700000002}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"x_3","post_id":"p","parent_id":"p","from":{"id":"448242228374517"},"message":"own","created_time":1}},
            {"field":"feed","value":{"item":"reaction","verb":"add","post_id":"p"}}]}]}"#;
        let ev = normalize(body).expect("events");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].kind, EventKind::Comment);
        assert_eq!(ev[0].parent_id, None);
        assert_eq!(ev[1].kind, EventKind::CommentReply);
        assert_eq!(ev[1].parent_id.as_deref(), Some("122131676912594941_1"));
        assert_eq!(ev[1].occurred_at.timestamp(), 1_700_000_002);
    }

    #[test]
    fn edits_are_other_events() {
        let body = br#"{"object":"page","entry":[{"id":"P","time":1700000000,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"edited","comment_id":"c1","post_id":"p","from":{"id":"u"},"message":"x","created_time":1700000005}}]}]}"#;
        let ev = normalize(body).expect("events");
        assert_eq!(ev[0].kind, EventKind::Other);
        assert_eq!(ev[0].event_id, "c1:edited:1700000005");
    }
}
