//! An escalation and its notification are one write, on every backend: with
//! the notification write failing (a test hook in memory, a trigger raising
//! an error on PostgreSQL), neither the triage, nor a failed post's
//! settlement, nor a given-up reply is written; once writes work again, both
//! are, together.
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_storage::conformance::{postgres_test_store, postgres_test_url, t0, world};
use nexiom_storage::{MemoryStore, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// Runs the check on `store`, `fail(true)` making every notification write
/// fail after the change's own write was made.
async fn escalation_and_notification_are_one_write(
    store: Arc<dyn Store>,
    fail: impl AsyncFn(bool),
) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    s.create_notification_endpoint(NewNotificationEndpoint {
        tenant_id: w.tenant.id,
        name: "ops".into(),
        kind: EndpointKind::Webhook,
        url: "https://hooks.example.com/ops".into(),
        secret: Some(SecretString::new("0123456789abcdef")),
        kinds: NotificationKind::ALL.to_vec(),
        created_at: t0(),
    })
    .await
    .unwrap();
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: Platform::Facebook,
            external_handle: "psid-1".into(),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = s
        .insert_open_conversation(w.tenant.id, cc.contact_id, w.channel.id, t0())
        .await
        .unwrap()
        .record;
    let inbound = |key: &str| NewMessage {
        tenant_id: w.tenant.id,
        conversation_id: conv.id,
        direction: MessageDirection::Inbound,
        text: format!("help {key}"),
        has_media: false,
        provider_message_id: Some(key.to_owned()),
        in_reply_to: None,
        delivery_status: None,
        created_at: t0(),
        stored_at: t0(),
    };
    let m = s.insert_message(inbound("m1")).await.unwrap().record;
    let auto = s.insert_message(inbound("m2")).await.unwrap().record;
    s.set_message_triage(w.tenant.id, auto.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    s.set_ai_control(w.tenant.id, true, None, t0())
        .await
        .unwrap();
    assert_eq!(
        s.claim_pending_replies(t0(), None, 10, Duration::minutes(5))
            .await
            .unwrap()
            .len(),
        1
    );
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("p"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    s.claim_due_posts(t0(), 10, "w1", Duration::minutes(5))
        .await
        .unwrap();
    let settlement = PostSettlement {
        tenant_id: w.tenant.id,
        post_id: post.id,
        status: PostStatus::Failed,
        retry_count: Some(1),
        error_message: Some("refused".into()),
        next_attempt_at: None,
        published: None,
        run: None,
    };
    let give_up = ReplyOutcome::GiveUp {
        error: "refused".into(),
    };
    let auto_subject = DecisionSubject::Message(auto.id);

    fail(true).await;
    assert!(
        s.set_message_triage(w.tenant.id, m.id, Triage::Escalate, 1.0, None)
            .await
            .is_err()
    );
    assert!(
        s.settle_posts("w1", std::slice::from_ref(&settlement), t0())
            .await
            .is_err()
    );
    assert!(
        s.finish_reply(w.tenant.id, auto_subject, give_up.clone())
            .await
            .is_err()
    );
    let m_now = s.get_message(w.tenant.id, m.id).await.unwrap();
    assert_eq!(m_now.triage, None, "no escalation without its notification");
    let post_now = s.get_post(w.tenant.id, post.id).await.unwrap();
    assert_eq!(post_now.status, PostStatus::Publishing);
    let auto_now = s.get_message(w.tenant.id, auto.id).await.unwrap();
    assert_eq!(auto_now.triage, Some(Triage::AutoReply));
    assert_eq!(
        auto_now.reply.map(|r| r.state),
        Some(ReplyState::Sending),
        "the reply is still claimed, nothing recorded"
    );
    fail(false).await;
    assert!(
        s.list_notifications(w.tenant.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "no notification without its change"
    );

    s.set_message_triage(w.tenant.id, m.id, Triage::Escalate, 1.0, None)
        .await
        .unwrap();
    assert_eq!(
        s.settle_posts("w1", &[settlement], t0()).await.unwrap(),
        vec![post.id]
    );
    s.finish_reply(w.tenant.id, auto_subject, give_up)
        .await
        .unwrap();
    let kinds: Vec<(NotificationKind, String)> = s
        .list_notifications(w.tenant.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.key))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(kinds.contains(&(
        NotificationKind::ItemEscalated,
        format!("item_escalated:message:{}", m.id)
    )));
    assert!(kinds.contains(&(
        NotificationKind::ItemEscalated,
        format!("item_escalated:message:{}", auto.id)
    )));
    assert!(kinds.contains(&(
        NotificationKind::PostFailed,
        format!("post_failed:{}:1", post.id)
    )));
}

#[tokio::test]
async fn memory() {
    let store = Arc::new(MemoryStore::new());
    let hook = Arc::clone(&store);
    escalation_and_notification_are_one_write(store, async |on| hook.fail_notifications(on)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn postgres() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let url = postgres_test_url().await.expect("a database");
    let options = PgConnectOptions::from_str(&url)
        .expect("a valid URL")
        .options([("search_path", schema.as_str())]);
    let conn = tokio::sync::Mutex::new(PgConnection::connect_with(&options).await.unwrap());
    // The notification insert fails after the change's own row was written
    // in the same transaction.
    sqlx::query(
        "CREATE FUNCTION test_refuse_notification() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'injected failure: notification refused'; END $$",
    )
    .execute(&mut *conn.lock().await)
    .await
    .unwrap();
    escalation_and_notification_are_one_write(test.store(), async |on| {
        let sql = if on {
            "CREATE TRIGGER test_refuse BEFORE INSERT ON notifications \
             FOR EACH ROW EXECUTE FUNCTION test_refuse_notification()"
        } else {
            "DROP TRIGGER test_refuse ON notifications"
        };
        sqlx::query(sql)
            .execute(&mut *conn.lock().await)
            .await
            .unwrap();
    })
    .await;
    conn.into_inner().close().await.unwrap();
    test.cleanup().await;
}
