//! A tenant's WhatsApp channel served by the real connector against the fake
//! Cloud API, with its contacts, audiences, broadcast posts and webhooks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{Backoff, BreakerConfig, HttpConfig, WhatsAppConnector};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer};

use super::fake_api::FakeMessages;
use crate::common::t0;

const PHONE_ID: &str = "106540352242922";

pub struct Fx {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub fake: FakeMessages,
    pub connector: WhatsAppConnector,
    pub gateway: Arc<ConnectorGateway>,
    pub _server: MockServer,
}

pub async fn fx(store: Arc<dyn Store>) -> Fx {
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
    pub fn queue(&self, worker: &str) -> PublishQueue {
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
    pub async fn contact(&self, recipient: &str, wrote: Option<DateTime<Utc>>) {
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

    pub async fn audience(&self, recipients: &[&str]) -> AudienceId {
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
    pub async fn broadcast(&self, audience: AudienceId, at: DateTime<Utc>) -> ScheduledPost {
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
    pub async fn webhook(&self, field: &str, value: Value) {
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

    pub async fn post(&self, id: PostId) -> ScheduledPost {
        self.store.get_post(self.tenant, id).await.unwrap()
    }

    pub async fn deliveries(&self, id: PostId) -> HashMap<String, BroadcastDelivery> {
        self.store
            .list_deliveries(self.tenant, id)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.recipient.clone(), d))
            .collect()
    }
}
