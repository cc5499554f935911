//! What the reply-queue tests share: a pipeline over a WhatsApp mock
//! connector and a manual clock, tenants with AI control ON, pending items.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_connectors::{ConnectorRegistry, MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::inbound::{AutoReplyConfig, InboundPipeline};
use nexiom_scheduler::{ConcurrencyConfig, RetryPolicy};
use nexiom_storage::Store;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// Drafts a reply; fails for a text containing `boom`.
#[derive(Debug)]
pub struct Generator;

#[async_trait]
impl ReplyGenerator for Generator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        if request.text.contains("boom") {
            return Err(ReplyError::Status {
                status: 503,
                message: "upstream overloaded".into(),
            });
        }
        Ok(Draft {
            text: format!("Re: {}", request.text),
            confidence: Some(0.9),
        })
    }
}

pub struct World {
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub mock: MockConnector,
    pub pipeline: InboundPipeline,
}

/// One pipeline over `store` with a WhatsApp mock connector and no jitter.
pub fn world(store: Arc<dyn Store>) -> World {
    world_with(
        store,
        nexiom_scheduler::inbound::DEFAULT_REPLIES_PER_CHANNEL,
    )
}

/// [`world`] with `per_channel` replies in flight per channel.
pub fn world_with(store: Arc<dyn Store>, per_channel: usize) -> World {
    let clock = ManualClock::new(t0() + Duration::minutes(10));
    let mock = MockConnector::new(Platform::WhatsApp).with_clock(Arc::new(clock.clone()));
    let pipeline = InboundPipeline::new(
        Arc::clone(&store),
        Arc::new(clock.clone()),
        Arc::new(Generator),
    )
    .with_connectors(ConnectorRegistry::new().with(Arc::new(mock.clone())))
    .with_auto_reply_config(AutoReplyConfig {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        concurrency: ConcurrencyConfig {
            per_channel,
            ..ConcurrencyConfig::default()
        },
        ..AutoReplyConfig::default()
    });
    World {
        store,
        clock,
        mock,
        pipeline,
    }
}

/// A tenant with AI control ON and a WhatsApp channel.
pub async fn tenant(store: &dyn Store, name: &str) -> (TenantId, ChannelId) {
    let tenant = store
        .create_tenant(NewTenant::new(name, t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: format!("pn-{name}"),
            name: name.into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("token")),
                ..Credentials::default()
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    store
        .set_ai_control(tenant.id, true, None, t0())
        .await
        .unwrap();
    (tenant.id, channel.id)
}

/// An inbound message from its own contact, triaged AUTO_REPLY.
pub async fn pending(
    store: &dyn Store,
    (tenant, channel): (TenantId, ChannelId),
    key: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Message {
    let cc = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant,
            platform: Platform::WhatsApp,
            external_handle: format!("336{key}"),
            display_name: None,
            created_at: at,
        })
        .await
        .unwrap()
        .record;
    let conv = store
        .insert_open_conversation(tenant, cc.contact_id, channel, at)
        .await
        .unwrap()
        .record;
    let m = store
        .insert_message(NewMessage {
            tenant_id: tenant,
            conversation_id: conv.id,
            direction: MessageDirection::Inbound,
            text: text.into(),
            has_media: false,
            provider_message_id: Some(format!("wamid.{key}")),
            in_reply_to: None,
            delivery_status: None,
            created_at: at,
            stored_at: at,
        })
        .await
        .unwrap()
        .record;
    store
        .set_message_triage(tenant, m.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap()
}

/// The recipients of every send, and whether any was sent twice.
pub fn recipients(mock: &MockConnector) -> (usize, usize) {
    let sends = mock.calls_of(MockOp::SendMessage);
    let distinct: HashSet<_> = sends.iter().map(|c| c.target.clone()).collect();
    (sends.len(), distinct.len())
}
