//! Routing throughput on PostgreSQL: `route_unrouted_events` side by side
//! with two baselines over the same data, in the same run, on the same
//! database (each run in a fresh schema filled identically):
//!
//! - `router`: `PgStore::route_unrouted_events` in batches of BATCH;
//! - `plpgsql`: the seed's algorithm, installed by the bench as a PL/pgSQL
//!   function and run server-side, one call per batch: for each event, find or
//!   create the contact channel and contact, find or open the conversation,
//!   insert the message (`ON CONFLICT DO NOTHING`), move `last_message_at`,
//!   mark the event routed;
//! - `unnest`: the floor, the rows routing creates (contacts, contact
//!   channels, conversations, messages) computed by the client beforehand and
//!   inserted per batch with `INSERT … SELECT FROM UNNEST`, no lookups, no
//!   `ON CONFLICT`, nothing marked (same tables, so the same indexes,
//!   constraints and triggers);
//! - `lean` (only when asked for): the floor plus, in each batch's
//!   transaction, the router's other steps as one bare statement: take the
//!   batch `FOR UPDATE SKIP LOCKED`, look up each event's stored message,
//!   contact channel and open conversation, move `last_message_at` on the
//!   conversations that existed, mark the events routed. Beside the router,
//!   it shows how much of the router's cost is those steps themselves;
//! - `lean-queue`, `lean-queue-carry` (only when asked for): the same steps
//!   with the batch taken from a narrow queue table (filled before the clock
//!   starts) by deleting its rows, no event row rewritten; `-carry`'s queue
//!   rows hold the fields routing reads; `lean-queue-hot` marks the events
//!   too, as HOT updates (the unrouted index dropped, fillfactor 45).
//!   `lean-queue-take`,
//!   `lean-queue-nobump` and `lean-queue-nolookups` run a part of
//!   `lean-queue`, for the cost of each step (see `lean.rs`);
//! - `single` (only when asked for): `route_event` once per event, for at
//!   most 120 s.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release -p nexiom-storage --example route_bench -- [EVENTS] [BATCH] [ROUNDS]
//! ```
//!
//! EVENTS defaults to 50,000 message events from EVENTS / 10 senders (5,000),
//! BATCH to 1,000, ROUNDS to 3 (the paths run one after the other in each
//! round; medians are printed). One event in ten is a redelivery: the message
//! it carries was routed earlier (by half of the senders, before the run) and
//! its event row purged since, as retention does, so the event is stored
//! again and routing finds the message stored. The other events are new
//! messages, in time order; the senders without history get their contact
//! and conversation during the run. `PATHS` (comma-separated, default
//! `router,plpgsql,unnest`) chooses the paths; the schemas are dropped at the
//! end (kept when `ROUTE_BENCH_KEEP` is set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

mod baselines;
mod lean;

use std::str::FromStr;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{ChannelId, Credentials, NewChannel, NewTenant, Platform, TenantId};
use nexiom_storage::{EventStore, PgStore, TenantStore};
use sqlx::PgPool;

use crate::lean::Lean;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// One filled schema.
pub struct World {
    pub store: PgStore,
    pub schema: String,
    pub tenant: TenantId,
    pub channel: ChannelId,
    /// The time every path routes at.
    pub at: DateTime<Utc>,
}

/// The shape of the data.
#[derive(Clone, Copy)]
pub struct Shape {
    pub events: i64,
    pub batch: u32,
}

impl Shape {
    fn senders(self) -> i64 {
        (self.events / 10).max(2)
    }
    /// Messages routed before the run (and redelivered during it).
    fn earlier(self) -> i64 {
        self.events / 10
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: i64 = args
        .next()
        .map_or(50_000, |a| a.parse().expect("EVENTS is a number"));
    let batch: u32 = args
        .next()
        .map_or(1_000, |a| a.parse().expect("BATCH is a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let paths: Vec<String> = std::env::var("PATHS")
        .unwrap_or_else(|_| "router,plpgsql,unnest".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let shape = Shape { events, batch };
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL to a PostgreSQL database");
    let options = PgConnectOptions::from_str(&url).expect("a valid DATABASE_URL");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .expect("connect");

    println!(
        "routing {events} message events ({} senders, {} redeliveries), batches of {batch}, \
         {rounds} rounds, paths {paths:?}",
        shape.senders(),
        shape.earlier()
    );
    let mut rates: Vec<(String, Vec<f64>)> = paths.iter().map(|p| (p.clone(), vec![])).collect();
    for round in 1..=rounds {
        for (path, results) in &mut rates {
            let world = fill(&admin, &options, shape, path).await;
            let (count, secs) = match path.as_str() {
                "router" => run_router(&world, shape).await,
                "plpgsql" => baselines::run_plpgsql(&world, shape).await,
                "unnest" => baselines::run_unnest(&world, shape, None).await,
                lean if Lean::from_path(lean).is_some() => {
                    baselines::run_unnest(&world, shape, Lean::from_path(lean)).await
                }
                "single" => run_single(&world, shape).await,
                // Only the data, for a look at the plans (with ROUTE_BENCH_KEEP).
                "fill" => (0, 1.0),
                other => panic!("unknown path {other}"),
            };
            verify(&world, shape, path).await;
            let rate = count as f64 / secs;
            println!(
                "round {round} {path:<20} {count:>7} events in {secs:>7.2} s = {rate:>8.0} events/s"
            );
            results.push(rate);
            drop_schema(&admin, &world).await;
        }
    }
    report(&rates);
}

/// Medians per path, and the router's ratio to each baseline: the ratio of
/// the medians, and the median of the ratios within each round (the paths of
/// a round run one after the other, so this one follows a machine whose load
/// changes between rounds more closely).
fn report(rates: &[(String, Vec<f64>)]) {
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("medians:");
    for (path, v) in rates {
        println!("  {path:<20} {:>8.0} events/s", median(v));
    }
    let find = |name: &str| rates.iter().find(|(p, _)| p == name).map(|(_, v)| v);
    for (name, lean) in rates.iter().filter(|(p, _)| Lean::from_path(p).is_some()) {
        if let Some(unnest) = find("unnest") {
            let paired: Vec<f64> = lean.iter().zip(unnest).map(|(l, u)| l / u).collect();
            println!(
                "  {name} / unnest: {:.2}x (medians), median per round {:.2}x",
                median(lean) / median(unnest),
                median(&paired)
            );
        }
    }
    let Some(router) = find("router") else {
        return;
    };
    for (path, v) in rates.iter().filter(|(p, _)| p != "router") {
        let paired: Vec<f64> = router.iter().zip(v).map(|(r, b)| r / b).collect();
        let rounds: Vec<String> = paired.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "  router / {path}: {:.2}x (medians); per round {} (median {:.2}x)",
            median(router) / median(v),
            rounds.join(", "),
            median(&paired)
        );
    }
}

/// `route_unrouted_events` until nothing is left: (events, seconds).
async fn run_router(world: &World, shape: Shape) -> (u64, f64) {
    let start = Instant::now();
    let mut routed = 0;
    loop {
        let report = world
            .store
            .route_unrouted_events(None, shape.batch, world.at)
            .await
            .expect("route");
        if report.processed == 0 {
            break;
        }
        routed += report.processed;
    }
    (routed, start.elapsed().as_secs_f64())
}

/// `route_event` once per event, for at most 120 s.
async fn run_single(world: &World, shape: Shape) -> (u64, f64) {
    let start = Instant::now();
    let mut routed = 0;
    'outer: loop {
        let page = world
            .store
            .list_unrouted_events(None, shape.batch)
            .await
            .expect("list");
        if page.is_empty() {
            break;
        }
        for event in page {
            world
                .store
                .route_event(event.tenant_id, event.id, world.at)
                .await
                .expect("route one");
            routed += 1;
            if start.elapsed().as_secs() >= 120 {
                break 'outer;
            }
        }
    }
    (routed, start.elapsed().as_secs_f64())
}

/// The rows every complete path leaves: one message per distinct message id,
/// one contact, contact channel and open conversation per sender.
async fn verify(world: &World, shape: Shape, path: &str) {
    if path == "single" || path == "fill" {
        return;
    }
    let (messages, conversations, contacts, handles): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM conversations), \
             (SELECT count(*) FROM contacts), (SELECT count(*) FROM contact_channels)",
    )
    .fetch_one(world.store.pool())
    .await
    .unwrap();
    assert_eq!(messages, shape.events, "{path}: one message per message id");
    assert_eq!(conversations, shape.senders(), "{path}: conversations");
    assert_eq!(contacts, shape.senders(), "{path}: contacts");
    assert_eq!(handles, shape.senders(), "{path}: contact channels");
    let lean = Lean::from_path(path);
    if lean.is_some_and(Lean::uses_queue) {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM routing_queue")
            .fetch_one(world.store.pool())
            .await
            .unwrap();
        assert_eq!(left, 0, "{path}: every event taken");
    }
    if lean == Some(Lean::QueueHot) {
        // The statistics reach the view once the router's sessions are idle.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (updates, hot): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(sum(n_tup_upd), 0)::bigint, COALESCE(sum(n_tup_hot_upd), 0)::bigint \
             FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname LIKE 'webhook_events%'",
        )
        .fetch_one(world.store.pool())
        .await
        .unwrap();
        println!(
            "  {path}: fillfactor {}, {hot} of {updates} updates of the events HOT (the fill's \
             {} marks included, made before the rewrite)",
            lean::fillfactor(),
            shape.earlier()
        );
    }
    if matches!(lean, Some(Lean::Marks | Lean::QueueHot)) {
        let unmarked: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE routed_at IS NULL")
                .fetch_one(world.store.pool())
                .await
                .unwrap();
        assert_eq!(unmarked, 0, "{path}: every event marked");
    }
    if path != "unnest" && lean.is_none() {
        let unrouted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_events \
             WHERE routed_at IS NULL OR conversation_id IS NULL",
        )
        .fetch_one(world.store.pool())
        .await
        .unwrap();
        assert_eq!(unrouted, 0, "{path}: every event routed to a conversation");
    }
    // The lean path moves `last_message_at` too (of the conversations that
    // existed; the floor's inserts set it on the ones they open).
    if path != "unnest" && lean.is_none_or(Lean::is_complete) {
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM conversations c \
             WHERE last_message_at IS DISTINCT FROM \
                 (SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id)",
        )
        .fetch_one(world.store.pool())
        .await
        .unwrap();
        assert_eq!(stale, 0, "{path}: last_message_at is the latest message");
    }
}

/// A fresh schema with one tenant and one WhatsApp channel: the earlier
/// messages routed (their event rows purged), then the run's events unrouted.
async fn fill(admin: &PgPool, options: &PgConnectOptions, shape: Shape, label: &str) -> World {
    let schema = format!("nx_route_bench_{label}_{}", uuid::Uuid::now_v7().simple());
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
        .create_tenant(NewTenant::new("Bench", t0 - Duration::days(2)))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: "pn-bench".into(),
            name: "bench".into(),
            credentials: Credentials::default(),
            created_at: t0 - Duration::days(2),
        })
        .await
        .unwrap();
    let insert = |sql: &'static str| {
        sqlx::query(sql)
            .bind(tenant.id.as_uuid())
            .bind(channel.id.as_uuid())
            .bind(t0)
            .bind(shape.events)
            .bind(shape.senders())
    };
    // The earlier messages: half of the senders, two each, a day before.
    insert(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id, \
             occurred_at, payload, received_at, routed_at, conversation_id) \
         SELECT gen_random_uuid(), $1, $2, 'whatsapp', 'wamid.p' || j, 'message', \
             '336' || lpad((j % ($5 / 2))::text, 8, '0'), 'Sender ' || (j % ($5 / 2)), \
             'Earlier message ' || j, FALSE, NULL, NULL, NULL, \
             $3 - interval '1 day' + j * interval '1 second', \
             jsonb_build_object('id', 'wamid.p' || j, 'type', 'text'), \
             $3 - interval '1 day' + j * interval '1 second', NULL, NULL \
         FROM generate_series(0, $4 / 10 - 1) AS j",
    )
    .execute(store.pool())
    .await
    .expect("fill earlier events");
    let at_earlier = t0 - Duration::hours(12);
    while store
        .route_unrouted_events(None, 1_000, at_earlier)
        .await
        .expect("route earlier")
        .processed
        > 0
    {}
    sqlx::query("DELETE FROM webhook_events")
        .execute(store.pool())
        .await
        .expect("purge earlier events");
    // The run: one event in ten redelivers an earlier message; the others are
    // new messages of every sender in turn, in time order.
    insert(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id, \
             occurred_at, payload, received_at, routed_at, conversation_id) \
         SELECT gen_random_uuid(), $1, $2, 'whatsapp', x.event_id, 'message', \
             '336' || lpad(x.sender::text, 8, '0'), 'Sender ' || x.sender, x.text, FALSE, \
             NULL, NULL, NULL, x.occurred_at, \
             jsonb_build_object('id', x.event_id, 'type', 'text'), \
             $3 + i * interval '100 milliseconds' + interval '2 seconds', NULL, NULL \
         FROM generate_series(0, $4 - 1) AS i \
         CROSS JOIN LATERAL (SELECT \
             CASE WHEN i % 10 = 9 THEN 'wamid.p' || i / 10 ELSE 'wamid.n' || i END AS event_id, \
             CASE WHEN i % 10 = 9 THEN (i / 10) % ($5 / 2) \
                 ELSE (i - (i + 1) / 10) % $5 END AS sender, \
             CASE WHEN i % 10 = 9 THEN 'Earlier message ' || i / 10 \
                 ELSE 'Bonjour, message ' || i END AS text, \
             CASE WHEN i % 10 = 9 THEN $3 - interval '1 day' + (i / 10) * interval '1 second' \
                 ELSE $3 + i * interval '100 milliseconds' END AS occurred_at) x",
    )
    .execute(store.pool())
    .await
    .expect("fill events");
    sqlx::query("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .expect("vacuum analyze");
    World {
        store,
        schema,
        tenant: tenant.id,
        channel: channel.id,
        at: t0 + Duration::days(1),
    }
}

async fn drop_schema(admin: &PgPool, world: &World) {
    world.store.pool().close().await;
    if std::env::var("ROUTE_BENCH_KEEP").is_ok() {
        println!("kept schema {}", world.schema);
        return;
    }
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
        world.schema
    ))
    .execute(admin)
    .await
    .expect("drop schema");
}
