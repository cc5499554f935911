//! WhatsApp broadcasts through the publish queue with the real WhatsApp
//! connector against a local fake Cloud API, on memory and on Postgres: a
//! scheduled post to an audience of 3 goes out at T (manual clock); a
//! recipient outside the 24-hour window without a template is refused before
//! any call; a recipient who fails twice then succeeds gets exactly one
//! message; a worker killed mid-fan-out and restarted sends no one twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use common::{batch, t0};
use nexiom_connectors::{Backoff, BreakerConfig, HttpConfig, WhatsAppConnector};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::{Value, json};
use tokio::sync::Notify;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

on_both_backends!(
    a_broadcast_to_an_audience_of_3_goes_out_at_t,
    a_worker_killed_mid_fan_out_sends_no_one_twice,
    a_retry_after_pauses_the_fan_out_and_holds_the_channel,
);

const PHONE_ID: &str = "106540352242922";

/// The fake Cloud API's `/messages`: every request is logged (recipient and
/// body); a recipient may be scripted to fail its first calls with 503, or to
/// get its answer only after a long wait (the request is taken in at once).
#[derive(Clone, Default)]
struct FakeMessages {
    log: Arc<Mutex<Vec<Value>>>,
    failures: Arc<Mutex<HashMap<String, u32>>>,
    throttled: Arc<Mutex<HashMap<String, u32>>>,
    slow: Arc<Mutex<Option<String>>>,
    arrived_slow: Arc<Notify>,
}

impl FakeMessages {
    fn calls_to(&self, recipient: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["to"] == recipient)
            .count()
    }

    fn calls(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

impl Respond for FakeMessages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(body);
            log.len()
        };
        if let Some(left) = self.failures.lock().unwrap().get_mut(&to)
            && *left > 0
        {
            *left -= 1;
            return ResponseTemplate::new(503).set_body_json(
                json!({"error": {"message": "Service temporarily unavailable", "code": 2}}),
            );
        }
        if let Some(left) = self.throttled.lock().unwrap().get_mut(&to)
            && *left > 0
        {
            *left -= 1;
            return ResponseTemplate::new(400)
                .insert_header("Retry-After", "120")
                .set_body_json(json!({"error": {
                    "message": "(#130429) Rate limit hit", "code": 130429}}));
        }
        let ok = ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": format!("wamid.{n}")}],
        }));
        if self.slow.lock().unwrap().as_deref() == Some(to.as_str()) {
            self.arrived_slow.notify_one();
            return ok.set_delay(StdDuration::from_secs(60));
        }
        ok
    }
}

struct Fx {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    channel: ChannelId,
    fake: FakeMessages,
    connector: WhatsAppConnector,
    gateway: Arc<ConnectorGateway>,
    _server: MockServer,
}

async fn fx(store: Arc<dyn Store>) -> Fx {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: format!("{PHONE_ID}{}", tenant.id.as_uuid().as_u128() % 1000),
            name: "Shop".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("system-user-token")),
                ..Credentials::default()
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    let server = MockServer::start().await;
    let fake = FakeMessages::default();
    Mock::given(method("POST"))
        .and(path_regex(r"/messages$"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let connector = WhatsAppConnector::builder()
        .with_base_url(server.uri())
        .with_app_secret("app-secret")
        .with_verify_token("verify")
        .with_http_config(HttpConfig {
            timeout: StdDuration::from_secs(120),
            max_retries: 0,
            backoff: Backoff::none(),
            breaker: BreakerConfig {
                failure_threshold: 0,
                ..BreakerConfig::default()
            },
            ..HttpConfig::default()
        })
        .with_clock(clock.clone())
        .build()
        .unwrap();
    Fx {
        store,
        clock,
        tenant: tenant.id,
        channel: channel.id,
        fake,
        gateway: Arc::new(ConnectorGateway::single(Arc::new(connector.clone()))),
        connector,
        _server: server,
    }
}

impl Fx {
    fn queue(&self, worker: &str) -> PublishQueue {
        PublishQueue::new(
            self.store.clone(),
            self.gateway.clone(),
            self.clock.clone(),
            PublishConfig {
                retry: RetryPolicy {
                    jitter: false,
                    ..RetryPolicy::default()
                },
                ..PublishConfig::for_worker(worker)
            },
        )
    }

    /// An opted-in contact who last wrote at `wrote` (if ever).
    async fn contact(&self, recipient: &str, wrote: Option<DateTime<Utc>>) {
        self.store
            .apply_opt_change(OptChange {
                tenant_id: self.tenant,
                channel_id: self.channel,
                recipient: recipient.into(),
                opted_in: true,
                source: "checkout form".into(),
                at: t0() - Duration::days(30),
            })
            .await
            .unwrap();
        let Some(at) = wrote else { return };
        let handle = self
            .store
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.tenant,
                platform: Platform::WhatsApp,
                external_handle: recipient.into(),
                display_name: None,
                created_at: at,
            })
            .await
            .unwrap()
            .record;
        let conversation = self
            .store
            .insert_open_conversation(self.tenant, handle.contact_id, self.channel, at)
            .await
            .unwrap()
            .record;
        self.store
            .insert_message(NewMessage {
                tenant_id: self.tenant,
                conversation_id: conversation.id,
                direction: MessageDirection::Inbound,
                text: "hello".into(),
                has_media: false,
                provider_message_id: Some(format!("wamid.in.{recipient}")),
                in_reply_to: None,
                delivery_status: None,
                created_at: at,
                stored_at: at,
            })
            .await
            .unwrap();
    }

    async fn audience(&self, recipients: &[&str]) -> AudienceId {
        let audience = self
            .store
            .create_audience(NewAudience {
                tenant_id: self.tenant,
                channel_id: self.channel,
                name: "Customers".into(),
                created_at: t0(),
            })
            .await
            .unwrap();
        let recipients: Vec<String> = recipients.iter().map(|r| (*r).to_owned()).collect();
        self.store
            .add_audience_members(self.tenant, audience.id, &recipients, t0())
            .await
            .unwrap();
        audience.id
    }

    /// A post at `at` to the stored audience, without a template.
    async fn broadcast(&self, audience: AudienceId, at: DateTime<Utc>) -> ScheduledPost {
        let post = self
            .store
            .insert_post(NewScheduledPost::one_off(
                self.tenant,
                self.channel,
                Content::text("Spring sale: 20% off this week"),
                at,
                t0(),
            ))
            .await
            .unwrap()
            .record;
        self.store
            .set_post_broadcast(PostBroadcast {
                tenant_id: self.tenant,
                post_id: post.id,
                audience: BroadcastAudience::Stored {
                    audience_id: audience,
                },
                template: None,
            })
            .await
            .unwrap();
        post
    }

    /// A webhook body of the channel's phone number, read by the real
    /// connector, stored and routed.
    async fn webhook(&self, field: &str, value: Value) {
        let channel = self
            .store
            .get_channel(self.tenant, self.channel)
            .await
            .unwrap();
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] = json!({"display_phone_number": "15550000000", "phone_number_id": channel.external_account_id});
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "WABA", "changes": [{"field": field, "value": value}]}]});
        let now = self.clock.now();
        let events = nexiom_connectors::PlatformConnector::handle_webhook_events(
            &self.connector,
            body.to_string().as_bytes(),
            now,
        )
        .unwrap();
        for event in events {
            let event = event.unwrap();
            self.store
                .insert_event(event.to_new_webhook_event(self.tenant, self.channel, now))
                .await
                .unwrap();
        }
        self.store
            .route_unrouted_events(None, 100, now)
            .await
            .unwrap();
    }

    async fn post(&self, id: PostId) -> ScheduledPost {
        self.store.get_post(self.tenant, id).await.unwrap()
    }

    async fn deliveries(&self, id: PostId) -> HashMap<String, BroadcastDelivery> {
        self.store
            .list_deliveries(self.tenant, id)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.recipient.clone(), d))
            .collect()
    }
}

async fn a_broadcast_to_an_audience_of_3_goes_out_at_t(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0() + Duration::hours(1);
    // Two wrote within the day before T, one two days before.
    f.contact("15550001", Some(t - Duration::hours(2))).await;
    f.contact("15550002", Some(t - Duration::hours(3))).await;
    f.contact("15550003", Some(t - Duration::days(2))).await;
    // A fourth member said "stop" after joining: never sent to.
    f.contact("15550004", Some(t - Duration::hours(1))).await;
    let audience = f
        .audience(&["15550001", "15550002", "15550003", "15550004"])
        .await;
    f.store
        .apply_opt_change(OptChange {
            tenant_id: f.tenant,
            channel_id: f.channel,
            recipient: "15550004".into(),
            opted_in: false,
            source: "stop".into(),
            at: t0(),
        })
        .await
        .unwrap();
    let post = f.broadcast(audience, t).await;
    f.fake.failures.lock().unwrap().insert("15550002".into(), 2);
    let queue = f.queue("w1");

    // Not before T.
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(f.fake.calls(), 0);

    // At T: one sent, one retried, one refused before any call.
    f.clock.set(t);
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.claimed, report.retrying), (1, 1));
    assert_eq!(f.fake.calls_to("15550001"), 1);
    assert_eq!(f.fake.calls_to("15550002"), 1);
    assert_eq!(f.fake.calls_to("15550003"), 0, "refused before any call");
    assert_eq!(f.fake.calls_to("15550004"), 0, "opted out");
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t + Duration::seconds(60)));
    let d = f.deliveries(post.id).await;
    assert_eq!(d.len(), 3, "opted-in members only");
    assert_eq!(d["15550003"].state, BroadcastDeliveryState::Failed);
    assert!(
        d["15550003"]
            .error
            .as_deref()
            .unwrap()
            .contains("24-hour window"),
        "{:?}",
        d["15550003"].error
    );
    assert_eq!(d["15550003"].attempts, 1);

    // The second failure, then the success 2 minutes later.
    f.clock.advance(Duration::seconds(60));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    f.clock.advance(Duration::seconds(120));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(f.fake.calls_to("15550002"), 3);
    assert_eq!(f.fake.calls_to("15550001"), 1);
    assert_eq!(f.fake.calls(), 4);

    let published = f.post(post.id).await;
    assert_eq!(published.status, PostStatus::Published);
    assert_eq!(
        published.error_message.as_deref(),
        Some("2 of 3 recipients sent, 1 failed")
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (2, 1));
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
    assert_eq!(d["15550002"].attempts, 3);
    // The message carried its delivery id, which status webhooks echo.
    let log = f.fake.log.lock().unwrap().clone();
    let sent_to_2 = log.iter().rfind(|b| b["to"] == "15550002").unwrap();
    assert_eq!(
        sent_to_2["biz_opaque_callback_data"],
        d["15550002"].id.to_string()
    );
    assert_eq!(sent_to_2["type"], "text");

    // Nothing more goes out.
    f.clock.advance(Duration::hours(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(f.fake.calls(), 4);

    // With an approved template, explicit recipients outside their window
    // get the template (with its parameters); inside, the free-form text.
    let scheduler =
        Scheduler::new(f.store.clone(), f.clock.clone()).with_gateway(f.gateway.clone());
    let (with_template, _) = scheduler
        .schedule_broadcast(
            NewScheduledPost::one_off(
                f.tenant,
                f.channel,
                Content::text("Last day of the sale"),
                f.clock.now(),
                f.clock.now(),
            ),
            BroadcastAudience::Recipients {
                recipients: vec!["+15550003".into(), "15550001".into()],
            },
            Some(BroadcastTemplate {
                name: "sale_last_day".into(),
                language: "en_US".into(),
                parameters: vec!["20%".into()],
            }),
        )
        .await
        .unwrap();
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let log = f.fake.log.lock().unwrap().clone();
    let to_3 = log.iter().rfind(|b| b["to"] == "15550003").unwrap();
    assert_eq!(to_3["type"], "template");
    assert_eq!(to_3["template"]["name"], "sale_last_day");
    assert_eq!(to_3["template"]["language"]["code"], "en_US");
    assert_eq!(
        to_3["template"]["components"][0]["parameters"][0]["text"],
        "20%"
    );
    // 15550001 wrote 2 hours before T, about 3 hours ago: still inside.
    let to_1 = log.iter().rfind(|b| b["to"] == "15550001").unwrap();
    assert_eq!(to_1["type"], "text");
    assert_eq!(to_1["text"]["body"], "Last day of the sale");
    assert_eq!(f.post(with_template.id).await.error_message, None);
}

async fn a_worker_killed_mid_fan_out_sends_no_one_twice(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    for r in ["15550001", "15550002", "15550003"] {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&["15550001", "15550002", "15550003"]).await;
    let post = f.broadcast(audience, t).await;
    *f.fake.slow.lock().unwrap() = Some("15550002".into());

    // w1 sends to the first, then is killed while its second send is out.
    let queue = f.queue("w1");
    let arrived = f.fake.arrived_slow.clone();
    let worker = tokio::spawn(async move { queue.run_due(&batch(10), None).await });
    tokio::time::timeout(StdDuration::from_secs(30), arrived.notified())
        .await
        .unwrap();
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 0)
    );

    // Restarted after its lease lapsed: the one in doubt is not sent again.
    f.clock.advance(Duration::minutes(6));
    f.store.release_stale_leases(f.clock.now()).await.unwrap();
    let report = f.queue("w2").run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 1)
    );
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Failed);
    assert_eq!(
        d["15550002"].error.as_deref(),
        Some(nexiom_storage::DELIVERY_OUTCOME_UNKNOWN)
    );
    assert_eq!(f.post(post.id).await.status, PostStatus::Published);

    // The platform's status webhook, echoing the delivery id, settles it.
    let ts = f.clock.now().timestamp().to_string();
    f.webhook(
        "messages",
        json!({"statuses": [{"id": "wamid.2", "status": "delivered", "timestamp": ts,
            "recipient_id": "15550002",
            "biz_opaque_callback_data": d["15550002"].id.to_string()}]}),
    )
    .await;
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
    assert_eq!(
        d["15550002"].delivery_status,
        Some(DeliveryStatus::Delivered)
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (3, 0));

    // One says "stop" through the platform: the next broadcast skips them.
    f.webhook(
        "user_preferences",
        json!({"contacts": [{"profile": {"name": "Bo"}, "wa_id": "15550003"}],
            "user_preferences": [{"wa_id": "15550003", "detail": "stop",
                "category": "marketing_messages", "value": "stop", "timestamp": ts}]}),
    )
    .await;
    *f.fake.slow.lock().unwrap() = None;
    let next = f.broadcast(audience, f.clock.now()).await;
    f.queue("w2").run_due(&batch(10), None).await.unwrap();
    assert_eq!(f.post(next.id).await.status, PostStatus::Published);
    assert_eq!(f.fake.calls_to("15550003"), 1, "not sent after the stop");
    assert_eq!(f.fake.calls_to("15550001"), 2);
    assert_eq!(f.fake.calls_to("15550002"), 2);
}

async fn a_retry_after_pauses_the_fan_out_and_holds_the_channel(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    for r in ["15550001", "15550002", "15550003"] {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&["15550001", "15550002", "15550003"]).await;
    let post = f.broadcast(audience, t).await;
    f.fake
        .throttled
        .lock()
        .unwrap()
        .insert("15550002".into(), 1);
    let queue = f.queue("w1");

    // The second recipient is throttled: the third is not tried in this pass.
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 0)
    );
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t + Duration::seconds(120)));
    let d = f.deliveries(post.id).await;
    assert_eq!(
        d["15550003"].attempts, 0,
        "not attempted, no attempt counted"
    );

    // The channel is held back for every worker until the Retry-After, even
    // for another post due at once.
    let (other, _) = f
        .store
        .insert_broadcast_post(
            NewScheduledPost::one_off(
                f.tenant,
                f.channel,
                Content::text("Another"),
                f.clock.now(),
                f.clock.now(),
            ),
            BroadcastAudience::Recipients {
                recipients: vec!["15550001".into()],
            },
            None,
        )
        .await
        .unwrap();
    f.clock.advance(Duration::seconds(119));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .claimed,
        0
    );
    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .published,
        2
    );
    assert_eq!(f.post(other.id).await.status, PostStatus::Published);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (2, 2, 1)
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (3, 0));
}
