//! Conformance tests of external posts (posts of a channel made elsewhere)
//! and per-channel post discovery.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{World, event, t0, world};
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

fn listed(id: &str, published_at: Option<DateTime<Utc>>) -> DiscoveredPost {
    DiscoveredPost {
        platform_post_id: id.into(),
        url: Some(format!("https://example.com/p/{id}")),
        text: Some(format!("Post {id}")),
        published_at,
    }
}

fn run(w: &World, posts: Vec<DiscoveredPost>, at: DateTime<Utc>) -> DiscoveryRun {
    DiscoveryRun {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        posts,
        poll_window: Duration::days(7),
        next_run_at: at + mins(15),
        error: None,
        at,
    }
}

/// A comment event on `target` of the world's channel.
fn comment_event(w: &World, id: &str, target: &str, at: DateTime<Utc>) -> NewWebhookEvent {
    NewWebhookEvent {
        target_id: Some(target.into()),
        text: Some(format!("comment {id}")),
        payload: json!({"id": id}),
        ..event(w, id, EventKind::Comment, at)
    }
}

#[track_caller]
fn assert_unknown_channel<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::UnknownReference {
            entity: "channel", ..
        }) => {}
        other => panic!("expected UnknownReference(channel), got {other:?}"),
    }
}

pub async fn external_posts_are_recorded_once_per_channel_and_id(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Beta", Platform::Facebook, "page-2").await;
    let at = t0() + mins(5);

    let first = s
        .insert_external_post(w.tenant.id, w.channel.id, listed("ext-1", Some(t0())), at)
        .await
        .unwrap();
    assert!(first.created);
    let post = &first.record;
    assert_eq!(post.origin, PostOrigin::External);
    assert_eq!(post.status, PostStatus::Published);
    assert_eq!(post.platform_post_id.as_deref(), Some("ext-1"));
    assert_eq!(post.url.as_deref(), Some("https://example.com/p/ext-1"));
    assert_eq!(post.content.text, "Post ext-1");
    assert_eq!((post.publish_at, post.published_at), (t0(), Some(t0())));
    assert_eq!(
        (post.next_check_at, post.stop_at),
        (None, None),
        "not polled"
    );
    assert_eq!(post.created_at, at);
    assert_eq!(s.get_post(w.tenant.id, post.id).await.unwrap(), *post);

    let again = s
        .insert_external_post(
            w.tenant.id,
            w.channel.id,
            listed("ext-1", None),
            at + mins(1),
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record, *post);
    // Another tenant's channel has its own post under the same id; a channel
    // of another tenant is unknown.
    let theirs = s
        .insert_external_post(other.tenant.id, other.channel.id, listed("ext-1", None), at)
        .await
        .unwrap();
    assert!(theirs.created);
    assert_ne!(theirs.record.id, post.id);
    assert_unknown_channel(
        s.insert_external_post(w.tenant.id, other.channel.id, listed("ext-2", None), at)
            .await,
    );
    match s
        .insert_external_post(w.tenant.id, w.channel.id, listed("", None), at)
        .await
    {
        Err(StorageError::Invalid(CoreError::Invalid {
            field: "platform_post_id",
            ..
        })) => {}
        other => panic!("expected Invalid(platform_post_id), got {other:?}"),
    }

    // A post published here is never duplicated as an external one.
    let ours = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("ours"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let ours = s
        .update_post(
            w.tenant.id,
            ours.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("ours-1".into())),
                published_at: Some(Some(t0())),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let same = s
        .insert_external_post(w.tenant.id, w.channel.id, listed("ours-1", None), at)
        .await
        .unwrap();
    assert!(!same.created);
    assert_eq!(same.record.id, ours.id);
    assert_eq!(same.record.origin, PostOrigin::Scheduled);
    let found = |id: &'static str| {
        let store = Arc::clone(&store);
        let (tenant, channel) = (w.tenant.id, w.channel.id);
        async move {
            store
                .find_post_by_platform_id(tenant, channel, id)
                .await
                .unwrap()
                .map(|p| p.id)
        }
    };
    assert_eq!(found("ours-1").await, Some(ours.id));
    assert_eq!(found("ext-1").await, Some(post.id));
    assert_eq!(found("nothing").await, None);
    assert_eq!(
        s.find_post_by_platform_id(other.tenant.id, w.channel.id, "ext-1")
            .await
            .unwrap(),
        None,
        "another tenant sees nothing"
    );

    // External posts are not the channel's own: not counted against its
    // cap, never claimed for publishing.
    assert_eq!(
        s.count_posts(
            w.tenant.id,
            w.channel.id,
            t0() - mins(1),
            t0() + mins(60),
            PostStatus::ALL
        )
        .await
        .unwrap(),
        1,
        "only the post published here"
    );
    let claimed = s
        .claim_due_posts(at + Duration::days(1), 100, "w1", Duration::minutes(5))
        .await
        .unwrap();
    assert!(claimed.is_empty());
    let listed_all = s
        .list_posts(w.tenant.id, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(
        listed_all.len(),
        2,
        "external posts are listed with the others"
    );
}

pub async fn post_discovery_is_claimed_and_records_its_runs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Beta", Platform::Instagram, "ig-2").await;
    let at = t0() + mins(30);

    // Settings: bounded, the tenant's channel only, off by default.
    assert_eq!(
        s.get_post_discovery(w.tenant.id, w.channel.id)
            .await
            .unwrap(),
        None
    );
    for bad in [0, MAX_DISCOVERY_POSTS + 1] {
        match s
            .set_post_discovery(w.tenant.id, w.channel.id, bad, t0())
            .await
        {
            Err(StorageError::Invalid(CoreError::Invalid {
                field: "recent_posts",
                ..
            })) => {}
            other => panic!("expected Invalid(recent_posts), got {other:?}"),
        }
    }
    assert_unknown_channel(
        s.set_post_discovery(w.tenant.id, other.channel.id, 5, t0())
            .await,
    );
    let on = s
        .set_post_discovery(w.tenant.id, w.channel.id, 10, t0())
        .await
        .unwrap();
    assert_eq!(
        (
            on.recent_posts,
            on.next_run_at,
            on.last_run_at,
            on.created_at
        ),
        (10, t0(), None, t0())
    );
    let changed = s
        .set_post_discovery(w.tenant.id, w.channel.id, 25, t0() + mins(1))
        .await
        .unwrap();
    assert_eq!((changed.recent_posts, changed.created_at), (25, t0()));
    assert_eq!(changed.next_run_at, t0() + mins(1));
    // Another tenant naming this channel, now that it has a discovery row,
    // neither changes it nor reads it back.
    assert_unknown_channel(
        s.set_post_discovery(other.tenant.id, w.channel.id, 1, t0() + mins(9))
            .await,
    );
    assert_eq!(
        s.get_post_discovery(w.tenant.id, w.channel.id)
            .await
            .unwrap()
            .map(|d| (d.recent_posts, d.next_run_at)),
        Some((25, t0() + mins(1)))
    );
    s.set_post_discovery(other.tenant.id, other.channel.id, 3, t0() + mins(40))
        .await
        .unwrap();
    assert_eq!(
        s.get_post_discovery(other.tenant.id, w.channel.id)
            .await
            .unwrap(),
        None
    );

    // Claims: the due ones, once per lease.
    let claimed = s.claim_post_discoveries(at, 10, mins(10)).await.unwrap();
    assert_eq!(claimed.len(), 1, "the other channel is not due yet");
    assert_eq!(claimed[0].channel_id, w.channel.id);
    assert_eq!(claimed[0].next_run_at, at + mins(10));
    assert!(
        s.claim_post_discoveries(at, 10, mins(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.claim_post_discoveries(at, 10, Duration::zero()).await,
        Err(StorageError::Invalid(_))
    ));

    // Before the run: a post known from a comment only, and one published here.
    s.insert_event(comment_event(&w, "c-1", "from-comment", t0() + mins(20)))
        .await
        .unwrap();
    let routed = s.route_unrouted_events(None, 10, at).await.unwrap();
    assert_eq!(routed.external_posts_created, 1);
    let inserted = s
        .insert_external_post(
            w.tenant.id,
            w.channel.id,
            listed("inserted", Some(t0())),
            at,
        )
        .await
        .unwrap()
        .record;
    let ours = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("ours"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let ours = s
        .update_post(
            w.tenant.id,
            ours.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("ours-1".into())),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let polled_before = s
        .list_posts_due_for_polling(at + Duration::days(30), 100)
        .await
        .unwrap();
    assert!(polled_before.is_empty(), "nothing external is polled yet");

    let recent = t0() - Duration::days(1);
    let old = t0() - Duration::days(10);
    let outcome = s
        .record_discovery(run(
            &w,
            vec![
                listed("new-recent", Some(recent)),
                listed("new-old", Some(old)),
                listed("from-comment", Some(recent)),
                listed("new-recent", Some(recent)),
                listed("inserted", Some(t0() - mins(5))),
                listed("ours-1", Some(t0())),
                DiscoveredPost {
                    url: None,
                    text: None,
                    ..listed("no-time", None)
                },
            ],
            at,
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DiscoveryOutcome {
            posts_created: 3,
            polls_started: 4,
        }
    );
    let post = |id: &'static str| {
        let store = Arc::clone(&store);
        let (tenant, channel) = (w.tenant.id, w.channel.id);
        async move {
            store
                .find_post_by_platform_id(tenant, channel, id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let new_recent = post("new-recent").await;
    assert_eq!(new_recent.origin, PostOrigin::External);
    assert_eq!(new_recent.content.text, "Post new-recent");
    assert_eq!(
        (new_recent.publish_at, new_recent.published_at),
        (recent, Some(recent))
    );
    assert_eq!(
        (new_recent.next_check_at, new_recent.stop_at),
        (Some(at), Some(recent + Duration::days(7)))
    );
    let new_old = post("new-old").await;
    assert_eq!(
        (new_old.next_check_at, new_old.stop_at),
        (None, Some(old + Duration::days(7))),
        "outside its window: recorded, not polled"
    );
    let no_time = post("no-time").await;
    assert_eq!(
        (no_time.publish_at, no_time.published_at, no_time.url),
        (at, None, None)
    );
    assert_eq!(
        (no_time.next_check_at, no_time.stop_at),
        (Some(at), Some(at + Duration::days(7)))
    );
    assert_eq!(no_time.content.text, "");
    let from_comment = post("from-comment").await;
    assert_eq!(
        (
            from_comment.published_at,
            from_comment.publish_at,
            from_comment.url.as_deref()
        ),
        (
            Some(recent),
            recent,
            Some("https://example.com/p/from-comment")
        )
    );
    assert_eq!(from_comment.next_check_at, Some(at));
    assert_eq!(
        s.list_comments(w.tenant.id, from_comment.id, 10)
            .await
            .unwrap()
            .len(),
        1,
        "its comment stays on it"
    );
    let polled = post("inserted").await;
    assert_eq!(polled.id, inserted.id);
    assert_eq!(polled.published_at, Some(t0()), "its own time is kept");
    assert_eq!(
        (polled.next_check_at, polled.stop_at),
        (Some(at), Some(t0() - mins(5) + Duration::days(7)))
    );
    assert_eq!(
        post("ours-1").await,
        ours,
        "a post published here is left alone"
    );

    let discovery = s
        .get_post_discovery(w.tenant.id, w.channel.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            discovery.next_run_at,
            discovery.last_run_at,
            discovery.last_error
        ),
        (at + mins(15), Some(at), None)
    );

    // The discovered posts are polled like any published post.
    let mut due: Vec<PostId> = s
        .list_posts_due_for_polling(at, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    due.sort();
    let mut expected = vec![new_recent.id, no_time.id, from_comment.id, inserted.id];
    expected.sort();
    assert_eq!(due, expected);

    // The same listing again creates nothing and starts nothing; a failed
    // run records its error.
    let mut failed = run(&w, vec![listed("new-recent", Some(recent))], at + mins(15));
    failed.error = Some("the platform refused".into());
    assert_eq!(
        s.record_discovery(failed).await.unwrap(),
        DiscoveryOutcome::default()
    );
    let discovery = s
        .get_post_discovery(w.tenant.id, w.channel.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        discovery.last_error.as_deref(),
        Some("the platform refused")
    );
    assert_unknown_channel(
        s.record_discovery(DiscoveryRun {
            channel_id: other.channel.id,
            ..run(&w, Vec::new(), at)
        })
        .await,
    );

    // Off: the row goes, the posts stay.
    assert!(
        !s.clear_post_discovery(other.tenant.id, w.channel.id)
            .await
            .unwrap()
    );
    assert!(
        s.clear_post_discovery(w.tenant.id, w.channel.id)
            .await
            .unwrap()
    );
    assert!(
        !s.clear_post_discovery(w.tenant.id, w.channel.id)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_post_discovery(w.tenant.id, w.channel.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(post("new-recent").await.id, new_recent.id);
}

/// Routers, discovery runs and direct inserts racing on the same posts made
/// elsewhere create each exactly once, with every comment on it.
pub async fn concurrent_recorders_create_one_external_post(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::Facebook, "page-1").await);
    let targets = ["ext-a", "ext-b", "ext-c"];
    let n = 60;
    for i in 0..n {
        let target = targets[i % targets.len()];
        store
            .insert_event(comment_event(
                &w,
                &format!("c-{i}"),
                target,
                t0() + Duration::seconds(i as i64),
            ))
            .await
            .unwrap();
    }
    let at = t0() + mins(60);
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = Arc::clone(&store);
        let w = Arc::clone(&w);
        tasks.push(tokio::spawn(async move {
            let mut created = 0;
            match worker {
                0 => {
                    let posts = targets.iter().map(|t| listed(t, Some(t0()))).collect();
                    created += store
                        .record_discovery(run(&w, posts, at))
                        .await
                        .unwrap()
                        .posts_created;
                }
                1 => {
                    for t in targets {
                        let r = store
                            .insert_external_post(w.tenant.id, w.channel.id, listed(t, None), at)
                            .await
                            .unwrap();
                        created += u64::from(r.created);
                    }
                }
                _ => loop {
                    let r = store.route_unrouted_events(None, 4, at).await.unwrap();
                    if r.processed == 0 {
                        break;
                    }
                    created += r.external_posts_created;
                },
            }
            created
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap();
    }
    let s = &*store;
    assert!(s.list_unrouted_events(None, 10).await.unwrap().is_empty());
    assert_eq!(created, 3, "each post created by exactly one recorder");
    let posts = s
        .list_posts(w.tenant.id, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), 3);
    let mut comments = 0;
    for post in &posts {
        assert_eq!(post.origin, PostOrigin::External);
        comments += s
            .list_comments(w.tenant.id, post.id, 100)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(comments, n, "every comment stored once, on its post");
}
