//! Conformance tests of the post runs closed when a stale publishing lease
//! is released.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use crate::{STALE_RUN_ERROR, Store};

/// `release_stale_leases` closes the runs a stopped worker left `running`,
/// and only those of the posts it takes back.
pub async fn stale_release_closes_running_post_runs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    // Two channels: a claimer never takes a channel another one is publishing on.
    let other = s
        .create_channel(NewChannel {
            tenant_id: w.tenant.id,
            platform: Platform::Facebook,
            external_account_id: "page-2".into(),
            name: "Page 2".into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let post = |channel: ChannelId, text: &str| {
        NewScheduledPost::one_off(w.tenant.id, channel, Content::text(text), t0(), t0())
    };
    let dead = s
        .insert_post(post(w.channel.id, "dead"))
        .await
        .unwrap()
        .record;
    let alive = s.insert_post(post(other.id, "alive")).await.unwrap().record;
    let lease = Duration::minutes(5);
    let claimed = s
        .claim_due_posts(t0(), 1, "worker-dead", lease)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, dead.id);
    let run = |post: PostId, attempt: u32| NewPostRun {
        tenant_id: w.tenant.id,
        post_id: post,
        attempt,
        started_at: t0(),
    };
    let finished = s.insert_post_run(run(dead.id, 1)).await.unwrap();
    s.finish_post_run(
        w.tenant.id,
        finished.id,
        PostRunStatus::Failed,
        Some("429".into()),
        t0(),
    )
    .await
    .unwrap();
    let orphan = s.insert_post_run(run(dead.id, 2)).await.unwrap();
    // The other post is claimed later: its lease still holds.
    let later = t0() + Duration::minutes(3);
    let claimed = s
        .claim_due_posts(later, 1, "worker-alive", lease)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, alive.id);
    let running = s.insert_post_run(run(alive.id, 1)).await.unwrap();

    let now = t0() + Duration::minutes(6);
    assert_eq!(s.release_stale_leases(now).await.unwrap(), 1);
    let runs = s.list_post_runs(w.tenant.id, dead.id).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, PostRunStatus::Failed);
    assert_eq!(
        runs[0].error.as_deref(),
        Some("429"),
        "a finished run is untouched"
    );
    assert_eq!(runs[1].id, orphan.id);
    assert_eq!(runs[1].status, PostRunStatus::Failed);
    assert_eq!(runs[1].finished_at, Some(now));
    assert_eq!(runs[1].error.as_deref(), Some(STALE_RUN_ERROR));
    assert!(STALE_RUN_ERROR.starts_with("outcome_unknown"));
    let alive_runs = s.list_post_runs(w.tenant.id, alive.id).await.unwrap();
    assert_eq!(
        alive_runs,
        vec![running],
        "a run under a live lease stays running"
    );
    // The attempt number stays taken: the next claim must settle it.
    assert!(s.insert_post_run(run(dead.id, 2)).await.is_err());
    assert_eq!(s.release_stale_leases(now).await.unwrap(), 0);
}
