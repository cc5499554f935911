//! Comment polling at platform speed: due posts polled concurrently under
//! the caps, each once, their checkpoints saved.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{ConnectorRegistry, MockOp};
use nexiom_core::*;
use nexiom_scheduler::{CommentPoller, PollingConfig};
use nexiom_storage::Store;

use super::world::{World, caps};

/// 3 Facebook pages × 4 due posts with 5 comments each (3 pages of 2), at most
/// 3 polls in flight and 2 per channel: several in flight at once, never more
/// than the caps; every post polled once with its pages in cursor order, its
/// comments stored once and its checkpoint and next check saved.
pub async fn due_posts_are_polled_concurrently_under_the_caps(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    w.fb.company = true;
    let now = w.clock.now();
    let mut posts = Vec::new();
    for c in 0..3 {
        let page = w
            .channel(Platform::Facebook, &format!("page-{c}-{}", w.tenant))
            .await;
        for p in 0..4 {
            let post = w.post(&page).await;
            let platform_id = format!("fb-{c}-{p}");
            let post = w
                .store
                .update_post(
                    w.tenant,
                    post.id,
                    PostPatch {
                        status: Some(PostStatus::Published),
                        platform_post_id: Some(Some(platform_id.clone())),
                        published_at: Some(Some(now)),
                        next_check_at: Some(Some(now - Duration::seconds(12 - p - 4 * c))),
                        stop_at: Some(Some(now + Duration::days(7))),
                        ..PostPatch::default()
                    },
                    now,
                )
                .await
                .unwrap();
            let comments: Vec<_> = (0..5)
                .map(|i| {
                    w.fb.mock
                        .comment(&format!("{platform_id}-{i}"), "fan", "Hi")
                })
                .collect();
            w.fb.mock.seed_comments(&platform_id, comments);
            posts.push((post, platform_id));
        }
    }
    let poller = CommentPoller::new(
        Arc::clone(&w.store),
        Arc::new(w.clock.clone()),
        ConnectorRegistry::new().with(Arc::new(w.fb.clone())),
    )
    .with_config(PollingConfig {
        concurrency: caps(3, 2),
        ..PollingConfig::default()
    });
    let report = poller.poll_due(100, None).await.unwrap();
    assert_eq!(
        (
            report.posts_polled,
            report.pages_read,
            report.comments_stored
        ),
        (12, 36, 60)
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let (total, per_channel) = w.fb.peaks();
    assert!(total >= 2, "polled one after another");
    assert!(total <= 3, "over the worker cap: {total}");
    assert!(per_channel <= 2, "over the channel cap: {per_channel}");
    let mut cursors: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for call in w.fb.mock.calls_of(MockOp::ListComments) {
        cursors
            .entry(call.target.unwrap())
            .or_default()
            .push(call.cursor);
    }
    assert_eq!(cursors.len(), 12);
    for (post, platform_id) in &posts {
        assert_eq!(
            cursors[platform_id],
            vec![None, Some("2".into()), Some("4".into())],
            "{platform_id}: pages in order, once"
        );
        let checkpoint = w.store.get_checkpoint(w.tenant, post.id).await.unwrap();
        assert_eq!(checkpoint.unwrap().last_cursor.as_deref(), Some("4"));
        let stored = w.store.list_comments(w.tenant, post.id, 100).await.unwrap();
        assert_eq!(stored.len(), 5);
        let after = w.store.get_post(w.tenant, post.id).await.unwrap();
        assert_eq!(after.last_check_at, Some(now));
        assert_eq!(after.next_check_at, Some(now + Duration::minutes(5)));
    }
    let again = poller.poll_due(100, None).await.unwrap();
    assert_eq!(again.posts_polled, 0, "each polled once");
}

/// Post discovery on 4 Facebook pages, at most 3 in flight: the pages are
/// listed concurrently (several at once, never more than the cap, one call
/// per page) and each page's posts made elsewhere are recorded once.
pub async fn post_discovery_lists_channels_concurrently_under_the_cap(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    w.fb.company = true;
    let now = w.clock.now();
    for c in 0..4 {
        let account = format!("page-{c}-{}", w.tenant);
        let page = w.channel(Platform::Facebook, &account).await;
        for p in 0..2 {
            w.fb.mock.seed_post(
                &account,
                &format!("elsewhere-{c}-{p}"),
                "Made elsewhere",
                now - Duration::hours(p + 1),
            );
        }
        w.store
            .set_post_discovery(w.tenant, page.id, 10, now)
            .await
            .unwrap();
    }
    let poller = CommentPoller::new(
        Arc::clone(&w.store),
        Arc::new(w.clock.clone()),
        ConnectorRegistry::new().with(Arc::new(w.fb.clone())),
    )
    .with_config(PollingConfig {
        concurrency: caps(3, 1),
        ..PollingConfig::default()
    });
    let report = poller.discover_posts(10).await.unwrap();
    assert!(
        report.discovery_failures.is_empty(),
        "{:?}",
        report.discovery_failures
    );
    assert_eq!(
        (report.channels_discovered, report.external_posts_found),
        (4, 8)
    );
    let (total, per_channel) = w.fb.peaks();
    assert!(total >= 2, "listed one after another");
    assert!(total <= 3, "over the worker cap: {total}");
    assert_eq!(per_channel, 1, "one listing per page");
    assert_eq!(w.fb.mock.calls_of(MockOp::ListRecentPosts).len(), 4);
    let again = poller.discover_posts(10).await.unwrap();
    assert_eq!(again.channels_discovered, 0, "not due again yet");
}
