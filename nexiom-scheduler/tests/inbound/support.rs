//! Helpers the test functions share: a scripted reply generator, the pipeline
//! on a manual clock, rules, and receiving and routing messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;
use nexiom_scheduler::inbound::InboundPipeline;
use nexiom_storage::Store;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};
use serde_json::json;

use super::fixture::{Setup, t0};

/// Drafts "Réponse" with a confidence read from the text: `boom` fails,
/// `vague` gives 0.2, anything else 0.9. Counts its calls.
#[derive(Debug, Default)]
pub struct ScriptedGenerator {
    pub calls: AtomicUsize,
}

#[async_trait]
impl ReplyGenerator for ScriptedGenerator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.text.contains("boom") {
            return Err(ReplyError::Status {
                status: 503,
                message: "upstream overloaded".into(),
            });
        }
        let confidence = if request.text.contains("vague") {
            0.2
        } else {
            0.9
        };
        Ok(Draft {
            text: format!("Réponse à {}", request.contact_name.unwrap_or("vous")),
            confidence: Some(confidence),
        })
    }
}

pub fn pipeline(
    store: Arc<dyn Store>,
    generator: Arc<dyn ReplyGenerator>,
) -> (InboundPipeline, ManualClock) {
    let clock = ManualClock::new(t0() + Duration::hours(2));
    (
        InboundPipeline::new(store, Arc::new(clock.clone()), generator),
        clock,
    )
}

pub fn rule(
    tenant: TenantId,
    rule_type: RuleType,
    name: &str,
    keywords: &[&str],
    priority: i32,
) -> NewAiRule {
    NewAiRule {
        tenant_id: tenant,
        rule_type,
        name: name.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        patterns: vec![],
        confidence_min: None,
        enabled: true,
        priority,
        at: t0(),
    }
}

/// Stores a WhatsApp message event from `sender` and routes it.
pub async fn receive(
    p: &InboundPipeline,
    s: &Setup,
    id: &str,
    sender: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Message {
    let store = p.store();
    let event = store
        .insert_event(NewWebhookEvent {
            tenant_id: s.tenant.id,
            channel_id: s.whatsapp.id,
            platform: Platform::WhatsApp,
            event_id: id.into(),
            kind: EventKind::Message,
            sender_id: Some(sender.into()),
            sender_name: Some(format!("{sender} name")),
            text: Some(text.into()),
            has_media: false,
            delivery_status: None,
            target_id: None,
            parent_id: None,
            occurred_at: at,
            payload: json!({}),
            received_at: at,
        })
        .await
        .unwrap()
        .record;
    p.route_event(s.tenant.id, event.id).await.unwrap();
    store
        .find_message_by_provider_id(s.tenant.id, s.whatsapp.id, id)
        .await
        .unwrap()
        .unwrap()
}

pub async fn drain(p: &InboundPipeline, limit: u32) -> RoutingReport {
    let mut total = RoutingReport::default();
    loop {
        let r = p.route_unrouted_events(None, limit).await.unwrap();
        if r.processed == 0 {
            return total;
        }
        total.add(r);
    }
}
