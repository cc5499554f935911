//! Conformance tests of batched retention (`RetentionStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::{event, world};
use crate::{Retained, RetentionPolicy, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// Purging removes, batch by batch, only what is old and finished: routed
/// events (not unrouted ones), finished post runs (not running ones), dead
/// letters; a purged event's key can be stored again.
pub async fn retention_purges_old_finished_rows_in_batches(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "pn-retention").await;
    let old = t0() - Duration::days(40);
    let cutoff = t0() - Duration::days(30);
    let mut routed = Vec::new();
    for i in 0..5 {
        let e = s
            .insert_event(event(&w, &format!("old-{i}"), EventKind::Other, old))
            .await
            .unwrap()
            .record;
        s.mark_event_routed(w.tenant.id, e.id, None, old)
            .await
            .unwrap();
        routed.push(e.id);
    }
    let unrouted = s
        .insert_event(event(&w, "old-unrouted", EventKind::Other, old))
        .await
        .unwrap()
        .record;
    let recent = s
        .insert_event(event(&w, "recent", EventKind::Other, t0()))
        .await
        .unwrap()
        .record;
    s.mark_event_routed(w.tenant.id, recent.id, None, t0())
        .await
        .unwrap();

    // Batches of 2: 2, 2, 1, 0.
    let mut batches = Vec::new();
    loop {
        let n = s
            .purge_before(Retained::WebhookEvents, cutoff, 2)
            .await
            .unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, vec![2, 2, 1]);
    assert!(
        s.get_event(w.tenant.id, unrouted.id).await.is_ok(),
        "unrouted kept"
    );
    assert!(
        s.get_event(w.tenant.id, recent.id).await.is_ok(),
        "recent kept"
    );
    for id in &routed {
        assert!(s.get_event(w.tenant.id, *id).await.is_err());
    }
    // The key of a purged event is free again.
    let again = s
        .insert_event(event(&w, "old-0", EventKind::Other, t0()))
        .await
        .unwrap();
    assert!(again.created);

    // Post runs: finished and old go, running or recent stay.
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("x"),
            old,
            old,
        ))
        .await
        .unwrap()
        .record;
    let run = |attempt, started_at| NewPostRun {
        tenant_id: w.tenant.id,
        post_id: post.id,
        attempt,
        started_at,
    };
    let finished_old = s.insert_post_run(run(1, old)).await.unwrap();
    s.finish_post_run(
        w.tenant.id,
        finished_old.id,
        PostRunStatus::Failed,
        None,
        old,
    )
    .await
    .unwrap();
    s.insert_post_run(run(2, old)).await.unwrap(); // still running
    let finished_new = s.insert_post_run(run(3, t0())).await.unwrap();
    s.finish_post_run(
        w.tenant.id,
        finished_new.id,
        PostRunStatus::Success,
        None,
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.purge_before(Retained::PostRuns, cutoff, 10)
            .await
            .unwrap(),
        1
    );
    let left: Vec<u32> = s
        .list_post_runs(w.tenant.id, post.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.attempt)
        .collect();
    assert_eq!(left, vec![2, 3]);

    // Dead letters.
    s.insert_dead_letter(NewDeadLetter::new(
        Platform::WhatsApp,
        "dl-old",
        b"{}",
        "bad",
        old,
    ))
    .await
    .unwrap();
    s.insert_dead_letter(NewDeadLetter::new(
        Platform::WhatsApp,
        "dl-new",
        b"{}",
        "bad",
        t0(),
    ))
    .await
    .unwrap();
    assert_eq!(
        s.purge_before(Retained::DeadLetters, cutoff, 10)
            .await
            .unwrap(),
        1
    );
    let keys: Vec<String> = s
        .list_dead_letters(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert_eq!(keys, vec!["dl-new".to_owned()]);

    let defaults = RetentionPolicy::default();
    assert_eq!(
        defaults.of(Retained::WebhookEvents),
        Some(Duration::days(30))
    );
    assert_eq!(
        defaults.of(Retained::Notifications),
        Some(Duration::days(30))
    );
    assert_eq!(defaults.of(Retained::Messages), None, "kept by default");
}

/// Message retention removes, batch by batch, the messages (of both
/// directions) whose time is before the cutoff; the conversation reads the
/// rest; a removed message's provider id can be stored again.
pub async fn retention_purges_old_messages(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "pn-retention-messages").await;
    let (_, conv) = super::fixtures::conversation(s, &w, "33600000077").await;
    let old = t0() - Duration::days(40);
    let cutoff = t0() - Duration::days(30);
    let t = w.tenant.id;
    let mut inbound = Vec::new();
    for i in 0..4 {
        let m = s
            .insert_message(super::fixtures::new_message(
                t,
                conv.id,
                MessageDirection::Inbound,
                Some(&format!("wamid.old.{i}")),
                old + Duration::minutes(i),
            ))
            .await
            .unwrap()
            .record;
        inbound.push(m);
    }
    let mut reply = super::fixtures::new_message(t, conv.id, MessageDirection::Outbound, None, old);
    reply.in_reply_to = Some(inbound[0].id);
    s.insert_message(reply).await.unwrap();
    let recent = s
        .insert_message(super::fixtures::new_message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.recent"),
            t0(),
        ))
        .await
        .unwrap()
        .record;

    // Batches of 2: 2, 2, 1.
    let mut batches = Vec::new();
    loop {
        let n = s.purge_before(Retained::Messages, cutoff, 2).await.unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, vec![2, 2, 1]);
    let left: Vec<MessageId> = s
        .list_messages(t, conv.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![recent.id]);
    // The provider id of a removed message is free again.
    let again = s
        .insert_message(super::fixtures::new_message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.old.1"),
            t0(),
        ))
        .await
        .unwrap();
    assert!(again.created);
}

/// Outbox retention removes old notifications whose deliveries are all
/// settled (delivered or dead, or that had none), with their deliveries; a
/// notification still pending is kept whatever its age, as is a recent one;
/// a removed key can be enqueued again.
pub async fn retention_purges_settled_notifications(store: Arc<dyn Store>) {
    use NotificationKind::ChannelNeedsReauth;
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-retention").await;
    let old = t0() - Duration::days(40);
    let cutoff = t0() - Duration::days(30);
    let endpoint = super::outbox::webhook(s, &w, "ops", &[ChannelNeedsReauth]).await;
    let enqueue = |key: &str, at| {
        s.enqueue_notification(NewNotification {
            tenant_id: w.tenant.id,
            kind: ChannelNeedsReauth,
            key: key.to_owned(),
            payload: serde_json::json!({"key": key}),
            occurred_at: at,
        })
    };
    for key in ["delivered", "dead", "pending", "recent"] {
        let at = if key == "recent" { t0() } else { old };
        assert!(enqueue(key, at).await.unwrap().created);
    }
    // Settle two of the old ones: one delivered, one dead.
    let claimed = s
        .claim_notification_deliveries(old, 10, Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    for c in &claimed {
        assert_eq!(c.endpoint.id, endpoint.id);
        let attempt = match c.notification.key.as_str() {
            "delivered" => DeliveryAttempt::Delivered,
            "dead" => DeliveryAttempt::Failed {
                error: "HTTP 410".into(),
                retry_at: None,
            },
            _ => continue,
        };
        s.finish_notification_delivery(
            w.tenant.id,
            c.delivery.id,
            c.delivery.lease_until.unwrap(),
            attempt,
            old,
        )
        .await
        .unwrap()
        .unwrap();
    }
    // An old notification with no delivery at all (no endpoint subscribed).
    s.set_notification_endpoint_enabled(w.tenant.id, endpoint.id, false)
        .await
        .unwrap();
    assert!(enqueue("no-delivery", old).await.unwrap().created);

    // Batches of 2: the three settled old ones go, 2 then 1.
    let mut batches = Vec::new();
    loop {
        let n = s
            .purge_before(Retained::Notifications, cutoff, 2)
            .await
            .unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, vec![2, 1]);
    let mut left: Vec<String> = s
        .list_notifications(w.tenant.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.key)
        .collect();
    left.sort();
    assert_eq!(left, ["pending", "recent"]);
    // The deliveries went with them: only the pending and the recent remain.
    let mut deliveries = 0;
    for n in s.list_notifications(w.tenant.id, None, 10).await.unwrap() {
        deliveries += s
            .list_notification_deliveries(w.tenant.id, n.id)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(deliveries, 2);
    // A removed key is free again.
    assert!(enqueue("delivered", t0()).await.unwrap().created);
}
