//! Notifications end to end, on both backends: an escalation's notification
//! reaches a local webhook receiver that fails twice then answers (three
//! attempts, one accepted, every attempt with the same idempotency key and a
//! signature that verifies with the documented recipe); a receiver that
//! never answers makes the delivery dead after the last attempt; a post
//! failed for good reaches a Slack-compatible incoming webhook; an answer
//! holding a NUL byte and an unreachable Slack URL are recorded (the URL,
//! a credential, left out) without stopping the batch.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::notify::{
    IDEMPOTENCY_HEADER, NotificationDispatcher, RetryPolicy, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    verify,
};
use nexiom_scheduler::{
    Cadence, SchedulerError, Shutdown, WorkReport, Worker, WorkerContext, WorkerRuntime,
};
use nexiom_storage::Store;
use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store, t0, world};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod notifications {
    pub mod local_network;
    pub mod slow;
}
use notifications::local_network::*;
use notifications::slow::*;

const SECRET: &str = "whsec-0123456789abcdef";

async fn endpoint(
    s: &dyn Store,
    tenant: TenantId,
    name: &str,
    kind: EndpointKind,
    url: String,
    kinds: &[NotificationKind],
) -> NotificationEndpoint {
    s.create_notification_endpoint(NewNotificationEndpoint {
        tenant_id: tenant,
        name: name.into(),
        kind,
        url,
        secret: (kind == EndpointKind::Webhook).then(|| SecretString::new(SECRET)),
        kinds: kinds.to_vec(),
        created_at: t0(),
    })
    .await
    .unwrap()
}

/// An inbound message of the world's channel, escalated by triage.
async fn escalated_message(s: &dyn Store, tenant: TenantId, channel: ChannelId) -> Message {
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant,
            platform: Platform::Facebook,
            external_handle: "psid-1".into(),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = s
        .insert_open_conversation(tenant, cc.contact_id, channel, t0())
        .await
        .unwrap()
        .record;
    let m = s
        .insert_message(NewMessage {
            tenant_id: tenant,
            conversation_id: conv.id,
            direction: MessageDirection::Inbound,
            text: "I want to talk to a lawyer".into(),
            has_media: false,
            provider_message_id: Some("mid-1".into()),
            in_reply_to: None,
            delivery_status: None,
            created_at: t0(),
            stored_at: t0(),
        })
        .await
        .unwrap()
        .record;
    s.set_message_triage(tenant, m.id, Triage::Escalate, 1.0, None)
        .await
        .unwrap()
}

async fn receiver_failing_twice_gets_three_attempts(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ops",
        EndpointKind::Webhook,
        format!("{}/hook", server.uri()),
        &[NotificationKind::ItemEscalated],
    )
    .await;
    let m = escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;

    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = NotificationDispatcher::new(s.clone(), clock.clone()).allow_local_network();
    let first = dispatcher.deliver_due(10).await.unwrap();
    assert_eq!((first.claimed, first.retried), (1, 1));
    assert_eq!(
        dispatcher.deliver_due(10).await.unwrap().claimed,
        0,
        "not again before the backoff"
    );
    clock.advance(Duration::seconds(30));
    assert_eq!(dispatcher.deliver_due(10).await.unwrap().retried, 1);
    clock.advance(Duration::seconds(59));
    assert_eq!(dispatcher.deliver_due(10).await.unwrap().claimed, 0);
    clock.advance(Duration::seconds(1));
    assert_eq!(dispatcher.deliver_due(10).await.unwrap().delivered, 1);
    clock.advance(Duration::hours(2));
    assert_eq!(
        dispatcher.deliver_due(10).await.unwrap().claimed,
        0,
        "accepted: never sent again"
    );

    let notifications = s.list_notifications(w.tenant.id, None, 10).await.unwrap();
    assert_eq!(notifications.len(), 1);
    let n = &notifications[0];
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two failures and the accepted attempt");
    let keys: HashSet<String> = requests
        .iter()
        .map(|r| r.headers[IDEMPOTENCY_HEADER].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, HashSet::from([n.id.to_string()]));
    for r in &requests {
        let ts = r.headers[TIMESTAMP_HEADER].to_str().unwrap();
        let sig = r.headers[SIGNATURE_HEADER].to_str().unwrap();
        let signed_at: i64 = ts.parse().unwrap();
        verify(SECRET, ts, sig, &r.body, signed_at + 10, 300).unwrap();
        assert!(verify("another-secret-0123", ts, sig, &r.body, signed_at, 300).is_err());
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["kind"], "item_escalated");
        assert_eq!(body["id"], serde_json::json!(n.id));
        assert_eq!(body["data"]["message_id"], serde_json::json!(m.id));
        assert_eq!(body["data"]["text"], "I want to talk to a lawyer");
    }
    let deliveries = s
        .list_notification_deliveries(w.tenant.id, n.id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].state, NotificationDeliveryState::Delivered);
    assert_eq!(deliveries[0].attempts, 3);
    test.cleanup().await;
}

async fn a_receiver_that_never_answers_makes_the_delivery_dead(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ops",
        EndpointKind::Webhook,
        format!("{}/hook", server.uri()),
        &[NotificationKind::ChannelNeedsReauth],
    )
    .await;
    let n = s
        .enqueue_notification(NewNotification::channel_needs_reauth(
            w.tenant.id,
            w.channel.id,
            "token expired",
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = NotificationDispatcher::new(s.clone(), clock.clone())
        .allow_local_network()
        .with_policy(RetryPolicy {
            max_attempts: 3,
            base: Duration::seconds(10),
            max: Duration::minutes(1),
        });
    let mut dead = 0;
    for _ in 0..6 {
        dead += dispatcher.deliver_due(10).await.unwrap().dead;
        clock.advance(Duration::minutes(1));
    }
    assert_eq!(dead, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let d = s
        .list_notification_deliveries(w.tenant.id, n.id)
        .await
        .unwrap();
    assert_eq!(d[0].state, NotificationDeliveryState::Dead);
    assert_eq!(d[0].attempts, 3);
    assert!(d[0].last_error.as_deref().unwrap().contains("HTTP 500"));
    assert_eq!(n.payload["reason"], "token expired");
    assert_eq!(n.payload["channel_id"], serde_json::json!(w.channel.id));
    test.cleanup().await;
}

async fn a_failed_post_reaches_slack(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T1/B1/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "slack",
        EndpointKind::Slack,
        format!("{}/services/T1/B1/x", server.uri()),
        &[NotificationKind::PostFailed],
    )
    .await;
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
    s.claim_due_posts(t0(), 1, "w1", Duration::minutes(5))
        .await
        .unwrap();
    s.settle_posts(
        "w1",
        &[PostSettlement {
            tenant_id: w.tenant.id,
            post_id: post.id,
            status: PostStatus::Failed,
            retry_count: Some(1),
            error_message: Some("media refused by the platform".into()),
            next_attempt_at: None,
            published: None,
            run: None,
        }],
        t0(),
    )
    .await
    .unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let report = NotificationDispatcher::new(s.clone(), clock)
        .allow_local_network()
        .deliver_due(10)
        .await
        .unwrap();
    assert_eq!(report.delivered, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("failed for good"), "{text}");
    assert!(text.contains(&post.id.to_string()), "{text}");
    assert!(text.contains("media refused"), "{text}");
    test.cleanup().await;
}

struct Failing(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl Worker for Failing {
    fn name(&self) -> &str {
        "flaky"
    }
    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(1))
    }
    async fn run(&self, _ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            Err(SchedulerError::ContentRefused("upstream down".into()))
        } else {
            Ok(WorkReport::default())
        }
    }
}

async fn a_worker_failing_three_runs_in_a_row_is_notified_once(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Ops", Platform::Facebook, "page-1").await;
    let quiet = world(s.as_ref(), "Quiet", Platform::Facebook, "page-2").await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ops",
        EndpointKind::Webhook,
        "https://ops.example.com/hook".into(),
        &[NotificationKind::WorkerFailing],
    )
    .await;
    let clock = Arc::new(ManualClock::new(t0()));
    let mut runtime = WorkerRuntime::new(s.clone(), clock.clone());
    let worker = Arc::new(Failing(std::sync::atomic::AtomicBool::new(true)));
    runtime.register(worker.clone());
    let shutdown = Shutdown::never();
    let mut counts = Vec::new();
    for run in 0..9 {
        // Runs 0-4 fail, 5 succeeds, 6-8 fail again: two streaks.
        worker
            .0
            .store(run != 5, std::sync::atomic::Ordering::SeqCst);
        runtime.run_worker("flaky", &shutdown).await.unwrap();
        clock.advance(Duration::minutes(1));
        counts.push(
            s.list_notifications(w.tenant.id, Some(NotificationKind::WorkerFailing), 10)
                .await
                .unwrap()
                .len(),
        );
    }
    assert_eq!(counts, vec![0, 0, 1, 1, 1, 1, 1, 1, 2]);
    let n = &s.list_notifications(w.tenant.id, None, 10).await.unwrap()[0];
    assert_eq!(n.payload["worker"], "flaky");
    assert_eq!(n.payload["failures"], 3);
    // Every subscribed tenant gets it: the class of the error and where the
    // operator reads it, never its text (a worker's error can quote any
    // tenant's data).
    assert_eq!(n.payload["error_kind"], "invalid_input");
    assert!(
        !n.payload.to_string().contains("upstream down"),
        "the error's text stays in the execution log: {}",
        n.payload
    );
    let logs = s.list_executions(Some("flaky"), 20).await.unwrap();
    let last = logs
        .iter()
        .find(|l| serde_json::json!(l.id) == n.payload["execution_id"])
        .expect("the notification names one of the worker's runs");
    assert!(last.error.as_deref().unwrap().contains("upstream down"));
    let slack = nexiom_scheduler::notify::slack_text(n);
    assert!(
        slack.contains("invalid_input") && slack.contains(&last.id.to_string()),
        "{slack}"
    );
    assert!(!slack.contains("upstream down"), "{slack}");
    assert!(
        s.list_notifications(quiet.tenant.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "only subscribed tenants hear of it"
    );
    test.cleanup().await;
}

/// An endpoint whose error answer holds a NUL byte and a Slack webhook that
/// cannot be reached, beside a healthy endpoint: both failures are recorded
/// (the NUL as a space, the Slack URL, its credential, nowhere in the
/// error) and retried later, and the healthy endpoint's delivery goes out in
/// the same batch; the batch is not aborted by the answer the store refused
/// to record before.
async fn a_hostile_answer_and_an_unreachable_slack_do_not_stop_the_batch(test: TestStore) {
    let s = test.store();
    let w = world(s.as_ref(), "Acme", Platform::Facebook, "page-1").await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hostile"))
        .respond_with(ResponseTemplate::new(500).set_body_string("bad\0gateway"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let kinds = [NotificationKind::ItemEscalated];
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "hostile",
        EndpointKind::Webhook,
        format!("{}/hostile", server.uri()),
        &kinds,
    )
    .await;
    // Nothing listens on port 9 (discard) of this machine.
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "slack",
        EndpointKind::Slack,
        "http://127.0.0.1:9/services/T000/B000/secret-path".into(),
        &kinds,
    )
    .await;
    endpoint(
        s.as_ref(),
        w.tenant.id,
        "ok",
        EndpointKind::Webhook,
        format!("{}/ok", server.uri()),
        &kinds,
    )
    .await;
    escalated_message(s.as_ref(), w.tenant.id, w.channel.id).await;

    let clock = Arc::new(ManualClock::new(t0()));
    let dispatcher = NotificationDispatcher::new(s.clone(), clock.clone()).allow_local_network();
    let report = dispatcher.deliver_due(10).await.unwrap();
    assert_eq!(
        (
            report.claimed,
            report.delivered,
            report.retried,
            report.unrecorded
        ),
        (3, 1, 2, 0),
        "{report:?}"
    );
    let notification = &s
        .list_notifications(w.tenant.id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap()[0];
    let deliveries = s
        .list_notification_deliveries(w.tenant.id, notification.id)
        .await
        .unwrap();
    let errors: Vec<String> = deliveries
        .iter()
        .filter_map(|d| d.last_error.clone())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("bad gateway")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains('\0')));
    assert!(
        errors.iter().all(|e| !e.contains("secret-path")),
        "{errors:?}"
    );
    test.cleanup().await;
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::memory_test_store().await.unwrap()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
                async fn $name() {
                    let Some(test) = super::postgres_test_store().await else { return };
                    super::$name(test).await;
                }
            )+
        }
    };
}

on_both_backends!(
    receiver_failing_twice_gets_three_attempts,
    a_receiver_that_never_answers_makes_the_delivery_dead,
    a_failed_post_reaches_slack,
    a_worker_failing_three_runs_in_a_row_is_notified_once,
    a_hostile_answer_and_an_unreachable_slack_do_not_stop_the_batch,
    a_slow_endpoint_keeps_its_delivery_claimed,
    a_slow_failure_is_recorded_under_the_renewed_claim,
    a_notifier_that_never_answers_fails_its_attempt,
    local_network_receivers_are_refused_unless_allowed,
    allowing_the_local_network_keeps_an_applications_notifier,
);
