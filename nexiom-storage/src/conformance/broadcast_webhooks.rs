//! Conformance tests of WhatsApp webhooks applied to broadcasts when events
//! are routed: delivery statuses and marketing preferences.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexiom_core::*;

use super::broadcasts::{mins, opt, post};
use super::fixtures::{World, t0, world};
use crate::Store;

fn whatsapp_event(
    w: &World,
    event_id: &str,
    kind: EventKind,
    at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        platform: Platform::WhatsApp,
        event_id: event_id.into(),
        kind,
        sender_id: None,
        sender_name: None,
        text: None,
        has_media: false,
        delivery_status: None,
        target_id: None,
        parent_id: None,
        occurred_at: at,
        payload: serde_json::json!({}),
        received_at: at,
    }
}

/// A broadcast to `recipients` (opted in) claimed by `w1` at `t0`, its
/// deliveries made.
async fn claimed_broadcast(s: &dyn Store, recipients: &[&str]) -> (World, ScheduledPost) {
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    for r in recipients {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    let p = post(s, &w).await;
    broadcast_to(s, &p, recipients).await;
    s.claim_due_posts(t0(), 10, "w1", mins(5)).await.unwrap();
    s.prepare_deliveries(w.tenant.id, p.id, "w1", t0())
        .await
        .unwrap();
    (w, p)
}

/// Makes `p` a broadcast to `recipients`.
async fn broadcast_to(s: &dyn Store, p: &ScheduledPost, recipients: &[&str]) {
    s.set_post_broadcast(PostBroadcast {
        tenant_id: p.tenant_id,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
        },
        template: None,
    })
    .await
    .unwrap();
}

/// Routing applies WhatsApp webhooks to broadcasts: a status updates the
/// delivery it names (forward only; by the echoed delivery id, a delivery in
/// doubt becomes sent, also when the same batch holds a later failure of its
/// message), and a "stop" / "resume" of marketing messages updates
/// the sender's opt-in (the latest change wins), so a contact who sent "stop"
/// is never sent a broadcast.
pub async fn broadcast_webhooks_update_deliveries_and_opt_in(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    for r in ["15550001", "15550002"] {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    let p = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: vec!["15550001".into(), "15550002".into()],
        },
        template: None,
    })
    .await
    .unwrap();
    let now = t0();
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    s.prepare_deliveries(t, p.id, "w1", now).await.unwrap();
    let a = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    s.finish_delivery(
        t,
        a.delivery.id,
        DeliveryOutcome::Sent {
            provider_message_id: "wamid.A".into(),
        },
        now,
    )
    .await
    .unwrap();
    // The second send's worker stops: its delivery is in doubt.
    let b = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    s.release_stale_leases(now + mins(6)).await.unwrap();
    s.claim_due_posts(now + mins(6), 10, "w2", mins(5))
        .await
        .unwrap();
    s.prepare_deliveries(t, p.id, "w2", now + mins(6))
        .await
        .unwrap();

    let at = now + mins(7);
    let status =
        |id: &str, target: &str, st: DeliveryStatus, payload: serde_json::Value| NewWebhookEvent {
            target_id: Some(target.into()),
            delivery_status: Some(st),
            payload,
            ..whatsapp_event(&w, id, EventKind::Status, at)
        };
    let pref = |id: &str, sender: &str, value: &str, when: DateTime<Utc>| NewWebhookEvent {
        sender_id: Some(sender.into()),
        text: Some(value.into()),
        ..whatsapp_event(&w, id, EventKind::Preference, when)
    };
    let events = [
        status(
            "wamid.A:read",
            "wamid.A",
            DeliveryStatus::Read,
            serde_json::json!({}),
        ),
        status(
            "wamid.A:delivered",
            "wamid.A",
            DeliveryStatus::Delivered,
            serde_json::json!({}),
        ),
        status(
            "wamid.B:delivered",
            "wamid.B",
            DeliveryStatus::Delivered,
            serde_json::json!({"biz_opaque_callback_data": b.delivery.id.to_string()}),
        ),
        // In the same batch, a later failure of the same message: the
        // delivery in doubt still went out (the delivered status says so).
        status(
            "wamid.B:failed",
            "wamid.B",
            DeliveryStatus::Failed,
            serde_json::json!({"biz_opaque_callback_data": b.delivery.id.to_string()}),
        ),
        // Another application's callback data: ignored, never an error.
        status(
            "wamid.X:sent",
            "wamid.X",
            DeliveryStatus::Sent,
            serde_json::json!({"biz_opaque_callback_data": "order-42"}),
        ),
        pref("p1", "15550001", "stop", at),
        pref("p2", "15550001", "resume", at - mins(1)),
        pref("p3", "+15550003", "resume", at),
        pref("p4", "not-a-number", "stop", at),
    ];
    for e in events {
        s.insert_event(e).await.unwrap();
    }
    let report = s.route_unrouted_events(None, 100, at).await.unwrap();
    assert_eq!(report.processed, 9);

    let d: std::collections::HashMap<String, BroadcastDelivery> = s
        .list_deliveries(t, p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.recipient.clone(), d))
        .collect();
    assert_eq!(d["15550001"].state, BroadcastDeliveryState::Sent);
    assert_eq!(d["15550001"].delivery_status, Some(DeliveryStatus::Read));
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
    assert_eq!(
        d["15550002"].provider_message_id.as_deref(),
        Some("wamid.B")
    );
    assert_eq!(d["15550002"].delivery_status, Some(DeliveryStatus::Failed));
    // Sent, then reported failed: counted among the sent, as undelivered.
    let counts = s.broadcast_counts(t, p.id).await.unwrap();
    assert_eq!((counts.sent, counts.undelivered), (2, 1), "{counts:?}");

    let a_now = s
        .get_broadcast_contact(t, w.channel.id, "15550001")
        .await
        .unwrap()
        .unwrap();
    assert!(!a_now.is_opted_in(), "the stop is later than the resume");
    assert_eq!(a_now.opt_out_reason.as_deref(), Some("whatsapp: stop"));
    assert_eq!(a_now.opted_out_at, Some(at));
    // The resume (received first) was applied before the stop.
    assert_eq!(a_now.opt_in_source.as_deref(), Some("whatsapp: resume"));
    assert_eq!(a_now.opted_in_at, Some(at - mins(1)));
    let c = s
        .get_broadcast_contact(t, w.channel.id, "15550003")
        .await
        .unwrap()
        .unwrap();
    assert!(c.is_opted_in());
    assert_eq!(c.opt_in_source.as_deref(), Some("whatsapp: resume"));

    // A contact who sent "stop" receives no broadcast.
    let next = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: next.id,
        audience: BroadcastAudience::Recipients {
            recipients: vec!["15550001".into(), "15550003".into()],
        },
        template: None,
    })
    .await
    .unwrap();
    // (Once w2's claim of the first post has lapsed, the channel is free.)
    let later = at + mins(5);
    s.claim_due_posts(later, 10, "w3", mins(5)).await.unwrap();
    let counts = s
        .prepare_deliveries(t, next.id, "w3", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.pending, counts.failed), (1, 1));
    let only = s
        .claim_next_delivery(t, next.id, "w3", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(only.delivery.recipient, "15550003");
}

/// A send that got no answer after the request went out (failed with an
/// `outcome_unknown` error by the worker, not by a stopped claim) is in
/// doubt too: its status webhook, found by the echoed delivery id, makes it
/// `sent` with the message id, and so does a send recorded later. A send the
/// platform refused stays failed whatever a status says.
pub async fn a_send_with_no_answer_is_resolved_by_its_status(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (w, p) = claimed_broadcast(s, &["15550001", "15550002", "15550003"]).await;
    let (t, now) = (w.tenant.id, t0());
    let mut ids = Vec::new();
    let errors = [
        "outcome_unknown: no answer after the request was sent (timed out); the message may \
         have been delivered and is not sent again (a status webhook will tell)",
        "outcome_unknown: no answer after the request was sent (connection reset)",
        "(#131026) Message undeliverable",
    ];
    for error in errors {
        let claimed = s
            .claim_next_delivery(t, p.id, "w1", now)
            .await
            .unwrap()
            .unwrap();
        s.finish_delivery(
            t,
            claimed.delivery.id,
            DeliveryOutcome::Failed {
                error: error.into(),
            },
            now,
        )
        .await
        .unwrap();
        ids.push(claimed.delivery.id);
    }
    let at = now + mins(1);
    let status = |target: &str, delivery: BroadcastDeliveryId| NewWebhookEvent {
        target_id: Some(target.into()),
        delivery_status: Some(DeliveryStatus::Delivered),
        payload: serde_json::json!({"biz_opaque_callback_data": delivery.to_string()}),
        ..whatsapp_event(&w, &format!("{target}:delivered"), EventKind::Status, at)
    };
    for (target, id) in [("wamid.1", ids[0]), ("wamid.3", ids[2])] {
        s.insert_event(status(target, id)).await.unwrap();
    }
    s.route_unrouted_events(None, 100, at).await.unwrap();
    // The second: its send is recorded after all (a late answer).
    assert!(
        s.finish_delivery(
            t,
            ids[1],
            DeliveryOutcome::Sent {
                provider_message_id: "wamid.2".into(),
            },
            at,
        )
        .await
        .unwrap()
    );

    let d: std::collections::HashMap<BroadcastDeliveryId, BroadcastDelivery> = s
        .list_deliveries(t, p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    for (id, wamid) in [(ids[0], "wamid.1"), (ids[1], "wamid.2")] {
        assert_eq!(d[&id].state, BroadcastDeliveryState::Sent);
        assert_eq!(d[&id].provider_message_id.as_deref(), Some(wamid));
        assert_eq!(d[&id].error, None);
    }
    assert_eq!(d[&ids[2]].state, BroadcastDeliveryState::Failed);
    assert_eq!(d[&ids[2]].provider_message_id, None);
}

/// A broadcast post already settled when one of its deliveries in doubt
/// turns out sent takes its deliveries' account again, whichever way the
/// news comes: a post settled `failed` (nobody received it) becomes
/// `published` with the broadcast's platform id and its content job with
/// it (by a routed status webhook; by a send recorded late), a published
/// post's summary is brought up to date (by a status applied directly),
/// and a post still being published is left to its pass.
pub async fn a_settled_broadcast_takes_a_late_sent_delivery_into_account(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    let recipients = ["15550001", "15550002"];
    for r in recipients {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    let job = s
        .create_content_job(NewContentJob {
            tenant_id: t,
            mission_id: None,
            channel_id: w.channel.id,
            phase: Phase::Intro,
            status: ContentJobStatus::Ready,
            content: Content::text("Spring sale"),
            source_ref: None,
            created_at: t0(),
        })
        .await
        .unwrap();
    let by_webhook = s
        .insert_post(NewScheduledPost {
            content_job_id: Some(job.id),
            ..NewScheduledPost::one_off(t, w.channel.id, Content::text("Spring sale"), t0(), t0())
        })
        .await
        .unwrap()
        .record;
    s.update_content_job(
        t,
        job.id,
        ContentJobStatus::Scheduled,
        Some(by_webhook.id),
        t0(),
    )
    .await
    .unwrap();
    let (late, summary, open) = (post(s, &w).await, post(s, &w).await, post(s, &w).await);
    for p in [&by_webhook, &late, &summary, &open] {
        broadcast_to(s, p, &recipients).await;
    }
    let now = t0();
    assert_eq!(
        s.claim_due_posts(now, 10, "w1", mins(5))
            .await
            .unwrap()
            .len(),
        4
    );
    let unknown = DeliveryOutcome::Failed {
        error: "outcome_unknown: no answer after the request was sent (timed out)".into(),
    };
    let refused = DeliveryOutcome::Failed {
        error: "(#131026) Message undeliverable".into(),
    };
    let sent = |wamid: &str| DeliveryOutcome::Sent {
        provider_message_id: wamid.into(),
    };
    // Each post's first delivery ends in doubt; the second is refused, or
    // sent (`summary`), or not tried yet (`open`, still being published).
    let mut in_doubt = Vec::new();
    for (p, second) in [
        (&by_webhook, Some(refused.clone())),
        (&late, Some(refused)),
        (&summary, Some(sent("wamid.s2"))),
        (&open, None),
    ] {
        s.prepare_deliveries(t, p.id, "w1", now).await.unwrap();
        let first = s
            .claim_next_delivery(t, p.id, "w1", now)
            .await
            .unwrap()
            .unwrap();
        s.finish_delivery(t, first.delivery.id, unknown.clone(), now)
            .await
            .unwrap();
        in_doubt.push(first.delivery.id);
        if let Some(outcome) = second {
            let d = s
                .claim_next_delivery(t, p.id, "w1", now)
                .await
                .unwrap()
                .unwrap();
            s.finish_delivery(t, d.delivery.id, outcome, now)
                .await
                .unwrap();
        }
    }
    let failed = |p: &ScheduledPost| PostSettlement {
        tenant_id: t,
        post_id: p.id,
        status: PostStatus::Failed,
        retry_count: None,
        error_message: Some("no recipient received it: 0 of 2 recipients sent, 2 failed".into()),
        next_attempt_at: None,
        published: None,
        run: None,
    };
    let published = PostSettlement {
        status: PostStatus::Published,
        error_message: Some("1 of 2 recipients sent, 1 failed".into()),
        published: Some(PublishedFields {
            platform_post_id: broadcast_platform_post_id(summary.id),
            url: None,
            published_at: now,
            next_check_at: None,
            stop_at: Some(now),
        }),
        ..failed(&summary)
    };
    let settled = s
        .settle_posts("w1", &[failed(&by_webhook), failed(&late), published], now)
        .await
        .unwrap();
    assert_eq!(settled.len(), 3);
    assert_eq!(
        s.get_content_job(t, job.id).await.unwrap().status,
        ContentJobStatus::Failed
    );

    let at = now + mins(1);
    for (event, delivery) in [("wamid.w", in_doubt[0]), ("wamid.o", in_doubt[3])] {
        s.insert_event(NewWebhookEvent {
            target_id: Some(event.into()),
            delivery_status: Some(DeliveryStatus::Delivered),
            payload: serde_json::json!({"biz_opaque_callback_data": delivery.to_string()}),
            ..whatsapp_event(&w, &format!("{event}:delivered"), EventKind::Status, at)
        })
        .await
        .unwrap();
    }
    s.route_unrouted_events(None, 100, at).await.unwrap();
    assert!(
        s.finish_delivery(t, in_doubt[1], sent("wamid.l"), at)
            .await
            .unwrap()
    );
    s.apply_delivery_status(t, "wamid.s1", Some(in_doubt[2]), DeliveryStatus::Read, at)
        .await
        .unwrap()
        .unwrap();

    for p in [&by_webhook, &late] {
        let p = s.get_post(t, p.id).await.unwrap();
        assert_eq!(p.status, PostStatus::Published, "{:?}", p.error_message);
        assert_eq!(p.platform_post_id, Some(broadcast_platform_post_id(p.id)));
        assert_eq!(p.published_at, Some(at));
        assert_eq!(p.stop_at, Some(at));
        assert_eq!(p.next_check_at, None);
        assert_eq!(
            p.error_message.as_deref(),
            Some("1 of 2 recipients sent, 1 failed")
        );
    }
    let job = s.get_content_job(t, job.id).await.unwrap();
    assert_eq!(job.status, ContentJobStatus::Published);
    assert_eq!(
        job.platform_post_id,
        Some(broadcast_platform_post_id(by_webhook.id))
    );
    assert_eq!(job.published_at, Some(at));
    assert_eq!(job.error_message, None);
    let summary = s.get_post(t, summary.id).await.unwrap();
    assert_eq!(summary.status, PostStatus::Published);
    assert_eq!(summary.error_message, None, "every recipient was sent");
    assert_eq!(summary.published_at, Some(now));
    let open = s.get_post(t, open.id).await.unwrap();
    assert_eq!(open.status, PostStatus::Publishing);
    assert_eq!(open.platform_post_id, None);
    let counts = s.broadcast_counts(t, open.id).await.unwrap();
    assert_eq!((counts.sent, counts.pending), (1, 1));
}

/// The publish queue counts a broadcast's deliveries, then settles the post:
/// a delivery in doubt shown sent in between (its status routed while the
/// post is still being published, so nothing re-settles it then) is taken
/// into account when the post is settled `failed` from the stale count: the
/// post ends `published`.
pub async fn a_broadcast_settled_from_a_stale_count_takes_the_news_into_account(
    store: Arc<dyn Store>,
) {
    let s = store.as_ref();
    let (w, p) = claimed_broadcast(s, &["15550001", "15550002"]).await;
    let (t, now) = (w.tenant.id, t0());
    let mut ids = Vec::new();
    for error in [
        "outcome_unknown: no answer (timed out)",
        "(#131026) Undeliverable",
    ] {
        let d = s
            .claim_next_delivery(t, p.id, "w1", now)
            .await
            .unwrap()
            .unwrap();
        let failed = DeliveryOutcome::Failed {
            error: error.into(),
        };
        s.finish_delivery(t, d.delivery.id, failed, now)
            .await
            .unwrap();
        ids.push(d.delivery.id);
    }
    // The pass has counted: nobody received it. Then the status is routed.
    let counted = s.broadcast_counts(t, p.id).await.unwrap();
    assert_eq!((counted.sent, counted.failed), (0, 2));
    let at = now + mins(1);
    s.insert_event(NewWebhookEvent {
        target_id: Some("wamid.1".into()),
        delivery_status: Some(DeliveryStatus::Delivered),
        payload: serde_json::json!({"biz_opaque_callback_data": ids[0].to_string()}),
        ..whatsapp_event(&w, "wamid.1:delivered", EventKind::Status, at)
    })
    .await
    .unwrap();
    s.route_unrouted_events(None, 100, at).await.unwrap();
    assert_eq!(
        s.get_post(t, p.id).await.unwrap().status,
        PostStatus::Publishing
    );

    let settle_at = now + mins(2);
    let stale = PostSettlement {
        tenant_id: t,
        post_id: p.id,
        status: PostStatus::Failed,
        retry_count: None,
        error_message: Some(format!("no recipient received it: {}", counted.summary())),
        next_attempt_at: None,
        published: None,
        run: None,
    };
    let settled = s.settle_posts("w1", &[stale], settle_at).await.unwrap();
    assert_eq!(settled, [p.id]);
    let p = s.get_post(t, p.id).await.unwrap();
    assert_eq!(p.status, PostStatus::Published, "{:?}", p.error_message);
    assert_eq!(p.platform_post_id, Some(broadcast_platform_post_id(p.id)));
    assert_eq!(p.published_at, Some(settle_at));
    assert_eq!(
        p.error_message.as_deref(),
        Some("1 of 2 recipients sent, 1 failed")
    );
}
