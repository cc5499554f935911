//! Conformance tests of conversations and messages: delivery status, and
//! concurrent routing writes.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use nexiom_core::*;
use serde_json::json;

use super::fixtures::{
    assert_not_found, assert_unknown, conversation, event, message, mins, t0, world,
};
use crate::Store;

pub async fn conversations_and_messages(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (cc, conv) = conversation(s, &w, "33600000001").await;
    assert_eq!(conv.status, ConversationStatus::Open);
    assert_eq!(conv.last_message_at, None);
    let same = s
        .insert_open_conversation(t, cc.contact_id, w.channel.id, t0() + mins(1))
        .await
        .unwrap();
    assert!(!same.created);
    assert_eq!(same.record, conv);

    // Out-of-order inbound messages: last_message_at is the latest of them.
    let m2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.2"),
            t0() + mins(10),
        ))
        .await
        .unwrap();
    assert!(m2.created);
    assert_eq!(m2.record.channel_id, w.channel.id);
    let m1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.1"),
            t0() + mins(5),
        ))
        .await
        .unwrap();
    assert!(m1.created);
    assert_eq!(
        s.get_conversation(t, conv.id)
            .await
            .unwrap()
            .last_message_at,
        Some(t0() + mins(10))
    );
    // Duplicate provider id: the stored message, nothing new.
    let dup = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.2"),
            t0() + mins(50),
        ))
        .await
        .unwrap();
    assert!(!dup.created);
    assert_eq!(dup.record, m2.record);
    assert_eq!(
        s.get_conversation(t, conv.id)
            .await
            .unwrap()
            .last_message_at,
        Some(t0() + mins(10))
    );

    // Outbound reply, unique per inbound message.
    let mut reply = message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.out"),
        t0() + mins(12),
    );
    reply.in_reply_to = Some(m2.record.id);
    let r = s.insert_message(reply.clone()).await.unwrap();
    assert!(r.created);
    reply.provider_message_id = Some("wamid.out-2".into());
    let r2 = s.insert_message(reply).await.unwrap();
    assert!(
        !r2.created,
        "a second reply to the same inbound message is not stored"
    );
    assert_eq!(r2.record, r.record);
    // Messages without provider id are always stored.
    let n1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0() + mins(13),
        ))
        .await
        .unwrap();
    let n2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0() + mins(13),
        ))
        .await
        .unwrap();
    assert!(n1.created && n2.created);
    assert_ne!(n1.record.id, n2.record.id);

    assert_eq!(s.get_message(t, m1.record.id).await.unwrap(), m1.record);
    assert_eq!(
        s.find_message_by_provider_id(t, w.channel.id, "wamid.1")
            .await
            .unwrap(),
        Some(m1.record.clone())
    );
    let listed: Vec<_> = s
        .list_messages(t, conv.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        listed,
        vec![
            m1.record.id,
            m2.record.id,
            r.record.id,
            n1.record.id,
            n2.record.id
        ]
    );
    assert_eq!(s.list_messages(t, conv.id, 2).await.unwrap().len(), 2);
    let inbound: Vec<_> = s
        .list_messages_since(t, MessageDirection::Inbound, t0() + mins(6), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(inbound, vec![m2.record.id]);
    assert_eq!(
        s.list_messages_since(t, MessageDirection::Outbound, t0(), 10)
            .await
            .unwrap()
            .len(),
        3
    );

    let decision = s
        .insert_decision(NewAiDecision {
            tenant_id: t,
            subject: DecisionSubject::Message(m1.record.id),
            triage: Triage::Escalate,
            confidence: 1.0,
            rule_id: None,
            reason: "rule".into(),
            snapshot: json!({}),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let triaged = s
        .set_message_triage(t, m1.record.id, Triage::Escalate, 1.0, Some(decision.id))
        .await
        .unwrap();
    assert_eq!(triaged.triage, Some(Triage::Escalate));
    assert_eq!(triaged.confidence, Some(1.0));
    assert_eq!(triaged.ai_decision_id, Some(decision.id));
    assert_eq!(s.get_message(t, m1.record.id).await.unwrap(), triaged);

    // Closing makes the next open create a new conversation.
    let closed = s.close_conversation(t, conv.id).await.unwrap();
    assert_eq!(closed.status, ConversationStatus::Closed);
    let fresh = s
        .insert_open_conversation(t, cc.contact_id, w.channel.id, t0() + mins(60))
        .await
        .unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.record.id, conv.id);
    let open_ids: Vec<_> = s
        .list_conversations(t, Some(ConversationStatus::Open), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open_ids, vec![fresh.record.id]);
    let all: Vec<_> = s
        .list_conversations(t, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        all,
        vec![conv.id, fresh.record.id],
        "messaged first, never-messaged last"
    );

    // References must be the tenant's.
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    assert_unknown(
        s.insert_message(message(
            other.tenant.id,
            conv.id,
            MessageDirection::Inbound,
            Some("x"),
            t0(),
        ))
        .await,
        "conversation",
    );
    assert_unknown(
        s.insert_open_conversation(other.tenant.id, cc.contact_id, other.channel.id, t0())
            .await,
        "contact",
    );
    assert_unknown(
        s.insert_open_conversation(t, cc.contact_id, other.channel.id, t0())
            .await,
        "channel",
    );
    assert_not_found(s.get_conversation(other.tenant.id, conv.id).await);
    assert_not_found(s.close_conversation(other.tenant.id, conv.id).await);
    assert_not_found(
        s.set_message_triage(other.tenant.id, m1.record.id, Triage::Ignore, 1.0, None)
            .await,
    );
}

pub async fn message_delivery_status_is_monotonic(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (_, conv) = conversation(s, &w, "33600000001").await;
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.out"),
        t0(),
    ))
    .await
    .unwrap();
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("wamid.in"),
        t0(),
    ))
    .await
    .unwrap();
    let status = |m: Option<Message>| m.and_then(|m| m.delivery_status);
    let up = |st| s.update_delivery_status(t, w.channel.id, "wamid.out", st);
    assert_eq!(
        status(up(DeliveryStatus::Delivered).await.unwrap()),
        Some(DeliveryStatus::Delivered)
    );
    // "sent" arriving after "delivered" does not move it back.
    assert_eq!(
        status(up(DeliveryStatus::Sent).await.unwrap()),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(
        status(up(DeliveryStatus::Read).await.unwrap()),
        Some(DeliveryStatus::Read)
    );
    assert_eq!(
        status(up(DeliveryStatus::Failed).await.unwrap()),
        Some(DeliveryStatus::Failed)
    );
    assert_eq!(
        status(up(DeliveryStatus::Read).await.unwrap()),
        Some(DeliveryStatus::Failed)
    );
    assert_eq!(
        s.update_delivery_status(t, w.channel.id, "unknown", DeliveryStatus::Read)
            .await
            .unwrap(),
        None
    );
    // Inbound messages have no delivery status to update.
    let inbound = s
        .update_delivery_status(t, w.channel.id, "wamid.in", DeliveryStatus::Read)
        .await
        .unwrap();
    assert_eq!(status(inbound), None);
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    assert_eq!(
        s.update_delivery_status(
            other.tenant.id,
            w.channel.id,
            "wamid.out",
            DeliveryStatus::Read
        )
        .await
        .unwrap(),
        None
    );
}

pub async fn concurrent_routing_writes_yield_one_row(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::WhatsApp, "pn-1").await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let w = Arc::clone(&w);
        tasks.push(tokio::spawn(async move {
            let s = &*store;
            let ev = s
                .insert_event(event(&w, "wamid.same", EventKind::Message, t0()))
                .await
                .unwrap();
            let cc = s
                .insert_contact_channel(NewContactChannel {
                    tenant_id: w.tenant.id,
                    platform: Platform::WhatsApp,
                    external_handle: "33699999999".into(),
                    display_name: None,
                    created_at: t0(),
                })
                .await
                .unwrap();
            let conv = s
                .insert_open_conversation(w.tenant.id, cc.record.contact_id, w.channel.id, t0())
                .await
                .unwrap();
            let msg = s
                .insert_message(message(
                    w.tenant.id,
                    conv.record.id,
                    MessageDirection::Inbound,
                    Some("wamid.same"),
                    t0() + mins(i),
                ))
                .await
                .unwrap();
            (ev, cc, conv, msg)
        }));
    }
    let mut created = [0; 4];
    let mut ids = [
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    ];
    for task in tasks {
        let (ev, cc, conv, msg) = task.await.unwrap();
        for (i, (c, id)) in [
            (ev.created, ev.record.id.as_uuid()),
            (cc.created, cc.record.id.as_uuid()),
            (conv.created, conv.record.id.as_uuid()),
            (msg.created, msg.record.id.as_uuid()),
        ]
        .into_iter()
        .enumerate()
        {
            created[i] += usize::from(c);
            ids[i].insert(id);
        }
    }
    assert_eq!(created, [1, 1, 1, 1], "exactly one caller creates each row");
    assert!(
        ids.iter().all(|s| s.len() == 1),
        "every caller sees the same row"
    );
}
