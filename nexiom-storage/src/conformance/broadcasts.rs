//! Conformance tests of WhatsApp broadcasts: contacts' opt-in, audiences, a
//! post's audience, and one delivery per (post, recipient).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::{DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT, StorageError, Store};

pub(super) fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

pub(super) fn opt(
    w: &World,
    recipient: &str,
    opted_in: bool,
    source: &str,
    at: DateTime<Utc>,
) -> OptChange {
    OptChange {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        recipient: recipient.into(),
        opted_in,
        source: source.into(),
        at,
    }
}

pub(super) async fn post(s: &dyn Store, w: &World) -> ScheduledPost {
    s.insert_post(NewScheduledPost::one_off(
        w.tenant.id,
        w.channel.id,
        Content::text("Spring sale"),
        t0(),
        t0(),
    ))
    .await
    .unwrap()
    .record
}

/// Opt-in and opt-out apply in time order (an older change is ignored); an
/// audience takes only contacts of its channel who opted in; a post's
/// audience is the tenant's post and an audience of the post's channel.
pub async fn broadcast_contacts_audiences_and_post_audiences(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    let a = s
        .apply_opt_change(opt(&w, "+15550001", true, "signup form", t0()))
        .await
        .unwrap();
    assert_eq!(a.recipient, "15550001");
    assert!(a.is_opted_in());
    assert_eq!(a.opted_in_at, Some(t0()));
    assert_eq!(a.opt_in_source.as_deref(), Some("signup form"));
    // Stop, then a stale resume from before the stop: still opted out.
    let stopped = s
        .apply_opt_change(opt(&w, "15550001", false, "stop", t0() + mins(10)))
        .await
        .unwrap();
    assert_eq!(stopped.id, a.id);
    assert!(!stopped.is_opted_in());
    assert_eq!(stopped.opt_out_reason.as_deref(), Some("stop"));
    let stale = s
        .apply_opt_change(opt(&w, "15550001", true, "resume", t0() + mins(5)))
        .await
        .unwrap();
    assert_eq!(stale, stopped);
    let resumed = s
        .apply_opt_change(opt(&w, "15550001", true, "resume", t0() + mins(20)))
        .await
        .unwrap();
    assert!(resumed.is_opted_in());
    assert_eq!(resumed.opted_in_at, Some(t0() + mins(20)));
    assert_eq!(
        s.get_broadcast_contact(t, w.channel.id, "+15550001")
            .await
            .unwrap(),
        Some(resumed.clone())
    );
    s.apply_opt_change(opt(&w, "15550002", true, "import", t0()))
        .await
        .unwrap();
    s.apply_opt_change(opt(&w, "15550003", false, "stop", t0()))
        .await
        .unwrap();
    let err = s
        .apply_opt_change(opt(&w, "not a number", true, "x", t0()))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");

    let audience = s
        .create_audience(NewAudience {
            tenant_id: t,
            channel_id: w.channel.id,
            name: "VIP".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let dup = s
        .create_audience(NewAudience {
            tenant_id: t,
            channel_id: w.channel.id,
            name: "VIP".into(),
            created_at: t0(),
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, StorageError::Conflict { .. }), "{dup:?}");
    // An opted-out contact or a stranger is refused, and nothing is added.
    for bad in ["15550003", "15559999"] {
        let err = s
            .add_audience_members(t, audience.id, &["15550002".into(), bad.into()], t0())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    }
    assert!(
        s.list_audience_members(t, audience.id)
            .await
            .unwrap()
            .is_empty()
    );
    let added = s
        .add_audience_members(
            t,
            audience.id,
            &["15550002".into(), "+15550001".into()],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    let again = s
        .add_audience_members(t, audience.id, &["15550002".into()], t0())
        .await
        .unwrap();
    assert_eq!(again, 0);
    let members = s.list_audience_members(t, audience.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.recipient.as_str())
            .collect::<Vec<_>>(),
        vec!["15550001", "15550002"]
    );

    // Post audiences.
    let p = post(s, &w).await;
    assert_eq!(s.get_post_broadcast(t, p.id).await.unwrap(), None);
    let stored = PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Stored {
            audience_id: audience.id,
        },
        template: Some(BroadcastTemplate {
            name: "spring_sale".into(),
            language: "en_US".into(),
            parameters: vec!["20%".into()],
        }),
    };
    assert_eq!(s.set_post_broadcast(stored.clone()).await.unwrap(), stored);
    assert_eq!(s.get_post_broadcast(t, p.id).await.unwrap(), Some(stored));
    let explicit = PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: vec!["+15550001".into()],
        },
        template: None,
    };
    s.set_post_broadcast(explicit.clone()).await.unwrap();
    assert_eq!(s.get_post_broadcast(t, p.id).await.unwrap(), Some(explicit));

    // Another tenant sees nothing and cannot refer to these rows.
    let x = world(s, "Other", Platform::WhatsApp, "phone-x").await;
    let err = s
        .list_audience_members(x.tenant.id, audience.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
    assert_eq!(
        s.get_broadcast_contact(x.tenant.id, w.channel.id, "15550001")
            .await
            .unwrap(),
        None
    );
    let xp = post(s, &x).await;
    let err = s
        .set_post_broadcast(PostBroadcast {
            tenant_id: x.tenant.id,
            post_id: xp.id,
            audience: BroadcastAudience::Stored {
                audience_id: audience.id,
            },
            template: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownReference { .. }),
        "{err:?}"
    );
    let err = s
        .set_post_broadcast(PostBroadcast {
            tenant_id: x.tenant.id,
            post_id: p.id,
            audience: BroadcastAudience::Recipients {
                recipients: vec!["1".into()],
            },
            template: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownReference { .. }),
        "{err:?}"
    );
}

/// Deliveries are made once per recipient under the post's claim, claimed
/// one at a time, finished once; an opt-out is honoured up to the claim; a
/// delivery left `sending` by a claim that ended is failed as unknown and
/// never claimed again, yet a late "sent" (or a status webhook) records it.
pub async fn broadcast_deliveries_are_made_and_sent_once(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    for r in ["15550001", "15550002", "15550003"] {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    s.apply_opt_change(opt(&w, "15550009", false, "stop", t0()))
        .await
        .unwrap();
    // 15550001 wrote to the channel an hour ago.
    let handle = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: t,
            platform: Platform::WhatsApp,
            external_handle: "15550001".into(),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = s
        .insert_open_conversation(t, handle.contact_id, w.channel.id, t0())
        .await
        .unwrap()
        .record;
    let wrote = t0() - mins(60);
    s.insert_message(NewMessage {
        tenant_id: t,
        conversation_id: conv.id,
        direction: MessageDirection::Inbound,
        text: "hi".into(),
        has_media: false,
        provider_message_id: Some("wamid.in-1".into()),
        in_reply_to: None,
        delivery_status: None,
        created_at: wrote,
        stored_at: wrote,
    })
    .await
    .unwrap();

    let p = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: vec![
                "+15550001".into(),
                "15550002".into(),
                "15550001".into(),
                "15550003".into(),
                "15550009".into(),
            ],
        },
        template: None,
    })
    .await
    .unwrap();
    let now = t0();
    // Not claimed: nothing is prepared.
    assert_eq!(
        s.prepare_deliveries(t, p.id, "w1", now).await.unwrap(),
        None
    );
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    assert_eq!(
        s.prepare_deliveries(t, p.id, "w2", now).await.unwrap(),
        None
    );
    assert_eq!(
        s.claim_next_delivery(t, p.id, "w2", now).await.unwrap(),
        None
    );
    let counts = s
        .prepare_deliveries(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.pending, counts.failed, counts.total()), (3, 1, 4));
    // Idempotent.
    assert_eq!(
        s.prepare_deliveries(t, p.id, "w1", now).await.unwrap(),
        Some(counts)
    );
    let listed = s.list_deliveries(t, p.id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|d| (d.recipient.as_str(), d.state))
            .collect::<Vec<_>>(),
        vec![
            ("15550001", BroadcastDeliveryState::Pending),
            ("15550002", BroadcastDeliveryState::Pending),
            ("15550003", BroadcastDeliveryState::Pending),
            ("15550009", BroadcastDeliveryState::Failed),
        ]
    );
    assert_eq!(listed[3].error.as_deref(), Some(OPTED_OUT));

    // One at a time, by recipient.
    let first = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.delivery.recipient, "15550001");
    assert_eq!(first.delivery.state, BroadcastDeliveryState::Sending);
    assert_eq!(first.delivery.attempts, 1);
    assert_eq!(first.last_inbound_at, Some(wrote));
    assert!(
        s.finish_delivery(
            t,
            first.delivery.id,
            DeliveryOutcome::Sent {
                provider_message_id: "wamid.1".into()
            },
            now
        )
        .await
        .unwrap()
    );
    // Finished once only.
    assert!(
        !s.finish_delivery(
            t,
            first.delivery.id,
            DeliveryOutcome::Failed { error: "x".into() },
            now
        )
        .await
        .unwrap()
    );
    let second = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.delivery.recipient, "15550002");
    assert_eq!(second.last_inbound_at, None);
    s.finish_delivery(
        t,
        second.delivery.id,
        DeliveryOutcome::Retry {
            error: "HTTP 503".into(),
            next_attempt_at: now + mins(2),
        },
        now,
    )
    .await
    .unwrap();
    // 15550003 opts out before its turn: failed, never claimed.
    s.apply_opt_change(opt(&w, "15550003", false, "stop", now))
        .await
        .unwrap();
    assert_eq!(
        s.claim_next_delivery(t, p.id, "w1", now).await.unwrap(),
        None
    );
    let counts = s.broadcast_counts(t, p.id).await.unwrap();
    assert_eq!(
        (counts.pending, counts.sending, counts.sent, counts.failed),
        (1, 0, 1, 2)
    );
    assert_eq!(counts.next_attempt_at, Some(now + mins(2)));
    assert!(!counts.is_settled());

    // The retry is claimed when due; the worker then stops mid-send.
    let later = now + mins(2);
    let retry = s
        .claim_next_delivery(t, p.id, "w1", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.delivery.id, second.delivery.id);
    assert_eq!(retry.delivery.attempts, 2);
    s.release_stale_leases(now + mins(10)).await.unwrap();
    s.claim_due_posts(now + mins(10), 10, "w2", mins(5))
        .await
        .unwrap();
    let counts = s
        .prepare_deliveries(t, p.id, "w2", now + mins(10))
        .await
        .unwrap()
        .unwrap();
    assert!(counts.is_settled());
    assert_eq!((counts.sent, counts.failed), (1, 3));
    let unknown = s
        .list_deliveries(t, p.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == second.delivery.id)
        .unwrap();
    assert_eq!(unknown.state, BroadcastDeliveryState::Failed);
    assert_eq!(unknown.error.as_deref(), Some(DELIVERY_OUTCOME_UNKNOWN));
    assert_eq!(
        s.claim_next_delivery(t, p.id, "w2", now + mins(10))
            .await
            .unwrap(),
        None
    );
    // The stopped worker's answer arrives late: the message went out.
    assert!(
        s.finish_delivery(
            t,
            second.delivery.id,
            DeliveryOutcome::Sent {
                provider_message_id: "wamid.2".into()
            },
            now + mins(11)
        )
        .await
        .unwrap()
    );
    let counts = s.broadcast_counts(t, p.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (2, 2));

    // Status webhooks: monotonic, by message id.
    let d = s
        .apply_delivery_status(t, "wamid.1", None, DeliveryStatus::Read, now + mins(12))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.delivery_status, Some(DeliveryStatus::Read));
    let d = s
        .apply_delivery_status(
            t,
            "wamid.1",
            None,
            DeliveryStatus::Delivered,
            now + mins(13),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.delivery_status, Some(DeliveryStatus::Read));
    assert_eq!(
        s.apply_delivery_status(t, "wamid.none", None, DeliveryStatus::Sent, now)
            .await
            .unwrap(),
        None
    );
    // Another tenant's webhook matches nothing.
    let x = world(s, "Other", Platform::WhatsApp, "phone-x").await;
    assert_eq!(
        s.apply_delivery_status(x.tenant.id, "wamid.1", None, DeliveryStatus::Failed, now)
            .await
            .unwrap(),
        None
    );
    let err = s.list_deliveries(x.tenant.id, p.id).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
}

/// A delivery failed as unknown is found sent by the status webhook that
/// echoes its id; a stored audience sends to its members opted in when the
/// deliveries are made.
pub async fn broadcast_status_webhooks_resolve_unknown_deliveries(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    for r in ["15550001", "15550002"] {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    let audience = s
        .create_audience(NewAudience {
            tenant_id: t,
            channel_id: w.channel.id,
            name: "All".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    s.add_audience_members(
        t,
        audience.id,
        &["15550001".into(), "15550002".into()],
        t0(),
    )
    .await
    .unwrap();
    s.apply_opt_change(opt(&w, "15550002", false, "stop", t0() + mins(1)))
        .await
        .unwrap();
    let p = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Stored {
            audience_id: audience.id,
        },
        template: None,
    })
    .await
    .unwrap();
    let now = t0() + mins(2);
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    let counts = s
        .prepare_deliveries(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.pending, counts.total()), (1, 1));
    let claimed = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    // The worker stops; the post is claimed again.
    s.release_stale_leases(now + mins(6)).await.unwrap();
    s.claim_due_posts(now + mins(6), 10, "w2", mins(5))
        .await
        .unwrap();
    s.prepare_deliveries(t, p.id, "w2", now + mins(6))
        .await
        .unwrap();
    let d = s
        .apply_delivery_status(
            t,
            "wamid.late",
            Some(claimed.delivery.id),
            DeliveryStatus::Delivered,
            now + mins(7),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state, BroadcastDeliveryState::Sent);
    assert_eq!(d.provider_message_id.as_deref(), Some("wamid.late"));
    assert_eq!(d.delivery_status, Some(DeliveryStatus::Delivered));
    assert_eq!(d.error, None);
}
