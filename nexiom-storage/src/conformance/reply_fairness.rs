//! Conformance tests of how a reply claim shares its batch among channels.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use super::reply_queue::{a_post, ai_on, comment, message, msg, secs, subjects};
use crate::Store;

/// Channel A's backlog is older than channel B's items: a claim still takes
/// B's, round-robin among the channels (every channel's oldest, then every
/// channel's second oldest); a channel's comments and messages count
/// together; a channel with few items leaves the rest of the claim to the
/// others.
pub async fn reply_claims_share_the_batch_among_channels(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-2").await;
    ai_on(s, &a).await;
    ai_on(s, &b).await;
    let post = a_post(s, &a).await;
    let mut backlog = Vec::new();
    for i in 1..=5 {
        backlog.push(msg(&message(
            s,
            &a,
            &format!("a{i}"),
            t0() + secs(i),
            Triage::AutoReply,
        )
        .await));
    }
    let a_comment = comment(s, &a, post.id, "ac", t0() + secs(6), Triage::AutoReply).await;
    let b1 = message(s, &b, "b1", t0() + secs(10), Triage::AutoReply).await;
    let b2 = message(s, &b, "b2", t0() + secs(11), Triage::AutoReply).await;
    let now = t0() + secs(20);
    let lease = Duration::minutes(5);

    // Two channels due: their oldest first, then their second oldest; A's
    // comment is its third.
    let first = s.claim_pending_replies(now, None, 4, lease).await.unwrap();
    assert_eq!(
        subjects(&first),
        vec![backlog[0], backlog[1], msg(&b1), msg(&b2)]
    );
    // Only A is due now: the claim is all its own.
    let second = s.claim_pending_replies(now, None, 2, lease).await.unwrap();
    assert_eq!(subjects(&second), vec![backlog[2], backlog[3]]);
    let third = s.claim_pending_replies(now, None, 10, lease).await.unwrap();
    assert_eq!(
        subjects(&third),
        vec![backlog[4], DecisionSubject::Comment(a_comment.id)]
    );
    assert!(
        s.claim_pending_replies(now, None, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    // Every lease lapsed: round-robin again, B's oldest before A's second.
    let later = now + lease;
    let again = s
        .claim_pending_replies(later, None, 3, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&again), vec![backlog[0], backlog[1], msg(&b1)]);
    // B has one left: A gives the rest of a claim of 5.
    let rest = s
        .claim_pending_replies(later, None, 5, lease)
        .await
        .unwrap();
    assert_eq!(
        subjects(&rest),
        vec![
            backlog[2],
            backlog[3],
            backlog[4],
            DecisionSubject::Comment(a_comment.id),
            msg(&b2)
        ]
    );
}
