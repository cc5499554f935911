//! The test functions; each takes a factory of fresh stores.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{
    ConnectorRegistry, META_SIGNATURE_HEADER, MOCK_WEBHOOK_SECRET, MetaWebhookVerifier,
    MockConnector, MockOp, NormalizedEvent, WebhookHeaders,
};
use nexiom_core::*;
use nexiom_scheduler::inbound::{
    AutoReplyReport, InboundError, InboundPipeline, IngestReport, KNOWN_SETTINGS,
    REASON_GENERATOR_ERROR, REASON_RULES_INVALID, openai_config_from_settings,
};
use nexiom_storage::Store;
use nexiom_storage::conformance::TestStore;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest, TemplateGenerator};
use serde_json::json;

use super::fixture::{self, Setup, t0};

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

fn pipeline(
    store: Arc<dyn Store>,
    generator: Arc<dyn ReplyGenerator>,
) -> (InboundPipeline, ManualClock) {
    let clock = ManualClock::new(t0() + Duration::hours(2));
    (
        InboundPipeline::new(store, Arc::new(clock.clone()), generator),
        clock,
    )
}

fn rule(
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
async fn receive(
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

async fn drain(p: &InboundPipeline, limit: u32) -> RoutingReport {
    let mut total = RoutingReport::default();
    loop {
        let r = p.route_unrouted_events(None, limit).await.unwrap();
        if r.processed == 0 {
            return total;
        }
        total.add(r);
    }
}

// ----------------------------------------------------------------- routing

pub async fn replaying_the_fixture_shuffled_from_four_tasks_equals_one_clean_pass<F, Fut>(
    factory: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(clean) = factory().await else { return };
    let Some(replay) = factory().await else {
        return;
    };
    let generator: Arc<dyn ReplyGenerator> = Arc::new(TemplateGenerator::new());

    // One clean pass: every event once, in order, then routed.
    let clean_setup = fixture::setup(&*clean.store()).await;
    let clean_events = fixture::events(&clean_setup);
    assert_eq!(clean_events.len(), 1000);
    for e in &clean_events {
        assert!(clean.store().insert_event(e.clone()).await.unwrap().created);
    }
    let (p, _) = pipeline(clean.store(), Arc::clone(&generator));
    let report = drain(&p, 200).await;
    assert_eq!(report.processed, 1000);
    assert_eq!(report.messages_created, 800);
    // 60 on the known post, 10 on a post made elsewhere (recorded once).
    assert_eq!(report.comments_created, 70);
    assert_eq!(report.external_posts_created, 1);

    // Every webhook three times, shuffled, from four concurrent tasks that
    // ingest and route as they go.
    let replay_setup = fixture::setup(&*replay.store()).await;
    let replay_events = fixture::events(&replay_setup);
    let mut deliveries: Vec<NewWebhookEvent> =
        (0..3).flat_map(|_| replay_events.iter().cloned()).collect();
    fixture::shuffle(&mut deliveries, 0x5eed);
    let (p, _) = pipeline(replay.store(), Arc::clone(&generator));
    let per_task = deliveries.len().div_ceil(4);
    let mut tasks = Vec::new();
    for chunk in deliveries.chunks(per_task) {
        let chunk = chunk.to_vec();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut report = RoutingReport::default();
            for batch in chunk.chunks(25) {
                for e in batch {
                    p.store().insert_event(e.clone()).await.unwrap();
                }
                report.add(p.route_unrouted_events(None, 40).await.unwrap());
            }
            report
        }));
    }
    let mut replay_report = RoutingReport::default();
    for t in tasks {
        replay_report.add(t.await.unwrap());
    }
    replay_report.add(drain(&p, 200).await);
    assert_eq!(
        replay_report, report,
        "each event routed once, each row created once"
    );

    let expected = fixture::routed_state(&*clean.store(), &clean_setup, &clean_events).await;
    let got = fixture::routed_state(&*replay.store(), &replay_setup, &replay_events).await;
    assert_eq!(got, expected);
    // And the clean pass is what the design says.
    assert_eq!(expected.conversations.len(), 50 + 10 + 1);
    let inbound: usize = expected
        .conversations
        .values()
        .map(|c| {
            c.messages
                .iter()
                .filter(|m| m.1 == MessageDirection::Inbound)
                .count()
        })
        .sum();
    assert_eq!(inbound, 800);
    for conv in expected.conversations.values() {
        // The latest message time, whatever order the messages arrived in.
        assert_eq!(
            conv.last_message_at,
            conv.messages.iter().map(|m| m.4).max()
        );
        for m in conv
            .messages
            .iter()
            .filter(|m| m.1 == MessageDirection::Outbound)
        {
            assert_eq!(m.5, Some(DeliveryStatus::Read), "the highest status wins");
        }
    }
    assert_eq!(expected.comments.len(), 70);
    assert!(expected.events.values().all(|(routed, _)| *routed));
    clean.cleanup().await;
    replay.cleanup().await;
}

// ----------------------------------------------------------------- triage

pub async fn triage_decides_each_item_once_and_escalates_generator_errors<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    store
        .create_rule(rule(
            tenant,
            RuleType::Escalate,
            "complaints",
            &["remboursement"],
            1,
        ))
        .await
        .unwrap();
    store
        .create_rule(rule(tenant, RuleType::Deny, "spam", &["casino"], 1))
        .await
        .unwrap();
    store
        .create_rule(NewAiRule {
            confidence_min: Some(0.5),
            ..rule(tenant, RuleType::Auto, "hours", &["horaires"], 5)
        })
        .await
        .unwrap();
    store
        .add_ignore_example(tenant, "merci beaucoup pour tout", t0())
        .await
        .unwrap();
    store
        .set_ai_control(tenant, true, Some("ops".into()), t0())
        .await
        .unwrap();
    let generator = Arc::new(ScriptedGenerator::default());
    let (p, _) = pipeline(Arc::clone(&store), generator.clone());

    let texts = [
        (
            "m1",
            "Je veux un REMBOURSEMENT",
            Triage::Escalate,
            "escalate_rule",
        ),
        ("m2", "Gagnez au casino", Triage::Ignore, "deny_rule"),
        (
            "m3",
            "Merci beaucoup pour tout !",
            Triage::Ignore,
            "similar_to_ignore_example",
        ),
        ("m4", "Vos horaires ?", Triage::AutoReply, "auto_rule"),
        ("m5", "horaires, vague", Triage::Escalate, "low_confidence"),
        (
            "m6",
            "horaires boom",
            Triage::Escalate,
            REASON_GENERATOR_ERROR,
        ),
        ("m7", "Bonjour", Triage::AutoReply, "default"),
        ("m8", "   ", Triage::Ignore, "empty"),
    ];
    let mut messages = Vec::new();
    for (i, (id, text, _, _)) in texts.iter().enumerate() {
        messages.push(
            receive(
                &p,
                &s,
                id,
                &format!("s{i}"),
                text,
                t0() + Duration::minutes(i as i64),
            )
            .await,
        );
    }
    // A comment, routed from its event.
    store
        .insert_event(NewWebhookEvent {
            tenant_id: tenant,
            channel_id: s.facebook.id,
            platform: Platform::Facebook,
            event_id: "fb-c-1".into(),
            kind: EventKind::Comment,
            sender_id: Some("fan".into()),
            sender_name: Some("Fan".into()),
            text: Some("remboursement svp".into()),
            has_media: false,
            delivery_status: None,
            target_id: Some("fb-post-1".into()),
            parent_id: None,
            occurred_at: t0(),
            payload: json!({}),
            received_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(drain(&p, 10).await.comments_created, 1);

    let report = p.triage_new_items(100).await.unwrap();
    assert_eq!(report.messages, 8);
    assert_eq!(report.comments, 1);
    assert_eq!(report.escalated_on_error, 1);
    // Drafts only for AUTO_REPLY candidates (m4, m5, m6, m7).
    assert_eq!(generator.calls.load(Ordering::SeqCst), 4);

    for (message, (id, _, triage, reason)) in messages.iter().zip(texts) {
        let stored = store.get_message(tenant, message.id).await.unwrap();
        let decision = store
            .find_decision(tenant, DecisionSubject::Message(message.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (id, decision.triage, decision.reason.as_str()),
            (id, triage, reason)
        );
        assert_eq!(stored.triage, Some(triage), "{id}");
        assert_eq!(stored.confidence, Some(decision.confidence));
        assert_eq!(stored.ai_decision_id, Some(decision.id));
        assert_eq!(decision.snapshot["text"], json!(message.text));
        if triage == Triage::AutoReply {
            assert!(
                decision.snapshot["draft"]
                    .as_str()
                    .unwrap()
                    .starts_with("Réponse à")
            );
        }
        if reason == REASON_GENERATOR_ERROR {
            assert!(decision.snapshot["error"].as_str().unwrap().contains("503"));
        }
    }
    let m4 = store
        .find_decision(tenant, DecisionSubject::Message(messages[3].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m4.confidence, 0.9);
    assert!(m4.rule_id.is_some());

    // Inbox filters.
    let escalated = store
        .list_decisions(tenant, Some(Triage::Escalate), 100)
        .await
        .unwrap();
    assert_eq!(escalated.len(), 4, "m1, m5, m6 and the comment");
    assert_eq!(
        store
            .list_decisions(tenant, Some(Triage::AutoReply), 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .list_decisions(tenant, Some(Triage::Ignore), 100)
            .await
            .unwrap()
            .len(),
        3
    );
    let comment = store
        .list_comments_by_triage(tenant, Triage::Escalate, t0() - Duration::days(1), 10)
        .await
        .unwrap();
    assert_eq!(comment.len(), 1);

    // A second run has nothing to do and calls nothing.
    let again = p.triage_new_items(100).await.unwrap();
    assert_eq!((again.messages, again.comments), (0, 0));
    assert_eq!(generator.calls.load(Ordering::SeqCst), 4);

    // Stored rules that no longer compile escalate every item, with the error.
    store
        .create_rule(NewAiRule {
            patterns: vec!["(unclosed".into()],
            ..rule(tenant, RuleType::Escalate, "broken", &[], 0)
        })
        .await
        .unwrap();
    let m9 = receive(&p, &s, "m9", "s9", "Vos horaires ?", t0()).await;
    let report = p.triage_new_items(100).await.unwrap();
    assert_eq!((report.messages, report.escalated_on_error), (1, 1));
    let d = store
        .find_decision(tenant, DecisionSubject::Message(m9.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.triage, d.reason.as_str()),
        (Triage::Escalate, REASON_RULES_INVALID)
    );
    assert!(d.snapshot["error"].as_str().unwrap().contains("broken"));
    ts.cleanup().await;
}

pub async fn ai_control_off_sends_nothing_and_escalations_are_recorded<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    store
        .create_rule(rule(tenant, RuleType::Escalate, "urgent", &["urgent"], 1))
        .await
        .unwrap();
    store
        .create_rule(rule(tenant, RuleType::Auto, "hours", &["horaires"], 2))
        .await
        .unwrap();
    let generator = Arc::new(ScriptedGenerator::default());
    let (p, clock) = pipeline(Arc::clone(&store), generator.clone());
    let mock = MockConnector::new(Platform::WhatsApp).with_clock(Arc::new(clock.clone()));
    let p = p.with_connectors(ConnectorRegistry::new().with(Arc::new(mock.clone())));
    let event = |i: i64| {
        let text = if i % 10 == 0 {
            "C'est URGENT"
        } else {
            "Vos horaires ?"
        };
        NewWebhookEvent {
            tenant_id: tenant,
            channel_id: s.whatsapp.id,
            platform: Platform::WhatsApp,
            event_id: format!("wamid.off.{i}"),
            kind: EventKind::Message,
            sender_id: Some(format!("sender-{}", i % 17)),
            sender_name: None,
            text: Some(text.into()),
            has_media: false,
            delivery_status: None,
            target_id: None,
            parent_id: None,
            occurred_at: clock.now() + Duration::seconds(i),
            payload: json!({}),
            received_at: clock.now() + Duration::seconds(i),
        }
    };
    // The first 50 are triaged while AI control is ON: 45 become AUTO_REPLY
    // (with drafts) and 5 escalations.
    store
        .set_ai_control(tenant, true, None, clock.now())
        .await
        .unwrap();
    for i in 0..50 {
        store.insert_event(event(i)).await.unwrap();
    }
    assert_eq!(drain(&p, 64).await.messages_created, 50);
    assert_eq!(p.triage_new_items(1000).await.unwrap().messages, 50);
    assert_eq!(generator.calls.load(Ordering::SeqCst), 45);
    // Then AI control goes OFF, and 50 more arrive.
    store
        .set_ai_control(tenant, false, Some("ops".into()), clock.now())
        .await
        .unwrap();
    for i in 50..100 {
        store.insert_event(event(i)).await.unwrap();
    }
    assert_eq!(drain(&p, 64).await.messages_created, 50);
    assert_eq!(p.triage_new_items(1000).await.unwrap().messages, 50);
    assert_eq!(
        generator.calls.load(Ordering::SeqCst),
        45,
        "no drafts while AI control is OFF"
    );

    let report = p
        .auto_reply_recent_inbound(clock.now() - Duration::hours(1), 1000)
        .await
        .unwrap();
    // The reply queue does not even claim the items of a tenant whose AI
    // control is OFF (before the queue, each was read and skipped at send
    // time): they stay pending, no attempt counted.
    assert_eq!(report, AutoReplyReport::default());
    let waiting = store
        .list_messages_by_triage(
            tenant,
            Triage::AutoReply,
            clock.now() - Duration::hours(1),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(waiting.len(), 45);
    assert!(
        waiting
            .iter()
            .all(|m| m.reply == Some(ReplyStatus::pending()))
    );
    assert!(mock.calls_of(MockOp::SendMessage).is_empty(), "zero sends");
    assert!(mock.calls().is_empty());
    let outbound = store
        .list_messages_since(
            tenant,
            MessageDirection::Outbound,
            clock.now() - Duration::hours(1),
            1000,
        )
        .await
        .unwrap();
    assert!(outbound.is_empty(), "nothing claimed either");

    let escalated = store
        .list_decisions(tenant, Some(Triage::Escalate), 1000)
        .await
        .unwrap();
    assert_eq!(escalated.len(), 10, "escalations are still recorded");
    assert!(escalated.iter().all(|d| d.reason == "escalate_rule"));
    let ignored = store
        .list_decisions(tenant, Some(Triage::Ignore), 1000)
        .await
        .unwrap();
    assert_eq!(ignored.len(), 45);
    assert!(ignored.iter().all(|d| d.reason == "ai_control_off"));

    // Back ON: the 45 waiting items are answered, each once.
    store
        .set_ai_control(tenant, true, Some("ops".into()), clock.now())
        .await
        .unwrap();
    let report = p
        .auto_reply_recent_inbound(clock.now() - Duration::hours(1), 1000)
        .await
        .unwrap();
    assert_eq!(report.sent, 45);
    assert_eq!(mock.calls_of(MockOp::SendMessage).len(), 45);
    ts.cleanup().await;
}

pub async fn auto_replies_are_sent_once_each_even_concurrently<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    store
        .create_rule(rule(tenant, RuleType::Escalate, "urgent", &["urgent"], 1))
        .await
        .unwrap();
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(ScriptedGenerator::default()));
    let wa = MockConnector::new(Platform::WhatsApp).with_clock(Arc::new(clock.clone()));
    let fb = MockConnector::new(Platform::Facebook).with_clock(Arc::new(clock.clone()));
    let p = p.with_connectors(
        ConnectorRegistry::new()
            .with(Arc::new(wa.clone()))
            .with(Arc::new(fb.clone())),
    );
    store
        .set_ai_control(tenant, true, None, clock.now())
        .await
        .unwrap();
    let since = clock.now() - Duration::hours(1);
    let mut inbound = Vec::new();
    for i in 0..20 {
        let text = if i == 7 { "urgent !" } else { "Bonjour" };
        inbound.push(
            receive(
                &p,
                &s,
                &format!("wamid.ar.{i}"),
                &format!("c{}", i % 5),
                text,
                clock.now(),
            )
            .await,
        );
    }
    store
        .insert_event(NewWebhookEvent {
            tenant_id: tenant,
            channel_id: s.facebook.id,
            platform: Platform::Facebook,
            event_id: "fb-c-9".into(),
            kind: EventKind::Comment,
            sender_id: Some("fan".into()),
            sender_name: Some("Fan".into()),
            text: Some("Bravo".into()),
            has_media: false,
            delivery_status: None,
            target_id: Some("fb-post-1".into()),
            parent_id: None,
            occurred_at: clock.now(),
            payload: json!({}),
            received_at: clock.now(),
        })
        .await
        .unwrap();
    drain(&p, 10).await;
    let triaged = p.triage_new_items(100).await.unwrap();
    assert_eq!((triaged.messages, triaged.comments), (20, 1));

    // The platform refuses the first send: stored as failed, never re-sent,
    // the item given up and escalated.
    wa.fail_permanently_next(MockOp::SendMessage, "recipient blocked");
    // Four workers at once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            p.auto_reply_recent_inbound(since, 100).await.unwrap()
        }));
    }
    let mut total = AutoReplyReport::default();
    for t in tasks {
        let r = t.await.unwrap();
        total.sent += r.sent;
        total.failed += r.failed;
        total.given_up += r.given_up;
        total.already_replied += r.already_replied;
        total.skipped_ai_off += r.skipped_ai_off;
    }
    assert_eq!(
        total.sent + total.failed,
        20,
        "19 messages and 1 comment, each once"
    );
    assert_eq!(total.failed, 1);
    assert_eq!(total.given_up, 1);
    // The workers claim disjoint items from the reply queue: none of them
    // meets an item another answered (before the queue, each read all 20).
    assert_eq!(total.already_replied, 0);
    assert_eq!(
        wa.calls_of(MockOp::SendMessage).len(),
        19,
        "one call per message"
    );
    let replies = fb.calls_of(MockOp::ReplyComment);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].target.as_deref(), Some("fb-c-9"));
    assert_eq!(replies[0].text.as_deref(), Some("Réponse à Fan"));
    // Recipients are the contacts' handles; one reply stored per message.
    let sends = wa.calls_of(MockOp::SendMessage);
    assert!(
        sends
            .iter()
            .all(|c| c.target.as_deref().is_some_and(|t| t.starts_with('c')))
    );
    let outbound = store
        .list_messages_since(tenant, MessageDirection::Outbound, since, 1000)
        .await
        .unwrap();
    assert_eq!(outbound.len(), 19);
    let sent: Vec<_> = outbound
        .iter()
        .filter(|m| m.delivery_status == Some(DeliveryStatus::Sent))
        .collect();
    assert_eq!(sent.len(), 18);
    assert!(sent.iter().all(|m| {
        m.provider_message_id
            .as_deref()
            .is_some_and(|id| id.starts_with("mock-msg-"))
    }));
    let failed: Vec<_> = outbound
        .iter()
        .filter(|m| m.delivery_status == Some(DeliveryStatus::Failed))
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(outbound.iter().all(|m| m.in_reply_to.is_some()));
    assert!(
        !outbound
            .iter()
            .any(|m| m.in_reply_to == Some(inbound[7].id)),
        "the escalated one is not answered"
    );
    let comment = store
        .list_comments_by_triage(tenant, Triage::AutoReply, since, 10)
        .await
        .unwrap();
    let reply = store
        .find_comment_reply(tenant, comment[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, DeliveryStatus::Sent);
    assert!(reply.platform_comment_id.is_some());

    // The refused one is given up and escalated, with the platform's error.
    let refused = store
        .get_message(tenant, failed[0].in_reply_to.unwrap())
        .await
        .unwrap();
    assert_eq!(refused.triage, Some(Triage::Escalate));
    let state = refused.reply.unwrap();
    assert_eq!(state.state, ReplyState::GivenUp);
    assert_eq!(state.attempts, 1);
    assert!(state.error.unwrap().contains("recipient blocked"));

    // Later runs find nothing to claim (the failed one included).
    let again = p.auto_reply_recent_inbound(since, 100).await.unwrap();
    assert_eq!(again, AutoReplyReport::default());
    assert_eq!(wa.calls_of(MockOp::SendMessage).len(), 19);
    ts.cleanup().await;
}

// ----------------------------------------------------------------- dry run

pub async fn dry_run_shows_changes_and_writes_nothing<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    let complaints = store
        .create_rule(rule(
            tenant,
            RuleType::Escalate,
            "complaints",
            &["remboursement"],
            1,
        ))
        .await
        .unwrap();
    store
        .set_ai_control(tenant, true, None, t0())
        .await
        .unwrap();
    let (p, _) = pipeline(Arc::clone(&store), Arc::new(ScriptedGenerator::default()));
    let texts = [
        "remboursement svp",
        "colis en retard",
        "super promo ici",
        "bonjour",
    ];
    for (i, text) in texts.iter().enumerate() {
        receive(
            &p,
            &s,
            &format!("d{i}"),
            "client",
            text,
            t0() + Duration::minutes(i as i64),
        )
        .await;
    }
    p.triage_new_items(100).await.unwrap();
    let decisions_before = store.list_decisions(tenant, None, 100).await.unwrap();
    let rules_before = store.list_rules(tenant, false).await.unwrap();

    let mut candidate = rules_before.clone();
    candidate[0].keywords.push("retard".into());
    let spam = AiRule {
        id: RuleId::generate(),
        tenant_id: tenant,
        rule_type: RuleType::Deny,
        name: "spam".into(),
        keywords: vec!["promo".into()],
        patterns: vec![],
        confidence_min: None,
        enabled: true,
        priority: 0,
        created_at: t0(),
        updated_at: t0(),
    };
    candidate.push(spam);
    let report = p.dry_run_rules(tenant, &candidate, 100).await.unwrap();
    assert_eq!(report.items.len(), 4);
    assert_eq!(report.changed, 2);
    let by_text = |t: &str| report.items.iter().find(|i| i.text == t).unwrap();
    let late = by_text("colis en retard");
    assert!(late.changed);
    assert_eq!(
        (late.before.triage, late.before.reason.as_str()),
        (Triage::AutoReply, "default")
    );
    assert_eq!(late.after.triage, Triage::Escalate);
    assert_eq!(late.after.rule.as_deref(), Some("complaints"));
    let promo = by_text("super promo ici");
    assert_eq!(
        (promo.after.triage, promo.after.reason.as_str()),
        (Triage::Ignore, "deny_rule")
    );
    assert_eq!(promo.after.rule.as_deref(), Some("spam"));
    let refund = by_text("remboursement svp");
    assert!(!refund.changed);
    assert_eq!(refund.before.rule.as_deref(), Some("complaints"));
    assert_eq!(report.changes().count(), 2);

    // Nothing was written.
    assert_eq!(
        store.list_decisions(tenant, None, 100).await.unwrap(),
        decisions_before
    );
    assert_eq!(store.list_rules(tenant, false).await.unwrap(), rules_before);
    let _ = complaints;

    // A candidate that does not compile names its rule.
    let mut broken = candidate.clone();
    broken[0].patterns.push("(oops".into());
    match p.dry_run_rules(tenant, &broken, 100).await {
        Err(InboundError::Rules(e)) => assert!(e.to_string().contains("complaints"), "{e}"),
        other => panic!("expected a rules error, got {other:?}"),
    }
    ts.cleanup().await;
}

// ----------------------------------------------------------------- settings

pub async fn settings_overview_reports_presence_never_values<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let (p, _) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    store
        .set_setting(
            "OPENROUTER_API_KEY",
            SecretString::new("sk-or-secret-value"),
            t0(),
        )
        .await
        .unwrap();
    store
        .set_setting("NEXIOM_DEFAULT_CHAT_MODEL", SecretString::new("  "), t0())
        .await
        .unwrap();
    let seed = p.settings_overview().await.unwrap();
    assert_eq!(seed.0.len(), KNOWN_SETTINGS.len());
    assert_eq!(seed.get("OPENROUTER_API_KEY"), Some(true));
    assert_eq!(seed.get("NEXIOM_DEFAULT_CHAT_MODEL"), Some(false), "blank");
    assert_eq!(seed.get("NOT_A_SETTING"), None);
    let json = serde_json::to_value(&seed).unwrap();
    assert_eq!(json["OPENROUTER_API_KEY"], true);
    assert!(!json.to_string().contains("sk-or-secret-value"));
    let overview = p.settings_presence().await.unwrap();
    assert_eq!(
        overview.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
        KNOWN_SETTINGS.to_vec()
    );
    for key in [
        "WHATSAPP_VERIFY_TOKEN",
        "META_APP_SECRET",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_API_BASE_URL",
        "LINKEDIN_CLIENT_SECRET",
    ] {
        assert!(KNOWN_SETTINGS.contains(&key), "{key}");
    }
    let get = |k: &str| overview.iter().find(|s| s.key == k).unwrap();
    assert!(get("OPENROUTER_API_KEY").in_store);
    assert!(
        !get("NEXIOM_DEFAULT_CHAT_MODEL").in_store,
        "blank is not present"
    );
    assert!(!get("META_APP_SECRET").in_store);
    let shown = format!("{overview:?} {}", serde_json::to_string(&overview).unwrap());
    assert!(!shown.contains("sk-or-secret-value"));

    assert!(
        openai_config_from_settings(&*store)
            .await
            .unwrap()
            .is_none()
    );
    store
        .set_setting(
            "NEXIOM_DEFAULT_CHAT_MODEL",
            SecretString::new("mistral/small"),
            t0(),
        )
        .await
        .unwrap();
    let config = openai_config_from_settings(&*store).await.unwrap().unwrap();
    assert_eq!(config.model, "mistral/small");
    assert_eq!(config.api_key.expose(), "sk-or-secret-value");
    assert_eq!(config.base_url, nexiom_triage::DEFAULT_OPENAI_BASE_URL);
    assert!(!format!("{config:?}").contains("sk-or-secret-value"));
    ts.cleanup().await;
}

// ----------------------------------------------------------------- ingestion

pub async fn webhooks_are_verified_then_stored_once<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    let mock = MockConnector::new(Platform::WhatsApp);
    let event = |id: &str, account: &str| NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: Some(account.into()),
        event_id: id.into(),
        kind: EventKind::Message,
        sender_id: Some("33611111111".into()),
        sender_name: Some("Léa".into()),
        text: Some("Bonjour".into()),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: None,
        post_id: None,
        parent_id: None,
        occurred_at: clock.now(),
        payload: json!({"id": id}),
    };
    let body = serde_json::to_vec(&vec![
        event("wamid.w1", "pn-fixture"),
        event("wamid.w2", "pn-fixture"),
        event("wamid.w3", "pn-nobody"),
    ])
    .unwrap();
    let signed = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(MOCK_WEBHOOK_SECRET), &body),
    );

    // A wrong signature: refused, nothing stored.
    let forged = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new("not-the-secret"), &body),
    );
    assert!(matches!(
        p.ingest_webhook(&mock, &forged, &body).await,
        Err(InboundError::Webhook(_))
    ));
    assert!(
        store
            .list_unrouted_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let first = p.ingest_webhook(&mock, &signed, &body).await.unwrap();
    assert_eq!(
        first,
        IngestReport {
            events: 3,
            stored: 2,
            unknown_account: 1,
            dead_lettered: 0,
        }
    );
    // A redelivery stores nothing new.
    let again = p.ingest_webhook(&mock, &signed, &body).await.unwrap();
    assert_eq!(again.stored, 0);
    // The event for the unknown account is kept once, as a dead letter
    // without a tenant.
    let letters = store.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].tenant_id, None);
    assert!(letters[0].reason.contains("no channel is connected"));
    let unrouted = store.list_unrouted_events(None, 10).await.unwrap();
    assert_eq!(unrouted.len(), 2);
    assert!(
        unrouted
            .iter()
            .all(|e| e.channel_id == s.whatsapp.id && e.received_at == clock.now())
    );
    assert_eq!(drain(&p, 10).await.messages_created, 2);
    ts.cleanup().await;
}

fn whatsapp_message(id: &str, timestamp: Option<&str>, text: &str) -> serde_json::Value {
    let mut m = json!({"from": "33611111111", "id": id, "type": "text", "text": {"body": text}});
    if let Some(t) = timestamp {
        m["timestamp"] = json!(t);
    }
    m
}

fn whatsapp_body(messages: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA",
        "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "pn-fixture"},
        "messages": messages}}]}]}),
    )
    .unwrap()
}

/// A signed body good / bad / good, for each kind of bad event (one the store
/// refuses: a NUL in the text, a 256-byte id, a control character in the id;
/// one the connector cannot read: no timestamp, a negative timestamp): both
/// good events are stored, the bad one is dead-lettered with its reason and
/// tenant, the answer is `Ok` (200), and a redelivery changes nothing.
pub async fn one_bad_event_never_loses_its_neighbours<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    let secret = "ingest-app-secret";
    let wa = nexiom_connectors::WhatsAppConnector::builder()
        .with_app_secret(secret)
        .build()
        .unwrap();
    let now = clock.now().timestamp().to_string();
    let long_id = "w".repeat(256);
    let bad_events = [
        (
            "NUL in text",
            whatsapp_message("wamid.bad-nul", Some(&now), "a\u{0}b"),
            "text",
        ),
        (
            "256-byte id",
            whatsapp_message(&long_id, Some(&now), "x"),
            "event_id",
        ),
        (
            "control character in id",
            whatsapp_message("wamid.bad\u{7}bell", Some(&now), "x"),
            "event_id",
        ),
        (
            "missing timestamp",
            whatsapp_message("wamid.bad-notime", None, "x"),
            "without a valid timestamp",
        ),
        (
            "negative timestamp",
            whatsapp_message("wamid.bad-neg", Some("-1"), "x"),
            "implausible",
        ),
    ];
    for (case, (name, bad, reason)) in bad_events.into_iter().enumerate() {
        let good =
            |n: u32| whatsapp_message(&format!("wamid.good-{case}-{n}"), Some(&now), "hello");
        let body = whatsapp_body(vec![good(1), bad, good(2)]);
        let headers = WebhookHeaders::new().with(
            META_SIGNATURE_HEADER,
            MetaWebhookVerifier::sign(&SecretString::new(secret), &body),
        );
        let letters_before = store.list_dead_letters(None, 100).await.unwrap().len();
        let unrouted_before = store.list_unrouted_events(None, 100).await.unwrap().len();
        let first = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
        assert_eq!(
            first,
            IngestReport {
                events: 3,
                stored: 2,
                unknown_account: 0,
                dead_lettered: 1
            },
            "{name}"
        );
        for n in [1, 2] {
            let id = format!("wamid.good-{case}-{n}");
            assert!(
                store
                    .find_event(s.tenant.id, &Platform::WhatsApp, &id)
                    .await
                    .unwrap()
                    .is_some(),
                "{name}: {id} stored"
            );
        }
        let letters = store.list_dead_letters(None, 100).await.unwrap();
        assert_eq!(letters.len(), letters_before + 1, "{name}");
        let letter = &letters[0];
        assert!(letter.reason.contains(reason), "{name}: {}", letter.reason);
        assert_eq!(letter.tenant_id, Some(s.tenant.id), "{name}");
        assert_eq!(letter.channel_id, Some(s.whatsapp.id), "{name}");
        assert_eq!(letter.platform, Platform::WhatsApp);
        assert_eq!(letter.received_at, clock.now());

        // Redelivered: the same answer, no new event, no new dead letter.
        let again = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
        assert_eq!(again.stored, 0, "{name}");
        assert_eq!(again.dead_lettered, 1, "{name}");
        assert_eq!(
            store.list_dead_letters(None, 100).await.unwrap(),
            letters,
            "{name}"
        );
        assert_eq!(
            store.list_unrouted_events(None, 100).await.unwrap().len(),
            unrouted_before + 2,
            "{name}"
        );
    }

    // A verified body that is not a payload at all: dead-lettered whole, once.
    let junk = br#"{"object":"nothing"}"#;
    let headers = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(secret), junk),
    );
    for _ in 0..2 {
        let report = p.ingest_webhook(&wa, &headers, junk).await.unwrap();
        assert_eq!(report.dead_lettered, 1);
    }
    let letters = store.list_dead_letters(None, 100).await.unwrap();
    assert_eq!(letters.len(), 6);
    assert_eq!(letters[0].excerpt, r#"{"object":"nothing"}"#);
    assert_eq!(letters[0].tenant_id, None);
    // Not signed: refused, nothing dead-lettered.
    assert!(matches!(
        p.ingest_webhook(&wa, &WebhookHeaders::new(), junk).await,
        Err(InboundError::Webhook(_))
    ));
    assert_eq!(store.list_dead_letters(None, 100).await.unwrap().len(), 6);
    ts.cleanup().await;
}
