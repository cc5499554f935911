//! Notification endpoint secrets at rest on PostgreSQL: sealed like channel
//! tokens, opened on read (claims included), re-sealed by a key rotation.
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_storage::conformance::{postgres_test_store, postgres_test_url};
use nexiom_storage::secrets::{KeyId, SealingKey, StaticKeys};
use nexiom_storage::{OutboxStore, PgStore, TenantStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn endpoint_secrets_are_sealed_and_rotated() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let url = postgres_test_url().await.unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    let raw = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let (k1, k2) = (SealingKey::generate(), SealingKey::generate());
    let s = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("k1").unwrap(),
        k1.clone(),
    )));
    let tenant = s.create_tenant(NewTenant::new("Acme", t0)).await.unwrap();
    let secret = "whsec-7f3a9c2e5b1d4f60";
    let endpoint = s
        .create_notification_endpoint(NewNotificationEndpoint {
            tenant_id: tenant.id,
            name: "ops".into(),
            kind: EndpointKind::Webhook,
            url: "https://ops.example.com/hook".into(),
            secret: Some(SecretString::new(secret)),
            kinds: vec![NotificationKind::PostFailed],
            created_at: t0,
        })
        .await
        .unwrap();
    assert_eq!(endpoint.secret.as_ref().unwrap().expose(), secret);
    let stored = || async {
        sqlx::query_scalar::<_, String>("SELECT secret FROM notification_endpoints")
            .fetch_one(&raw)
            .await
            .unwrap()
    };
    let sealed = stored().await;
    assert!(sealed.starts_with("nxenc:v1:k1:"), "{sealed}");
    assert!(!sealed.contains("7f3a9c2e"), "secret bytes in the column");

    let rotating = PgStore::from_pool(raw.clone()).with_keys(Arc::new(
        StaticKeys::new(KeyId::new("k2").unwrap(), k2.clone())
            .with_previous(KeyId::new("k1").unwrap(), k1),
    ));
    let report = rotating.rotate_keys(100).await.unwrap();
    assert_eq!(report.endpoint_secrets, 1);
    assert!(stored().await.starts_with("nxenc:v1:k2:"));
    let only_k2 = PgStore::from_pool(raw.clone())
        .with_keys(Arc::new(StaticKeys::new(KeyId::new("k2").unwrap(), k2)));
    let listed = only_k2
        .list_notification_endpoints(tenant.id)
        .await
        .unwrap();
    assert_eq!(listed[0].secret.as_ref().unwrap().expose(), secret);
    only_k2
        .enqueue_notification(NewNotification {
            tenant_id: tenant.id,
            kind: NotificationKind::PostFailed,
            key: "post_failed:x:1".into(),
            payload: serde_json::json!({}),
            occurred_at: t0,
        })
        .await
        .unwrap();
    let claimed = only_k2
        .claim_notification_deliveries(t0, 10, Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        claimed[0].endpoint.secret.as_ref().unwrap().expose(),
        secret
    );
    raw.close().await;
    test.cleanup().await;
}

/// A key rotated away, or a process started without the older key (the
/// secret of one endpoint does not open with this store's keys): the claim
/// still hands out the other endpoint's delivery, and hands that
/// endpoint's back, with no attempt counted and due again in 5 minutes, to
/// a process that has the key, instead of failing every tenant's claim at
/// every batch.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_secret_the_keys_cannot_open_is_left_to_a_process_that_can() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let url = postgres_test_url().await.unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    let raw = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let lost = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("lost").unwrap(),
        SealingKey::generate(),
    )));
    let tenant = lost
        .create_tenant(NewTenant::new("Acme", t0))
        .await
        .unwrap();
    let endpoint = |name: &str, secret: Option<&str>| NewNotificationEndpoint {
        tenant_id: tenant.id,
        name: name.into(),
        kind: EndpointKind::Webhook,
        url: format!("https://{name}.example.com/hook"),
        secret: secret.map(SecretString::new),
        kinds: vec![NotificationKind::PostFailed],
        created_at: t0,
    };
    // Sealed with a key the next store does not have.
    lost.create_notification_endpoint(endpoint("sealed", Some("whsec-0123456789abcdef")))
        .await
        .unwrap();
    let current = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("k2").unwrap(),
        SealingKey::generate(),
    )));
    current
        .create_notification_endpoint(endpoint("fresh", Some("whsec-fedcba9876543210")))
        .await
        .unwrap();
    current
        .enqueue_notification(NewNotification {
            tenant_id: tenant.id,
            kind: NotificationKind::PostFailed,
            key: "post_failed:x:1".into(),
            payload: serde_json::json!({}),
            occurred_at: t0,
        })
        .await
        .unwrap();
    let claimed = current
        .claim_notification_deliveries(t0, 10, Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint.name, "fresh");
    // Not due again before 5 minutes, even for a process with the key.
    assert!(
        lost.claim_notification_deliveries(t0 + Duration::minutes(2), 10, Duration::minutes(1))
            .await
            .unwrap()
            .is_empty()
    );
    let later = lost
        .claim_notification_deliveries(t0 + Duration::minutes(5), 10, Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].endpoint.name, "sealed");
    assert_eq!(later[0].delivery.attempts, 0, "no attempt counted");
    assert_eq!(
        later[0].endpoint.secret.as_ref().unwrap().expose(),
        "whsec-0123456789abcdef"
    );
    raw.close().await;
    test.cleanup().await;
}
