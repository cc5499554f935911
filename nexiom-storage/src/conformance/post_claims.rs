//! Conformance tests of post claims: leases, stale release, and concurrent
//! claimers.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{mins, post, t0, world};
use crate::{StorageError, Store};

pub async fn claims_leases_and_stale_release(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-2").await;
    // p3 is on a third channel: a claimer never takes a channel another
    // claimer is publishing on.
    let c = world(s, "Initech", Platform::Facebook, "page-3").await;
    let p1 = s
        .insert_post(post(&a, "1", t0() - mins(2)))
        .await
        .unwrap()
        .record;
    let p2 = s
        .insert_post(post(&b, "2", t0() - mins(1)))
        .await
        .unwrap()
        .record;
    let p3 = s.insert_post(post(&c, "3", t0())).await.unwrap().record;
    let future = s
        .insert_post(post(&a, "future", t0() + mins(1)))
        .await
        .unwrap()
        .record;
    // Due, but its next attempt is later (backoff).
    let backoff = s
        .insert_post(post(&a, "backoff", t0() - mins(5)))
        .await
        .unwrap()
        .record;
    s.update_post(
        a.tenant.id,
        backoff.id,
        PostPatch {
            next_attempt_at: Some(Some(t0() + mins(10))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    // Cancelled posts are never claimed.
    let cancelled = s
        .insert_post(post(&a, "cancelled", t0() - mins(9)))
        .await
        .unwrap()
        .record;
    s.update_post(
        a.tenant.id,
        cancelled.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();

    let lease = Duration::minutes(5);
    let first = s.claim_due_posts(t0(), 2, "worker-a", lease).await.unwrap();
    assert_eq!(
        first.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p1.id, p2.id]
    );
    for p in &first {
        assert_eq!(p.status, PostStatus::Publishing);
        assert_eq!(p.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(p.lease_expires_at, Some(t0() + lease));
    }
    let second = s
        .claim_due_posts(t0(), 10, "worker-b", lease)
        .await
        .unwrap();
    assert_eq!(second.iter().map(|p| p.id).collect::<Vec<_>>(), vec![p3.id]);
    assert!(
        s.claim_due_posts(t0(), 10, "worker-c", lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_due_posts(t0(), 0, "worker-c", lease)
            .await
            .unwrap()
            .is_empty()
    );
    let later = s
        .claim_due_posts(t0() + mins(10), 10, "worker-c", lease)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![backoff.id, future.id]
    );

    // The holder completes p1 under its lease; another owner is refused.
    let stolen = s
        .update_post(
            a.tenant.id,
            p1.id,
            PostPatch {
                status: Some(PostStatus::Published),
                expect_lease_owner: Some("worker-b".into()),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await;
    assert!(matches!(stolen, Err(StorageError::Precondition { .. })));
    let done = s
        .update_post(
            a.tenant.id,
            p1.id,
            PostPatch {
                status: Some(PostStatus::Published),
                release_lease: true,
                expect_lease_owner: Some("worker-a".into()),
                expect_status: Some(PostStatus::Publishing),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(done.lease_owner, None);
    assert_eq!(done.lease_expires_at, None);

    // Leases not yet expired stay; expired ones return to the queue.
    assert_eq!(s.release_stale_leases(t0() + lease).await.unwrap(), 0);
    assert_eq!(
        s.release_stale_leases(t0() + lease + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    let p2_now = s.get_post(b.tenant.id, p2.id).await.unwrap();
    assert_eq!(p2_now.status, PostStatus::Queued);
    assert_eq!(p2_now.lease_owner, None);
    assert_eq!(p2_now.lease_expires_at, None);
    assert_eq!(
        s.get_post(a.tenant.id, p1.id).await.unwrap().status,
        PostStatus::Published
    );
    let reclaimed = s
        .claim_due_posts(t0() + mins(6), 10, "worker-d", lease)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2.id, p3.id]
    );
    assert_eq!(
        s.get_post(a.tenant.id, cancelled.id).await.unwrap().status,
        PostStatus::Cancelled
    );
}

pub async fn concurrent_claims_claim_every_post_exactly_once(store: Arc<dyn Store>) {
    const POSTS: usize = 1_000;
    let w = world(&*store, "Acme", Platform::Facebook, "page-1").await;
    for i in 0..POSTS {
        let at = t0() - Duration::seconds(i as i64);
        store
            .insert_post(post(&w, &format!("post {i}"), at))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due_posts(t0(), 25, &owner, Duration::minutes(5))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(
                    batch
                        .iter()
                        .all(|p| p.lease_owner.as_deref() == Some(owner.as_str()))
                );
                mine.extend(batch.into_iter().map(|p| p.id));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "post {id} claimed twice");
        }
    }
    assert_eq!(total, POSTS);
    assert_eq!(seen.len(), POSTS);
    let still_queued = store
        .list_posts(
            w.tenant.id,
            PostFilter {
                status: Some(PostStatus::Queued),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(still_queued.is_empty());
}
