//! A few Postgres-only checks (the shared behaviour is the conformance suite's):
//! the migrations, insert-if-absent under concurrency, and `SKIP LOCKED` claims.
//! Each test runs in a fresh schema of the test database (`DATABASE_URL`, else the
//! local server; see `conformance::postgres_test_url`), and is reported ignored in a
//! build without PostgreSQL.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use sqlx::postgres::PgConnectOptions;

use super::PgStore;
use crate::{ConversationStore, EventStore, PostStore, StorageError, TenantStore};

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A migrated store in a schema of its own, and the admin pool to drop it.
pub(super) async fn store() -> Option<(PgStore, sqlx::PgPool, String)> {
    let url = crate::conformance::postgres_test_url().await?;
    let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL");
    let admin = sqlx::PgPool::connect_with(options.clone())
        .await
        .expect("connect");
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
        .expect("schema");
    let store = PgStore::connect_with(options.options([("search_path", schema.as_str())]), 8)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    Some((store, admin, schema))
}

pub(super) async fn drop_schema(admin: sqlx::PgPool, schema: String) {
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&admin)
        .await
        .expect("drop schema");
}

pub(super) async fn tenant_and_channel(store: &PgStore, account: &str) -> (Tenant, Channel) {
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .expect("tenant");
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: account.to_owned(),
            name: "Main line".to_owned(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .expect("channel");
    (tenant, channel)
}

/// A WhatsApp contact with `handle` and an open conversation with it on
/// `channel`.
pub(super) async fn open_conversation(
    store: &PgStore,
    tenant: &Tenant,
    channel: &Channel,
    handle: &str,
) -> Conversation {
    let contact = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_handle: handle.to_owned(),
            display_name: None,
            created_at: t0(),
        })
        .await
        .expect("contact")
        .record;
    store
        .insert_open_conversation(tenant.id, contact.contact_id, channel.id, t0())
        .await
        .expect("conversation")
        .record
}

#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn migrations_run_twice_and_references_are_checked() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    store.migrate().await.expect("migrations are idempotent");
    let (tenant, channel) = tenant_and_channel(&store, "pn-1").await;
    assert_eq!(
        store.get_channel(tenant.id, channel.id).await.expect("get"),
        channel
    );

    // Same account twice: Conflict; unknown tenant: UnknownReference("tenant").
    let dup = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: "pn-1".to_owned(),
            name: "Again".to_owned(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await;
    assert!(
        matches!(
            dup,
            Err(StorageError::Conflict {
                entity: "channel",
                ..
            })
        ),
        "{dup:?}"
    );
    let orphan = store
        .insert_post(NewScheduledPost::one_off(
            TenantId::generate(),
            channel.id,
            Content::text("x"),
            t0(),
            t0(),
        ))
        .await;
    assert!(
        matches!(
            orphan,
            Err(StorageError::UnknownReference {
                entity: "tenant",
                ..
            })
        ),
        "{orphan:?}"
    );

    // Another tenant's channel: UnknownReference("channel"); a mission on
    // another channel: UnknownReference("mission") (composite keys).
    let (other, _) = tenant_and_channel(&store, "pn-2").await;
    let foreign = store
        .insert_post(NewScheduledPost::one_off(
            other.id,
            channel.id,
            Content::text("x"),
            t0(),
            t0(),
        ))
        .await;
    assert!(
        matches!(
            foreign,
            Err(StorageError::UnknownReference {
                entity: "channel",
                ..
            })
        ),
        "{foreign:?}"
    );
    drop_schema(admin, schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn concurrent_inserts_yield_one_row() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let store = Arc::new(store);
    let (tenant, channel) = tenant_and_channel(&store, "pn-1").await;
    let contact = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_handle: "33600000000".to_owned(),
            display_name: Some("Ana".to_owned()),
            created_at: t0(),
        })
        .await
        .expect("contact");
    assert!(contact.created);

    // Conversations and messages, from many tasks at once.
    let mut tasks = Vec::new();
    for i in 0..16i64 {
        let store = Arc::clone(&store);
        let contact_id = contact.record.contact_id;
        tasks.push(tokio::spawn(async move {
            let conversation = store
                .insert_open_conversation(tenant.id, contact_id, channel.id, t0())
                .await
                .expect("conversation");
            let message = store
                .insert_message(NewMessage {
                    tenant_id: tenant.id,
                    conversation_id: conversation.record.id,
                    direction: MessageDirection::Inbound,
                    text: "hello".to_owned(),
                    has_media: false,
                    provider_message_id: Some("wamid.1".to_owned()),
                    in_reply_to: None,
                    delivery_status: None,
                    created_at: t0() + Duration::seconds(i),
                    stored_at: t0(),
                })
                .await
                .expect("message");
            let handle = store
                .insert_contact_channel(NewContactChannel {
                    tenant_id: tenant.id,
                    platform: Platform::WhatsApp,
                    external_handle: "33611111111".to_owned(),
                    display_name: None,
                    created_at: t0(),
                })
                .await
                .expect("handle");
            (conversation, message, handle)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let conversations: HashSet<_> = results.iter().map(|(c, _, _)| c.record.id).collect();
    let messages: HashSet<_> = results.iter().map(|(_, m, _)| m.record.id).collect();
    let handles: HashSet<_> = results
        .iter()
        .map(|(_, _, h)| h.record.contact_id)
        .collect();
    assert_eq!(conversations.len(), 1);
    assert_eq!(messages.len(), 1);
    assert_eq!(handles.len(), 1);
    assert_eq!(results.iter().filter(|(c, _, _)| c.created).count(), 1);
    assert_eq!(results.iter().filter(|(_, m, _)| m.created).count(), 1);
    assert_eq!(results.iter().filter(|(_, _, h)| h.created).count(), 1);
    let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(contacts, 2, "no orphan contact from the losing inserts");

    // The conversation took the time of the one message that was stored.
    let (conversation, message, _) = &results[0];
    let stored = store
        .get_conversation(tenant.id, conversation.record.id)
        .await
        .expect("conversation");
    assert_eq!(stored.last_message_at, Some(message.record.created_at));
    drop_schema(admin, schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn concurrent_claims_skip_locked_rows() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let store = Arc::new(store);
    let (tenant, channel) = tenant_and_channel(&store, "pn-1").await;
    for i in 0..40 {
        store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                channel.id,
                Content::text(format!("post {i}")),
                t0() + Duration::seconds(i),
                t0(),
            ))
            .await
            .expect("post");
    }
    let now = t0() + Duration::hours(1);
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut claimed = Vec::new();
            loop {
                let batch = store
                    .claim_due_posts(now, 3, &owner, Duration::minutes(5))
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break claimed;
                }
                let mut sorted = batch.clone();
                sorted.sort_by_key(|p| (p.publish_at, p.id));
                assert_eq!(batch, sorted);
                for post in batch {
                    assert_eq!(post.status, PostStatus::Publishing);
                    assert_eq!(post.lease_owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(post.lease_expires_at, Some(now + Duration::minutes(5)));
                    claimed.push(post.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 40);
    assert_eq!(distinct.len(), 40);

    // A guard that does not hold writes nothing; leases lapse and are released.
    let first = all[0];
    let before = store.get_post(tenant.id, first).await.expect("get");
    let refused = store
        .update_post(
            tenant.id,
            first,
            PostPatch {
                status: Some(PostStatus::Published),
                expect_lease_owner: Some("somebody-else".to_owned()),
                ..PostPatch::default()
            },
            now,
        )
        .await;
    assert!(
        matches!(refused, Err(StorageError::Precondition { .. })),
        "{refused:?}"
    );
    assert_eq!(store.get_post(tenant.id, first).await.expect("get"), before);
    let released = store
        .release_stale_leases(now + Duration::minutes(6))
        .await
        .expect("release");
    assert_eq!(released, 40);
    drop_schema(admin, schema).await;
}

/// An unreachable database (connection refused) is `Unavailable`, never
/// `Invalid`: a caller retries later instead of giving the input up. Needs no
/// database: nothing listens on port 1.
#[tokio::test]
async fn connection_refused_is_unavailable() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nexiom")
        .expect("lazy pool");
    let store = PgStore::from_pool(pool);
    let err = store.list_tenants().await.expect_err("nothing listens");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.is_transient() && !err.is_refusal() && !err.is_timeout());
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/nexiom")
        .await
        .expect_err("nothing listens");
    assert!(err.is_unavailable(), "{err:?}");
}

/// A closed pool and a statement timeout are `Unavailable`; a value the
/// database refuses (SQLSTATE class 22) is `Invalid` (a refusal, not an
/// outage).
#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn closed_pool_is_unavailable_and_data_exceptions_are_invalid() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let err = super::error::db(
        sqlx::query("SELECT 1 / 0")
            .execute(store.pool())
            .await
            .expect_err("division by zero"),
    );
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert!(err.is_refusal() && !err.is_transient());
    // A statement timeout: the database is too busy to serve now.
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SET LOCAL statement_timeout = '10ms'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = super::error::db(
        sqlx::query("SELECT pg_sleep(1)")
            .execute(&mut *tx)
            .await
            .expect_err("statement timeout"),
    );
    assert!(err.is_unavailable() && err.is_timeout(), "{err:?}");
    drop(tx);
    let (tenant, _) = tenant_and_channel(&store, "pn-closed").await;
    store.pool().close().await;
    let err = store.get_tenant(tenant.id).await.expect_err("closed");
    assert!(err.is_unavailable(), "{err:?}");
    drop_schema(admin, schema).await;
}
