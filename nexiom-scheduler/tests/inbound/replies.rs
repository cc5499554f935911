//! Auto-replies: nothing is sent while AI control is OFF (escalations are still
//! recorded), and each reply is sent once even with concurrent workers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Duration;
use nexiom_connectors::{ConnectorRegistry, MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::inbound::AutoReplyReport;
use nexiom_storage::conformance::TestStore;
use serde_json::json;

use super::fixture;
use super::support::{ScriptedGenerator, drain, pipeline, receive, rule};

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
