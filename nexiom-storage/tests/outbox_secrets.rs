//! Notification claims and endpoint secrets on PostgreSQL: secrets sealed
//! like channel tokens, opened on read (claims included), re-sealed by a key
//! rotation; a secret a claimer cannot open left to one that can, then dead
//! after a day; a claim beside a concurrent claimer.
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_storage::conformance::{TestStore, postgres_test_store, postgres_test_url};
use nexiom_storage::secrets::{KeyId, SealingKey, StaticKeys};
use nexiom_storage::{OutboxStore, PgStore, TenantStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A pool on the test's schema, for stores with keys of the test's choosing.
async fn pool(test: &TestStore) -> sqlx::PgPool {
    let url = postgres_test_url().await.unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", test.schema().unwrap())]);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn endpoint_secrets_are_sealed_and_rotated() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let raw = pool(&test).await;
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
/// every batch; a day after the first hand-back with no process able to
/// open it, the delivery is dead.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_secret_the_keys_cannot_open_is_left_to_a_process_that_can() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let raw = pool(&test).await;
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
    let notification = current
        .enqueue_notification(NewNotification {
            tenant_id: tenant.id,
            kind: NotificationKind::PostFailed,
            key: "post_failed:x:1".into(),
            payload: serde_json::json!({}),
            // Two days old (an SLA breach found late): the day counts from
            // the first hand-back, not from the notification.
            occurred_at: t0 - Duration::days(2),
        })
        .await
        .unwrap()
        .record;
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
    // No process that can open it claims it for a day: it ends dead.
    assert!(
        current
            .claim_notification_deliveries(t0 + Duration::hours(25), 10, Duration::minutes(1))
            .await
            .unwrap()
            .iter()
            .all(|c| c.endpoint.name != "sealed")
    );
    let deliveries = current
        .list_notification_deliveries(tenant.id, notification.id)
        .await
        .unwrap();
    let dead: Vec<_> = deliveries
        .iter()
        .filter(|d| d.state == NotificationDeliveryState::Dead)
        .collect();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("could not be opened"),
        "{:?}",
        dead[0].last_error
    );
    raw.close().await;
    test.cleanup().await;
}

/// A claim while another claimer holds the oldest due deliveries (its rows
/// locked, not yet committed): it takes the next ones instead of coming back
/// empty, and still at most 10 of one endpoint.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn a_claim_beside_a_concurrent_claimer_takes_the_next_deliveries() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let raw = pool(&test).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let s = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("k1").unwrap(),
        SealingKey::generate(),
    )));
    let tenant = s.create_tenant(NewTenant::new("Acme", t0)).await.unwrap();
    for name in ["a", "b", "c"] {
        s.create_notification_endpoint(NewNotificationEndpoint {
            tenant_id: tenant.id,
            name: name.into(),
            kind: EndpointKind::Webhook,
            url: format!("https://{name}.example.com/hook"),
            secret: Some(SecretString::new("whsec-0123456789abcdef")),
            kinds: vec![NotificationKind::PostFailed],
            created_at: t0,
        })
        .await
        .unwrap();
    }
    for i in 0..4 {
        s.enqueue_notification(NewNotification {
            tenant_id: tenant.id,
            kind: NotificationKind::PostFailed,
            key: format!("post_failed:{i}"),
            payload: serde_json::json!({}),
            occurred_at: t0,
        })
        .await
        .unwrap();
    }
    // 12 deliveries (4 per endpoint); another claimer holds the 6 oldest.
    let mut other = raw.begin().await.unwrap();
    let held: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM notification_deliveries ORDER BY id LIMIT 6 FOR UPDATE")
            .fetch_all(&mut *other)
            .await
            .unwrap();
    let claimed = s
        .claim_notification_deliveries(t0, 6, Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6, "the next six, not none");
    assert!(
        claimed
            .iter()
            .all(|c| !held.contains(&c.delivery.id.as_uuid()))
    );
    other.rollback().await.unwrap();
    raw.close().await;
    test.cleanup().await;
}

/// A Slack endpoint's URL is the credential of its Slack channel: sealed at
/// rest like a signing secret, opened on read (claims included), re-sealed
/// by a key rotation; a URL stored in plain text before is still read, and
/// sealed by the next rotation.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn slack_urls_are_sealed_and_rotated() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let raw = pool(&test).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let (k1, k2) = (SealingKey::generate(), SealingKey::generate());
    let s = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("k1").unwrap(),
        k1.clone(),
    )));
    let tenant = s.create_tenant(NewTenant::new("Acme", t0)).await.unwrap();
    let slack = |name: &str| NewNotificationEndpoint {
        tenant_id: tenant.id,
        name: name.into(),
        kind: EndpointKind::Slack,
        url: format!("https://hooks.slack.com/services/T0001/B0002/{name}-Xsecretpath"),
        secret: None,
        kinds: vec![NotificationKind::PostFailed],
        created_at: t0,
    };
    let sealed = s.create_notification_endpoint(slack("a")).await.unwrap();
    assert_eq!(sealed.url, slack("a").url);
    let legacy = s.create_notification_endpoint(slack("b")).await.unwrap();
    // Stored in plain text, as before URLs were sealed.
    sqlx::query("UPDATE notification_endpoints SET url = $1 WHERE id = $2")
        .bind(&slack("b").url)
        .bind(legacy.id.as_uuid())
        .execute(&raw)
        .await
        .unwrap();
    let stored = || async {
        sqlx::query_scalar::<_, String>("SELECT url FROM notification_endpoints ORDER BY name")
            .fetch_all(&raw)
            .await
            .unwrap()
    };
    let urls = stored().await;
    assert!(urls[0].starts_with("nxenc:v1:k1:"), "{}", urls[0]);
    assert!(!urls[0].contains("Xsecretpath"), "the URL in the column");
    assert_eq!(urls[1], slack("b").url);
    let listed = s.list_notification_endpoints(tenant.id).await.unwrap();
    let shown: Vec<&str> = listed.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(shown, [slack("a").url.as_str(), slack("b").url.as_str()]);

    let rotating = PgStore::from_pool(raw.clone()).with_keys(Arc::new(
        StaticKeys::new(KeyId::new("k2").unwrap(), k2.clone())
            .with_previous(KeyId::new("k1").unwrap(), k1),
    ));
    let report = rotating.rotate_keys(100).await.unwrap();
    assert_eq!((report.endpoint_urls, report.endpoint_secrets), (2, 0));
    assert!(stored().await.iter().all(|u| u.starts_with("nxenc:v1:k2:")));
    let only_k2 = PgStore::from_pool(raw.clone())
        .with_keys(Arc::new(StaticKeys::new(KeyId::new("k2").unwrap(), k2)));
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
    let mut urls: Vec<&str> = claimed.iter().map(|c| c.endpoint.url.as_str()).collect();
    urls.sort();
    assert_eq!(urls, [slack("a").url.as_str(), slack("b").url.as_str()]);
    raw.close().await;
    test.cleanup().await;
}

/// Endpoints sealed with a key this store does not have: listed all the
/// same, flagged with the reason and without the values (before, the
/// listing of the whole tenant failed, and disabling one failed after
/// writing); a new target mends one, and its delivery waiting for a
/// process with the old key is due at once, with the new secret.
#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn an_endpoint_whose_values_do_not_open_is_listed_and_mended() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let raw = pool(&test).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let lost = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("lost").unwrap(),
        SealingKey::generate(),
    )));
    let tenant = lost
        .create_tenant(NewTenant::new("Acme", t0))
        .await
        .unwrap();
    let endpoint =
        |name: &str, kind: EndpointKind, kinds: Vec<NotificationKind>| NewNotificationEndpoint {
            tenant_id: tenant.id,
            name: name.into(),
            kind,
            url: format!("https://{name}.example.com/hook"),
            secret: (kind == EndpointKind::Webhook)
                .then(|| SecretString::new("whsec-0123456789abcdef")),
            kinds,
            created_at: t0,
        };
    let sealed = lost
        .create_notification_endpoint(endpoint(
            "a-sealed",
            EndpointKind::Webhook,
            vec![NotificationKind::PostFailed],
        ))
        .await
        .unwrap();
    lost.create_notification_endpoint(endpoint(
        "b-slack",
        EndpointKind::Slack,
        vec![NotificationKind::SlaBreached],
    ))
    .await
    .unwrap();
    let current = PgStore::from_pool(raw.clone()).with_keys(Arc::new(StaticKeys::new(
        KeyId::new("k2").unwrap(),
        SealingKey::generate(),
    )));
    current
        .create_notification_endpoint(endpoint(
            "c-fresh",
            EndpointKind::Webhook,
            vec![NotificationKind::PostFailed],
        ))
        .await
        .unwrap();
    let listed = current
        .list_notification_endpoints(tenant.id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed[0].unreadable.is_some() && listed[0].secret.is_none());
    assert_eq!(listed[0].url, "https://a-sealed.example.com/hook");
    assert!(listed[1].unreadable.is_some() && listed[1].url.is_empty());
    assert!(listed[2].unreadable.is_none());
    assert_eq!(
        listed[2].secret.as_ref().unwrap().expose(),
        "whsec-0123456789abcdef"
    );
    let off = current
        .set_notification_endpoint_enabled(tenant.id, sealed.id, false)
        .await
        .unwrap();
    assert!(!off.enabled && off.unreadable.is_some());
    current
        .set_notification_endpoint_enabled(tenant.id, sealed.id, true)
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
        .claim_notification_deliveries(t0, 10, Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint.name, "c-fresh");
    let mended = current
        .set_notification_endpoint_target(
            tenant.id,
            sealed.id,
            "https://a-sealed.example.com/hook".into(),
            Some(SecretString::new("whsec-new-0123456789")),
        )
        .await
        .unwrap();
    assert!(mended.unreadable.is_none());
    let now_due = current
        .claim_notification_deliveries(t0 + Duration::minutes(1), 10, Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(now_due.len(), 1, "due at once, not in 5 minutes");
    assert_eq!(now_due[0].endpoint.name, "a-sealed");
    assert_eq!(
        now_due[0].endpoint.secret.as_ref().unwrap().expose(),
        "whsec-new-0123456789"
    );
    raw.close().await;
    test.cleanup().await;
}
