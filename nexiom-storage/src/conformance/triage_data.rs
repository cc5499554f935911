//! Conformance tests of triage data: the triage queues, sent records and
//! comment replies; rules, ignore-examples, decisions and the AI-control switch.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexiom_core::*;
use serde_json::json;

use super::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, assert_unknown, conversation, message, mins,
    published_post, t0, world,
};
use crate::{StorageError, Store};

pub async fn triage_queues_sent_records_and_comment_replies(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    let (_, conv) = conversation(s, &w, "A").await;
    let mut inbound = Vec::new();
    for i in 0..3 {
        inbound.push(
            s.insert_message(message(
                w.tenant.id,
                conv.id,
                MessageDirection::Inbound,
                Some(&format!("in-{i}")),
                t0() + mins(i),
            ))
            .await
            .unwrap()
            .record,
        );
    }
    let out = s
        .insert_message(NewMessage {
            in_reply_to: Some(inbound[0].id),
            ..message(w.tenant.id, conv.id, MessageDirection::Outbound, None, t0())
        })
        .await
        .unwrap()
        .record;
    let untriaged = s.list_untriaged_messages(w.tenant.id, 10).await.unwrap();
    assert_eq!(
        untriaged.iter().map(|m| m.id).collect::<Vec<_>>(),
        inbound.iter().map(|m| m.id).collect::<Vec<_>>(),
        "inbound only, oldest first"
    );
    assert_eq!(
        s.list_untriaged_messages(w.tenant.id, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.list_untriaged_messages(other.tenant.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.set_message_triage(w.tenant.id, inbound[1].id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    s.set_message_triage(w.tenant.id, inbound[2].id, Triage::Ignore, 1.0, None)
        .await
        .unwrap();
    assert_eq!(
        s.list_untriaged_messages(w.tenant.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let auto = s
        .list_messages_by_triage(w.tenant.id, Triage::AutoReply, t0(), 10)
        .await
        .unwrap();
    assert_eq!(
        auto.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![inbound[1].id]
    );
    assert!(
        s.list_messages_by_triage(w.tenant.id, Triage::AutoReply, t0() + mins(2), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Recording a send: provider id once, status forward only.
    let sent = s
        .record_message_sent(
            w.tenant.id,
            out.id,
            Some("wamid.sent"),
            DeliveryStatus::Sent,
        )
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id.as_deref(), Some("wamid.sent"));
    assert_eq!(sent.delivery_status, Some(DeliveryStatus::Sent));
    assert_eq!(
        s.find_message_by_provider_id(w.tenant.id, w.channel.id, "wamid.sent")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(out.id)
    );
    let again = s
        .record_message_sent(
            w.tenant.id,
            out.id,
            Some("wamid.other"),
            DeliveryStatus::Pending,
        )
        .await
        .unwrap();
    assert_eq!(again.provider_message_id.as_deref(), Some("wamid.sent"));
    assert_eq!(again.delivery_status, Some(DeliveryStatus::Sent));
    let out2 = s
        .insert_message(message(
            w.tenant.id,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0(),
        ))
        .await
        .unwrap()
        .record;
    assert_conflict(
        s.record_message_sent(
            w.tenant.id,
            out2.id,
            Some("wamid.sent"),
            DeliveryStatus::Sent,
        )
        .await,
    );
    // Another instant: the id is still another message's (messages are
    // partitioned by month; their unique key holds the instant).
    let out3 = s
        .insert_message(message(
            w.tenant.id,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0() + mins(1),
        ))
        .await
        .unwrap()
        .record;
    assert_conflict(
        s.record_message_sent(
            w.tenant.id,
            out3.id,
            Some("wamid.sent"),
            DeliveryStatus::Sent,
        )
        .await,
    );
    assert_eq!(
        s.find_message_by_provider_id(w.tenant.id, w.channel.id, "wamid.sent")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(out.id)
    );
    assert_not_found(
        s.record_message_sent(other.tenant.id, out.id, None, DeliveryStatus::Sent)
            .await,
    );
    assert_invalid(
        s.record_message_sent(w.tenant.id, out.id, Some(""), DeliveryStatus::Sent)
            .await,
        "provider_message_id",
    );

    // Comments: the triage queue and the reply claim.
    let post = published_post(s, &w, "launch").await;
    let mut comments = Vec::new();
    for i in 0..2 {
        comments.push(
            s.insert_comment(NewComment {
                tenant_id: w.tenant.id,
                post_id: post.id,
                platform_comment_id: format!("c{i}"),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: "nice".into(),
                created_at: t0() + mins(i),
                stored_at: t0(),
                hidden: false,
            })
            .await
            .unwrap()
            .record,
        );
    }
    assert_eq!(
        s.list_untriaged_comments(w.tenant.id, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    s.set_comment_triage(w.tenant.id, comments[0].id, Triage::AutoReply, 0.8, None)
        .await
        .unwrap();
    let queue = s.list_untriaged_comments(w.tenant.id, 10).await.unwrap();
    assert_eq!(
        queue.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![comments[1].id]
    );
    let auto = s
        .list_comments_by_triage(w.tenant.id, Triage::AutoReply, t0(), 10)
        .await
        .unwrap();
    assert_eq!(
        auto.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![comments[0].id]
    );

    let claim = |text: &str| NewCommentReply {
        tenant_id: w.tenant.id,
        comment_id: comments[0].id,
        text: text.into(),
        created_at: t0(),
    };
    let first = s.insert_comment_reply(claim("Thanks!")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.record.status, DeliveryStatus::Pending);
    let second = s
        .insert_comment_reply(claim("Thanks again!"))
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    let done = s
        .finish_comment_reply(
            w.tenant.id,
            comments[0].id,
            DeliveryStatus::Sent,
            Some("reply-1"),
            None,
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(done.status, DeliveryStatus::Sent);
    assert_eq!(done.platform_comment_id.as_deref(), Some("reply-1"));
    assert_eq!(done.updated_at, t0() + mins(1));
    assert_eq!(
        s.find_comment_reply(w.tenant.id, comments[0].id)
            .await
            .unwrap(),
        Some(done)
    );
    assert_eq!(
        s.find_comment_reply(other.tenant.id, comments[0].id)
            .await
            .unwrap(),
        None
    );
    assert_not_found(
        s.finish_comment_reply(
            w.tenant.id,
            comments[1].id,
            DeliveryStatus::Failed,
            None,
            Some("boom"),
            t0(),
        )
        .await,
    );
    assert_unknown(
        s.insert_comment_reply(NewCommentReply {
            tenant_id: other.tenant.id,
            ..claim("x")
        })
        .await,
        "comment",
    );
    assert_invalid(
        s.insert_comment_reply(NewCommentReply {
            comment_id: comments[1].id,
            ..claim("a\0b")
        })
        .await,
        "text",
    );
}

pub async fn rules_examples_decisions_and_ai_control(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let rule = |name: &str, rule_type: RuleType, priority: i32| NewAiRule {
        tenant_id: t,
        rule_type,
        name: name.into(),
        keywords: vec!["remboursement".into(), "mise en demeure".into()],
        patterns: vec![r"(?i)\bcommande\s+\d+".into()],
        confidence_min: (rule_type == RuleType::Auto).then_some(0.8),
        enabled: true,
        priority,
        at: t0(),
    };
    let auto = s.create_rule(rule("faq", RuleType::Auto, 5)).await.unwrap();
    let esc = s
        .create_rule(rule("legal", RuleType::Escalate, 1))
        .await
        .unwrap();
    let deny = s
        .create_rule(rule("spam", RuleType::Deny, 1))
        .await
        .unwrap();
    let esc2 = s
        .create_rule(rule("angry", RuleType::Escalate, 1))
        .await
        .unwrap();
    assert_eq!(
        auto.keywords,
        vec!["remboursement".to_owned(), "mise en demeure".to_owned()]
    );
    assert_eq!(auto.confidence_min, Some(0.8));
    assert_eq!(s.get_rule(t, auto.id).await.unwrap(), auto);
    assert_conflict(s.create_rule(rule("faq", RuleType::Deny, 9)).await);
    let order: Vec<_> = s
        .list_rules(t, false)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(order, vec!["spam", "angry", "legal", "faq"]);

    let mut disabled = rule("faq", RuleType::Auto, 5);
    disabled.enabled = false;
    disabled.at = t0() + mins(1);
    let updated = s.update_rule(auto.id, disabled).await.unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.created_at, auto.created_at);
    assert_eq!(updated.updated_at, t0() + mins(1));
    assert_conflict(
        s.update_rule(auto.id, rule("legal", RuleType::Auto, 5))
            .await,
    );
    let enabled: Vec<_> = s
        .list_rules(t, true)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(enabled, vec![deny.id, esc2.id, esc.id]);
    s.delete_rule(t, esc2.id).await.unwrap();
    assert_not_found(s.delete_rule(t, esc2.id).await);
    assert_not_found(s.get_rule(t, esc2.id).await);

    let ex1 = s
        .add_ignore_example(t, "merci beaucoup !", t0())
        .await
        .unwrap();
    let ex2 = s.add_ignore_example(t, "👍", t0() + mins(1)).await.unwrap();
    assert_eq!(
        s.list_ignore_examples(t).await.unwrap(),
        vec![ex1.clone(), ex2.clone()]
    );
    s.delete_ignore_example(t, ex1.id).await.unwrap();
    assert_eq!(s.list_ignore_examples(t).await.unwrap(), vec![ex2]);
    assert_not_found(s.delete_ignore_example(t, ex1.id).await);

    // Decisions: one per subject.
    let (_, conv) = conversation(s, &w, "336").await;
    let m1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("a"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let m2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("b"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let decide = |subject, triage, at| NewAiDecision {
        tenant_id: t,
        subject,
        triage,
        confidence: 1.0,
        rule_id: Some(esc.id),
        reason: "rule".into(),
        snapshot: json!({"text": "remboursement", "rules": ["legal"]}),
        created_at: at,
    };
    let d1 = s
        .insert_decision(decide(
            DecisionSubject::Message(m1.id),
            Triage::Escalate,
            t0(),
        ))
        .await
        .unwrap();
    assert!(d1.created);
    assert_eq!(d1.record.snapshot["rules"][0], "legal");
    let again = s
        .insert_decision(decide(
            DecisionSubject::Message(m1.id),
            Triage::AutoReply,
            t0() + mins(1),
        ))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record, d1.record);
    let d2 = s
        .insert_decision(decide(
            DecisionSubject::Message(m2.id),
            Triage::Ignore,
            t0() + mins(2),
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(s.get_decision(t, d2.id).await.unwrap(), d2);
    assert_eq!(
        s.find_decision(t, DecisionSubject::Message(m1.id))
            .await
            .unwrap(),
        Some(d1.record.clone())
    );
    assert_eq!(
        s.list_decisions(t, None, 10).await.unwrap(),
        vec![d2.clone(), d1.record.clone()]
    );
    assert_eq!(
        s.list_decisions(t, Some(Triage::Escalate), 10)
            .await
            .unwrap(),
        vec![d1.record.clone()]
    );
    assert!(
        s.list_decisions(t, Some(Triage::AutoReply), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.list_decisions(t, None, 1).await.unwrap(), vec![d2]);
    assert_unknown(
        s.insert_decision(decide(
            DecisionSubject::Comment(CommentId::generate()),
            Triage::Ignore,
            t0(),
        ))
        .await,
        "comment",
    );
    let mut nan = decide(DecisionSubject::Message(m2.id), Triage::Ignore, t0());
    nan.confidence = f64::NAN;
    assert_invalid(s.insert_decision(nan).await, "confidence");

    // AI control: OFF until switched on.
    let off = s.get_ai_control(t).await.unwrap();
    assert!(!off.enabled);
    assert_eq!(off.updated_at, None);
    let on = s
        .set_ai_control(t, true, Some("ops@acme".into()), t0())
        .await
        .unwrap();
    assert!(on.enabled);
    assert_eq!(on.updated_by.as_deref(), Some("ops@acme"));
    assert_eq!(s.get_ai_control(t).await.unwrap(), on);
    let off_again = s
        .set_ai_control(t, false, None, t0() + mins(1))
        .await
        .unwrap();
    assert!(!s.get_ai_control(t).await.unwrap().enabled);
    assert_eq!(off_again.updated_at, Some(t0() + mins(1)));
    assert_not_found(s.get_ai_control(TenantId::generate()).await);
    assert!(matches!(
        s.set_ai_control(TenantId::generate(), true, None, t0())
            .await,
        Err(StorageError::UnknownReference { .. } | StorageError::NotFound { .. })
    ));
}
