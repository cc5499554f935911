//! Messages (migration 0033), partitioned by month of `created_at`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{MessageDirection, Platform};
use nexiom_storage::conformance::{
    conversation, new_message as message, postgres_test_store, test_keys, world,
};
use nexiom_storage::{ConversationStore, OpsStore, PgStore, Retained};

use super::support::{
    admin, at, drop_schema, months, purge, schema_before, store_in, thirteen_months,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn retention_drops_whole_months_of_messages() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let mut conn = admin(&schema).await;
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-messages").await;
    let (_, conv) = conversation(&store, &w, "33600000009").await;

    // 13 monthly partitions, November 2025 to November 2026, 3 messages each.
    store.prepare_partitions(at(2025, 11, 1), 12).await.unwrap();
    let mut month = at(2025, 11, 1);
    for m in 0..13 {
        for day in [1, 10, 28] {
            let t = month + Duration::days(day - 1);
            let created = store
                .insert_message(message(
                    w.tenant.id,
                    conv.id,
                    MessageDirection::Inbound,
                    Some(&format!("wamid.{m}.{day}")),
                    t,
                ))
                .await
                .unwrap();
            assert!(created.created);
        }
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    let before = months(&mut conn, "messages").await;
    for name in thirteen_months("messages") {
        assert!(before.contains(&name), "{name} in {before:?}");
    }
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM messages_default")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(in_default, 0, "every message in its month");

    // Keep 6 months from 1 December 2026: the cutoff is 1 June 2026.
    let cutoff = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let kept_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE created_at >= $1")
            .bind(cutoff)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(purge(&store, Retained::Messages, cutoff).await, 7 * 3);
    let after = months(&mut conn, "messages").await;
    let dropped: Vec<&String> = before.iter().filter(|m| !after.contains(m)).collect();
    assert_eq!(dropped.len(), 7, "November 2025 to May 2026: {dropped:?}");
    assert!(dropped.iter().all(|m| m.as_str() < "messages_y2026m06"));
    let (total, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(created_at) FROM messages")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        total, kept_before,
        "every message inside the window is kept"
    );
    assert!(oldest.unwrap() >= cutoff);
    let listed = store
        .list_messages(w.tenant.id, conv.id, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 18, "the conversation reads what is left");
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn message_keys_hold_across_months() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-keys").await;
    let (_, conv) = conversation(&store, &w, "33600000010").await;
    store.prepare_partitions(at(2026, 1, 1), 2).await.unwrap();
    let t = w.tenant.id;
    let first = store
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.k"),
            at(2026, 1, 31),
        ))
        .await
        .unwrap();
    assert!(first.created);
    // The same provider id at another time (another month): the stored one.
    let again = store
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.k"),
            at(2026, 2, 1),
        ))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record.id, first.record.id);

    // One outbound reply per inbound message, whatever the months.
    let mut reply = message(
        t,
        conv.id,
        MessageDirection::Outbound,
        None,
        at(2026, 1, 31),
    );
    reply.in_reply_to = Some(first.record.id);
    let sent = store.insert_message(reply.clone()).await.unwrap();
    assert!(sent.created);
    reply.created_at = at(2026, 3, 2);
    reply.stored_at = reply.created_at;
    let twice = store.insert_message(reply).await.unwrap();
    assert!(!twice.created);
    assert_eq!(twice.record.id, sent.record.id);

    // A reply to a message that is not stored is refused.
    let mut stray = message(t, conv.id, MessageDirection::Outbound, None, at(2026, 2, 2));
    stray.in_reply_to = Some(nexiom_core::MessageId::generate());
    assert!(store.insert_message(stray).await.is_err());
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn the_migration_keeps_every_message_of_an_unpartitioned_table() {
    let Some((schema, pool, root)) = schema_before("partition messages").await else {
        return;
    };
    let store = PgStore::from_pool(pool.clone()).with_keys(test_keys());
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-migration").await;
    let (_, conv) = conversation(&store, &w, "33600000011").await;
    // 100,000 messages over about 7 months, one in five outbound.
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
             has_media, provider_message_id, created_at, stored_at) \
         SELECT gen_random_uuid(), $1, $2, $3, \
                CASE WHEN i % 5 = 0 THEN 'outbound' ELSE 'inbound' END, 'message ' || i, \
                false, 'wamid.' || i, now() - (i * interval '3 minutes'), now() \
         FROM generate_series(1, 100000) AS i",
    )
    .bind(w.tenant.id.as_uuid())
    .bind(conv.id.as_uuid())
    .bind(w.channel.id.as_uuid())
    .execute(&pool)
    .await
    .unwrap();
    let summary = "SELECT count(*), count(*) FILTER (WHERE direction = 'outbound'), \
                       sum(length(text))::bigint FROM messages";
    let before: (i64, i64, i64) = sqlx::query_as(summary).fetch_one(&pool).await.unwrap();
    assert_eq!(before.0, 100_000);

    store.migrate().await.unwrap();
    let after: (i64, i64, i64) = sqlx::query_as(summary).fetch_one(&pool).await.unwrap();
    assert_eq!(after, before, "every message kept");
    let (in_default, partitioned): (i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages_default), \
                (SELECT relkind = 'p' FROM pg_class WHERE oid = 'messages'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(in_default, 0, "every message in its month");
    assert!(partitioned);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        months(&mut conn, "messages").await.len() >= 10,
        "about 7 months of messages, and 3 ahead"
    );
    drop(conn);
    drop_schema(pool, root, &schema).await;
}
