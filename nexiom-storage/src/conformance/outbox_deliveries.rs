//! Conformance tests of the outbox's deliveries: claims under a lease,
//! retries, the dead state, disabled endpoints, and deployment-wide
//! notifications to every subscribed tenant.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{t0, world};
use super::outbox::webhook;
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

/// Enqueued notifications are unique by key; deliveries are claimed once per
/// lease, retried when due, given up as dead, delivered once, and only to
/// enabled endpoints; a stale claim's outcome is not written.
pub async fn notification_deliveries_retry_and_die(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    use NotificationKind::*;
    let ops = webhook(s, &w, "ops", &[ChannelNeedsReauth]).await;
    let new = NewNotification {
        tenant_id: w.tenant.id,
        kind: ChannelNeedsReauth,
        key: format!("channel_needs_reauth:{}:1", w.channel.id),
        payload: json!({"channel_id": w.channel.id}),
        occurred_at: t0(),
    };
    let first = s.enqueue_notification(new.clone()).await.unwrap();
    assert!(first.created);
    let again = s.enqueue_notification(new.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record, first.record);
    let mut bad = new.clone();
    bad.payload = json!([1]);
    assert!(matches!(
        s.enqueue_notification(bad).await,
        Err(StorageError::Invalid { .. })
    ));
    let mut unknown = new.clone();
    unknown.tenant_id = TenantId::generate();
    assert!(matches!(
        s.enqueue_notification(unknown).await,
        Err(StorageError::UnknownReference { .. })
    ));
    assert!(matches!(
        s.list_notification_deliveries(other.tenant.id, first.record.id)
            .await,
        Err(StorageError::NotFound { .. })
    ));

    let now = t0();
    let lease = mins(1);
    let claimed = s
        .claim_notification_deliveries(now, 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.notification, first.record);
    assert_eq!(c.endpoint.id, ops.id);
    assert_eq!(
        c.endpoint.secret.as_ref().map(SecretString::expose),
        Some("secret-of-ops-0123456789")
    );
    let held = c.delivery.lease_until.unwrap();
    assert!(
        s.claim_notification_deliveries(now, 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "held by the claim"
    );
    let retry_at = now + mins(2);
    let d = s
        .finish_notification_delivery(
            w.tenant.id,
            c.delivery.id,
            held,
            DeliveryAttempt::Failed {
                error: "HTTP 500".into(),
                retry_at: Some(retry_at),
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state, NotificationDeliveryState::Pending);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert!(
        s.claim_notification_deliveries(now + mins(1), 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "not due before its retry"
    );
    // Claimed again after its retry time; that claim expires unanswered and a
    // third claim takes over: the second claim's answer is not written.
    let second = s
        .claim_notification_deliveries(retry_at, 10, lease)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let second_lease = second[0].delivery.lease_until.unwrap();
    let third = s
        .claim_notification_deliveries(retry_at + mins(2), 10, lease)
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(
        s.finish_notification_delivery(
            w.tenant.id,
            c.delivery.id,
            second_lease,
            DeliveryAttempt::Delivered,
            retry_at
        )
        .await
        .unwrap(),
        None
    );
    let done = s
        .finish_notification_delivery(
            w.tenant.id,
            c.delivery.id,
            third[0].delivery.lease_until.unwrap(),
            DeliveryAttempt::Delivered,
            retry_at + mins(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, NotificationDeliveryState::Delivered);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.delivered_at, Some(retry_at + mins(2)));
    assert!(
        s.claim_notification_deliveries(retry_at + mins(60), 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "a delivered notification is never sent again"
    );
    assert!(matches!(
        s.finish_notification_delivery(
            other.tenant.id,
            c.delivery.id,
            held,
            DeliveryAttempt::Delivered,
            now
        )
        .await,
        Err(StorageError::NotFound { .. })
    ));

    // The last attempt failing: dead, never claimed again.
    let mut second_new = new.clone();
    second_new.key = "channel_needs_reauth:x:2".into();
    let n2 = s.enqueue_notification(second_new).await.unwrap().record;
    let c2 = s
        .claim_notification_deliveries(now, 10, lease)
        .await
        .unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].notification.id, n2.id);
    let dead = s
        .finish_notification_delivery(
            w.tenant.id,
            c2[0].delivery.id,
            c2[0].delivery.lease_until.unwrap(),
            DeliveryAttempt::Failed {
                error: "HTTP 410".into(),
                retry_at: None,
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.state, NotificationDeliveryState::Dead);
    assert!(
        s.claim_notification_deliveries(now + mins(60), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // A disabled endpoint's deliveries wait until it is enabled again.
    let mut third_new = new;
    third_new.key = "channel_needs_reauth:x:3".into();
    s.enqueue_notification(third_new).await.unwrap();
    s.set_notification_endpoint_enabled(w.tenant.id, ops.id, false)
        .await
        .unwrap();
    assert!(
        s.claim_notification_deliveries(now, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    s.set_notification_endpoint_enabled(w.tenant.id, ops.id, true)
        .await
        .unwrap();
    assert_eq!(
        s.claim_notification_deliveries(now, 10, lease)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An event of the whole deployment reaches every tenant with an enabled
/// endpoint subscribed to its kind, once per key.
pub async fn deployment_notifications_reach_subscribed_tenants(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-2").await;
    let c = world(s, "Initech", Platform::Facebook, "page-3").await;
    use NotificationKind::*;
    webhook(s, &a, "ops", &[WorkerFailing]).await;
    webhook(s, &a, "ops-2", &[WorkerFailing, PostFailed]).await;
    webhook(s, &b, "ops", &[WorkerFailing]).await;
    webhook(s, &c, "ops", &[PostFailed]).await;
    let payload = json!({"worker": "publish", "failures": 3});
    let created = s
        .notify_subscribers(
            WorkerFailing,
            "worker_failing:publish:1",
            payload.clone(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(created, 2, "one per subscribed tenant");
    let again = s
        .notify_subscribers(
            WorkerFailing,
            "worker_failing:publish:1",
            payload.clone(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(again, 0);
    let of_a = s.list_notifications(a.tenant.id, None, 10).await.unwrap();
    assert_eq!(of_a.len(), 1);
    assert_eq!(of_a[0].payload, payload);
    assert_eq!(
        s.list_notification_deliveries(a.tenant.id, of_a[0].id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.list_notifications(b.tenant.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.list_notifications(c.tenant.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.notify_subscribers(WorkerFailing, "", payload, t0()).await,
        Err(StorageError::Invalid { .. })
    ));
}

/// One endpoint with a backlog (an escalation storm) does not fill a claim:
/// at most `MAX_CLAIM_PER_ENDPOINT` of its deliveries go in each, and
/// another tenant's delivery, newer than all of them, is claimed in the same
/// batch; the backlog's rest comes in the next claim, each delivery once.
pub async fn a_claim_takes_a_bounded_share_of_one_endpoint(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let busy = world(s, "Busy", Platform::Facebook, "page-1").await;
    let quiet = world(s, "Quiet", Platform::Facebook, "page-2").await;
    use NotificationKind::*;
    let flooded = webhook(s, &busy, "ops", &[PostFailed]).await;
    let other = webhook(s, &quiet, "ops", &[PostFailed]).await;
    let notify = |w: &super::fixtures::World, i: usize| NewNotification {
        tenant_id: w.tenant.id,
        kind: PostFailed,
        key: format!("post_failed:{i}"),
        payload: json!({"n": i}),
        occurred_at: t0(),
    };
    let backlog = crate::MAX_CLAIM_PER_ENDPOINT as usize + 5;
    for i in 0..backlog {
        s.enqueue_notification(notify(&busy, i)).await.unwrap();
    }
    s.enqueue_notification(notify(&quiet, 0)).await.unwrap();
    let lease = mins(1);
    let claimed = s
        .claim_notification_deliveries(t0(), 50, lease)
        .await
        .unwrap();
    let of = |id: EndpointId, c: &[ClaimedNotification]| {
        c.iter().filter(|c| c.endpoint.id == id).count()
    };
    assert_eq!(
        of(flooded.id, &claimed),
        crate::MAX_CLAIM_PER_ENDPOINT as usize
    );
    assert_eq!(of(other.id, &claimed), 1);
    let next = s
        .claim_notification_deliveries(t0(), 50, lease)
        .await
        .unwrap();
    assert_eq!((next.len(), of(flooded.id, &next)), (5, 5));
    let mut all: Vec<u64> = claimed
        .iter()
        .chain(&next)
        .filter(|c| c.endpoint.id == flooded.id)
        .map(|c| c.notification.payload["n"].as_u64().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..backlog as u64).collect::<Vec<_>>(), "each once");
}

/// A dispatcher's heartbeat keeps its claims: a renewal under the claim's
/// lease moves it (no other claimer takes the delivery, and the answer is
/// recorded under the renewed lease only); a renewal under a lease the
/// delivery no longer carries (another claim took it over, or it was
/// recorded) changes nothing.
pub async fn notification_claims_are_renewed_by_their_holder(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    use NotificationKind::*;
    webhook(s, &w, "ops", &[PostFailed]).await;
    for i in 0..2 {
        s.enqueue_notification(NewNotification {
            tenant_id: w.tenant.id,
            kind: PostFailed,
            key: format!("post_failed:{i}"),
            payload: json!({"n": i}),
            occurred_at: t0(),
        })
        .await
        .unwrap();
    }
    let lease = mins(1);
    let claimed = s
        .claim_notification_deliveries(t0(), 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let ids: Vec<NotificationDeliveryId> = claimed.iter().map(|c| c.delivery.id).collect();
    let held = claimed[0].delivery.lease_until.unwrap();
    assert!(claimed.iter().all(|c| c.delivery.lease_until == Some(held)));
    assert_eq!(
        s.renew_notification_leases(&[], held, held).await.unwrap(),
        0
    );

    // Renewed just before the claim lapses: another claimer after the
    // first lease finds nothing.
    let renewed_to = t0() + mins(2);
    assert_eq!(
        s.renew_notification_leases(&ids, held, renewed_to)
            .await
            .unwrap(),
        2
    );
    assert!(
        s.claim_notification_deliveries(t0() + mins(1), 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "held by the renewed claim"
    );
    // The first lease no longer records or renews; the renewed one does.
    let delivered = |until| {
        s.finish_notification_delivery(
            w.tenant.id,
            ids[0],
            until,
            DeliveryAttempt::Delivered,
            t0() + mins(1),
        )
    };
    assert!(delivered(held).await.unwrap().is_none());
    assert_eq!(
        s.renew_notification_leases(&ids, held, t0() + mins(3))
            .await
            .unwrap(),
        0
    );
    let d = delivered(renewed_to).await.unwrap().unwrap();
    assert_eq!(d.state, NotificationDeliveryState::Delivered);
    assert_eq!(d.lease_until, None);

    // The claim of the other delivery lapses unrenewed and another claimer
    // takes it over: the first holder's renewal leaves it alone, and the
    // recorded delivery is not renewed either.
    let taken = s
        .claim_notification_deliveries(renewed_to, 10, lease)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery.id, ids[1]);
    let theirs = taken[0].delivery.lease_until.unwrap();
    assert_eq!(
        s.renew_notification_leases(&ids, renewed_to, renewed_to + mins(5))
            .await
            .unwrap(),
        0
    );
    let stored = s
        .list_notification_deliveries(w.tenant.id, taken[0].notification.id)
        .await
        .unwrap();
    assert_eq!(stored[0].lease_until, Some(theirs));
}
