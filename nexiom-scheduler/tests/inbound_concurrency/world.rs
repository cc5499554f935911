//! The world of the concurrency tests: a tenant with AI control ON over a
//! WhatsApp and a Facebook platform that count their calls in flight, its
//! channels, conversations, comment threads and posts, and the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{ConnectorRegistry, MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::inbound::{AutoReplyConfig, InboundPipeline};
use nexiom_scheduler::{ConcurrencyConfig, RetryPolicy};
use nexiom_storage::Store;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};

use super::counting::Counting;
use crate::common::t0;

/// Drafts "Re: <text>".
#[derive(Debug)]
pub struct Generator;

#[async_trait]
impl ReplyGenerator for Generator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        Ok(Draft {
            text: format!("Re: {}", request.text),
            confidence: Some(0.9),
        })
    }
}

pub struct World {
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub tenant: TenantId,
    pub wa: Counting,
    pub fb: Counting,
}

impl World {
    /// A tenant with AI control ON, over a WhatsApp and a Facebook platform.
    pub async fn new(store: Arc<dyn Store>) -> World {
        let clock = ManualClock::new(t0() + Duration::minutes(10));
        let mock = |p| MockConnector::new(p).with_clock(Arc::new(clock.clone()));
        let tenant = store
            .create_tenant(NewTenant::new("Acme", t0()))
            .await
            .unwrap()
            .id;
        store
            .set_ai_control(tenant, true, None, t0())
            .await
            .unwrap();
        // One count of calls in flight for both platforms.
        let counters = Arc::default();
        World {
            wa: Counting::new(mock(Platform::WhatsApp), &counters),
            fb: Counting::new(mock(Platform::Facebook), &counters),
            store,
            clock,
            tenant,
        }
    }

    pub fn pipeline(&self, config: AutoReplyConfig) -> InboundPipeline {
        InboundPipeline::new(
            Arc::clone(&self.store),
            Arc::new(self.clock.clone()),
            Arc::new(Generator),
        )
        .with_connectors(
            ConnectorRegistry::new()
                .with(Arc::new(self.wa.clone()))
                .with(Arc::new(self.fb.clone())),
        )
        .with_auto_reply_config(AutoReplyConfig {
            retry: RetryPolicy {
                jitter: false,
                ..RetryPolicy::default()
            },
            ..config
        })
    }

    pub async fn channel(&self, platform: Platform, account: &str) -> Channel {
        self.store
            .create_channel(NewChannel {
                tenant_id: self.tenant,
                platform,
                external_account_id: account.into(),
                name: account.into(),
                credentials: Credentials {
                    access_token: Some(SecretString::new("token")),
                    ..Credentials::default()
                },
                created_at: t0(),
            })
            .await
            .unwrap()
    }

    /// A conversation on `channel` with `handle`, and `n` inbound messages
    /// in it ("<handle> #i", one second apart from `at`), triaged AUTO_REPLY.
    pub async fn conversation(
        &self,
        channel: &Channel,
        handle: &str,
        n: usize,
        at: DateTime<Utc>,
    ) -> Vec<Message> {
        let s = &*self.store;
        let cc = s
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.tenant,
                platform: Platform::WhatsApp,
                external_handle: handle.into(),
                display_name: None,
                created_at: t0(),
            })
            .await
            .unwrap()
            .record;
        let conv = s
            .insert_open_conversation(self.tenant, cc.contact_id, channel.id, t0())
            .await
            .unwrap()
            .record;
        let mut out = Vec::new();
        for i in 0..n {
            let at = at + Duration::seconds(i as i64);
            let m = s
                .insert_message(NewMessage {
                    tenant_id: self.tenant,
                    conversation_id: conv.id,
                    direction: MessageDirection::Inbound,
                    text: format!("{handle} #{i}"),
                    has_media: false,
                    provider_message_id: Some(format!("wamid.{handle}.{i}")),
                    in_reply_to: None,
                    delivery_status: None,
                    created_at: at,
                    stored_at: at,
                })
                .await
                .unwrap()
                .record;
            let m = s
                .set_message_triage(self.tenant, m.id, Triage::AutoReply, 0.9, None)
                .await
                .unwrap();
            out.push(m);
        }
        out
    }

    /// A comment thread on `post`: a top-level comment `t` and `n - 1`
    /// replies under it ("t", "t.1", …), triaged AUTO_REPLY.
    pub async fn thread(&self, post: PostId, t: &str, n: usize, at: DateTime<Utc>) {
        for i in 0..n {
            let at = at + Duration::seconds(i as i64);
            let c = self
                .store
                .insert_comment(NewComment {
                    tenant_id: self.tenant,
                    post_id: post,
                    platform_comment_id: if i == 0 { t.into() } else { format!("{t}.{i}") },
                    parent_platform_comment_id: (i > 0).then(|| t.to_owned()),
                    author_id: None,
                    author_name: None,
                    text: format!("{t} #{i}"),
                    created_at: at,
                    stored_at: at,
                    hidden: false,
                })
                .await
                .unwrap()
                .record;
            self.store
                .set_comment_triage(self.tenant, c.id, Triage::AutoReply, 0.9, None)
                .await
                .unwrap();
        }
    }

    pub async fn post(&self, channel: &Channel) -> ScheduledPost {
        self.store
            .insert_post(NewScheduledPost::one_off(
                self.tenant,
                channel.id,
                Content::text("Launch"),
                t0(),
                t0(),
            ))
            .await
            .unwrap()
            .record
    }
}

/// The texts sent (message replies by recipient, comment replies by thread),
/// in call order.
pub fn sent_by_conversation(w: &World) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for call in w.wa.mock.calls_of(MockOp::SendMessage) {
        out.entry(call.target.unwrap())
            .or_default()
            .push(call.text.unwrap());
    }
    for call in w.fb.mock.calls_of(MockOp::ReplyComment) {
        let target = call.target.unwrap();
        let thread = target.split('.').next().unwrap().to_owned();
        out.entry(thread).or_default().push(call.text.unwrap());
    }
    out
}

pub fn caps(max_in_flight: usize, per_channel: usize) -> ConcurrencyConfig {
    ConcurrencyConfig {
        max_in_flight,
        per_channel,
        ..ConcurrencyConfig::default()
    }
}
