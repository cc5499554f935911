//! Postgres-only routing checks: what the one pass does when another writer
//! stores the message it is about to insert.

use chrono::Duration;
use nexiom_core::*;

use super::tests::{drop_schema, open_conversation, store, t0, tenant_and_channel};
use crate::{ConversationStore, EventStore};

/// A message stored by another writer after the pass looked its key up: the
/// insert meets the key, the call runs again and routes the event to that
/// message's conversation, with no second message and no contact for the
/// sender (nothing else is written for a stored message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_message_stored_meanwhile_is_found_on_the_retry() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let (tenant, channel) = tenant_and_channel(&store, "pn-race").await;
    let conversation = open_conversation(&store, &tenant, &channel, "33600000009").await;
    let event = store
        .insert_event(NewWebhookEvent {
            tenant_id: tenant.id,
            channel_id: channel.id,
            platform: Platform::WhatsApp,
            event_id: "wamid.race".into(),
            kind: EventKind::Message,
            sender_id: Some("33600000001".into()),
            sender_name: Some("Alex".into()),
            text: Some("Bonjour".into()),
            has_media: false,
            delivery_status: None,
            target_id: None,
            parent_id: None,
            occurred_at: t0(),
            payload: serde_json::json!({"id": "wamid.race"}),
            received_at: t0(),
        })
        .await
        .expect("event")
        .record;
    // Another writer holds, uncommitted, a message with the event's key.
    let mut other = store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
             has_media, provider_message_id, created_at, stored_at) \
         VALUES ($1, $2, $3, $4, 'inbound', 'Bonjour', false, 'wamid.race', $5, $5)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant.id.as_uuid())
    .bind(conversation.id.as_uuid())
    .bind(channel.id.as_uuid())
    .bind(t0())
    .execute(&mut *other)
    .await
    .expect("the other writer's message");
    let at = t0() + Duration::hours(1);
    let router = {
        let store = store.clone();
        tokio::spawn(async move { store.route_unrouted_events(None, 10, at).await })
    };
    // The router's insert waits on the key; then the other writer commits.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    other.commit().await.expect("commit");
    let report = router.await.expect("join").expect("routed");
    assert_eq!((report.processed, report.messages_created), (1, 0));
    let event = store.get_event(tenant.id, event.id).await.expect("event");
    assert_eq!(event.routed_at, Some(at));
    assert_eq!(event.conversation_id, Some(conversation.id));
    let found = store
        .find_message_by_provider_id(tenant.id, channel.id, "wamid.race")
        .await
        .expect("find")
        .expect("stored");
    assert_eq!(found.conversation_id, conversation.id);
    assert_eq!(
        store
            .list_conversations(tenant.id, None, 10)
            .await
            .expect("list")
            .len(),
        1,
        "no contact or conversation for the sender"
    );
    drop_schema(admin, schema).await;
}

/// A provider id held by two outbound messages of two months (the message
/// key holds the time; recording a sent message now refuses an id another
/// message holds, but rows stored before that check, or written by hand,
/// may hold one twice): a delivery status naming it updates both and
/// routes to the latest one's conversation, instead of failing the whole
/// batch on a subquery that returned two rows.
#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_status_for_a_provider_id_stored_twice_still_routes() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let (tenant, channel) = tenant_and_channel(&store, "pn-twice").await;
    let first = open_conversation(&store, &tenant, &channel, "33600000010").await;
    let second = open_conversation(&store, &tenant, &channel, "33600000011").await;
    for (conversation, at) in [(&first, t0()), (&second, t0() + Duration::days(40))] {
        let message = store
            .insert_message(NewMessage {
                tenant_id: tenant.id,
                conversation_id: conversation.id,
                direction: MessageDirection::Outbound,
                text: "Merci".into(),
                has_media: false,
                provider_message_id: None,
                in_reply_to: None,
                delivery_status: Some(DeliveryStatus::Pending),
                created_at: at,
                stored_at: at,
            })
            .await
            .expect("message")
            .record;
        let sent = store
            .record_message_sent(
                tenant.id,
                message.id,
                Some("wamid.twice"),
                DeliveryStatus::Sent,
            )
            .await;
        if conversation.id == first.id {
            sent.expect("sent");
        } else {
            assert!(
                matches!(sent, Err(crate::StorageError::Conflict { .. })),
                "{sent:?}"
            );
            // In the schema (its triggers name their tables unqualified).
            let mut tx = admin.begin().await.expect("begin");
            sqlx::query(&format!("SET LOCAL search_path TO \"{schema}\""))
                .execute(&mut *tx)
                .await
                .expect("search_path");
            sqlx::query(
                "UPDATE messages SET provider_message_id = 'wamid.twice', \
                     delivery_status = 'sent' WHERE id = $1",
            )
            .bind(message.id.as_uuid())
            .execute(&mut *tx)
            .await
            .expect("held twice");
            tx.commit().await.expect("commit");
        }
    }
    let at = t0() + Duration::days(41);
    let event = store
        .insert_event(NewWebhookEvent {
            tenant_id: tenant.id,
            channel_id: channel.id,
            platform: Platform::WhatsApp,
            event_id: "wamid.twice:delivered".into(),
            kind: EventKind::Status,
            sender_id: None,
            sender_name: None,
            text: None,
            has_media: false,
            delivery_status: Some(DeliveryStatus::Delivered),
            target_id: Some("wamid.twice".into()),
            parent_id: None,
            occurred_at: at,
            payload: serde_json::json!({"id": "wamid.twice"}),
            received_at: at,
        })
        .await
        .expect("event")
        .record;
    let report = store
        .route_unrouted_events(None, 10, at)
        .await
        .expect("routed");
    assert_eq!(report.processed, 1);
    let event = store.get_event(tenant.id, event.id).await.expect("event");
    assert_eq!(event.routed_at, Some(at));
    assert_eq!(event.conversation_id, Some(second.id));
    for conversation in [&first, &second] {
        let messages = store
            .list_messages(tenant.id, conversation.id, 10)
            .await
            .expect("messages");
        assert_eq!(
            messages
                .iter()
                .map(|m| m.delivery_status)
                .collect::<Vec<_>>(),
            vec![Some(DeliveryStatus::Delivered)]
        );
    }
    drop_schema(admin, schema).await;
}

/// A status event for `wamid` (event id `id`) at `at`.
fn status_event(
    tenant: &Tenant,
    channel: &Channel,
    id: &str,
    wamid: &str,
    status: DeliveryStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        tenant_id: tenant.id,
        channel_id: channel.id,
        platform: Platform::WhatsApp,
        event_id: id.into(),
        kind: EventKind::Status,
        sender_id: None,
        sender_name: None,
        text: None,
        has_media: false,
        delivery_status: Some(status),
        target_id: Some(wamid.into()),
        parent_id: None,
        occurred_at: at,
        payload: serde_json::json!({"id": wamid}),
        received_at: at,
    }
}

/// The race the early statuses' sweep closes: a sender records a reply's
/// provider id (its trigger finds no early status) while a router, not
/// seeing that uncommitted id, keeps the reply's `failed` status as early.
/// Neither saw the other; the next routing call with statuses applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn an_early_status_missed_by_a_concurrent_sender_is_applied_by_the_next_call() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let (tenant, channel) = tenant_and_channel(&store, "pn-early").await;
    let conversation = open_conversation(&store, &tenant, &channel, "33600000012").await;
    let reply = store
        .insert_message(NewMessage {
            tenant_id: tenant.id,
            conversation_id: conversation.id,
            direction: MessageDirection::Outbound,
            text: "Merci".into(),
            has_media: false,
            provider_message_id: None,
            in_reply_to: None,
            delivery_status: Some(DeliveryStatus::Pending),
            created_at: t0(),
            stored_at: t0(),
        })
        .await
        .expect("reply")
        .record;
    // The sender records the id, uncommitted.
    let mut sender = store.pool().begin().await.expect("begin");
    sqlx::query(
        "UPDATE messages SET provider_message_id = 'wamid.race-early', delivery_status = 'sent' \
         WHERE id = $1",
    )
    .bind(reply.id.as_uuid())
    .execute(&mut *sender)
    .await
    .expect("the sender's record");
    // Meanwhile the failure is routed: no message holds the id yet.
    let at = t0() + Duration::minutes(1);
    store
        .insert_event(status_event(
            &tenant,
            &channel,
            "s-failed",
            "wamid.race-early",
            DeliveryStatus::Failed,
            at,
        ))
        .await
        .expect("status");
    assert_eq!(
        store
            .route_unrouted_events(None, 10, at)
            .await
            .expect("route")
            .processed,
        1
    );
    sender.commit().await.expect("commit");
    let missed = store.get_message(tenant.id, reply.id).await.expect("reply");
    assert_eq!(missed.delivery_status, Some(DeliveryStatus::Sent));

    // The next call with a status (any message's) applies it.
    let later = at + Duration::minutes(2);
    store
        .insert_event(status_event(
            &tenant,
            &channel,
            "s-other",
            "wamid.someone-else",
            DeliveryStatus::Read,
            later,
        ))
        .await
        .expect("status");
    store
        .route_unrouted_events(None, 10, later)
        .await
        .expect("route");
    let applied = store.get_message(tenant.id, reply.id).await.expect("reply");
    assert_eq!(applied.delivery_status, Some(DeliveryStatus::Failed));
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM early_statuses WHERE provider_message_id = 'wamid.race-early'",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(left, 0, "applied once, then removed");
    drop_schema(admin, schema).await;
}
