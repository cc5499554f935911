//! Conformance tests of events written in batches (`EventBatchStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{event, world};
use crate::{EventWrite, StorageError, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap()
}

fn kind(answer: &EventWrite) -> &'static str {
    match answer {
        EventWrite::Created => "created",
        EventWrite::Existing => "existing",
        EventWrite::Refused(StorageError::Invalid(_)) => "invalid",
        EventWrite::Refused(StorageError::UnknownReference { .. }) => "unknown",
        EventWrite::Refused(StorageError::Conflict { .. }) => "conflict",
        EventWrite::Refused(_) => "other refusal",
    }
}

/// A batch answers each event at its position with `insert_event`'s rules:
/// new events stored (with every field), a redelivery `Existing` and
/// unchanged, a duplicate inside the batch stored once, a bad event, another
/// tenant's key and another tenant's channel refused without stopping their
/// neighbours; a batch whose channel reference fails as a whole still
/// answers each event exactly.
pub async fn event_batches_answer_each_event(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::WhatsApp, "pn-batch-a").await;
    let b = world(s, "Beta", Platform::WhatsApp, "pn-batch-b").await;
    let old = s
        .insert_event(event(&a, "wamid.old", EventKind::Message, t0()))
        .await
        .unwrap()
        .record;

    let later = t0() + Duration::minutes(1);
    let mut first = event(&a, "wamid.1", EventKind::Message, later);
    first.text = Some("première «question» \u{1F600}".into());
    first.payload = json!({"id": "wamid.1", "nested": {"n": [1, 2]}});
    let mut redelivery = event(&a, "wamid.old", EventKind::Message, later);
    redelivery.payload = json!({"retry": true});
    let mut invalid = event(&a, "", EventKind::Message, later);
    invalid.text = Some("no id".into());
    let other_tenants_key = event(&b, "wamid.old", EventKind::Message, later);
    let mut status = event(&b, "wamid.status", EventKind::Status, later);
    status.delivery_status = Some(DeliveryStatus::Read);
    status.target_id = Some("wamid.out".into());
    status.sender_id = None;
    let duplicate = event(&a, "wamid.1", EventKind::Message, later);

    // Fast path: no bad reference in the batch.
    let batch = vec![
        first.clone(),
        redelivery,
        invalid,
        other_tenants_key,
        status.clone(),
        duplicate,
    ];
    let answers = s.insert_events(&batch).await.unwrap();
    let kinds: Vec<&str> = answers.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "created", "existing", "invalid", "conflict", "created", "existing"
        ]
    );
    let stored = s
        .find_event(a.tenant.id, &Platform::WhatsApp, "wamid.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.text, first.text);
    assert_eq!(stored.payload, first.payload);
    assert_eq!(stored.received_at, later);
    assert_eq!(stored.routed_at, None);
    let stored_status = s
        .find_event(b.tenant.id, &Platform::WhatsApp, "wamid.status")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored_status.delivery_status, Some(DeliveryStatus::Read));
    assert_eq!(stored_status.target_id.as_deref(), Some("wamid.out"));
    // The redelivery changed nothing.
    assert_eq!(s.get_event(a.tenant.id, old.id).await.unwrap(), old);

    // A batch with an event naming another tenant's channel: refused alone.
    let mut wrong_channel = event(&a, "wamid.2", EventKind::Message, later);
    wrong_channel.channel_id = b.channel.id;
    let mut wrong_channel_redelivery = event(&a, "wamid.old", EventKind::Message, later);
    wrong_channel_redelivery.channel_id = b.channel.id;
    let answers = s
        .insert_events(&[
            event(&a, "wamid.3", EventKind::Message, later),
            wrong_channel,
            event(&a, "wamid.1", EventKind::Message, later),
            wrong_channel_redelivery,
            event(&b, "wamid.4", EventKind::Message, later),
        ])
        .await
        .unwrap();
    let kinds: Vec<&str> = answers.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["created", "unknown", "existing", "unknown", "created"]
    );
    assert!(
        s.find_event(a.tenant.id, &Platform::WhatsApp, "wamid.2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.insert_events(&[]).await.unwrap().is_empty());
}

/// Concurrent batches (of 40 and of 100 events) over the same keys store
/// each event once: across all answers, each key is `Created` exactly once.
pub async fn concurrent_event_batches_store_each_key_once(store: Arc<dyn Store>) {
    let a = world(store.as_ref(), "Acme", Platform::WhatsApp, "pn-batch-c").await;
    let keys: Vec<String> = (0..200).map(|n| format!("wamid.c{n:03}")).collect();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let store = Arc::clone(&store);
        // Each writer sends every key, in its own order.
        let mut mine: Vec<NewWebhookEvent> = keys
            .iter()
            .map(|k| event(&a, k, EventKind::Message, t0()))
            .collect();
        mine.rotate_left(w * 50);
        if w % 2 == 1 {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            // Batches of 40 and of 100: on Postgres, batches of up to 64
            // events and larger ones are planned apart (migration 0038).
            for chunk in mine.chunks(if w < 2 { 40 } else { 100 }) {
                let answers = store.insert_events(chunk).await.unwrap();
                for (e, answer) in chunk.iter().zip(&answers) {
                    assert!(
                        matches!(answer, EventWrite::Created | EventWrite::Existing),
                        "{}: {answer:?}",
                        e.event_id
                    );
                    if answer.is_created() {
                        created.push(e.event_id.clone());
                    }
                }
            }
            created
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.unwrap());
    }
    created.sort();
    assert_eq!(created, keys, "each key created exactly once");
}
