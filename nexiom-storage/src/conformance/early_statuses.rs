//! Conformance tests of delivery statuses routed before their message's
//! provider id is recorded: kept, then applied by whichever write gives an
//! outbound message that id; never kept for a broadcast delivery; dropped
//! after a day. And a reply whose `failed` status comes back answers no one.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, conversation, event, message, mins, t0, world};
use crate::Store;

/// A status event for the message `wamid`.
fn status(
    w: &World,
    id: &str,
    wamid: &str,
    status: DeliveryStatus,
    at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        delivery_status: Some(status),
        target_id: Some(wamid.into()),
        ..event(w, id, EventKind::Status, at)
    }
}

async fn route_all(s: &dyn Store, at: DateTime<Utc>) -> u64 {
    s.route_unrouted_events(None, 100, at)
        .await
        .unwrap()
        .processed
}

pub async fn a_status_routed_before_its_message_id_is_applied_when_recorded(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let (_, conv) = conversation(s, &w, "33600000009").await;
    let t = w.tenant.id;
    // A reply being sent: stored without its provider id yet.
    let reply = s
        .insert_message(message(t, conv.id, MessageDirection::Outbound, None, t0()))
        .await
        .unwrap()
        .record;
    // The platform's statuses arrive first (a quick failure, out of order).
    for e in [
        status(
            &w,
            "s-failed",
            "wamid.early",
            DeliveryStatus::Failed,
            t0() + mins(2),
        ),
        status(
            &w,
            "s-sent",
            "wamid.early",
            DeliveryStatus::Sent,
            t0() + mins(1),
        ),
    ] {
        s.insert_event(e).await.unwrap();
    }
    assert_eq!(route_all(s, t0() + mins(3)).await, 2);
    let before = s.get_message(t, reply.id).await.unwrap();
    assert_eq!(before.delivery_status, Some(DeliveryStatus::Pending));

    // The send's answer recorded: the failure is applied, not lost.
    let recorded = s
        .record_message_sent(t, reply.id, Some("wamid.early"), DeliveryStatus::Sent)
        .await
        .unwrap();
    assert_eq!(recorded.delivery_status, Some(DeliveryStatus::Failed));
    assert_eq!(
        s.get_message(t, reply.id).await.unwrap().delivery_status,
        Some(DeliveryStatus::Failed)
    );

    // A message stored with its id at once (an agent reply) takes its early
    // status too; forward only: a lower early status leaves it as it is.
    s.insert_event(status(
        &w,
        "s-read",
        "wamid.agent",
        DeliveryStatus::Read,
        t0() + mins(4),
    ))
    .await
    .unwrap();
    s.insert_event(status(
        &w,
        "s-low",
        "wamid.low",
        DeliveryStatus::Sent,
        t0() + mins(4),
    ))
    .await
    .unwrap();
    assert_eq!(route_all(s, t0() + mins(5)).await, 2);
    let agent = NewMessage {
        delivery_status: Some(DeliveryStatus::Sent),
        ..message(
            t,
            conv.id,
            MessageDirection::Outbound,
            Some("wamid.agent"),
            t0() + mins(6),
        )
    };
    let agent = s.insert_message(agent).await.unwrap().record;
    assert_eq!(agent.delivery_status, Some(DeliveryStatus::Read));
    let low = NewMessage {
        delivery_status: Some(DeliveryStatus::Delivered),
        ..message(
            t,
            conv.id,
            MessageDirection::Outbound,
            Some("wamid.low"),
            t0() + mins(6),
        )
    };
    let low = s.insert_message(low).await.unwrap().record;
    assert_eq!(low.delivery_status, Some(DeliveryStatus::Delivered));

    // Applied once: a status routed after the message is recorded goes
    // straight to it; the early status taken is gone.
    s.insert_event(status(
        &w,
        "s-del",
        "wamid.agent",
        DeliveryStatus::Delivered,
        t0() + mins(7),
    ))
    .await
    .unwrap();
    assert_eq!(route_all(s, t0() + mins(8)).await, 1);
    assert_eq!(
        s.get_message(t, agent.id).await.unwrap().delivery_status,
        Some(DeliveryStatus::Read)
    );
}

pub async fn early_statuses_expire_and_skip_inbound_and_other_channels(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let other = world(s, "Other", Platform::WhatsApp, "pn-2").await;
    let (_, conv) = conversation(s, &w, "33600000009").await;
    let (_, other_conv) = conversation(s, &other, "33600000009").await;
    let t = w.tenant.id;
    s.insert_event(status(
        &w,
        "s-1",
        "wamid.shared",
        DeliveryStatus::Read,
        t0(),
    ))
    .await
    .unwrap();
    s.insert_event(status(&w, "s-2", "wamid.in", DeliveryStatus::Read, t0()))
        .await
        .unwrap();
    assert_eq!(route_all(s, t0() + mins(1)).await, 2);
    // Another tenant's channel using the same provider id does not take it,
    // nor does an inbound message with the id.
    let foreign = s
        .insert_message(message(
            other.tenant.id,
            other_conv.id,
            MessageDirection::Outbound,
            Some("wamid.shared"),
            t0() + mins(2),
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(foreign.delivery_status, Some(DeliveryStatus::Pending));
    let inbound = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.in"),
            t0() + mins(2),
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(inbound.delivery_status, None);

    // The channel the status came on is the one whose message takes it.
    let on_channel = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Outbound,
            Some("wamid.shared"),
            t0() + mins(5),
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(on_channel.delivery_status, Some(DeliveryStatus::Read));
    // A status kept more than a day is dropped by a later routing call
    // (with statuses of its own): the message recorded after keeps its own.
    let late_reply = s
        .insert_message(message(t, conv.id, MessageDirection::Outbound, None, t0()))
        .await
        .unwrap()
        .record;
    s.insert_event(status(
        &w,
        "s-3",
        "wamid.late",
        DeliveryStatus::Delivered,
        t0() + mins(3),
    ))
    .await
    .unwrap();
    assert_eq!(route_all(s, t0() + mins(4)).await, 1);
    // A later status of the same message does not extend the wait.
    let later = t0() + Duration::hours(20);
    s.insert_event(status(&w, "s-4", "wamid.late", DeliveryStatus::Read, later))
        .await
        .unwrap();
    assert_eq!(route_all(s, later).await, 1);
    // The next day's call routes a message only: it drops them all the same.
    let next_day = t0() + Duration::hours(25);
    s.insert_event(event(&w, "m-5", EventKind::Message, next_day))
        .await
        .unwrap();
    assert_eq!(route_all(s, next_day).await, 1);
    let recorded = s
        .record_message_sent(t, late_reply.id, Some("wamid.late"), DeliveryStatus::Sent)
        .await
        .unwrap();
    assert_eq!(recorded.delivery_status, Some(DeliveryStatus::Sent));
}

/// A reply whose `failed` status comes back answered no one: the
/// conversation waits again since the customer's message, as if the reply
/// had not been written (a later reply that goes through answers it).
pub async fn a_failed_reply_leaves_the_conversation_waiting(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let (_, conv) = conversation(s, &w, "33600000019").await;
    let t = w.tenant.id;
    let subject = InboxSubject::Conversation(conv.id);
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("wamid.in"),
        t0(),
    ))
    .await
    .unwrap();
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.reply"),
        t0() + mins(1),
    ))
    .await
    .unwrap();
    let answered = s.get_inbox_item(t, subject).await.unwrap();
    assert_eq!(answered.waiting_since, None, "answered, while it goes out");

    s.insert_event(status(
        &w,
        "s-failed",
        "wamid.reply",
        DeliveryStatus::Failed,
        t0() + mins(2),
    ))
    .await
    .unwrap();
    assert_eq!(route_all(s, t0() + mins(3)).await, 1);
    let item = s.get_inbox_item(t, subject).await.unwrap();
    assert_eq!(
        item.waiting_since,
        Some(t0()),
        "the customer got nothing: waiting again"
    );
    assert_eq!(item.last_activity_at, t0() + mins(1));

    // Another reply that goes through answers it.
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.reply-2"),
        t0() + mins(4),
    ))
    .await
    .unwrap();
    assert_eq!(
        s.get_inbox_item(t, subject).await.unwrap().waiting_since,
        None
    );
}
