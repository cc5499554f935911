//! Triage: each item decided once, with its rule and reason; generator
//! errors and rules that no longer compile escalate.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::inbound::{
    REASON_ANSWERED_BY_PERSON, REASON_GENERATOR_ERROR, REASON_RULES_INVALID,
};
use nexiom_storage::conformance::TestStore;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};
use serde_json::json;

use super::fixture::{self, t0};
use super::support::{ScriptedGenerator, drain, pipeline, receive, rule};

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

/// An auto rule on "horaires", and AI control ON.
async fn hours_rule_and_ai_on(store: &dyn nexiom_storage::Store, tenant: TenantId) {
    store
        .create_rule(rule(tenant, RuleType::Auto, "hours", &["horaires"], 5))
        .await
        .unwrap();
    store
        .set_ai_control(tenant, true, Some("ops".into()), t0())
        .await
        .unwrap();
}

/// A conversation a person answered (an agent reply sent) before triage
/// reached its messages: they are decided IGNORE for that reason, with what
/// the rules said kept in the snapshot; no draft is asked for and no
/// escalation notifies anyone. A message of another conversation is triaged
/// as usual.
pub async fn items_a_person_answered_are_not_drafted_nor_escalated<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    hours_rule_and_ai_on(&*store, tenant).await;
    store
        .create_rule(rule(
            tenant,
            RuleType::Escalate,
            "refunds",
            &["remboursement"],
            1,
        ))
        .await
        .unwrap();
    let generator = Arc::new(ScriptedGenerator::default());
    let (p, clock) = pipeline(Arc::clone(&store), generator.clone());
    let hours = receive(&p, &s, "a1", "ana", "Vos horaires ?", t0()).await;
    let refund = receive(&p, &s, "a2", "ana", "Un remboursement ?", t0()).await;
    let other = receive(&p, &s, "b1", "bob", "Un remboursement ?", t0()).await;
    assert_eq!(hours.conversation_id, refund.conversation_id);
    // A person answers Ana's conversation before any triage.
    clock.advance(Duration::minutes(1));
    let claim = store
        .claim_agent_reply(NewAgentReply {
            tenant_id: tenant,
            target: AgentReplyTarget::Conversation {
                conversation: hours.conversation_id,
            },
            agent_id: "agent-1".into(),
            text: "Bonjour Ana, de 9h à 18h, et oui.".into(),
            template: None,
            idempotency_key: "answer-ana".into(),
            created_at: clock.now(),
        })
        .await
        .unwrap();
    let nexiom_storage::AgentReplyClaim::Claimed(reply) = claim else {
        panic!("expected a claim");
    };
    store
        .finish_agent_reply(
            tenant,
            reply.id,
            AgentReplyOutcome::Sent { provider_id: None },
            clock.now(),
        )
        .await
        .unwrap();

    let report = p.triage_new_items(100).await.unwrap();
    assert_eq!((report.messages, report.failed), (3, 0));
    assert_eq!(generator.calls.load(Ordering::SeqCst), 0, "no draft");
    for (message, rules) in [(&hours, "auto_reply"), (&refund, "escalate")] {
        let stored = store.get_message(tenant, message.id).await.unwrap();
        let decision = store
            .find_decision(tenant, DecisionSubject::Message(message.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (decision.triage, decision.reason.as_str()),
            (Triage::Ignore, REASON_ANSWERED_BY_PERSON),
            "{}",
            message.text
        );
        assert_eq!(decision.snapshot["rules_triage"], json!(rules));
        assert_eq!(stored.triage, Some(Triage::Ignore));
        assert_eq!(stored.reply.map(|r| r.state), Some(ReplyState::Superseded));
    }
    let decided = store
        .find_decision(tenant, DecisionSubject::Message(other.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decided.triage, Triage::Escalate);
    let notified = store
        .list_notifications(tenant, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        notified[0].key,
        format!("item_escalated:message:{}", other.id)
    );
    // A dry run of the same rules changes nothing: an answered item is
    // decided so whatever the rules.
    let rules = store.list_rules(tenant, false).await.unwrap();
    let dry = p.dry_run_rules(tenant, &rules, 100).await.unwrap();
    assert_eq!((dry.items.len(), dry.changed), (3, 0), "{dry:?}");
    ts.cleanup().await;
}

/// A generator that counts the drafts in flight: each call yields to the
/// runtime a few times before answering, so calls started together overlap.
#[derive(Debug, Default)]
struct Overlapping {
    calls: AtomicUsize,
    texts: std::sync::Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait::async_trait]
impl ReplyGenerator for Overlapping {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.lock().unwrap().push(request.text.to_owned());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Draft {
            text: "Ouvert de 9h à 18h".into(),
            confidence: Some(0.9),
        })
    }
}

/// Triage decides a tenant's items concurrently, never more at once than
/// its setting (so never more generator calls at once), and each item once:
/// 20 auto-reply candidates with a cap of 3, then of 1 (one at a time); the
/// items of one conversation one after another, in order.
pub async fn triage_decides_items_concurrently_up_to_its_cap<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    hours_rule_and_ai_on(&*store, tenant).await;
    for (cap, round) in [(3usize, 0usize), (1, 1)] {
        let generator = Arc::new(Overlapping::default());
        let (p, _) = pipeline(Arc::clone(&store), generator.clone());
        let p = p.with_triage_concurrency(cap);
        let mut ids = Vec::new();
        for i in 0..20 {
            let id = format!("c{round}-{i}");
            let m = receive(
                &p,
                &s,
                &id,
                &format!("s{round}-{i}"),
                "Quels sont vos horaires ?",
                t0() + Duration::minutes(i),
            )
            .await;
            ids.push(m.id);
        }
        let report = p.triage_new_items(100).await.unwrap();
        assert_eq!((report.messages, report.failed), (20, 0), "cap {cap}");
        assert_eq!(generator.calls.load(Ordering::SeqCst), 20, "cap {cap}");
        assert_eq!(generator.most.load(Ordering::SeqCst), cap, "cap {cap}");
        for id in ids {
            let stored = store.get_message(tenant, id).await.unwrap();
            assert_eq!(stored.triage, Some(Triage::AutoReply), "cap {cap}");
        }
    }
    // One conversation's items are decided in order, one after another (a
    // decision makes its item claimable by the reply queue): 4 senders × 5
    // messages, cap 8: at most 4 drafts at once, each sender's in order.
    let generator = Arc::new(Overlapping::default());
    let (p, _) = pipeline(Arc::clone(&store), generator.clone());
    let p = p.with_triage_concurrency(8);
    for i in 0..20i64 {
        let (sender, n) = (i % 4, i / 4);
        receive(
            &p,
            &s,
            &format!("o-{i}"),
            &format!("o-sender-{sender}"),
            &format!("horaires {sender} {n}"),
            t0() + Duration::hours(1) + Duration::minutes(i),
        )
        .await;
    }
    let report = p.triage_new_items(100).await.unwrap();
    assert_eq!((report.messages, report.failed), (20, 0));
    assert_eq!(
        generator.most.load(Ordering::SeqCst),
        4,
        "one per conversation"
    );
    let texts = generator.texts.lock().unwrap().clone();
    for sender in 0..4 {
        let order: Vec<String> = texts
            .iter()
            .filter(|t| t.starts_with(&format!("horaires {sender} ")))
            .cloned()
            .collect();
        let expected: Vec<String> = (0..5).map(|n| format!("horaires {sender} {n}")).collect();
        assert_eq!(order, expected, "sender {sender}'s messages in order");
    }
    ts.cleanup().await;
}

/// Drafts `Bon\0jour` for a text holding "nul-draft", fails with an error
/// holding a NUL for "nul-error".
#[derive(Debug, Default)]
struct NulGenerator {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl ReplyGenerator for NulGenerator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.text.contains("nul-error") {
            return Err(ReplyError::Status {
                status: 502,
                message: "bad\u{0}gateway".into(),
            });
        }
        Ok(Draft {
            text: "Bon\u{0}jour".into(),
            confidence: Some(0.9),
        })
    }
}

/// A generator's draft or error holding a NUL character (which no store
/// takes): the item is decided once all the same, the draft stored (and so
/// sent) without it, the error escalated; the generator is not asked again.
pub async fn a_draft_or_an_error_holding_a_nul_is_decided_once<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    hours_rule_and_ai_on(&*store, tenant).await;
    let generator = Arc::new(NulGenerator::default());
    let (p, _) = pipeline(Arc::clone(&store), generator.clone());
    let draft = receive(&p, &s, "n1", "s1", "Vos horaires ? nul-draft", t0()).await;
    let error = receive(&p, &s, "n2", "s2", "Vos horaires ? nul-error", t0()).await;

    let report = p.triage_new_items(100).await.unwrap();
    assert_eq!(
        (report.messages, report.escalated_on_error),
        (2, 1),
        "{report:?}"
    );
    let decided = |m: &Message| store.find_decision(tenant, DecisionSubject::Message(m.id));
    let d = decided(&draft).await.unwrap().unwrap();
    assert_eq!(d.triage, Triage::AutoReply);
    assert_eq!(d.snapshot["draft"], json!("Bonjour"));
    let e = decided(&error).await.unwrap().unwrap();
    assert_eq!(
        (e.triage, e.reason.as_str()),
        (Triage::Escalate, REASON_GENERATOR_ERROR)
    );
    assert!(
        e.snapshot["error"].as_str().unwrap().contains("badgateway"),
        "{:?}",
        e.snapshot
    );

    let again = p.triage_new_items(100).await.unwrap();
    assert_eq!((again.messages, again.comments), (0, 0));
    assert_eq!(
        generator.calls.load(Ordering::SeqCst),
        2,
        "asked once per item"
    );
    ts.cleanup().await;
}
