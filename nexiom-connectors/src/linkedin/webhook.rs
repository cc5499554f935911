//! LinkedIn organization social action notifications (platform-apis §4.4).
//!
//! The envelope is not pinned down by the docs, so all three seen shapes are
//! accepted: a bare notification object, an array of them, and
//! `{"type": …, "notifications": [...]}`. Comment text is read from
//! `comment.text` or `comment.message.text`.
//!
//! `COMMENT` / `ADMIN_COMMENT` become comments keyed by the comment URN (the same
//! id polling returns, so webhook and polling deduplicate together), except
//! the organization's own (its comment's owner is the organization: skipped,
//! so an auto-reply never answers itself); other actions become
//! [`EventKind::Other`] keyed by `notificationId`.

use chrono::{DateTime, Utc};
use nexiom_core::{EventKind, Platform};
use serde_json::Value;

use crate::error::{ConnectorError, WebhookError};
use crate::graph::webhook::{MAX_BODY_BYTES, moved_into, reject, required, s, strict};
use crate::time::{self, Unit};
use crate::types::{NormalizedEvent, WebhookItem};

/// All or nothing (see [`strict`]).
pub(crate) fn normalize(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<NormalizedEvent>, ConnectorError> {
    strict(normalize_events(body, now)?)
}

/// Event by event: `Err` only for a body that is not a notification envelope.
pub(crate) fn normalize_events(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<WebhookItem>, ConnectorError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::payload("body too large").into());
    }
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::payload(format!("not JSON: {e}")))?;
    let list: Vec<Value> = match v {
        Value::Array(a) => a,
        Value::Object(ref mut o) if o.contains_key("notifications") => {
            match o.get_mut("notifications").map(Value::take) {
                Some(Value::Array(a)) => a,
                _ => return Err(WebhookError::payload("notifications is not an array").into()),
            }
        }
        Value::Object(_) => vec![v],
        _ => return Err(WebhookError::payload("expected a notification object or array").into()),
    };
    Ok(list
        .into_iter()
        // The organization's own comments (the replies this library sent as
        // the organization, an admin commenting as it) are skipped, as the
        // Graph webhooks skip the Page's: an auto-reply never answers itself.
        .filter(|n| !own_comment(n))
        .map(|mut n| {
            let read = notification(&n, now);
            moved_into(read, &mut n, |n, r| {
                reject(
                    &Platform::LinkedIn,
                    s(n, "/organizationalEntity"),
                    n,
                    "/notificationId",
                    r,
                )
            })
        })
        .collect())
}

/// Whether `n` is a comment notification whose comment the organization it
/// is addressed to wrote.
fn own_comment(n: &Value) -> bool {
    let is_comment = matches!(
        n.get("action").and_then(Value::as_str),
        Some("COMMENT" | "ADMIN_COMMENT")
    );
    let org = s(n, "/organizationalEntity");
    is_comment && org.is_some() && s(n, "/decoratedGeneratedActivity/comment/owner") == org
}

fn notification(n: &Value, now: DateTime<Utc>) -> Result<NormalizedEvent, String> {
    if !n.is_object() {
        return Err("a notification is not an object".into());
    }
    let notification_id = required(n, "/notificationId", "notification")?;
    let action = n.get("action").and_then(Value::as_str).unwrap_or("");
    let comment = n.pointer("/decoratedGeneratedActivity/comment");
    let comment_urn = comment
        .and_then(|c| s(c, "/entity"))
        .or_else(|| s(n, "/generatedActivity"));
    let is_comment = matches!(action, "COMMENT" | "ADMIN_COMMENT");
    let (event_id, kind) = match (is_comment, &comment_urn) {
        (true, Some(urn)) => (urn.clone(), EventKind::Comment),
        _ => (notification_id, EventKind::Other),
    };
    let occurred_at = time::event_time(
        &[(n.get("lastModifiedAt"), Unit::Millis)],
        now,
        "notification",
    )?;
    Ok(NormalizedEvent {
        platform: Platform::LinkedIn,
        account_id: s(n, "/organizationalEntity"),
        event_id,
        kind,
        sender_id: comment.and_then(|c| s(c, "/owner")),
        sender_name: None,
        text: comment.and_then(|c| s(c, "/text").or_else(|| s(c, "/message/text"))),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: None,
        // The post as published posts are stored (a share or ugcPost URN).
        // `sourcePost` and the comment's `object` may be the activity URN,
        // which names no stored post: filed under it, the comment would make
        // a second, external post, and polling would store it again under
        // the real one. Without a post URN it is left to polling.
        post_id: [
            s(n, "/decoratedSourcePost/entity"),
            comment.and_then(|c| s(c, "/object")),
            s(n, "/sourcePost"),
        ]
        .into_iter()
        .flatten()
        .find(|urn| is_post_urn(urn)),
        parent_id: comment.and_then(|c| s(c, "/parentComment")),
        occurred_at,
        // Moved in by the caller.
        payload: Value::Null,
    })
}

/// A URN a published post is stored under (`urn:li:share:…`,
/// `urn:li:ugcPost:…`), not an activity's.
fn is_post_urn(urn: &str) -> bool {
    urn.starts_with("urn:li:share:") || urn.starts_with("urn:li:ugcPost:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01")
    }

    #[test]
    fn the_organizations_own_comments_are_skipped() {
        let by = |owner: &str| {
            format!(
                r#"{{"notificationId":1002,"action":"COMMENT","organizationalEntity":"urn:li:organization:2414183",
                "sourcePost":"urn:li:activity:7001",
                "decoratedGeneratedActivity":{{"comment":{{"owner":"{owner}","text":"Thanks!",
                  "entity":"urn:li:comment:(urn:li:activity:7001,6002)","object":"urn:li:activity:7001"}}}},
                "lastModifiedAt":1700000000000}}"#
            )
        };
        let own = by("urn:li:organization:2414183");
        let theirs = by("urn:li:person:abc");
        let body = format!("[{own},{theirs}]");
        let ev = normalize(body.as_bytes(), now()).expect("read");
        assert_eq!(ev.len(), 1, "only the member's comment");
        assert_eq!(ev[0].sender_id.as_deref(), Some("urn:li:person:abc"));
    }

    #[test]
    fn a_comment_is_filed_under_a_post_urn_never_an_activity() {
        let with = |post: &str| {
            format!(
                r#"{{"notificationId":1003,"action":"COMMENT","organizationalEntity":"urn:li:organization:1",
                "sourcePost":"urn:li:activity:7001",{post}
                "decoratedGeneratedActivity":{{"comment":{{"owner":"urn:li:person:abc","text":"Hi",
                  "entity":"urn:li:comment:(urn:li:activity:7001,6003)","object":"urn:li:activity:7001"}}}},
                "lastModifiedAt":1700000000000}}"#
            )
        };
        let only_activity = normalize(with("").as_bytes(), now()).expect("read");
        assert_eq!(only_activity[0].kind, EventKind::Comment);
        assert_eq!(only_activity[0].post_id, None, "left to polling");
        let ugc = with(r#""decoratedSourcePost":{"entity":"urn:li:ugcPost:7002"},"#);
        let ev = normalize(ugc.as_bytes(), now()).expect("read");
        assert_eq!(ev[0].post_id.as_deref(), Some("urn:li:ugcPost:7002"));
    }

    #[test]
    fn accepts_every_envelope() {
        let one = r#"{"notificationId":1001,"action":"COMMENT","organizationalEntity":"urn:li:organization:2414183",
            "sourcePost":"urn:li:activity:7001","decoratedSourcePost":{"entity":"urn:li:share:7001"},
            "generatedActivity":"urn:li:comment:(urn:li:activity:7001,6001)",
            "decoratedGeneratedActivity":{"comment":{"owner":"urn:li:person:abc","text":"Nice post",
              "entity":"urn:li:comment:(urn:li:activity:7001,6001)","object":"urn:li:activity:7001"}},
            "lastModifiedAt":1700000000000}"#;
        let ev = normalize(one.as_bytes(), now()).expect("bare");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::Comment);
        assert_eq!(ev[0].event_id, "urn:li:comment:(urn:li:activity:7001,6001)");
        assert_eq!(ev[0].post_id.as_deref(), Some("urn:li:share:7001"));
        assert_eq!(ev[0].text.as_deref(), Some("Nice post"));
        let raw: Value = serde_json::from_str(one).expect("JSON");
        assert_eq!(ev[0].payload, raw);
        let wrapped = format!(
            r#"{{"type":"ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS","notifications":[{one}]}}"#
        );
        assert_eq!(normalize(wrapped.as_bytes(), now()).expect("wrapped"), ev);
        assert_eq!(
            normalize(format!("[{one}]").as_bytes(), now()).expect("array"),
            ev
        );
        let like = br#"{"notificationId":"77","action":"LIKE","lastModifiedAt":1700000000000}"#;
        let ev = normalize(like, now()).expect("like");
        assert_eq!(ev[0].kind, EventKind::Other);
        assert_eq!(ev[0].event_id, "77");
        assert!(normalize(br#"{"action":"LIKE"}"#, now()).is_err());
        assert!(normalize(br#"{"notificationId":1}"#, now()).is_err());
        assert!(normalize(b"42", now()).is_err());
        assert!(normalize(br#"[1]"#, now()).is_err());
    }

    #[test]
    fn notifications_are_read_on_their_own_with_plausible_times() {
        let body = br#"[{"notificationId":"1","action":"LIKE","organizationalEntity":"urn:li:organization:1","lastModifiedAt":1700000000000},
            {"notificationId":"2","action":"LIKE","organizationalEntity":"urn:li:organization:1","lastModifiedAt":-1700000000000},
            {"notificationId":"3","action":"LIKE","lastModifiedAt":1700000000},
            {"notificationId":"4","action":"LIKE"},
            7]"#;
        let items = normalize_events(body, now()).expect("a payload");
        assert_eq!(items.len(), 5);
        assert_eq!(items[0].as_ref().expect("ok").event_id, "1");
        let negative = items[1].as_ref().expect_err("negative");
        assert!(negative.reason.contains("implausible"));
        assert_eq!(
            negative.account_id.as_deref(),
            Some("urn:li:organization:1")
        );
        assert_eq!(negative.event_id.as_deref(), Some("2"));
        // Seconds where milliseconds are documented.
        assert_eq!(
            items[2].as_ref().expect("secs").occurred_at.timestamp(),
            1_700_000_000
        );
        assert_eq!(
            items[3].as_ref().expect_err("no time").reason,
            "notification without a valid timestamp"
        );
        assert_eq!(
            items[4].as_ref().expect_err("not an object").reason,
            "a notification is not an object"
        );
        assert!(normalize(body, now()).is_err());
    }
}
