//! Conformance tests of routing: a redelivery after retention, new senders
//! seen by concurrent routers at once, and what marking an event checks.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{event, t0, world};
use crate::{Retained, StorageError, Store};

/// A message event from `sender` (its event id is the provider message id).
fn message(
    w: &super::fixtures::World,
    event_id: &str,
    sender: &str,
    occurred_at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        sender_id: Some(sender.into()),
        sender_name: Some(format!("{sender} name")),
        text: Some(format!("text of {event_id}")),
        occurred_at,
        ..event(w, event_id, EventKind::Message, occurred_at)
    }
}

/// An event redelivered after its row was purged names a message already
/// stored: routing writes nothing but the mark, with the message's
/// conversation; the other events of the batch route as usual.
pub async fn a_redelivery_after_retention_routes_to_the_stored_message(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "pn-redelivery").await;
    let first = s
        .insert_event(message(&w, "wamid.r1", "33600000001", t0()))
        .await
        .unwrap()
        .record;
    let r = s
        .route_unrouted_events(None, 10, t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((r.processed, r.messages_created), (1, 1));
    let conversation = s
        .get_event(w.tenant.id, first.id)
        .await
        .unwrap()
        .conversation_id
        .unwrap();
    let purged = s
        .purge_before(Retained::WebhookEvents, t0() + Duration::days(1), 10)
        .await
        .unwrap();
    assert_eq!(purged, 1);

    let later = t0() + Duration::days(2);
    let again = s
        .insert_event(message(&w, "wamid.r1", "33600000001", t0()))
        .await
        .unwrap();
    assert!(again.created, "the purged key is stored again");
    let next = s
        .insert_event(message(&w, "wamid.r2", "33600000001", later))
        .await
        .unwrap()
        .record;
    let other = s
        .insert_event(message(&w, "wamid.r3", "33600000002", later))
        .await
        .unwrap()
        .record;
    let at = later + Duration::minutes(1);
    let r = s.route_unrouted_events(None, 10, at).await.unwrap();
    assert_eq!((r.processed, r.messages_created), (3, 2));

    let redelivered = s.get_event(w.tenant.id, again.record.id).await.unwrap();
    assert_eq!(redelivered.routed_at, Some(at));
    assert_eq!(redelivered.conversation_id, Some(conversation));
    let next = s.get_event(w.tenant.id, next.id).await.unwrap();
    assert_eq!(next.conversation_id, Some(conversation));
    let messages = s
        .list_messages(w.tenant.id, conversation, 10)
        .await
        .unwrap();
    let ids: Vec<_> = messages
        .iter()
        .map(|m| m.provider_message_id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["wamid.r1", "wamid.r2"], "no second copy of r1");
    let conv = s.get_conversation(w.tenant.id, conversation).await.unwrap();
    assert_eq!(conv.last_message_at, Some(later));
    let other = s.get_event(w.tenant.id, other.id).await.unwrap();
    let other_conv = other.conversation_id.unwrap();
    assert_ne!(other_conv, conversation, "a new sender, a new conversation");
    let other_conv = s.get_conversation(w.tenant.id, other_conv).await.unwrap();
    assert_eq!(other_conv.last_message_at, Some(later));
    assert_eq!(
        s.list_conversations(w.tenant.id, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Four routers take batches at once whose senders are all new and shared:
/// each contact, conversation and message is created once, every event is
/// routed once, to its sender's conversation.
pub async fn concurrent_routers_share_new_senders_exactly_once(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::WhatsApp, "pn-shared").await);
    let (events, senders) = (240_i64, 30_i64);
    for i in 0..events {
        // Consecutive events cycle through the senders: every batch of 15
        // holds 15 senders that the batches beside it hold too.
        let e = message(
            &w,
            &format!("wamid.s{i}"),
            &format!("3360000{:04}", i % senders),
            t0() + Duration::seconds(i),
        );
        store.insert_event(e).await.unwrap();
    }
    let at = t0() + Duration::hours(1);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut total = RoutingReport::default();
            loop {
                let r = store.route_unrouted_events(None, 15, at).await.unwrap();
                if r.processed == 0 {
                    break total;
                }
                total.add(r);
            }
        }));
    }
    let mut total = RoutingReport::default();
    for t in tasks {
        total.add(t.await.unwrap());
    }
    let s = &*store;
    assert_eq!(total.processed, 240, "each event counted once");
    assert_eq!(total.messages_created, 240, "each message created once");
    assert!(s.list_unrouted_events(None, 10).await.unwrap().is_empty());
    let conversations = s.list_conversations(w.tenant.id, None, 100).await.unwrap();
    assert_eq!(conversations.len(), 30, "one conversation per sender");
    let mut contacts = HashSet::new();
    for conv in &conversations {
        assert!(contacts.insert(conv.contact_id), "one contact per sender");
        let handles = s
            .list_contact_channels(w.tenant.id, conv.contact_id)
            .await
            .unwrap();
        assert_eq!(handles.len(), 1);
        let messages = s.list_messages(w.tenant.id, conv.id, 100).await.unwrap();
        assert_eq!(messages.len(), 8);
        assert_eq!(
            conv.last_message_at,
            messages.iter().map(|m| m.created_at).max()
        );
        for m in &messages {
            let event = s
                .find_event(
                    w.tenant.id,
                    &Platform::WhatsApp,
                    m.provider_message_id.as_deref().unwrap(),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(event.routed_at, Some(at));
            assert_eq!(event.conversation_id, Some(conv.id));
            assert_eq!(
                event.sender_id.as_deref(),
                Some(handles[0].external_handle.as_str())
            );
        }
    }
}

/// Marking an event routed names a conversation of its tenant: another
/// tenant's or an unknown one is refused and leaves the event unrouted; a
/// routed event stays as it was, whatever the call names.
pub async fn marking_an_event_routed_checks_the_conversation(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let acme = world(s, "Acme", Platform::WhatsApp, "pn-mark-1").await;
    let globex = world(s, "Globex", Platform::WhatsApp, "pn-mark-2").await;
    let conversation = |w: &super::fixtures::World| {
        let (tenant, channel) = (w.tenant.id, w.channel.id);
        async move {
            let handle = s
                .insert_contact_channel(NewContactChannel {
                    tenant_id: tenant,
                    platform: Platform::WhatsApp,
                    external_handle: "33611111111".into(),
                    display_name: None,
                    created_at: t0(),
                })
                .await
                .unwrap()
                .record;
            s.insert_open_conversation(tenant, handle.contact_id, channel, t0())
                .await
                .unwrap()
                .record
        }
    };
    let own = conversation(&acme).await;
    let foreign = conversation(&globex).await;
    let e = s
        .insert_event(event(&acme, "wamid.mark", EventKind::Other, t0()))
        .await
        .unwrap()
        .record;
    for refused in [foreign.id, ConversationId::generate()] {
        match s
            .mark_event_routed(acme.tenant.id, e.id, Some(refused), t0())
            .await
        {
            Err(StorageError::UnknownReference {
                entity: "conversation",
                ..
            }) => {}
            other => panic!("expected UnknownReference(conversation), got {other:?}"),
        }
    }
    assert_eq!(
        s.get_event(acme.tenant.id, e.id).await.unwrap().routed_at,
        None
    );
    let routed = s
        .mark_event_routed(acme.tenant.id, e.id, Some(own.id), t0())
        .await
        .unwrap();
    assert_eq!(routed.conversation_id, Some(own.id));
    let again = s
        .mark_event_routed(
            acme.tenant.id,
            e.id,
            Some(foreign.id),
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(again, routed, "the first routing stays");
}
