//! Reading a post's comments: every page once, nothing stored twice after a
//! crash before the checkpoint, a check every 5 minutes for 7 days, and no
//! polling on a platform without comments.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{Capabilities, MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_storage::Store;

use super::fixture::{comments, ids, mock, poller, published, six_comments};
use crate::common::Env;

/// A page holding the Page's own replies (as the library's auto-replies
/// are) among a fan's comments: only the fan's are stored (so never
/// triaged, and never answered by an auto-reply), and the checkpoint still
/// moves past the whole page.
pub async fn the_accounts_own_comments_are_not_stored(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-own", env.clock.now()).await;
    let page = format!("page-{}", env.tenant);
    mock.seed_comments(
        "fb-post-own",
        vec![
            mock.comment("fan-1", "fan", "Love it"),
            RemoteComment {
                parent_id: Some("fan-1".into()),
                ..mock.comment("own-1", &page, "Thank you!")
            },
            mock.comment("fan-2", "fan", "When?"),
            // The page's last answer, the latest comment of all.
            RemoteComment {
                created_at: env.clock.now() + Duration::minutes(1),
                ..mock.comment("own-2", &page, "Tomorrow")
            },
        ],
    );
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.comments_stored, 2);
    assert_eq!(ids(&comments(&env, post.id).await), vec!["fan-1", "fan-2"]);
    assert!(
        env.store
            .list_untriaged_comments(env.tenant, 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.author_id.as_deref() == Some("fan"))
    );
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        checkpoint.last_seen_at,
        Some(env.clock.now() + Duration::minutes(1)),
        "the checkpoint moves past the page's own last comment"
    );
}

pub async fn three_pages_of_comments_arrive_exactly_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));

    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.posts_polled, 1);
    assert_eq!(report.pages_read, 3, "every page followed");
    assert_eq!(report.comments_stored, 6);
    assert!(report.failures.is_empty());
    let stored = comments(&env, post.id).await;
    assert_eq!(ids(&stored), vec!["c-0", "c-1", "c-2", "c-3", "c-4", "c-5"]);
    let reply = stored
        .iter()
        .find(|c| c.platform_comment_id == "c-3")
        .unwrap();
    assert_eq!(reply.parent_platform_comment_id.as_deref(), Some("c-2"));
    let cursors: Vec<_> = mock
        .calls_of(MockOp::ListComments)
        .into_iter()
        .map(|c| c.cursor)
        .collect();
    assert_eq!(cursors, vec![None, Some("2".into()), Some("4".into())]);
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.last_cursor.as_deref(), Some("4"));
    let after = env.post(post.id).await;
    assert_eq!(after.last_check_at, Some(env.clock.now()));
    assert_eq!(
        after.next_check_at,
        Some(env.clock.now() + Duration::minutes(5))
    );

    // The next check re-reads only the last page and stores nothing again;
    // a comment appended later is stored once.
    env.advance(Duration::minutes(5));
    let again = poller.poll_due(50, None).await.unwrap();
    assert_eq!(
        (again.posts_polled, again.pages_read, again.comments_stored),
        (1, 1, 0)
    );
    mock.seed_comments("fb-post-1", [mock.comment("c-6", "fan", "Late")]);
    env.advance(Duration::minutes(5));
    let late = poller.poll_due(50, None).await.unwrap();
    assert_eq!(late.comments_stored, 1);
    assert_eq!(comments(&env, post.id).await.len(), 7);
}

pub async fn a_crash_before_the_checkpoint_stores_no_duplicates(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    let first = poller.poll_due(50, None).await.unwrap();
    assert_eq!(first.comments_stored, 6);

    // The crash: comments stored, checkpoint never advanced (back to its
    // state before the pass), and the post still due.
    env.store
        .save_checkpoint(CommentCheckpoint {
            tenant_id: env.tenant,
            post_id: post.id,
            last_cursor: None,
            last_seen_at: None,
            updated_at: env.clock.now(),
        })
        .await
        .unwrap();
    let restarted = poller.poll_due(50, None).await.unwrap();
    assert_eq!(restarted.posts_polled, 0, "checked already, not due yet");
    env.advance(Duration::minutes(5));
    let again = poller.poll_due(50, None).await.unwrap();
    assert_eq!(again.pages_read, 3, "read again from the old cursor");
    assert_eq!(again.comments_stored, 0, "nothing stored twice");
    let stored = comments(&env, post.id).await;
    assert_eq!(stored.len(), 6);
    assert_eq!(ids(&stored).len(), 6);
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.last_cursor.as_deref(), Some("4"));
}

/// A saved cursor the platform refuses (Graph's name an item, which may be
/// deleted since): the pass reads once more from the first page and stores
/// only what it had not, instead of failing every check for 7 days; a post
/// refused from the start too fails as before, after one more call.
pub async fn a_cursor_the_platform_refuses_is_read_again_from_the_start(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    let first = poller.poll_due(50, None).await.unwrap();
    assert_eq!(first.comments_stored, 6);
    env.store
        .save_checkpoint(CommentCheckpoint {
            tenant_id: env.tenant,
            post_id: post.id,
            last_cursor: Some("gone".into()),
            last_seen_at: None,
            updated_at: env.clock.now(),
        })
        .await
        .unwrap();
    mock.seed_comments("fb-post-1", [mock.comment("c-6", "fan", "Late")]);
    mock.clear_calls();
    env.advance(Duration::minutes(5));
    let again = poller.poll_due(50, None).await.unwrap();
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    assert_eq!((again.pages_read, again.comments_stored), (4, 1));
    let cursors: Vec<_> = mock
        .calls_of(MockOp::ListComments)
        .into_iter()
        .map(|c| c.cursor)
        .collect();
    assert_eq!(
        cursors,
        vec![
            Some("gone".into()),
            None,
            Some("2".into()),
            Some("4".into()),
            Some("6".into())
        ]
    );
    assert_eq!(comments(&env, post.id).await.len(), 7);
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.last_cursor.as_deref(), Some("6"));

    // Refused from the start too: one failure, two calls, nothing lost.
    env.store
        .save_checkpoint(CommentCheckpoint {
            tenant_id: env.tenant,
            post_id: post.id,
            last_cursor: Some("gone".into()),
            last_seen_at: None,
            updated_at: env.clock.now(),
        })
        .await
        .unwrap();
    mock.clear_calls();
    mock.fail_permanently_next(MockOp::ListComments, "post deleted");
    mock.fail_permanently_next(MockOp::ListComments, "post deleted");
    env.advance(Duration::minutes(5));
    let refused = poller.poll_due(50, None).await.unwrap();
    assert_eq!(refused.failures.len(), 1);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 2);
    assert_eq!(comments(&env, post.id).await.len(), 7);
}

pub async fn polled_every_five_minutes_and_never_after_seven_days(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let t0 = env.clock.now();
    let post = published(&env, env.channel, "fb-post-1", t0).await;

    // The first hour: a check at each 5-minute step, none in between.
    for step in 0..12 {
        assert_eq!(env.clock.now(), t0 + Duration::minutes(5 * step));
        assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 1);
        env.advance(Duration::minutes(2));
        assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
        env.advance(Duration::minutes(3));
    }
    let at: Vec<_> = mock
        .calls_of(MockOp::ListComments)
        .into_iter()
        .map(|c| c.at)
        .collect();
    let expected: Vec<_> = (0..12).map(|k| t0 + Duration::minutes(5 * k)).collect();
    assert_eq!(at, expected);

    // The last check of the 7 days ends the polling for good.
    env.clock.set(t0 + Duration::days(7) - Duration::minutes(5));
    let last = poller.poll_due(50, None).await.unwrap();
    assert_eq!((last.posts_polled, last.posts_finished), (1, 1));
    let after = env.post(post.id).await;
    assert_eq!(after.next_check_at, None, "cleared for good");
    assert_eq!(after.last_check_at, Some(env.clock.now()));
    for _ in 0..3 {
        env.advance(Duration::minutes(5));
        assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    }
    env.advance(Duration::days(3));
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 13);
    assert!(
        mock.calls_of(MockOp::ListComments)
            .iter()
            .all(|c| c.at < t0 + Duration::days(7))
    );
}

pub async fn posts_on_a_platform_without_comments_are_not_polled(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_capabilities(Capabilities {
        comments: false,
        ..Capabilities::default()
    });
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));

    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!((report.posts_polled, report.posts_unsupported), (0, 1));
    assert!(mock.calls_of(MockOp::ListComments).is_empty());
    assert!(comments(&env, post.id).await.is_empty());
    assert_eq!(
        env.post(post.id).await.next_check_at,
        None,
        "stopped for good"
    );
    env.advance(Duration::minutes(5));
    assert_eq!(
        poller.poll_due(50, None).await.unwrap().posts_unsupported,
        0
    );
}

/// A platform that lists a reply under its comment (Instagram, LinkedIn): a
/// reply added to a comment of the first page after the post was read is
/// not on the pages after the saved cursor, so the 5-minute check misses
/// it; the first check of each hour since publication reads every page
/// again and stores it, once. A platform whose new comments always come
/// last is never read again from the start.
pub async fn a_reply_on_an_earlier_page_is_found_by_the_hourly_reread(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_replies_under_comments();
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "ig-media-1", env.clock.now()).await;
    mock.seed_comments("ig-media-1", six_comments(&mock, "c"));
    let first = poller.poll_due(50, None).await.unwrap();
    assert_eq!((first.pages_read, first.comments_stored), (3, 6));

    let reply = RemoteComment {
        parent_id: Some("c-0".into()),
        ..mock.comment("r-1", "fan-2", "Me too")
    };
    mock.insert_comment_after("ig-media-1", "c-0", reply);
    env.advance(Duration::minutes(5));
    let tail = poller.poll_due(50, None).await.unwrap();
    assert_eq!(tail.posts_polled, 1);
    assert_eq!(tail.comments_stored, 0, "read on from the saved cursor");

    env.advance(Duration::minutes(55));
    let reread = poller.poll_due(50, None).await.unwrap();
    assert_eq!(reread.posts_polled, 1);
    assert_eq!(reread.comments_stored, 1);
    assert_eq!(reread.pages_read, 4, "every page from the first");
    let stored = comments(&env, post.id).await;
    let r = stored
        .iter()
        .find(|c| c.platform_comment_id == "r-1")
        .unwrap();
    assert_eq!(r.parent_platform_comment_id.as_deref(), Some("c-0"));
    assert_eq!(stored.len(), 7);

    // The next checks of the hour read on from the cursor again.
    env.advance(Duration::minutes(5));
    let after = poller.poll_due(50, None).await.unwrap();
    assert_eq!((after.posts_polled, after.pages_read), (1, 1));

    // Facebook's chronological stream: never read again from the start.
    let flat = super::fixture::mock(&env);
    let flat_poller = super::fixture::poller(&env, &flat);
    let other = published(&env, env.channel, "fb-post-2", env.clock.now()).await;
    flat.seed_comments("fb-post-2", six_comments(&flat, "d"));
    flat_poller.poll_due(50, None).await.unwrap();
    flat.insert_comment_after(
        "fb-post-2",
        "d-0",
        RemoteComment {
            parent_id: Some("d-0".into()),
            ..flat.comment("s-1", "fan-2", "Me too")
        },
    );
    env.advance(Duration::hours(2));
    flat_poller.poll_due(50, None).await.unwrap();
    assert_eq!(comments(&env, other.id).await.len(), 6);
}

/// A re-read throttled on its second page: the next check goes on from the
/// page where it stopped (its checkpoint was written), instead of starting
/// over from the first page at every check while the hour lasts.
pub async fn a_reread_stopped_part_way_goes_on_where_it_stopped(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_replies_under_comments();
    let poller = poller(&env, &mock);
    published(&env, env.channel, "ig-media-2", env.clock.now()).await;
    mock.seed_comments("ig-media-2", six_comments(&mock, "c"));
    poller.poll_due(50, None).await.unwrap();

    env.advance(Duration::minutes(60));
    mock.clear_calls();
    mock.pass_next(MockOp::ListComments, 1);
    mock.rate_limit_next(MockOp::ListComments, std::time::Duration::from_secs(60));
    let throttled = poller.poll_due(50, None).await.unwrap();
    assert_eq!(throttled.failures.len(), 1, "{throttled:?}");
    let cursors = |calls: Vec<nexiom_connectors::MockCall>| -> Vec<Option<String>> {
        calls.into_iter().map(|c| c.cursor).collect()
    };
    assert_eq!(
        cursors(mock.calls_of(MockOp::ListComments)),
        vec![None, Some("2".to_owned())]
    );

    mock.clear_calls();
    env.advance(Duration::minutes(5));
    let resumed = poller.poll_due(50, None).await.unwrap();
    assert!(resumed.failures.is_empty(), "{resumed:?}");
    assert_eq!(
        cursors(mock.calls_of(MockOp::ListComments)),
        vec![Some("2".to_owned()), Some("4".to_owned())],
        "the re-read goes on from its second page"
    );
}
