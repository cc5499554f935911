//! Conformance test of the reply queue's lease heartbeat
//! (`ReplyQueueStore::renew_reply_leases`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use super::reply_queue::{ai_on, comment, message, msg, secs, subjects};
use crate::Store;

/// A heartbeat extends only the claims still `sending` under the lease it
/// holds: not an item settled meanwhile, not one another worker claimed again
/// after the lease lapsed, not with a stale lease; renewed items stay out of
/// claims until the new lease ends.
pub async fn reply_lease_heartbeats_extend_only_the_holders_claims(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    ai_on(s, &w).await;
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
    let m0 = message(s, &w, "m0", t0(), Triage::AutoReply).await;
    let m1 = message(s, &w, "m1", t0() + secs(1), Triage::AutoReply).await;
    let c2 = comment(s, &w, post.id, "c2", t0() + secs(2), Triage::AutoReply).await;
    let m3 = message(s, &w, "m3", t0() + secs(3), Triage::AutoReply).await;
    let lease = Duration::minutes(5);
    // Sub-microsecond digits, as a real clock gives: a backend that stores
    // microseconds must still recognise the lease it was given.
    let now = t0() + secs(100) + Duration::nanoseconds(1_234_567);
    let held = now + lease;
    let micros = |reply: Option<ReplyStatus>| {
        reply
            .and_then(|r| r.lease_until)
            .map(|t| t.timestamp_micros())
    };

    // Worker A holds m0, m1, c2; worker B holds m3.
    let a = s.claim_pending_replies(now, None, 3, lease).await.unwrap();
    let a = subjects(&a);
    let c2s = DecisionSubject::Comment(c2.id);
    assert_eq!(a, vec![msg(&m0), msg(&m1), c2s]);
    let b = s.claim_pending_replies(now, None, 1, lease).await.unwrap();
    assert_eq!(subjects(&b), vec![msg(&m3)]);
    assert_eq!(s.renew_reply_leases(&[], held, held).await.unwrap(), 0);

    // m1 settled: A's heartbeat renews m0 and c2 only.
    s.finish_reply(w.tenant.id, msg(&m1), ReplyOutcome::Sent)
        .await
        .unwrap();
    let renewed_until = now + lease * 3;
    assert_eq!(
        s.renew_reply_leases(&a, held, renewed_until).await.unwrap(),
        2
    );
    let lease_of_m0 = s.get_message(w.tenant.id, m0.id).await.unwrap().reply;
    assert_eq!(micros(lease_of_m0), Some(renewed_until.timestamp_micros()));
    let lease_of_c2 = s.get_comment(w.tenant.id, c2.id).await.unwrap().reply;
    assert_eq!(micros(lease_of_c2), Some(renewed_until.timestamp_micros()));

    // At the first lease's end only B's unrenewed m3 is claimable again;
    // B's late heartbeat then leaves the new holder's claim alone.
    let c = s
        .claim_pending_replies(held, None, 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&c), vec![msg(&m3)]);
    assert_eq!(
        s.renew_reply_leases(&[msg(&m3)], held, now + lease * 10)
            .await
            .unwrap(),
        0
    );
    let lease_of_m3 = s.get_message(w.tenant.id, m3.id).await.unwrap().reply;
    assert_eq!(micros(lease_of_m3), Some((held + lease).timestamp_micros()));

    // A stale lease renews nothing; the current one goes on renewing.
    let pair = [msg(&m0), c2s];
    assert_eq!(
        s.renew_reply_leases(&pair, held, now + lease * 10)
            .await
            .unwrap(),
        0
    );
    let final_until = now + lease * 5;
    assert_eq!(
        s.renew_reply_leases(&pair, renewed_until, final_until)
            .await
            .unwrap(),
        2
    );
    let before_end = s
        .claim_pending_replies(final_until - secs(1), None, 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&before_end), vec![msg(&m3)], "m3's lease lapsed");
    let after_end = s
        .claim_pending_replies(final_until, None, 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&after_end), vec![msg(&m0), c2s]);
}
