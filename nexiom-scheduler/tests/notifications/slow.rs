//! Endpoints that take their time: a send that outlasts the claim keeps it
//! (the heartbeat), and a notifier that never answers fails its attempt at
//! the dispatcher's send timeout.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::notify::{NotificationDispatcher, Notifier, NotifyError};
use nexiom_storage::conformance::{TestStore, t0, world};

use super::super::{endpoint, escalated_message};

/// An endpoint that takes its time: each send waits until the test lets it
/// answer (`Ok`, or a 503 when `fails`), counting the sends.
struct SlowEndpoint {
    sends: std::sync::atomic::AtomicUsize,
    answer: tokio::sync::Notify,
    fails: bool,
}

#[async_trait::async_trait]
impl Notifier for SlowEndpoint {
    async fn send(
        &self,
        _endpoint: &NotificationEndpoint,
        _notification: &Notification,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), NotifyError> {
        self.sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.answer.notified().await;
        if self.fails {
            return Err(NotifyError::Rejected {
                status: 503,
                body: "busy".into(),
            });
        }
        Ok(())
    }
}

/// Waits (real time, at most 20 s) until `done` holds.
async fn until(mut done: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A send that outlasts the dispatcher's lease keeps its delivery claimed:
/// the heartbeat renews the claim while the send is in flight, so another
/// worker claiming after the first lease finds nothing and the endpoint gets
/// one request; its answer (delivered, or a failure to retry) is recorded
/// under the renewed lease, not counted `lost`. Without the heartbeat the
/// claim lapses and never moves.
async fn slow_send_keeps_its_claim(test: TestStore, fails: bool) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "slow",
        EndpointKind::Webhook,
        "https://hooks.example.com/slow".into(),
        &[NotificationKind::ItemEscalated],
    )
    .await;
    escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;
    let notification = s
        .list_notifications(w.tenant.id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap()[0]
        .id;
    let delivery = async || {
        s.list_notification_deliveries(w.tenant.id, notification)
            .await
            .unwrap()
            .remove(0)
    };

    let clock = Arc::new(ManualClock::new(t0()));
    let slow = Arc::new(SlowEndpoint {
        sends: Default::default(),
        answer: tokio::sync::Notify::new(),
        fails,
    });
    let dispatcher = NotificationDispatcher::new(s.clone(), clock.clone())
        .with_lease(Duration::seconds(3))
        .with_notifier(EndpointKind::Webhook, slow.clone());
    let first = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.deliver_due(10).await.unwrap() }
    });
    until(
        async || slow.sends.load(std::sync::atomic::Ordering::SeqCst) == 1,
        "the send starts",
    )
    .await;
    assert_eq!(
        delivery().await.lease_until,
        Some(t0() + Duration::seconds(3))
    );

    // The send outlasts the lease; the claim moves with the clock.
    clock.advance(Duration::seconds(10));
    until(
        async || delivery().await.lease_until > Some(clock.now()),
        "the claim is renewed",
    )
    .await;
    let other = NotificationDispatcher::new(s.clone(), clock.clone())
        .with_notifier(EndpointKind::Webhook, slow.clone());
    assert_eq!(other.deliver_due(10).await.unwrap().claimed, 0);

    slow.answer.notify_one();
    let report = first.await.unwrap();
    assert_eq!(
        (
            report.claimed,
            report.delivered,
            report.retried,
            report.lost
        ),
        (1, u64::from(!fails), u64::from(fails), 0),
        "{report:?}"
    );
    assert_eq!(slow.sends.load(std::sync::atomic::Ordering::SeqCst), 1);
    let d = delivery().await;
    let state = if fails {
        NotificationDeliveryState::Pending
    } else {
        NotificationDeliveryState::Delivered
    };
    assert_eq!((d.state, d.attempts, d.lease_until), (state, 1, None));
    test.cleanup().await;
}

pub async fn a_slow_endpoint_keeps_its_delivery_claimed(test: TestStore) {
    slow_send_keeps_its_claim(test, false).await;
}

pub async fn a_slow_failure_is_recorded_under_the_renewed_claim(test: TestStore) {
    slow_send_keeps_its_claim(test, true).await;
}

/// A notifier of the application's that never answers: the attempt fails
/// at the dispatcher's send timeout (here 200 ms), the batch returns and
/// the delivery is pending for a retry with the reason recorded. Before,
/// the batch waited forever while its heartbeat kept the claim, and no
/// other worker could deliver it.
pub async fn a_notifier_that_never_answers_fails_its_attempt(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "silent",
        EndpointKind::Webhook,
        "https://hooks.example.com/silent".into(),
        &[NotificationKind::ItemEscalated],
    )
    .await;
    escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;
    let silent = Arc::new(SlowEndpoint {
        sends: Default::default(),
        answer: tokio::sync::Notify::new(),
        fails: false,
    });
    let dispatcher = NotificationDispatcher::new(s.clone(), Arc::new(ManualClock::new(t0())))
        .with_send_timeout(std::time::Duration::from_millis(200))
        .with_notifier(EndpointKind::Webhook, silent.clone());
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        dispatcher.deliver_due(10),
    )
    .await
    .expect("the batch returns")
    .unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1), "{report:?}");
    let notification = s
        .list_notifications(w.tenant.id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap()[0]
        .id;
    let d = s
        .list_notification_deliveries(w.tenant.id, notification)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(d.state, NotificationDeliveryState::Pending);
    assert!(
        d.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within")),
        "{d:?}"
    );
    test.cleanup().await;
}
