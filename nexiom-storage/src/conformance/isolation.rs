//! Conformance test of tenant isolation.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{assert_not_found, conversation, event, message, published_post, t0, world};
use crate::{StorageError, Store};

/// Tenant A gets a row of every kind; tenant B must see none of them through
/// any read, and cannot change them.
pub async fn tenant_isolation(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::WhatsApp, "pn-a").await;
    let b = world(s, "Globex", Platform::WhatsApp, "pn-b").await;
    let ta = a.tenant.id;
    let tb = b.tenant.id;

    let ev = s
        .insert_event(event(&a, "wamid.iso", EventKind::Message, t0()))
        .await
        .unwrap()
        .record;
    let (cc, conv) = conversation(s, &a, "33611111111").await;
    let msg = s
        .insert_message(message(
            ta,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.iso"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let p = published_post(s, &a, "iso").await;
    let run = s
        .insert_post_run(NewPostRun {
            tenant_id: ta,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await
        .unwrap();
    let comment = s
        .insert_comment(NewComment {
            tenant_id: ta,
            post_id: p.id,
            platform_comment_id: "c-iso".into(),
            parent_platform_comment_id: None,
            author_id: None,
            author_name: None,
            text: "hi".into(),
            created_at: t0(),
            stored_at: t0(),
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    let rule = s
        .create_rule(NewAiRule {
            tenant_id: ta,
            rule_type: RuleType::Deny,
            name: "spam".into(),
            keywords: vec!["casino".into()],
            patterns: vec![],
            confidence_min: None,
            enabled: true,
            priority: 0,
            at: t0(),
        })
        .await
        .unwrap();
    let example = s.add_ignore_example(ta, "ok", t0()).await.unwrap();
    let decision = s
        .insert_decision(NewAiDecision {
            tenant_id: ta,
            subject: DecisionSubject::Comment(comment.id),
            triage: Triage::Ignore,
            confidence: 1.0,
            rule_id: Some(rule.id),
            reason: "rule".into(),
            snapshot: json!({}),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    s.set_ai_control(ta, true, None, t0()).await.unwrap();
    s.upsert_kpi(Kpi2h {
        tenant_id: ta,
        window_start: t0(),
        window_end: t0() + Duration::hours(2),
        messages_count: 1,
        comments_count: 1,
        frt_p50_seconds: None,
        auto_reply_rate: None,
        escalate_count: 0,
        ignored_count: 1,
        posts_active: 1,
        computed_at: t0(),
    })
    .await
    .unwrap();
    let mission = s
        .create_mission(NewMission {
            tenant_id: ta,
            channel_id: a.channel.id,
            name: "M".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::Low,
            start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let job = s
        .create_content_job(NewContentJob {
            tenant_id: ta,
            mission_id: Some(mission.id),
            channel_id: a.channel.id,
            phase: Phase::Intro,
            status: ContentJobStatus::Ready,
            content: Content::text("x"),
            source_ref: None,
            created_at: t0(),
        })
        .await
        .unwrap();
    s.add_report(ta, mission.id, json!({}), t0()).await.unwrap();

    // Every read of tenant B, with A's ids.
    let far = t0() + Duration::days(365);
    let past = t0() - Duration::days(365);
    assert_not_found(s.get_channel(tb, a.channel.id).await);
    assert_eq!(s.list_channels(tb).await.unwrap(), vec![b.channel.clone()]);
    assert_not_found(s.get_event(tb, ev.id).await);
    assert_eq!(
        s.find_event(tb, &Platform::WhatsApp, "wamid.iso")
            .await
            .unwrap(),
        None
    );
    assert_not_found(s.get_contact(tb, cc.contact_id).await);
    assert!(
        s.list_contact_channels(tb, cc.contact_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_conversation(tb, conv.id).await);
    assert!(
        s.list_conversations(tb, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_message(tb, msg.id).await);
    assert_eq!(
        s.find_message_by_provider_id(tb, a.channel.id, "wamid.iso")
            .await
            .unwrap(),
        None
    );
    assert!(s.list_messages(tb, conv.id, 100).await.unwrap().is_empty());
    assert!(
        s.list_messages_since(tb, MessageDirection::Inbound, past, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_post(tb, p.id).await);
    assert!(
        s.list_posts(tb, PostFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.count_posts(tb, a.channel.id, past, far, PostStatus::ALL)
            .await
            .unwrap(),
        0
    );
    assert!(s.list_post_runs(tb, p.id).await.unwrap().is_empty());
    assert_not_found(
        s.finish_post_run(tb, run.id, PostRunStatus::Success, None, t0())
            .await,
    );
    assert_not_found(s.get_comment(tb, comment.id).await);
    assert!(s.list_comments(tb, p.id, 100).await.unwrap().is_empty());
    assert!(
        s.list_comments_since(tb, past, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.set_comment_triage(tb, comment.id, Triage::Escalate, 1.0, None)
            .await,
    );
    assert_eq!(s.get_checkpoint(tb, p.id).await.unwrap(), None);
    assert_not_found(s.get_rule(tb, rule.id).await);
    assert!(s.list_rules(tb, false).await.unwrap().is_empty());
    assert_not_found(s.delete_rule(tb, rule.id).await);
    assert!(matches!(
        s.update_rule(
            rule.id,
            NewAiRule {
                tenant_id: tb,
                rule_type: RuleType::Auto,
                name: "hijack".into(),
                keywords: vec![],
                patterns: vec![],
                confidence_min: None,
                enabled: true,
                priority: 0,
                at: t0(),
            }
        )
        .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(s.list_ignore_examples(tb).await.unwrap().is_empty());
    assert_not_found(s.delete_ignore_example(tb, example.id).await);
    assert_not_found(s.get_decision(tb, decision.id).await);
    assert_eq!(
        s.find_decision(tb, DecisionSubject::Comment(comment.id))
            .await
            .unwrap(),
        None
    );
    assert!(s.list_decisions(tb, None, 100).await.unwrap().is_empty());
    assert!(!s.get_ai_control(tb).await.unwrap().enabled);
    assert!(s.list_kpis(tb, past, far).await.unwrap().is_empty());
    assert_not_found(s.get_mission(tb, mission.id).await);
    assert!(
        s.list_missions(tb, MissionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.set_mission_status(tb, mission.id, MissionStatus::Cancelled)
            .await,
    );
    assert_not_found(s.get_content_job(tb, job.id).await);
    assert!(
        s.list_content_jobs(tb, ContentJobFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.update_content_job(tb, job.id, ContentJobStatus::Cancelled, None, t0())
            .await,
    );
    assert_eq!(s.latest_report(tb, mission.id).await.unwrap(), None);

    // And A's rows are intact.
    assert_eq!(s.get_rule(ta, rule.id).await.unwrap(), rule);
    assert_eq!(
        s.get_mission(ta, mission.id).await.unwrap().status,
        MissionStatus::Active
    );
    assert_eq!(
        s.get_content_job(ta, job.id).await.unwrap().status,
        ContentJobStatus::Ready
    );
    assert!(s.get_ai_control(ta).await.unwrap().enabled);
}
