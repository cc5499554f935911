//! Webhook events (migration 0032), partitioned by month of `occurred_at`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{EventKind, NewWebhookEvent, Platform};
use nexiom_storage::conformance::{World, postgres_test_store, world};
use nexiom_storage::{EventStore, OpsStore, PgStore, Retained, RetentionStore};
use serde_json::json;

use super::support::{
    admin, at, drop_schema, months, purge, schema_before, store_in, thirteen_months,
};

fn event(w: &World, key: &str, occurred_at: DateTime<Utc>) -> NewWebhookEvent {
    NewWebhookEvent {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        platform: w.channel.platform.clone(),
        event_id: key.to_owned(),
        kind: EventKind::Other,
        sender_id: None,
        sender_name: None,
        text: None,
        has_media: false,
        delivery_status: None,
        target_id: None,
        parent_id: None,
        occurred_at,
        payload: json!({"id": key}),
        received_at: occurred_at + Duration::seconds(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn retention_drops_whole_months_of_routed_events() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let mut conn = admin(&schema).await;
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-partitions").await;

    // 13 monthly partitions, November 2025 to November 2026, 3 routed
    // events each; and one event of December 2025 not routed yet.
    store.prepare_partitions(at(2025, 11, 1), 12).await.unwrap();
    let mut month = at(2025, 11, 1);
    for m in 0..13 {
        for day in [1, 10, 28] {
            let t = month + Duration::days(day - 1);
            let e = store
                .insert_event(event(&w, &format!("e-{m}-{day}"), t))
                .await
                .unwrap()
                .record;
            store
                .mark_event_routed(w.tenant.id, e.id, None, t)
                .await
                .unwrap();
        }
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    let waiting = store
        .insert_event(event(&w, "waiting", at(2025, 12, 15)))
        .await
        .unwrap()
        .record;
    let before = months(&mut conn, "webhook_events").await;
    for name in thirteen_months("webhook_events") {
        assert!(before.contains(&name), "{name} in {before:?}");
    }
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events_default")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(in_default, 0, "every event in its month");

    // Keep 6 months from 1 December 2026: the cutoff is 1 June 2026.
    let cutoff = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let kept_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE occurred_at >= $1")
            .bind(cutoff)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    // December 2025 holds an unrouted event: its partition stays, and only
    // its routed events go (by the batched delete).
    assert_eq!(purge(&store, Retained::WebhookEvents, cutoff).await, 7 * 3);
    let after = months(&mut conn, "webhook_events").await;
    let dropped: Vec<&String> = before.iter().filter(|m| !after.contains(m)).collect();
    assert_eq!(dropped.len(), 6, "{dropped:?}");
    assert!(after.contains(&"webhook_events_y2025m12".to_owned()));
    assert_eq!(
        store.get_event(w.tenant.id, waiting.id).await.unwrap().id,
        waiting.id,
        "an unrouted event is kept whatever its age"
    );

    // Once routed, its month goes too: 7 of the 13 months dropped.
    store
        .mark_event_routed(w.tenant.id, waiting.id, None, at(2026, 12, 1))
        .await
        .unwrap();
    assert_eq!(purge(&store, Retained::WebhookEvents, cutoff).await, 1);
    let after = months(&mut conn, "webhook_events").await;
    let dropped: Vec<&String> = before.iter().filter(|m| !after.contains(m)).collect();
    assert_eq!(dropped.len(), 7, "November 2025 to May 2026: {dropped:?}");
    assert!(
        dropped
            .iter()
            .all(|m| m.as_str() < "webhook_events_y2026m06")
    );
    let (total, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(occurred_at) FROM webhook_events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(total, kept_before, "every event inside the window is kept");
    assert!(oldest.unwrap() >= cutoff);
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn an_event_key_is_stored_once_across_months() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-months").await;
    store.prepare_partitions(at(2026, 1, 1), 2).await.unwrap();
    let first = store
        .insert_event(event(&w, "k", at(2026, 1, 31)))
        .await
        .unwrap();
    assert!(first.created);
    // The same key with another time (another partition): a redelivery.
    let again = store
        .insert_event(event(&w, "k", at(2026, 2, 1)))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record.id, first.record.id);
    let found = store
        .find_event(w.tenant.id, &w.channel.platform, "k")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, first.record.id);
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn the_migration_keeps_every_event_of_an_unpartitioned_table() {
    let Some((schema, pool, root)) = schema_before("partition webhook events").await else {
        return;
    };
    // 100,000 events over about 7 months, one in ten not routed yet.
    sqlx::query(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             has_media, occurred_at, payload, received_at, routed_at) \
         SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'whatsapp', \
                'evt-' || i, 'other', false, now() - (i * interval '3 minutes'), \
                jsonb_build_object('n', i), now() - (i * interval '3 minutes'), \
                CASE WHEN i % 10 = 0 THEN NULL ELSE now() END \
         FROM generate_series(1, 100000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let summary = "SELECT count(*), count(routed_at), \
                       sum(length(event_id))::bigint, sum((payload->>'n')::bigint)::bigint \
                   FROM webhook_events";
    let before: (i64, i64, i64, i64) = sqlx::query_as(summary).fetch_one(&pool).await.unwrap();
    assert_eq!(before.0, 100_000);

    PgStore::from_pool(pool.clone()).migrate().await.unwrap();
    let after: (i64, i64, i64, i64) = sqlx::query_as(summary).fetch_one(&pool).await.unwrap();
    assert_eq!(after, before, "every event kept, routed or not");
    let (in_default, partitioned): (i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_events_default), \
                (SELECT relkind = 'p' FROM pg_class WHERE oid = 'webhook_events'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(in_default, 0, "every event in its month");
    assert!(partitioned);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        months(&mut conn, "webhook_events").await.len() >= 10,
        "about 7 months of events, and 3 ahead"
    );
    drop(conn);
    drop_schema(pool, root, &schema).await;
}

/// An unrouted event inserted into an old month while retention is about to
/// drop it keeps its month: the drop waits for the insert to commit (it
/// locks writers out first) and looks for unrouted events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn an_event_inserted_during_a_drop_keeps_its_month() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-drop-race").await;
    store.prepare_partitions(at(2026, 1, 1), 1).await.unwrap();
    let routed = store
        .insert_event(event(&w, "routed", at(2026, 1, 5)))
        .await
        .unwrap()
        .record;
    store
        .mark_event_routed(w.tenant.id, routed.id, None, at(2026, 1, 5))
        .await
        .unwrap();

    // A writer holds an uncommitted unrouted event of January.
    let mut writer = admin(&schema).await;
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             has_media, occurred_at, payload, received_at) \
         VALUES (gen_random_uuid(), $1, $2, 'whatsapp', 'late', 'other', false, $3, '{}', $3)",
    )
    .bind(w.tenant.id.as_uuid())
    .bind(w.channel.id.as_uuid())
    .bind(at(2026, 1, 20))
    .execute(&mut writer)
    .await
    .unwrap();

    // Retention of everything before March waits for it...
    let cutoff = at(2026, 3, 1);
    let purging = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .purge_before(Retained::WebhookEvents, cutoff, 100)
                .await
        })
    };
    let mut watcher = admin(&schema).await;
    let mut waiting = false;
    // Up to 10 s for the drop to reach the lock (a busy machine runs the
    // spawned purge late; a bare count of polls ran out first).
    for _ in 0..1_000 {
        waiting = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '%nexiom_drop_months_before%')",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waiting, "the drop waits for the writer");
    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();

    // ...and keeps the month: only the routed event goes (by the batched
    // delete), the late one stays.
    assert_eq!(purging.await.unwrap().unwrap(), 1);
    let months = months(&mut watcher, "webhook_events").await;
    assert!(months.contains(&"webhook_events_y2026m01".to_owned()));
    let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM webhook_events")
        .fetch_all(&mut watcher)
        .await
        .unwrap();
    assert_eq!(left, vec!["late".to_owned()]);
    test.cleanup().await;
}
