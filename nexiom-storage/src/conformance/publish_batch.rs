//! Conformance tests of the publish queue's batched writes: claims that keep a
//! channel to one worker, channel holds, lease heartbeats, runs started in one
//! statement and settlements guarded by the lease.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

async fn post(
    s: &dyn Store,
    w: &World,
    channel: ChannelId,
    text: &str,
    at: DateTime<Utc>,
) -> ScheduledPost {
    s.insert_post(NewScheduledPost::one_off(
        w.tenant.id,
        channel,
        Content::text(text),
        at,
        t0(),
    ))
    .await
    .unwrap()
    .record
}

async fn second_channel(s: &dyn Store, w: &World, account: &str) -> Channel {
    s.create_channel(NewChannel {
        tenant_id: w.tenant.id,
        platform: Platform::Facebook,
        external_account_id: account.to_owned(),
        name: account.to_owned(),
        credentials: Credentials::default(),
        created_at: t0(),
    })
    .await
    .unwrap()
}

/// A channel another owner is publishing on is skipped by claims until that
/// owner's posts are settled or its lease expires; the owner itself may claim
/// more of it. A held channel is skipped until its hold ends; a later hold
/// stays; an unknown channel cannot be held.
pub async fn claims_keep_a_channel_to_one_worker_and_honour_holds(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = second_channel(s, &w, "page-2").await;
    let now = t0();
    let a1 = post(s, &w, w.channel.id, "a1", now - mins(3)).await;
    let a2 = post(s, &w, w.channel.id, "a2", now - mins(2)).await;
    let b1 = post(s, &w, other.id, "b1", now - mins(1)).await;

    let first = s.claim_due_posts(now, 1, "w1", mins(5)).await.unwrap();
    assert_eq!(first.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a1.id]);
    // w2 skips the channel w1 is publishing on.
    let second = s.claim_due_posts(now, 10, "w2", mins(5)).await.unwrap();
    assert_eq!(second.iter().map(|p| p.id).collect::<Vec<_>>(), vec![b1.id]);
    // w1 may take more of its own channel.
    let more = s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    assert_eq!(more.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a2.id]);

    // Once w1's lease has expired, the channel is no longer held by it.
    let a3 = post(s, &w, w.channel.id, "a3", now).await;
    let later = now + mins(6);
    assert!(
        s.claim_due_posts(now, 10, "w3", mins(5))
            .await
            .unwrap()
            .is_empty()
    );
    let taken = s.claim_due_posts(later, 10, "w3", mins(5)).await.unwrap();
    assert_eq!(taken.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a3.id]);

    // Holds.
    let c1 = post(s, &w, other.id, "c1", later).await;
    s.throttle_channel(w.tenant.id, other.id, later + mins(10))
        .await
        .unwrap();
    s.throttle_channel(w.tenant.id, other.id, later + mins(1))
        .await
        .unwrap();
    assert!(
        s.claim_due_posts(later + mins(9), 10, "w4", mins(5))
            .await
            .unwrap()
            .is_empty()
    );
    let after = s
        .claim_due_posts(later + mins(11), 10, "w4", mins(5))
        .await
        .unwrap();
    assert_eq!(after.iter().map(|p| p.id).collect::<Vec<_>>(), vec![c1.id]);
    let err = s
        .throttle_channel(w.tenant.id, ChannelId::generate(), later)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
    // A channel of another tenant cannot be held either.
    let x = world(s, "Other", Platform::Facebook, "page-x").await;
    let err = s
        .throttle_channel(x.tenant.id, other.id, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
}

/// The heartbeat extends only posts still `publishing` under its owner.
pub async fn lease_heartbeats_extend_only_the_owners_claims(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = second_channel(s, &w, "page-2").await;
    let now = t0();
    let a = post(s, &w, w.channel.id, "a", now).await;
    let b = post(s, &w, other.id, "b", now).await;
    s.claim_due_posts(now, 1, "w1", mins(5)).await.unwrap();
    s.claim_due_posts(now, 1, "w2", mins(5)).await.unwrap();
    let until = now + mins(30);
    let renewed = s
        .renew_post_leases("w1", &[a.id, b.id], until)
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    assert_eq!(
        s.get_post(w.tenant.id, a.id)
            .await
            .unwrap()
            .lease_expires_at,
        Some(until)
    );
    assert_eq!(
        s.get_post(w.tenant.id, b.id)
            .await
            .unwrap()
            .lease_expires_at,
        Some(now + mins(5))
    );
    assert_eq!(s.renew_post_leases("w1", &[], until).await.unwrap(), 0);
    // The renewed lease keeps the post from stale release.
    assert_eq!(s.release_stale_leases(now + mins(6)).await.unwrap(), 1);
    assert_eq!(
        s.get_post(w.tenant.id, a.id).await.unwrap().status,
        PostStatus::Publishing
    );
}

/// Runs started together: aligned with the input, a taken attempt number is
/// `None` and leaves the others started; so is a post not under the caller's
/// unexpired lease (a worker that lost its claim starts no attempt).
pub async fn post_runs_start_in_one_batch(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = second_channel(s, &w, "page-2").await;
    let now = t0();
    let a = post(s, &w, w.channel.id, "a", now).await;
    let b = post(s, &w, w.channel.id, "b", now).await;
    let d = post(s, &w, other.id, "d", now + mins(60)).await;
    assert_eq!(
        s.claim_due_posts(now, 2, "w", mins(5)).await.unwrap().len(),
        2
    );
    // Made after w's claim, which would have shared itself with it.
    let c = post(s, &w, other.id, "c", now).await;
    assert_eq!(
        s.claim_due_posts(now, 1, "v", mins(5)).await.unwrap().len(),
        1
    );
    // c is v's, d is not claimed, and w's lease is over at now + 6 min.
    let c_run = NewPostRun {
        tenant_id: w.tenant.id,
        post_id: c.id,
        attempt: 1,
        started_at: now,
    };
    let d_run = NewPostRun {
        post_id: d.id,
        ..c_run.clone()
    };
    let refused = s
        .insert_post_runs("w", &[c_run.clone(), d_run], now)
        .await
        .unwrap();
    assert_eq!(refused, vec![None, None]);
    assert!(
        s.list_post_runs(w.tenant.id, c.id)
            .await
            .unwrap()
            .is_empty()
    );
    let a_late = NewPostRun {
        post_id: a.id,
        attempt: 5,
        ..c_run.clone()
    };
    assert_eq!(
        s.insert_post_runs("w", &[a_late], now + mins(6))
            .await
            .unwrap(),
        vec![None]
    );
    assert!(s.insert_post_runs("v", &[c_run], now).await.unwrap()[0].is_some());
    let run = |p: &ScheduledPost, attempt| NewPostRun {
        tenant_id: w.tenant.id,
        post_id: p.id,
        attempt,
        started_at: now,
    };
    s.insert_post_run(run(&a, 1)).await.unwrap();
    let started = s
        .insert_post_runs("w", &[run(&a, 1), run(&b, 1), run(&a, 2)], now)
        .await
        .unwrap();
    assert_eq!(started.len(), 3);
    assert!(started[0].is_none());
    let b1 = started[1].clone().unwrap();
    assert_eq!(
        (b1.post_id, b1.attempt, b1.status),
        (b.id, 1, PostRunStatus::Running)
    );
    assert_eq!(started[2].as_ref().unwrap().attempt, 2);
    assert_eq!(s.list_post_runs(w.tenant.id, a.id).await.unwrap().len(), 2);
    assert!(s.insert_post_runs("w", &[], now).await.unwrap().is_empty());
    // Attempt 0 is refused before anything is written.
    let err = s
        .insert_post_runs("w", &[run(&b, 2), run(&b, 0)], now)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert_eq!(s.list_post_runs(w.tenant.id, b.id).await.unwrap().len(), 1);
}

/// Settlements write the post and end its run only under the writer's lease;
/// a post whose lease moved on is skipped, its run left running.
pub async fn settlements_are_guarded_by_the_lease(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = second_channel(s, &w, "page-2").await;
    let now = t0();
    let a = post(s, &w, w.channel.id, "a", now).await;
    let b = post(s, &w, w.channel.id, "b", now).await;
    s.claim_due_posts(now, 2, "w1", mins(5)).await.unwrap();
    // Made after w1's claim, which would have shared itself with it.
    let c = post(s, &w, other.id, "c", now).await;
    s.claim_due_posts(now, 1, "w2", mins(5)).await.unwrap();
    let start = |owner: &'static str, p: &ScheduledPost| {
        let run = NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 1,
            started_at: now,
        };
        async move {
            s.insert_post_runs(owner, &[run], now)
                .await
                .unwrap()
                .pop()
                .unwrap()
        }
    };
    let runs = [
        start("w1", &a).await,
        start("w1", &b).await,
        start("w2", &c).await,
    ];
    let run = |i: usize| runs[i].as_ref().unwrap().id;
    let at = now + mins(1);
    let published = PostSettlement {
        tenant_id: w.tenant.id,
        post_id: a.id,
        status: PostStatus::Published,
        retry_count: Some(1),
        error_message: None,
        next_attempt_at: None,
        published: Some(PublishedFields {
            platform_post_id: "fb-1".into(),
            url: Some("https://facebook.com/fb-1".into()),
            published_at: at,
            next_check_at: Some(at),
            stop_at: Some(at + Duration::days(7)),
        }),
        run: Some(RunEnd {
            run_id: run(0),
            status: PostRunStatus::Success,
            error: None,
        }),
    };
    let retry = PostSettlement {
        tenant_id: w.tenant.id,
        post_id: b.id,
        status: PostStatus::Queued,
        retry_count: Some(1),
        error_message: Some("rate limited".into()),
        next_attempt_at: Some(at + mins(2)),
        published: None,
        run: Some(RunEnd {
            run_id: run(1),
            status: PostRunStatus::Failed,
            error: Some("rate limited".into()),
        }),
    };
    // c is w2's: w1's settlement of it is skipped.
    let stolen = PostSettlement {
        post_id: c.id,
        run: Some(RunEnd {
            run_id: run(2),
            status: PostRunStatus::Failed,
            error: Some("x".into()),
        }),
        ..retry.clone()
    };
    let mut written = s
        .settle_posts("w1", &[published, retry, stolen], at)
        .await
        .unwrap();
    written.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(written, expected);

    let pa = s.get_post(w.tenant.id, a.id).await.unwrap();
    assert_eq!(pa.status, PostStatus::Published);
    assert_eq!(pa.platform_post_id.as_deref(), Some("fb-1"));
    assert_eq!(pa.url.as_deref(), Some("https://facebook.com/fb-1"));
    assert_eq!((pa.published_at, pa.next_check_at), (Some(at), Some(at)));
    assert_eq!(pa.stop_at, Some(at + Duration::days(7)));
    assert_eq!(
        (pa.lease_owner, pa.retry_count, pa.updated_at),
        (None, 1, at)
    );
    let pb = s.get_post(w.tenant.id, b.id).await.unwrap();
    assert_eq!(pb.status, PostStatus::Queued);
    assert_eq!(pb.error_message.as_deref(), Some("rate limited"));
    assert_eq!(pb.next_attempt_at, Some(at + mins(2)));
    assert_eq!(
        (pb.lease_owner, pb.lease_expires_at, pb.platform_post_id),
        (None, None, None)
    );
    let pc = s.get_post(w.tenant.id, c.id).await.unwrap();
    assert_eq!(pc.status, PostStatus::Publishing);
    assert_eq!(pc.lease_owner.as_deref(), Some("w2"));

    let ra = &s.list_post_runs(w.tenant.id, a.id).await.unwrap()[0];
    assert_eq!(
        (ra.status, ra.finished_at),
        (PostRunStatus::Success, Some(at))
    );
    let rb = &s.list_post_runs(w.tenant.id, b.id).await.unwrap()[0];
    assert_eq!(
        (rb.status, rb.error.as_deref()),
        (PostRunStatus::Failed, Some("rate limited"))
    );
    let rc = &s.list_post_runs(w.tenant.id, c.id).await.unwrap()[0];
    assert_eq!((rc.status, rc.finished_at), (PostRunStatus::Running, None));

    // A settlement that is not a final state is refused before any write.
    let bad = PostSettlement {
        tenant_id: w.tenant.id,
        post_id: c.id,
        status: PostStatus::Publishing,
        retry_count: None,
        error_message: None,
        next_attempt_at: None,
        published: None,
        run: None,
    };
    let err = s.settle_posts("w2", &[bad], at).await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert_eq!(
        s.get_post(w.tenant.id, c.id).await.unwrap().status,
        PostStatus::Publishing
    );
    assert!(s.settle_posts("w2", &[], at).await.unwrap().is_empty());
}
