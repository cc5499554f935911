//! Conformance test of the broadcast fan-out's claim: recipients who opted
//! out while the fan-out ran are failed when reached, in the same claim that
//! then takes the next recipient.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use nexiom_core::*;

use super::broadcasts::{mins, opt, post};
use super::fixtures::{t0, world};
use crate::{OPTED_OUT, Store};

/// Five recipients; the first two and the fourth opt out after the
/// deliveries were made: the first claim fails the first two (no attempt
/// counted) and takes the third; the next one fails the fourth and takes the
/// fifth; then nothing is left.
pub async fn broadcast_claims_fail_opted_out_recipients_on_the_way(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    let recipients = ["15550001", "15550002", "15550003", "15550004", "15550005"];
    for r in recipients {
        s.apply_opt_change(opt(&w, r, true, "form", t0()))
            .await
            .unwrap();
    }
    let p = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        },
        template: None,
    })
    .await
    .unwrap();
    let now = t0();
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    let counts = s
        .prepare_deliveries(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counts.pending, 5);
    for r in ["15550001", "15550002", "15550004"] {
        s.apply_opt_change(opt(&w, r, false, "stop", now + mins(1)))
            .await
            .unwrap();
    }
    let later = now + mins(2);
    let mut claimed = Vec::new();
    while let Some(c) = s.claim_next_delivery(t, p.id, "w1", later).await.unwrap() {
        claimed.push(c.delivery.recipient.clone());
        s.finish_delivery(
            t,
            c.delivery.id,
            DeliveryOutcome::Sent {
                provider_message_id: format!("wamid.{}", c.delivery.recipient),
            },
            later,
        )
        .await
        .unwrap();
    }
    assert_eq!(claimed, ["15550003", "15550005"]);
    let listed = s.list_deliveries(t, p.id).await.unwrap();
    let states: Vec<_> = listed
        .iter()
        .map(|d| {
            (
                d.recipient.as_str(),
                d.state,
                d.attempts,
                d.error.as_deref(),
            )
        })
        .collect();
    use BroadcastDeliveryState::{Failed, Sent};
    assert_eq!(
        states,
        [
            ("15550001", Failed, 0, Some(OPTED_OUT)),
            ("15550002", Failed, 0, Some(OPTED_OUT)),
            ("15550003", Sent, 1, None),
            ("15550004", Failed, 0, Some(OPTED_OUT)),
            ("15550005", Sent, 1, None),
        ]
    );
    let counts = s.broadcast_counts(t, p.id).await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 2, 3));
}

/// A stored audience is read at the post's first claim: a member added
/// while the post is under way (between passes, or before a stopped
/// worker's post is claimed again) is not sent this post. Before, every
/// pass read the audience again and inserted its members anew.
pub async fn a_stored_audience_is_read_at_the_first_claim(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    for r in ["15550001", "15550002", "15550003"] {
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
    let now = t0();
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    let first = s
        .prepare_deliveries(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.total(), 2);

    // A member joins; the worker stops and the post is claimed again.
    s.add_audience_members(t, audience.id, &["15550003".into()], now)
        .await
        .unwrap();
    s.release_stale_leases(now + mins(6)).await.unwrap();
    s.claim_due_posts(now + mins(6), 10, "w2", mins(5))
        .await
        .unwrap();
    let again = s
        .prepare_deliveries(t, p.id, "w2", now + mins(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.total(), 2);
    let recipients: Vec<String> = s
        .list_deliveries(t, p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.recipient)
        .collect();
    assert_eq!(recipients, vec!["15550001", "15550002"]);
}

/// A broadcast cancelled part-way (its worker stopped mid-send, the post
/// released, then cancelled): the delivery sent stays sent, the one in
/// flight is failed as of unknown outcome, the ones not sent are failed as
/// cancelled; a post not cancelled keeps its deliveries; another tenant's
/// post is not found.
pub async fn a_cancelled_broadcasts_unsent_deliveries_are_closed(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let other = world(s, "Globex", Platform::WhatsApp, "phone-2").await;
    let t = w.tenant.id;
    let recipients = ["15550001", "15550002", "15550003", "15550004"];
    let p = post(s, &w).await;
    s.set_post_broadcast(PostBroadcast {
        tenant_id: t,
        post_id: p.id,
        audience: BroadcastAudience::Recipients {
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        },
        template: None,
    })
    .await
    .unwrap();
    let now = t0();
    s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    s.prepare_deliveries(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    let sent = s
        .claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();
    s.finish_delivery(
        t,
        sent.delivery.id,
        DeliveryOutcome::Sent {
            provider_message_id: "wamid.1".into(),
        },
        now,
    )
    .await
    .unwrap();
    s.claim_next_delivery(t, p.id, "w1", now)
        .await
        .unwrap()
        .unwrap();

    // The worker stops; the post is released, still queued: nothing closed.
    s.release_stale_leases(now + mins(6)).await.unwrap();
    assert_eq!(
        s.close_cancelled_deliveries(t, p.id, now + mins(6))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.broadcast_counts(t, p.id).await.unwrap().pending, 2);
    s.update_post(
        t,
        p.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            expect_status: Some(PostStatus::Queued),
            ..PostPatch::default()
        },
        now + mins(7),
    )
    .await
    .unwrap();
    let at = now + mins(8);
    assert_eq!(s.close_cancelled_deliveries(t, p.id, at).await.unwrap(), 3);
    let states: Vec<_> = s
        .list_deliveries(t, p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.recipient, d.state, d.error, d.updated_at))
        .collect();
    use BroadcastDeliveryState::{Failed, Sent};
    let cancelled = Some(crate::BROADCAST_CANCELLED.to_owned());
    assert_eq!(
        states,
        [
            ("15550001".to_owned(), Sent, None, now),
            (
                "15550002".to_owned(),
                Failed,
                Some(crate::DELIVERY_OUTCOME_UNKNOWN.to_owned()),
                at
            ),
            ("15550003".to_owned(), Failed, cancelled.clone(), at),
            ("15550004".to_owned(), Failed, cancelled, at),
        ]
    );
    let counts = s.broadcast_counts(t, p.id).await.unwrap();
    assert!(counts.is_settled());
    assert_eq!((counts.sent, counts.failed), (1, 3));
    // Again: nothing left.
    assert_eq!(s.close_cancelled_deliveries(t, p.id, at).await.unwrap(), 0);
    assert!(matches!(
        s.close_cancelled_deliveries(other.tenant.id, p.id, at)
            .await,
        Err(crate::StorageError::NotFound { .. })
    ));
}
