//! Routing throughput on PostgreSQL: `route_unrouted_events` in batches versus
//! a loop that routes one event per call (`route_event`), over the same data in
//! the same run (two fresh schemas filled identically).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom_bench \
//!     cargo run --release -p nexiom-storage --example route_bench -- [EVENTS] [BATCH] [BUDGET]
//! ```
//!
//! EVENTS defaults to 50,000 (message events from EVENTS / 10 senders, so each
//! batch both creates and reuses contacts and conversations), BATCH to 1,000.
//! The one-event-per-call loop runs over the same events, oldest first, for at
//! most BUDGET seconds (default 120; 0 = until every event is routed) and its
//! rate is measured on the events it routed: at a few dozen events per second
//! the full 50,000 would take far longer than the batched pass. The schemas
//! are dropped at the end (kept when `ROUTE_BENCH_KEEP` is set).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use nexiom_core::{Credentials, NewChannel, NewTenant, Platform};
use nexiom_storage::{EventStore, PgStore, TenantStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: i64 = args
        .next()
        .map_or(50_000, |a| a.parse().expect("EVENTS is a number"));
    let batch: u32 = args
        .next()
        .map_or(1_000, |a| a.parse().expect("BATCH is a number"));
    let budget: u64 = args
        .next()
        .map_or(120, |a| a.parse().expect("BUDGET is a number"));
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL to a PostgreSQL database");
    let options = PgConnectOptions::from_str(&url).expect("a valid DATABASE_URL");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .expect("connect");

    println!("route_unrouted_events on PostgreSQL: {events} message events, batches of {batch}");
    let batched = {
        let (store, schema) = fill(&admin, &options, events, "batched").await;
        let at = Utc::now();
        let start = Instant::now();
        let mut routed = 0;
        loop {
            let report = store
                .route_unrouted_events(None, batch, at)
                .await
                .expect("route");
            if report.processed == 0 {
                break;
            }
            routed += report.processed;
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(routed, events as u64);
        drop_schema(&admin, &schema).await;
        secs
    };
    let single = {
        let (store, schema) = fill(&admin, &options, events, "single").await;
        let at = Utc::now();
        let start = Instant::now();
        let mut routed: i64 = 0;
        'outer: loop {
            let page = store.list_unrouted_events(None, batch).await.expect("list");
            if page.is_empty() {
                break;
            }
            for event in page {
                store
                    .route_event(event.tenant_id, event.id, at)
                    .await
                    .expect("route one");
                routed += 1;
                if budget > 0 && start.elapsed().as_secs() >= budget {
                    break 'outer;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        drop_schema(&admin, &schema).await;
        (routed, secs)
    };
    let batched_rate = events as f64 / batched;
    let single_rate = single.0 as f64 / single.1;
    println!(
        "batched (route_unrouted_events, {batch}/call): {:>6} events in {:>8.2} s = {:>9.0} events/s",
        events, batched, batched_rate
    );
    println!(
        "one event per call (route_event loop):        {:>6} events in {:>8.2} s = {:>9.0} events/s",
        single.0, single.1, single_rate
    );
    println!("speed-up: {:.1}x", batched_rate / single_rate);
}

/// A fresh schema with one tenant, one WhatsApp channel and `events` unrouted
/// message events, filled with one set-based statement.
async fn fill(
    admin: &sqlx::PgPool,
    options: &PgConnectOptions,
    events: i64,
    label: &str,
) -> (PgStore, String) {
    let schema = format!("nx_bench_{label}_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(admin)
        .await
        .expect("create schema");
    let store = PgStore::connect_with(
        options.clone().options([("search_path", schema.as_str())]),
        4,
    )
    .await
    .expect("connect store");
    store.migrate().await.expect("migrate");
    let t0 = Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 0).unwrap();
    let tenant = store
        .create_tenant(NewTenant::new("Bench", t0))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: "pn-bench".into(),
            name: "bench".into(),
            credentials: Credentials::default(),
            created_at: t0,
        })
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id, \
             occurred_at, payload, received_at, routed_at, conversation_id) \
         SELECT gen_random_uuid(), $1, $2, 'whatsapp', 'wamid.' || g, 'message', \
             'sender-' || (g % ($4 / 10 + 1)), 'Sender', 'Bonjour, message ' || g, FALSE, \
             NULL, NULL, NULL, $3 + (g % 997) * interval '1 second', \
             jsonb_build_object('id', 'wamid.' || g), $3 + g * interval '1 millisecond', \
             NULL, NULL \
         FROM generate_series(1, $4) AS g",
    )
    .bind(tenant.id.as_uuid())
    .bind(channel.id.as_uuid())
    .bind(t0)
    .bind(events)
    .execute(store.pool())
    .await
    .expect("fill events");
    sqlx::query("ANALYZE")
        .execute(store.pool())
        .await
        .expect("analyze");
    (store, schema)
}

async fn drop_schema(admin: &sqlx::PgPool, schema: &str) {
    if std::env::var("ROUTE_BENCH_KEEP").is_ok() {
        println!("kept schema {schema}");
        return;
    }
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(admin)
        .await
        .expect("drop schema");
}
