//! Conformance tests of the notification outbox (`OutboxStore`): endpoints,
//! the notifications escalations and failed posts write with their change,
//! and the deliveries' claims, retries and dead state.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{World, t0, world};
use super::reply_queue::{ai_on, comment, message};
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

/// A webhook endpoint of `w` named `name` subscribed to `kinds`.
pub(super) async fn webhook(
    s: &dyn Store,
    w: &World,
    name: &str,
    kinds: &[NotificationKind],
) -> NotificationEndpoint {
    s.create_notification_endpoint(NewNotificationEndpoint {
        tenant_id: w.tenant.id,
        name: name.to_owned(),
        kind: EndpointKind::Webhook,
        url: format!("https://hooks.example.com/{name}"),
        secret: Some(SecretString::new(format!("secret-of-{name}-0123456789"))),
        kinds: kinds.to_vec(),
        created_at: t0(),
    })
    .await
    .unwrap()
}

/// A post of `w` claimed by `owner` at `t0()`.
async fn claimed_post(s: &dyn Store, w: &World, text: &str) -> ScheduledPost {
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text(text),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let claimed = s.claim_due_posts(t0(), 10, "w1", mins(5)).await.unwrap();
    assert!(claimed.iter().any(|p| p.id == post.id));
    post
}

fn failed(w: &World, post: PostId, error: &str, retry: Option<DateTime<Utc>>) -> PostSettlement {
    PostSettlement {
        tenant_id: w.tenant.id,
        post_id: post,
        status: if retry.is_some() {
            PostStatus::Queued
        } else {
            PostStatus::Failed
        },
        retry_count: Some(3),
        error_message: Some(error.to_owned()),
        next_attempt_at: retry,
        published: None,
        run: None,
    }
}

/// Endpoints are created enabled with their kinds sorted and secret kept,
/// listed by name, refused when invalid or when the name is taken, and
/// scoped to their tenant.
pub async fn notification_endpoints_are_created_and_listed(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    use NotificationKind::*;
    let b = webhook(s, &w, "b-ops", &[PostFailed, ItemEscalated, PostFailed]).await;
    assert_eq!(b.kinds, vec![ItemEscalated, PostFailed]);
    assert!(b.enabled);
    assert_eq!(
        b.secret.as_ref().map(SecretString::expose),
        Some("secret-of-b-ops-0123456789")
    );
    let slack = s
        .create_notification_endpoint(NewNotificationEndpoint {
            tenant_id: w.tenant.id,
            name: "a-slack".into(),
            kind: EndpointKind::Slack,
            url: "https://hooks.slack.example/T1/B1/x".into(),
            secret: None,
            kinds: vec![SlaBreached],
            created_at: t0(),
        })
        .await
        .unwrap();
    let listed = s.list_notification_endpoints(w.tenant.id).await.unwrap();
    assert_eq!(listed, vec![slack.clone(), b.clone()]);
    assert!(
        s.list_notification_endpoints(other.tenant.id)
            .await
            .unwrap()
            .is_empty()
    );

    let mut dup = NewNotificationEndpoint {
        tenant_id: w.tenant.id,
        name: "b-ops".into(),
        kind: EndpointKind::Slack,
        url: "https://x.example".into(),
        secret: None,
        kinds: vec![PostFailed],
        created_at: t0(),
    };
    assert!(matches!(
        s.create_notification_endpoint(dup.clone()).await,
        Err(StorageError::Conflict { .. })
    ));
    dup.name = "c".into();
    dup.kind = EndpointKind::Webhook;
    assert!(matches!(
        s.create_notification_endpoint(dup.clone()).await,
        Err(StorageError::Invalid { .. })
    ));
    dup.kind = EndpointKind::Slack;
    dup.url = "ftp://x".into();
    assert!(matches!(
        s.create_notification_endpoint(dup.clone()).await,
        Err(StorageError::Invalid { .. })
    ));
    dup.url = "https://x.example".into();
    dup.tenant_id = TenantId::generate();
    assert!(matches!(
        s.create_notification_endpoint(dup).await,
        Err(StorageError::UnknownReference { .. })
    ));

    let off = s
        .set_notification_endpoint_enabled(w.tenant.id, b.id, false)
        .await
        .unwrap();
    assert!(!off.enabled);
    assert!(matches!(
        s.set_notification_endpoint_enabled(other.tenant.id, b.id, true)
            .await,
        Err(StorageError::NotFound { .. })
    ));

    // A new target (a rotated signing secret, a moved URL), checked as at
    // creation; the tenant's own endpoints only.
    let moved = s
        .set_notification_endpoint_target(
            w.tenant.id,
            b.id,
            "https://hooks.example.com/moved".into(),
            Some(SecretString::new("a-new-secret-0123456789")),
        )
        .await
        .unwrap();
    assert_eq!(moved.url, "https://hooks.example.com/moved");
    assert_eq!(
        moved.secret.as_ref().map(SecretString::expose),
        Some("a-new-secret-0123456789")
    );
    assert_eq!((moved.name.as_str(), moved.enabled), ("b-ops", false));
    let listed = s.list_notification_endpoints(w.tenant.id).await.unwrap();
    assert_eq!(listed[1], moved);
    let target = |url: &str, secret: Option<&str>| (url.to_owned(), secret.map(SecretString::new));
    for (url, secret) in [
        target("https://hooks.example.com/x", None),
        target("https://hooks.example.com/x", Some("short")),
        target(
            "http://hooks.example.com/x",
            Some("a-new-secret-0123456789"),
        ),
    ] {
        assert!(matches!(
            s.set_notification_endpoint_target(w.tenant.id, b.id, url, secret)
                .await,
            Err(StorageError::Invalid { .. })
        ));
    }
    let slack_moved = s
        .set_notification_endpoint_target(
            w.tenant.id,
            slack.id,
            "https://hooks.slack.example/T1/B1/y".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(slack_moved.url, "https://hooks.slack.example/T1/B1/y");
    for (tenant, id) in [
        (other.tenant.id, b.id),
        (w.tenant.id, EndpointId::generate()),
    ] {
        assert!(matches!(
            s.set_notification_endpoint_target(
                tenant,
                id,
                "https://hooks.example.com/x".into(),
                Some(SecretString::new("a-new-secret-0123456789")),
            )
            .await,
            Err(StorageError::NotFound { .. })
        ));
    }
    assert_eq!(
        s.list_notification_endpoints(w.tenant.id).await.unwrap(),
        vec![slack_moved, moved],
        "a refused target changes nothing"
    );
}

/// A message or comment escalated (by triage or by an automatic reply given
/// up) writes one `item_escalated` notification, dated by its decision, with
/// a pending delivery to each enabled endpoint subscribed to the kind; a
/// second escalation and other outcomes write nothing more.
pub async fn escalations_write_their_notification(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    use NotificationKind::*;
    let ops = webhook(s, &w, "ops", &[ItemEscalated]).await;
    let posts_only = webhook(s, &w, "posts", &[PostFailed]).await;
    let off = webhook(s, &w, "off", &[ItemEscalated]).await;
    s.set_notification_endpoint_enabled(w.tenant.id, off.id, false)
        .await
        .unwrap();

    let ignored = message(s, &w, "m0", t0(), Triage::Ignore).await;
    assert!(
        s.list_notifications(w.tenant.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let decided_at = t0() + mins(7);
    let decision = s
        .insert_decision(NewAiDecision {
            tenant_id: w.tenant.id,
            subject: DecisionSubject::Message(ignored.id),
            triage: Triage::Escalate,
            confidence: 1.0,
            rule_id: None,
            reason: "rule".into(),
            snapshot: json!({}),
            created_at: decided_at,
        })
        .await
        .unwrap()
        .record;
    s.set_message_triage(
        w.tenant.id,
        ignored.id,
        Triage::Escalate,
        1.0,
        Some(decision.id),
    )
    .await
    .unwrap();
    s.set_message_triage(
        w.tenant.id,
        ignored.id,
        Triage::Escalate,
        1.0,
        Some(decision.id),
    )
    .await
    .unwrap();
    let listed = s.list_notifications(w.tenant.id, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "one notification per escalated item");
    let n = &listed[0];
    assert_eq!(n.kind, ItemEscalated);
    assert_eq!(n.key, format!("item_escalated:message:{}", ignored.id));
    assert_eq!(n.occurred_at, decided_at);
    assert_eq!(
        n.payload,
        json!({
            "subject": "message",
            "message_id": ignored.id,
            "conversation_id": ignored.conversation_id,
            "channel_id": w.channel.id,
            "text": "text m0",
            "decision_id": decision.id,
        })
    );
    let deliveries = s
        .list_notification_deliveries(w.tenant.id, n.id)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1, "only the enabled, subscribed endpoint");
    assert_eq!(deliveries[0].endpoint_id, ops.id);
    assert_ne!(deliveries[0].endpoint_id, posts_only.id);
    assert_eq!(deliveries[0].state, NotificationDeliveryState::Pending);
    assert_eq!(deliveries[0].attempts, 0);
    assert_eq!(deliveries[0].next_attempt_at, None);

    // A comment escalated by triage, without a decision: dated by the comment.
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("p"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let c = comment(s, &w, post.id, "c1", t0() + mins(1), Triage::Escalate).await;
    let listed = s
        .list_notifications(w.tenant.id, Some(ItemEscalated), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    // Oldest first: the comment (t0 + 1 min) before the message's decision
    // (t0 + 7 min).
    assert_eq!(listed[0].key, format!("item_escalated:comment:{}", c.id));
    assert_eq!(listed[0].occurred_at, c.created_at);
    assert_eq!(listed[0].payload["post_id"], json!(post.id));
    assert_eq!(listed[0].payload["decision_id"], json!(null));
    assert_eq!(listed[1].id, n.id);

    // An automatic reply given up escalates its item: notified with it.
    ai_on(s, &w).await;
    let auto = message(s, &w, "m1", t0(), Triage::AutoReply).await;
    let claimed = s
        .claim_pending_replies(t0(), None, 10, mins(5))
        .await
        .unwrap();
    assert!(
        claimed
            .iter()
            .any(|c| c.subject() == DecisionSubject::Message(auto.id))
    );
    s.finish_reply(
        w.tenant.id,
        DecisionSubject::Message(auto.id),
        ReplyOutcome::GiveUp {
            error: "refused".into(),
        },
    )
    .await
    .unwrap();
    let stored = s.get_message(w.tenant.id, auto.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    let listed = s
        .list_notifications(w.tenant.id, Some(ItemEscalated), 10)
        .await
        .unwrap();
    assert!(
        listed
            .iter()
            .any(|n| n.key == format!("item_escalated:message:{}", auto.id))
    );
    assert_eq!(listed.len(), 3);
}

/// A claimed post settled failed writes `post_failed` (or
/// `publish_outcome_unknown` when its error says so) in the settlement; a
/// retry or a publication writes nothing.
pub async fn failed_posts_write_their_notification(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    use NotificationKind::*;
    let ops = webhook(s, &w, "ops", &[PostFailed, PublishOutcomeUnknown]).await;
    let a = claimed_post(s, &w, "a").await;
    let at = t0() + mins(1);
    s.settle_posts("w1", &[failed(&w, a.id, "refused: bad media", None)], at)
        .await
        .unwrap();
    let b = claimed_post(s, &w, "b").await;
    s.settle_posts(
        "w1",
        &[failed(&w, b.id, "outcome_unknown: no answer", None)],
        at + mins(1),
    )
    .await
    .unwrap();
    let c = claimed_post(s, &w, "c").await;
    s.settle_posts(
        "w1",
        &[failed(&w, c.id, "rate limited", Some(at + mins(5)))],
        at,
    )
    .await
    .unwrap();
    let listed = s.list_notifications(w.tenant.id, None, 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|n| (n.kind, n.key.clone()))
            .collect::<Vec<_>>(),
        vec![
            (PostFailed, format!("post_failed:{}:3", a.id)),
            (
                PublishOutcomeUnknown,
                format!("publish_outcome_unknown:{}:3", b.id)
            ),
        ]
    );
    assert_eq!(listed[0].occurred_at, at);
    assert_eq!(
        listed[0].payload,
        json!({"post_id": a.id, "channel_id": w.channel.id, "error": "refused: bad media", "retry_count": 3})
    );
    for n in &listed {
        let d = s
            .list_notification_deliveries(w.tenant.id, n.id)
            .await
            .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].endpoint_id, ops.id);
    }
    // A claimed post failed by a guarded update notifies too.
    let d = claimed_post(s, &w, "d").await;
    s.update_post(
        w.tenant.id,
        d.id,
        PostPatch {
            status: Some(PostStatus::Failed),
            error_message: Some(Some("cancelled by hand".into())),
            expect_status: Some(PostStatus::Publishing),
            release_lease: true,
            ..PostPatch::default()
        },
        at,
    )
    .await
    .unwrap();
    let listed = s.list_notifications(w.tenant.id, None, 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    let by_hand = listed
        .iter()
        .find(|n| n.key == format!("post_failed:{}:0", d.id))
        .unwrap();
    assert_eq!(by_hand.payload["error"], "cancelled by hand");
    // A settlement whose lease moved on writes nothing, notification included.
    s.settle_posts("w1", &[failed(&w, a.id, "again", None)], at)
        .await
        .unwrap();
    assert_eq!(
        s.list_notifications(w.tenant.id, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
