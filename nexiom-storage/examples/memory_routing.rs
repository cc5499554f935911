//! Routing on the in-memory store while it holds many routed events (as an
//! embedded deployment does until retention purges them): the time of each
//! routing call should follow the batch, not everything the store holds.
//!
//! ```sh
//! cargo run --release -p nexiom-storage --example memory_routing -- [HELD] [NEW] [BATCH]
//! ```
//!
//! HELD (100,000) message events are stored and routed first (untimed),
//! then NEW (20,000) more are stored and routed in batches of BATCH (500),
//! timed; the bench checks that every new event was routed, none is left
//! unrouted and the last one has its conversation. "ms a call" counts every
//! call, the last one (which finds nothing left) included.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use nexiom_core::{EventKind, NewWebhookEvent, Platform, TenantId};
use nexiom_storage::conformance::{World, world};
use nexiom_storage::{EventStore, MemoryStore};
use serde_json::json;

fn arg(n: usize, default: u32) -> u32 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (held, new, batch) = (arg(1, 100_000), arg(2, 20_000), arg(3, 500).max(1));
    let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    let store = MemoryStore::new();
    let World { tenant, channel } = world(&store, "Acme", Platform::WhatsApp, "pn-memory").await;
    let event = |i: u32| NewWebhookEvent {
        tenant_id: tenant.id,
        channel_id: channel.id,
        platform: Platform::WhatsApp,
        event_id: format!("wamid.{i}"),
        kind: EventKind::Message,
        sender_id: Some(format!("336{:05}", i % 1_000)),
        sender_name: Some("Customer".into()),
        text: Some("Bonjour".into()),
        has_media: false,
        delivery_status: None,
        target_id: None,
        parent_id: None,
        occurred_at: t0 + Duration::milliseconds(i64::from(i)),
        payload: json!({"id": i}),
        received_at: t0 + Duration::milliseconds(i64::from(i)),
    };
    for i in 0..held {
        store.insert_event(event(i)).await.unwrap();
    }
    route_all(&store, batch, t0).await;
    for i in held..held + new {
        store.insert_event(event(i)).await.unwrap();
    }
    let start = Instant::now();
    let (routed, calls) = route_all(&store, batch, t0).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(routed, u64::from(new), "every new event routed");
    assert!(
        store
            .list_unrouted_events(None, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let tenant_id: TenantId = tenant.id;
    let last = store
        .find_event(
            tenant_id,
            &Platform::WhatsApp,
            &format!("wamid.{}", held + new - 1),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(last.conversation_id.is_some(), "routed to a conversation");
    println!(
        "memory store holding {held} routed events: {new} new events routed in batches of \
         {batch} in {secs:.2} s ({:.0} events/s, {:.2} ms a call over {calls} calls)",
        f64::from(new) / secs,
        secs * 1e3 / calls as f64
    );
}

/// Routes until nothing is left: (events routed, calls).
async fn route_all(store: &MemoryStore, batch: u32, at: chrono::DateTime<Utc>) -> (u64, u64) {
    let (mut routed, mut calls) = (0, 0);
    loop {
        let report = store.route_unrouted_events(None, batch, at).await.unwrap();
        calls += 1;
        if report.processed == 0 {
            return (routed, calls);
        }
        routed += report.processed;
    }
}
