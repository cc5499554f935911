//! The follow-up of a comment-polling pass (triage, then auto-reply of what
//! the pass stored) answers recent items only, whatever times the platform
//! gives the comments it stored; on memory and on PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::Env;
use nexiom_connectors::{MockConnector, MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_storage::Store;

on_both_backends!(an_old_comment_does_not_open_the_auto_reply_to_old_items);

/// A pass stores a comment the platform dates 180 days back (a post found
/// late, a platform's odd time) and a fresh one. Only the fresh one is
/// auto-answered: neither the old comment nor an older pending item (three
/// days old, waiting for a person) gets a reply days late. Without the
/// bound, the follow-up claimed every pending item created since the old
/// comment's time (3 replies here).
async fn an_old_comment_does_not_open_the_auto_reply_to_old_items(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = MockConnector::new(Platform::Facebook).with_clock(env.clock.clone());
    let now = env.clock.now();
    let poller = env.auto_replying(&mock, "Merci : 9h-18h.").await.poller;
    let post = env
        .store
        .insert_post(NewScheduledPost::one_off(
            env.tenant,
            env.channel,
            Content::text("Launch"),
            now,
            now,
        ))
        .await
        .unwrap()
        .record;
    let post = env
        .store
        .update_post(
            env.tenant,
            post.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("fb-post-1".into())),
                published_at: Some(Some(now)),
                next_check_at: Some(Some(now)),
                stop_at: Some(Some(now + Duration::days(7))),
                ..PostPatch::default()
            },
            now,
        )
        .await
        .unwrap();
    // An item three days old, triaged AUTO_REPLY and still pending.
    let waiting = env
        .store
        .insert_comment(NewComment {
            tenant_id: env.tenant,
            post_id: post.id,
            platform_comment_id: "cm-waiting".into(),
            parent_platform_comment_id: None,
            author_id: Some("early".into()),
            author_name: Some("early".into()),
            text: "Vos horaires ?".into(),
            created_at: now - Duration::days(3),
            stored_at: now - Duration::days(3),
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    env.store
        .set_comment_triage(env.tenant, waiting.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();

    mock.seed_comments(
        "fb-post-1",
        [
            RemoteComment {
                created_at: now - Duration::days(180),
                ..mock.comment("cm-old", "old", "Vos horaires ?")
            },
            mock.comment("cm-new", "new", "Et vos horaires le dimanche ?"),
        ],
    );
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.comments_stored, 2);
    assert_eq!(report.triaged, 2, "both stored comments are triaged");
    assert_eq!(report.auto_replied, 1, "only the fresh comment is answered");
    let replied: Vec<Option<String>> = mock
        .calls_of(MockOp::ReplyComment)
        .into_iter()
        .map(|c| c.target)
        .collect();
    assert_eq!(replied, vec![Some("cm-new".to_owned())]);
    let waiting = env.store.get_comment(env.tenant, waiting.id).await.unwrap();
    assert_eq!(
        waiting.reply.map(|r| r.state),
        Some(ReplyState::Pending),
        "the older item still waits"
    );
}
