//! The first-response SLA on both backends: items waiting past the tenant's
//! target are listed, longest wait first, and notified once per wait
//! (`sla_breached` through the outbox), whatever the number of passes; an
//! answered, resolved or target-less item is not; an item that shows up late
//! with an old wait is notified at the next pass, and a purged notification
//! is not sent again.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;
use nexiom_scheduler::inbox::{SLA_BREACHES, SlaMonitor, SlaWorker};
use nexiom_scheduler::{Shutdown, WorkerRuntime};
use nexiom_storage::Store;
use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store, t0};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

struct Fx {
    store: Arc<dyn Store>,
    tenant: TenantId,
    channel: ChannelId,
}

impl Fx {
    async fn new(store: Arc<dyn Store>, name: &str) -> Fx {
        let tenant = store
            .create_tenant(NewTenant::new(name, t0()))
            .await
            .unwrap();
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: format!("page-{name}"),
                name: "Page".into(),
                credentials: Credentials::default(),
                created_at: t0(),
            })
            .await
            .unwrap();
        Fx {
            store,
            tenant: tenant.id,
            channel: channel.id,
        }
    }

    async fn conversation(&self, handle: &str) -> ConversationId {
        let cc = self
            .store
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.tenant,
                platform: Platform::Facebook,
                external_handle: handle.into(),
                display_name: None,
                created_at: t0(),
            })
            .await
            .unwrap()
            .record;
        self.store
            .insert_open_conversation(self.tenant, cc.contact_id, self.channel, t0())
            .await
            .unwrap()
            .record
            .id
    }

    async fn say(&self, conv: ConversationId, direction: MessageDirection, at: DateTime<Utc>) {
        self.store
            .insert_message(NewMessage {
                tenant_id: self.tenant,
                conversation_id: conv,
                direction,
                text: "…".into(),
                has_media: false,
                provider_message_id: None,
                in_reply_to: None,
                delivery_status: None,
                created_at: at,
                stored_at: at,
            })
            .await
            .unwrap();
    }

    async fn notified(&self) -> Vec<String> {
        self.store
            .list_notifications(self.tenant, Some(NotificationKind::SlaBreached), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.key)
            .collect()
    }
}

fn key(conv: ConversationId, since: DateTime<Utc>) -> String {
    format!(
        "sla_breached:conversation:{conv}:{}",
        since.timestamp_millis()
    )
}

async fn breaches_are_listed_and_notified_once_per_wait(test: TestStore) {
    let store = test.store();
    let fx = Fx::new(store.clone(), "Acme").await;
    let quiet = Fx::new(store.clone(), "NoTarget").await;
    store
        .set_first_response_target(fx.tenant, Some(mins(30)), t0())
        .await
        .unwrap();
    let a = fx.conversation("a").await;
    let b = fx.conversation("b").await;
    let c = fx.conversation("c").await;
    let d = fx.conversation("d").await;
    fx.say(a, MessageDirection::Inbound, t0()).await;
    fx.say(b, MessageDirection::Inbound, t0() + mins(20)).await;
    fx.say(c, MessageDirection::Inbound, t0()).await;
    fx.say(c, MessageDirection::Outbound, t0() + mins(5)).await;
    let q = quiet.conversation("q").await;
    quiet.say(q, MessageDirection::Inbound, t0()).await;

    let clock = Arc::new(ManualClock::new(t0() + mins(31)));
    let monitor = SlaMonitor::new(store.clone(), clock.clone());
    let listed: Vec<InboxSubject> = monitor
        .breaches(fx.tenant, None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.subject)
        .collect();
    assert_eq!(listed, vec![InboxSubject::Conversation(a)]);
    assert!(
        monitor
            .breaches(quiet.tenant, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let report = monitor.notify_breaches().await.unwrap();
    assert_eq!((report.tenants, report.notified), (1, 1));
    assert_eq!(monitor.notify_breaches().await.unwrap().notified, 0);
    // A second monitor (another process) finds nothing left to notify.
    let other = SlaMonitor::new(store.clone(), clock.clone());
    let again = other.notify_breaches().await.unwrap();
    assert_eq!((again.breaches, again.notified), (0, 0));
    assert_eq!(fx.notified().await, vec![key(a, t0())]);

    clock.set(t0() + mins(51));
    let listed: Vec<InboxSubject> = monitor
        .breaches(fx.tenant, None, 10)
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.subject)
        .collect();
    assert_eq!(
        listed,
        vec![InboxSubject::Conversation(a), InboxSubject::Conversation(b)],
        "longest wait first"
    );
    assert_eq!(monitor.notify_breaches().await.unwrap().notified, 1);

    // A answered, then its contact writes again: a new wait, notified once
    // it passes the target. D resolved: never notified.
    fx.say(a, MessageDirection::Outbound, t0() + mins(52)).await;
    fx.say(a, MessageDirection::Inbound, t0() + mins(53)).await;
    fx.say(d, MessageDirection::Inbound, t0() + mins(60)).await;
    store
        .set_inbox_status(
            fx.tenant,
            InboxSubject::Conversation(d),
            InboxStatus::Resolved,
            t0() + mins(61),
        )
        .await
        .unwrap();
    clock.set(t0() + mins(100));
    let mut runtime = WorkerRuntime::new(store.clone(), clock.clone());
    runtime.register(Arc::new(SlaWorker::new(monitor)));
    runtime
        .run_worker(SLA_BREACHES, &Shutdown::never())
        .await
        .unwrap();
    let mut got = fx.notified().await;
    got.sort();
    let mut expected = vec![
        key(a, t0()),
        key(b, t0() + mins(20)),
        key(a, t0() + mins(53)),
    ];
    expected.sort();
    assert_eq!(got, expected);
    assert!(quiet.notified().await.is_empty());
    let n = store
        .list_notifications(fx.tenant, Some(NotificationKind::SlaBreached), 10)
        .await
        .unwrap();
    let first = n.iter().find(|n| n.key == key(b, t0() + mins(20))).unwrap();
    assert_eq!(first.payload["target_minutes"], 30);
    assert_eq!(first.occurred_at, t0() + mins(50));
    test.cleanup().await;
}

/// Items that show up after the monitor passed their wait's breach time
/// (a message routed late carries the platform's time; a resolved
/// conversation reopened by its contact keeps its old wait) are notified at
/// the next pass; a breach notified once is not notified again by a new
/// process after retention purged its notification.
async fn late_and_reopened_breaches_are_notified_once(test: TestStore) {
    let store = test.store();
    let fx = Fx::new(store.clone(), "Acme").await;
    store
        .set_first_response_target(fx.tenant, Some(mins(30)), t0())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(t0() + mins(31)));
    let monitor = SlaMonitor::new(store.clone(), clock.clone());
    let reopened = fx.conversation("reopened").await;
    fx.say(reopened, MessageDirection::Inbound, t0() + mins(2))
        .await;
    store
        .set_inbox_status(
            fx.tenant,
            InboxSubject::Conversation(reopened),
            InboxStatus::Resolved,
            t0() + mins(3),
        )
        .await
        .unwrap();
    assert_eq!(monitor.notify_breaches().await.unwrap().notified, 0);

    // At t0+40 a message of t0 is routed (a webhook retried, a backlog),
    // and the resolved conversation's contact writes again.
    clock.set(t0() + mins(40));
    let late = fx.conversation("late").await;
    fx.say(late, MessageDirection::Inbound, t0()).await;
    fx.say(reopened, MessageDirection::Inbound, t0() + mins(39))
        .await;
    let moved = fx.conversation("moved").await;
    fx.say(moved, MessageDirection::Inbound, t0() + mins(5))
        .await;
    clock.set(t0() + mins(41));
    let report = monitor.notify_breaches().await.unwrap();
    assert_eq!((report.breaches, report.notified), (3, 3));
    let mut got = fx.notified().await;
    got.sort();
    let mut expected = vec![
        key(late, t0()),
        key(reopened, t0() + mins(2)),
        key(moved, t0() + mins(5)),
    ];
    expected.sort();
    assert_eq!(got, expected);
    // A message of t0+3 routed late moves the notified wait earlier: the
    // same wait, not notified again.
    fx.say(moved, MessageDirection::Inbound, t0() + mins(3))
        .await;
    clock.set(t0() + mins(42));
    let again = monitor.notify_breaches().await.unwrap();
    assert_eq!((again.breaches, again.notified), (0, 0));

    // Retention purges the settled notifications; a new process notifies
    // nothing again.
    clock.set(t0() + Duration::days(40));
    let purged = store
        .purge_before(
            nexiom_storage::Retained::Notifications,
            t0() + Duration::days(31),
            100,
        )
        .await
        .unwrap();
    assert_eq!(purged, 3);
    let restarted = SlaMonitor::new(store.clone(), clock.clone());
    let after = restarted.notify_breaches().await.unwrap();
    assert_eq!((after.breaches, after.notified), (0, 0));
    assert!(fx.notified().await.is_empty());
    test.cleanup().await;
}

#[tokio::test]
async fn memory_late_and_reopened_breaches_are_notified_once() {
    late_and_reopened_breaches_are_notified_once(memory_test_store().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn postgres_late_and_reopened_breaches_are_notified_once() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    late_and_reopened_breaches_are_notified_once(test).await;
}

#[tokio::test]
async fn memory_breaches_are_listed_and_notified_once_per_wait() {
    breaches_are_listed_and_notified_once_per_wait(memory_test_store().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn postgres_breaches_are_listed_and_notified_once_per_wait() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    breaches_are_listed_and_notified_once_per_wait(test).await;
}
