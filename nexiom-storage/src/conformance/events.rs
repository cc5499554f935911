//! Conformance tests of webhook events (stored once, marked routed) and of
//! contact channels.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexiom_core::*;
use serde_json::json;

use super::fixtures::{assert_not_found, assert_unknown, conversation, event, mins, t0, world};
use crate::Store;

pub async fn events_are_stored_once_and_marked_routed(store: Arc<dyn Store>) {
    let s = &*store;
    let wa = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let first = s
        .insert_event(event(&wa, "wamid.A", EventKind::Message, t0()))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.routed_at, None);
    // A redelivery with another payload changes nothing.
    let mut again = event(&wa, "wamid.A", EventKind::Message, t0() + mins(5));
    again.payload = json!({"id": "wamid.A", "retry": true});
    let second = s.insert_event(again).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    assert_eq!(
        s.get_event(wa.tenant.id, first.record.id).await.unwrap(),
        first.record
    );
    assert_eq!(
        s.find_event(wa.tenant.id, &Platform::WhatsApp, "wamid.A")
            .await
            .unwrap(),
        Some(first.record.clone())
    );
    assert_eq!(
        s.find_event(wa.tenant.id, &Platform::WhatsApp, "nope")
            .await
            .unwrap(),
        None
    );

    let b = s
        .insert_event(event(&wa, "wamid.B", EventKind::Status, t0() - mins(1)))
        .await
        .unwrap();
    let ig = world(s, "Globex", Platform::Instagram, "ig-1").await;
    let c = s
        .insert_event(event(&ig, "ig.C", EventKind::Comment, t0() + mins(1)))
        .await
        .unwrap();
    // Same event id on another platform is another event.
    let d = s
        .insert_event(event(&ig, "wamid.A", EventKind::Comment, t0() + mins(2)))
        .await
        .unwrap();
    assert!(d.created);

    let ids = |v: Vec<WebhookEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_unrouted_events(None, 10).await.unwrap()),
        vec![b.record.id, first.record.id, c.record.id, d.record.id]
    );
    assert_eq!(
        ids(s.list_unrouted_events(None, 2).await.unwrap()),
        vec![b.record.id, first.record.id]
    );
    assert_eq!(
        ids(s
            .list_unrouted_events(Some(&Platform::Instagram), 10)
            .await
            .unwrap()),
        vec![c.record.id, d.record.id]
    );
    assert!(s.list_unrouted_events(None, 0).await.unwrap().is_empty());

    let (_, conv) = conversation(s, &wa, "15550001").await;
    let routed = s
        .mark_event_routed(wa.tenant.id, first.record.id, Some(conv.id), t0() + mins(3))
        .await
        .unwrap();
    assert_eq!(routed.routed_at, Some(t0() + mins(3)));
    assert_eq!(routed.conversation_id, Some(conv.id));
    // Marking again keeps the first mark.
    let again = s
        .mark_event_routed(wa.tenant.id, first.record.id, None, t0() + mins(9))
        .await
        .unwrap();
    assert_eq!(again, routed);
    assert_eq!(
        ids(s
            .list_unrouted_events(Some(&Platform::WhatsApp), 10)
            .await
            .unwrap()),
        vec![b.record.id]
    );
    assert_not_found(
        s.mark_event_routed(ig.tenant.id, b.record.id, None, t0())
            .await,
    );
    assert_not_found(s.get_event(ig.tenant.id, b.record.id).await);
    assert_eq!(
        s.find_event(ig.tenant.id, &Platform::WhatsApp, "wamid.A")
            .await
            .unwrap(),
        None
    );
}

pub async fn contact_channels_are_resolved_once(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let new = NewContactChannel {
        tenant_id: w.tenant.id,
        platform: Platform::WhatsApp,
        external_handle: "33612345678".into(),
        display_name: Some("Zoé".into()),
        created_at: t0(),
    };
    let a = s.insert_contact_channel(new.clone()).await.unwrap();
    assert!(a.created);
    let contact = s
        .get_contact(w.tenant.id, a.record.contact_id)
        .await
        .unwrap();
    assert_eq!(contact.display_name.as_deref(), Some("Zoé"));
    let b = s.insert_contact_channel(new.clone()).await.unwrap();
    assert!(!b.created);
    assert_eq!(b.record, a.record);
    assert_eq!(
        s.list_contact_channels(w.tenant.id, contact.id)
            .await
            .unwrap(),
        vec![a.record.clone()]
    );
    // The same handle for another tenant is another contact.
    let other = world(s, "Globex", Platform::Facebook, "page-9").await;
    let c = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: other.tenant.id,
            ..new.clone()
        })
        .await
        .unwrap();
    assert!(c.created);
    assert_ne!(c.record.contact_id, a.record.contact_id);
    assert_not_found(s.get_contact(other.tenant.id, contact.id).await);
    assert!(
        s.list_contact_channels(other.tenant.id, contact.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_unknown(
        s.insert_contact_channel(NewContactChannel {
            tenant_id: TenantId::generate(),
            ..new
        })
        .await,
        "tenant",
    );
}
