//! Conformance tests of the operator reads (`OpsStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::world;
use crate::{Store, expected_schema_version};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// The schema is current after migrations; the queue depth counts, across
/// tenants, queued posts whose time (and retry time) passed, and names the
/// oldest; future, retrying, published and cancelled posts do not count.
pub async fn ops_reads_schema_and_queue_depth(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let schema = s.schema_status().await.unwrap();
    assert!(schema.is_current(), "{schema:?}");
    assert_eq!(schema.expected, expected_schema_version());
    assert!(schema.expected >= 10);

    let empty = s.publish_queue_stats(t0()).await.unwrap();
    assert_eq!((empty.due, empty.oldest_due_at), (0, None));

    let a = world(s, "Acme", Platform::Facebook, "page-ops-a").await;
    let b = world(s, "Beta", Platform::Facebook, "page-ops-b").await;
    let post = |w: &super::fixtures::World, minutes: i64| {
        let new = NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text(format!("post {minutes}")),
            t0() + Duration::minutes(minutes),
            t0() - Duration::hours(1),
        );
        async move { s.insert_post(new).await.unwrap().record }
    };
    let oldest = post(&a, -30).await;
    post(&b, -10).await;
    post(&a, 0).await;
    post(&b, 10).await; // not due yet
    let retrying = post(&a, -20).await;
    s.update_post(
        a.tenant.id,
        retrying.id,
        PostPatch {
            next_attempt_at: Some(Some(t0() + Duration::minutes(5))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    let cancelled = post(&b, -40).await;
    s.update_post(
        b.tenant.id,
        cancelled.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();

    let stats = s.publish_queue_stats(t0()).await.unwrap();
    assert_eq!(stats.due, 3, "{stats:?}");
    assert_eq!(stats.oldest_due_at, Some(oldest.publish_at));
    assert_eq!(stats.oldest_due_age(t0()), Duration::minutes(30));
    let later = s
        .publish_queue_stats(t0() + Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(later.due, 5, "the retry and the future post fell due");

    assert_eq!(s.channels_needing_reauth().await.unwrap(), 0);
    s.set_channel_status(b.tenant.id, b.channel.id, ChannelStatus::NeedsReauth)
        .await
        .unwrap();
    assert_eq!(s.channels_needing_reauth().await.unwrap(), 1);
}
