//! Page webhook normalization (platform-apis §3.5, §3.6): `object = page`;
//! `entry[].changes[]` with field `feed` (comments: `item = comment`, seconds) and
//! `entry[].messaging[]` (Messenger, milliseconds).
//!
//! - A top-level comment has `parent_id == post_id`: it gets no parent. A reply's
//!   `parent_id` is the parent comment.
//! - `verb = add` is keyed by the comment id. `hide`, `unhide` and `remove`
//!   (a moderator of the Page) become [`EventKind::Moderation`] (`text` = the
//!   verb, `parent_id` = the comment, `target_id` = the post), other verbs
//!   (`edited`…) [`EventKind::Other`]; both keyed
//!   `"<comment_id>:<verb>:<time>"`, a moderation's key followed by
//!   `":<entry time>"` (hide, unhide, hide again keep the comment's time),
//!   then by `":<position>"` of the change in the body unless it is the
//!   first; a moderation's `occurred_at` is the entry's time, when it was
//!   notified (plus that position in microseconds, so that routing applies
//!   one body's moderations in the order it lists them).
//! - Comments written by the Page itself are skipped (reply loops).

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

/// Event by event: `Err` only for a body that is not a Page payload.
pub(crate) fn normalize_events(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<WebhookItem>, ConnectorError> {
    let platform = Platform::Facebook;
    let mut out = Vec::new();
    // The changes before this entry's in the body: a change's position is
    // counted over the whole body (entries of one second may follow).
    let mut before = 0;
    for mut entry in entries(body, "page")? {
        messaging_events(&platform, &mut entry, now, &mut out);
        let account = s(&entry, "/id");
        let count = entry
            .get("changes")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let first = before;
        before += count;
        for i in 0..count {
            let change = &entry["changes"][i];
            if change.get("field").and_then(Value::as_str) != Some("feed") {
                continue;
            }
            let Some(value) = change.get("value").filter(|v| v.is_object()) else {
                // Kept as a dead letter, as WhatsApp's, not dropped unseen.
                out.push(Err(reject(
                    &platform,
                    account.clone(),
                    change,
                    "/value/comment_id",
                    "feed change without a value object".into(),
                )));
                continue;
            };
            if value.get("item").and_then(Value::as_str) != Some("comment") {
                continue;
            }
            let from = s(value, "/from/id");
            if from.is_some() && from == account {
                continue;
            }
            let read = comment(&entry, value, &account, now, first + i);
            let value = &mut entry["changes"][i]["value"];
            out.push(moved_into(read, value, |value, r| {
                reject(&platform, account.clone(), value, "/comment_id", r)
            }));
        }
    }
    Ok(out)
}

/// A `feed` comment change; `position` is its place among the body's
/// changes.
fn comment(
    entry: &Value,
    value: &Value,
    account: &Option<String>,
    now: DateTime<Utc>,
    position: usize,
) -> Result<NormalizedEvent, String> {
    let comment_id = required(value, "/comment_id", "comment")?;
    let post_id = s(value, "/post_id");
    let parent = s(value, "/parent_id").filter(|p| Some(p) != post_id.as_ref());
    let verb = value.get("verb").and_then(Value::as_str).unwrap_or("add");
    let created = (value.get("created_time"), Unit::Graph);
    let notified = (entry.get("time"), Unit::Secs);
    let occurred_at = time::event_time(&[created, notified], now, "comment")?;
    let moderation = matches!(verb, "hide" | "unhide" | "remove");
    // A moderation happened when the platform notified it (`created_time`
    // stays the comment's): routing orders a comment's moderations by it.
    // The entry's time is in seconds, so a hide then an unhide in one body
    // would tie (and end in either order): each change is placed that many
    // microseconds into its second, in the order the body lists them.
    let happened_at = if moderation {
        time::event_time(&[notified, created], now, "comment")?
            + chrono::Duration::microseconds(i64::try_from(position).unwrap_or(0) % 1_000_000)
    } else {
        occurred_at
    };
    let (event_id, kind, text, parent) = match verb {
        "add" => {
            let kind = if parent.is_some() {
                EventKind::CommentReply
            } else {
                EventKind::Comment
            };
            (comment_id, kind, s(value, "/message"), parent)
        }
        _ => (
            match entry
                .get("time")
                .and_then(Value::as_i64)
                .filter(|_| moderation)
            {
                // A comment hidden, shown and hidden again keeps its
                // `created_time`: the notification's time tells them apart,
                // and within one body, their position (the first change of
                // a body keeps the key it always had).
                Some(sent) if position > 0 => format!(
                    "{comment_id}:{verb}:{}:{sent}:{position}",
                    occurred_at.timestamp()
                ),
                Some(sent) => format!("{comment_id}:{verb}:{}:{sent}", occurred_at.timestamp()),
                None => format!("{comment_id}:{verb}:{}", occurred_at.timestamp()),
            },
            if moderation {
                EventKind::Moderation
            } else {
                EventKind::Other
            },
            if moderation {
                Some(verb.to_owned())
            } else {
                s(value, "/message")
            },
            if moderation { Some(comment_id) } else { parent },
        ),
    };
    Ok(NormalizedEvent {
        platform: Platform::Facebook,
        account_id: account.clone(),
        event_id,
        kind,
        sender_id: s(value, "/from/id"),
        sender_name: s(value, "/from/name"),
        text,
        has_media: value.get("photo").is_some() || value.get("video").is_some(),
        delivery_status: None,
        message_id: None,
        thread_id: None,
        post_id,
        parent_id: parent,
        occurred_at: happened_at,
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
    fn top_level_comment_has_no_parent_reply_has_one() {
        let body = br#"{"object":"page","entry":[{"id":"448242228374517","time":1700000000,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"122131676912594941_1","post_id":"448242228374517_122131676912594941",
             "parent_id":"448242228374517_122131676912594941","from":{"id":"u1","name":"Ann"},"message":"Top","created_time":1700000001}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"122131676912594941_2","post_id":"448242228374517_122131676912594941",
             "parent_id":"122131676912594941_1","from":{"id":"u2","name":"Bob"},"message":"Reply","created_time":1700000002}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"x_3","post_id":"p","parent_id":"p","from":{"id":"448242228374517"},"message":"own","created_time":1}},
            {"field":"feed","value":{"item":"reaction","verb":"add","post_id":"p"}}]}]}"#;
        let ev = normalize(body, now()).expect("events");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].kind, EventKind::Comment);
        assert_eq!(ev[0].parent_id, None);
        assert_eq!(ev[1].kind, EventKind::CommentReply);
        assert_eq!(ev[1].parent_id.as_deref(), Some("122131676912594941_1"));
        assert_eq!(ev[1].occurred_at.timestamp(), 1_700_000_002);
        // Each event's payload is its own change value, moved out of the body.
        let raw: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(ev[0].payload, raw["entry"][0]["changes"][0]["value"]);
        assert_eq!(ev[1].payload, raw["entry"][0]["changes"][1]["value"]);
    }

    #[test]
    fn edits_are_other_events() {
        let body = br#"{"object":"page","entry":[{"id":"P","time":1700000000,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"edited","comment_id":"c1","post_id":"p","from":{"id":"u"},"message":"x","created_time":1700000005}}]}]}"#;
        let ev = normalize(body, now()).expect("events");
        assert_eq!(ev[0].kind, EventKind::Other);
        assert_eq!(ev[0].event_id, "c1:edited:1700000005");
    }

    #[test]
    fn moderation_verbs_name_the_comment_and_the_post() {
        let change = |verb: &str| {
            format!(
                r#"{{"field":"feed","value":{{"item":"comment","verb":"{verb}","comment_id":"P_1_c1","post_id":"P_1","parent_id":"P_1","from":{{"id":"u","name":"U"}},"message":"spam","created_time":1700000005}}}}"#
            )
        };
        let body = |time: i64, verbs: &[&str]| {
            let changes: Vec<String> = verbs.iter().map(|v| change(v)).collect();
            format!(
                r#"{{"object":"page","entry":[{{"id":"P","time":{time},"changes":[{}]}}]}}"#,
                changes.join(",")
            )
        };
        let ev = normalize(
            body(1700000100, &["hide", "unhide", "remove"]).as_bytes(),
            now(),
        )
        .expect("events");
        assert_eq!(ev.len(), 3);
        for (i, (e, verb)) in ev.iter().zip(["hide", "unhide", "remove"]).enumerate() {
            assert_eq!(e.kind, EventKind::Moderation);
            assert_eq!(e.text.as_deref(), Some(verb));
            assert_eq!(e.parent_id.as_deref(), Some("P_1_c1"));
            assert_eq!(e.post_id.as_deref(), Some("P_1"));
            let position = if i == 0 {
                String::new()
            } else {
                format!(":{i}")
            };
            assert_eq!(
                e.event_id,
                format!("P_1_c1:{verb}:1700000005:1700000100{position}")
            );
            assert_eq!(
                e.occurred_at.timestamp(),
                1_700_000_100,
                "when it was notified"
            );
        }
        let stored = ev[0].to_new_webhook_event(
            nexiom_core::TenantId::generate(),
            nexiom_core::ChannelId::generate(),
            now(),
        );
        // In the body's order, a microsecond apart (routing applies the
        // latest): unhide then hide in one entry leaves the comment hidden.
        assert!(ev.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));
        assert_eq!(stored.target_id.as_deref(), Some("P_1"));
        assert_eq!(stored.parent_id.as_deref(), Some("P_1_c1"));
        // Two entries of one second: positions go on over the body.
        let two = format!(
            r#"{{"object":"page","entry":[{{"id":"P","time":1700000300,"changes":[{}]}},{{"id":"P","time":1700000300,"changes":[{}]}}]}}"#,
            change("hide"),
            change("unhide")
        );
        let ev2 = normalize(two.as_bytes(), now()).expect("events");
        assert!(ev2[0].occurred_at < ev2[1].occurred_at);
        assert_ne!(ev2[0].event_id, ev2[1].event_id);
        // Hidden again later: another notification, another event.
        let again = normalize(body(1700000200, &["hide"]).as_bytes(), now()).expect("events");
        assert_ne!(again[0].event_id, ev[0].event_id);
    }

    #[test]
    fn comment_and_messenger_times_are_checked_per_event() {
        let body = br#"{"object":"page","entry":[{"id":"P","time":1700000000,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c.ms","post_id":"p","from":{"id":"u"},"created_time":1700000005000}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c.neg","post_id":"p","from":{"id":"u"},"created_time":-86400}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c.iso","post_id":"p","from":{"id":"u"},"created_time":"0001-01-01T00:00:00+0000"}},
            {"field":"feed","value":{"item":"comment","verb":"add","post_id":"p","from":{"id":"u"}}}],
            "messaging":[{"sender":{"id":"S"},"timestamp":1700000000,"message":{"mid":"m.secs","text":"x"}},
                         {"sender":{"id":"S"},"timestamp":99999999999999,"message":{"mid":"m.far","text":"y"}}]}]}"#;
        let items = normalize_events(body, now()).expect("a payload");
        assert_eq!(items.len(), 6);
        // Payloads: the messaging item of an event read, the item itself of
        // one refused.
        let raw: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(
            items[0].as_ref().expect("secs").payload,
            raw["entry"][0]["messaging"][0]
        );
        assert_eq!(
            items[1].as_ref().expect_err("far").payload,
            raw["entry"][0]["messaging"][1]
        );
        // Messenger: seconds where milliseconds are documented are read as seconds.
        assert_eq!(
            items[0].as_ref().expect("secs").occurred_at.timestamp(),
            1_700_000_000
        );
        assert!(
            items[1]
                .as_ref()
                .expect_err("far")
                .reason
                .contains("implausible")
        );
        assert_eq!(
            items[2].as_ref().expect("ms").occurred_at.timestamp(),
            1_700_000_005
        );
        for (i, id) in [(3, "c.neg"), (4, "c.iso")] {
            let r = items[i].as_ref().expect_err("implausible");
            assert_eq!(r.event_id.as_deref(), Some(id));
            assert!(r.reason.contains("implausible"), "{}", r.reason);
        }
        assert_eq!(
            items[5].as_ref().expect_err("no id").reason,
            "comment without /comment_id"
        );
    }

    #[test]
    fn a_change_without_a_value_is_dead_lettered_beside_its_neighbour() {
        let body = br#"{"object":"page","entry":[{"id":"A1","time":1700000000,"changes":[
            {"field":"feed"},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c1","post_id":"P_1","from":{"id":"u","name":"U"},"message":"hi","created_time":1700000005}}]}]}"#;
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
