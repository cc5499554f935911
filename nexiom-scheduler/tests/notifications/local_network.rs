//! A tenant writes its endpoints' URLs: by default the built-in notifiers
//! refuse to deliver into the local network, whether the URL names an
//! address or a name that resolves there, and say why on the delivery; an
//! application that allows the local network reaches the same receivers, and
//! a notifier of its own, given before or after, is kept.

use std::sync::Arc;

use nexiom_core::*;
use nexiom_scheduler::notify::{NotificationDispatcher, Notifier, NotifyError, RetryPolicy};
use nexiom_storage::conformance::{TestStore, t0, world};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::{endpoint, escalated_message};

pub async fn local_network_receivers_are_refused_unless_allowed(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let port = server.address().port();
    let kinds = [NotificationKind::ItemEscalated];
    // An address, and a name that resolves to one.
    let by_address = format!("http://127.0.0.1:{port}/hook");
    let by_name = format!("http://localhost:{port}/slack");
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ops",
        EndpointKind::Webhook,
        by_address,
        &kinds,
    )
    .await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "chat",
        EndpointKind::Slack,
        by_name,
        &kinds,
    )
    .await;
    escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;

    let clock = Arc::new(ManualClock::new(t0()));
    let twice = RetryPolicy {
        max_attempts: 2,
        base: chrono::Duration::seconds(10),
        max: chrono::Duration::seconds(10),
    };
    let refused = NotificationDispatcher::new(s.clone(), clock.clone()).with_policy(twice.clone());
    let report = refused.deliver_due(10).await.unwrap();
    assert_eq!((report.claimed, report.retried), (2, 2), "{report:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
    let notification = &s.list_notifications(w.tenant.id, None, 10).await.unwrap()[0];
    let deliveries = s
        .list_notification_deliveries(w.tenant.id, notification.id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        let error = d.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("local network"), "{error}");
    }
    assert!(
        deliveries.iter().any(|d| d
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("(127.0.0.1)")),
        "the address refused is named: {deliveries:?}"
    );

    // The same receivers, allowed.
    clock.advance(chrono::Duration::seconds(10));
    let allowed = NotificationDispatcher::new(s.clone(), clock.clone())
        .with_policy(twice)
        .allow_local_network();
    let report = allowed.deliver_due(10).await.unwrap();
    assert_eq!((report.claimed, report.delivered), (2, 2), "{report:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    test.cleanup().await;
}

/// An application's own webhook notifier: counts its sends, sends nothing.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Notifier for Counting {
    async fn send(
        &self,
        _endpoint: &NotificationEndpoint,
        _notification: &Notification,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), NotifyError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

pub async fn allowing_the_local_network_keeps_an_applications_notifier(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let port = server.address().port();
    let kinds = [NotificationKind::ItemEscalated];
    let url = format!("http://127.0.0.1:{port}/hook");
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ops",
        EndpointKind::Webhook,
        url,
        &kinds,
    )
    .await;
    escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;

    let own = Arc::new(Counting::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = NotificationDispatcher::new(s.clone(), clock)
        .with_notifier(EndpointKind::Webhook, own.clone())
        .allow_local_network();
    let report = dispatcher.deliver_due(10).await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1), "{report:?}");
    assert_eq!(
        own.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the application's notifier sent it"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "not the built-in notifier"
    );
    test.cleanup().await;
}
