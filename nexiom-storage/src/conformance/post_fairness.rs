//! Conformance tests of publish claims shared among channels: one channel's
//! backlog does not hold the other channels' due posts behind it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{World, mins, post, t0, world};
use crate::Store;

async fn posts(s: &dyn Store, w: &World, minutes_ago: &[i64]) -> Vec<PostId> {
    let mut ids = Vec::new();
    for (i, ago) in minutes_ago.iter().enumerate() {
        let at = t0() - mins(*ago);
        let p = s.insert_post(post(w, &format!("post {i}"), at)).await;
        ids.push(p.unwrap().record.id);
    }
    ids
}

pub async fn post_claims_share_the_batch_among_channels(store: Arc<dyn Store>) {
    let s = &*store;
    let lease = Duration::minutes(5);
    let a = world(s, "Backlog", Platform::Facebook, "page-a").await;
    let b = world(s, "Bistro", Platform::Facebook, "page-b").await;
    let c = world(s, "Cafe", Platform::Facebook, "page-c").await;
    let d = world(s, "Throttled", Platform::Facebook, "page-d").await;
    let e = world(s, "Retrying", Platform::Facebook, "page-e").await;
    // Page a: 12 posts due, older than page b's 2 and page c's 1.
    let backlog = posts(s, &a, &(0..12).map(|i| 60 - i).collect::<Vec<_>>()).await;
    let bs = posts(s, &b, &[10, 9]).await;
    let cs = posts(s, &c, &[5]).await;
    // Older still, but neither may be claimed now: page d is held back by a
    // throttle, page e's oldest post waits for its retry (its post due
    // behind it takes part).
    posts(s, &d, &[100, 99, 98, 97, 96]).await;
    s.throttle_channel(d.tenant.id, d.channel.id, t0() + mins(60))
        .await
        .unwrap();
    let retrying = posts(s, &e, &[200, 7]).await;
    s.update_post(
        e.tenant.id,
        retrying[0],
        PostPatch {
            next_attempt_at: Some(Some(t0() + mins(10))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    let ids = |claimed: Vec<ScheduledPost>| claimed.into_iter().map(|p| p.id).collect::<Vec<_>>();

    // Oldest first, the claim would be 6 of page a's posts: it is shared
    // instead, every page with a due post taking part (a, b, e, c: 2 each at
    // most; e and c have 1).
    let first = s.claim_due_posts(t0(), 6, "worker-a", lease).await.unwrap();
    let mut want = backlog[..2].to_vec();
    want.extend(&bs);
    want.push(retrying[1]);
    want.extend(&cs);
    assert_eq!(ids(first), want, "oldest first within the claim");
    // Another worker takes none of the pages being published.
    assert!(
        s.claim_due_posts(t0(), 6, "worker-b", lease)
            .await
            .unwrap()
            .is_empty()
    );
    // A single busy page still fills a whole claim, in its order.
    let next = s.claim_due_posts(t0(), 6, "worker-a", lease).await.unwrap();
    assert_eq!(ids(next), backlog[2..8].to_vec());
    // A claim with room for every due post takes them oldest first.
    let rest = s
        .claim_due_posts(t0(), 10, "worker-a", lease)
        .await
        .unwrap();
    assert_eq!(ids(rest), backlog[8..].to_vec());
    assert!(
        s.claim_due_posts(t0(), 10, "worker-a", lease)
            .await
            .unwrap()
            .is_empty(),
        "the throttled page and the retrying post wait"
    );
}
