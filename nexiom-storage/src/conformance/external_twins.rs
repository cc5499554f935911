//! Conformance test of a published post meeting the external post recorded
//! for its platform id while its publish's outcome was unclear.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use crate::Store;

/// A post settled `published` with the platform id of an external post of
/// its channel (a webhook comment or a discovery run recorded it while the
/// publish's outcome was unclear) takes over that post's comments and
/// checkpoint, and the external post is no longer polled; a post of another
/// channel with the same id is left alone.
pub async fn a_published_post_takes_over_its_external_twin(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let elsewhere = world(s, "Beta", Platform::Facebook, "page-2").await;
    let now = t0();
    let mins = Duration::minutes;
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("launch"),
            now,
            now,
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(
        s.claim_due_posts(now, 10, "w1", mins(5))
            .await
            .unwrap()
            .len(),
        1
    );

    let listed = |id: &str| DiscoveredPost {
        platform_post_id: id.into(),
        url: None,
        text: Some("launch".into()),
        published_at: Some(now),
    };
    let polled = PostPatch {
        next_check_at: Some(Some(now)),
        stop_at: Some(Some(now + Duration::days(7))),
        ..PostPatch::default()
    };
    // Ours recorded by a webhook comment (not polled), theirs by discovery.
    let ours = s
        .insert_external_post(w.tenant.id, w.channel.id, listed("fb-1"), now)
        .await
        .unwrap()
        .record;
    let theirs = s
        .insert_external_post(
            elsewhere.tenant.id,
            elsewhere.channel.id,
            listed("fb-1"),
            now,
        )
        .await
        .unwrap()
        .record;
    s.update_post(elsewhere.tenant.id, theirs.id, polled, now)
        .await
        .unwrap();
    let externals = [ours, theirs];
    let comment = |post: PostId| NewComment {
        tenant_id: w.tenant.id,
        post_id: post,
        platform_comment_id: "c-1".into(),
        parent_platform_comment_id: None,
        author_id: Some("u-1".into()),
        author_name: None,
        text: "first!".into(),
        created_at: now,
        stored_at: now,
        hidden: false,
    };
    let stored = s
        .insert_comment(comment(externals[0].id))
        .await
        .unwrap()
        .record;
    s.save_checkpoint(CommentCheckpoint {
        tenant_id: w.tenant.id,
        post_id: externals[0].id,
        last_cursor: Some("cursor-1".into()),
        last_seen_at: Some(now),
        updated_at: now,
        rereading: false,
    })
    .await
    .unwrap();

    let at = now + mins(2);
    let settled = s
        .settle_posts(
            "w1",
            &[PostSettlement {
                tenant_id: w.tenant.id,
                post_id: post.id,
                status: PostStatus::Published,
                retry_count: Some(1),
                error_message: None,
                next_attempt_at: None,
                published: Some(PublishedFields {
                    platform_post_id: "fb-1".into(),
                    url: None,
                    published_at: at,
                    next_check_at: Some(at),
                    stop_at: Some(at + Duration::days(7)),
                }),
                run: None,
            }],
            at,
        )
        .await
        .unwrap();
    assert_eq!(settled, vec![post.id]);

    let ids = |v: Vec<Comment>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_comments(w.tenant.id, post.id, 10).await.unwrap()),
        vec![stored.id],
        "the comment moved, same row"
    );
    assert!(
        s.list_comments(w.tenant.id, externals[0].id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let checkpoint = s
        .get_checkpoint(w.tenant.id, post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.last_cursor.as_deref(), Some("cursor-1"));
    assert_eq!(
        s.get_checkpoint(w.tenant.id, externals[0].id)
            .await
            .unwrap(),
        None
    );
    let retired = s.get_post(w.tenant.id, externals[0].id).await.unwrap();
    assert_eq!(retired.next_check_at, None, "no longer polled");
    // Polled once, under the post published here; the other channel's post
    // is its own.
    let due: Vec<PostId> = s
        .list_posts_due_for_polling(at, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(due, vec![externals[1].id, post.id]);
    // A later discovery run listing the post starts no polling of the twin.
    s.set_post_discovery(w.tenant.id, w.channel.id, 5, at)
        .await
        .unwrap();
    s.record_discovery(DiscoveryRun {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        posts: vec![listed("fb-1")],
        poll_window: Duration::days(7),
        next_run_at: at + mins(15),
        error: None,
        at,
    })
    .await
    .unwrap();
    let twin = s.get_post(w.tenant.id, externals[0].id).await.unwrap();
    assert_eq!(twin.next_check_at, None, "the twin stays retired");
    // The comment polled again under the post is the one stored.
    let again = s.insert_comment(comment(post.id)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record.id, stored.id);
}
