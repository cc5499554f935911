//! Reading a post's comments: every page once, nothing stored twice after a
//! crash before the checkpoint, a check every 5 minutes for 7 days, and no
//! polling on a platform without comments.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{Capabilities, MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_scheduler::PollingConfig;
use nexiom_storage::Store;

use super::fixture::{comments, ids, mock, poller, published, six_comments};
use crate::common::Env;

/// A platform cursor longer than a key (300 bytes) is followed and kept as
/// the checkpoint. Before, the checkpoint was refused as an over-long key
/// and the check failed at that page, every 5 minutes for 7 days, with the
/// page's comments.
pub async fn a_cursor_longer_than_a_key_is_followed_and_kept(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_cursor_padding(300);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-long", env.clock.now()).await;
    mock.seed_comments("fb-post-long", six_comments(&mock, "c"));

    let report = poller.poll_due(50, None).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.pages_read, report.comments_stored), (3, 6));
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    let cursor = checkpoint.last_cursor.unwrap();
    assert!(cursor.starts_with("4~") && cursor.len() > 300, "{cursor}");
    // The next check reads on from it.
    mock.seed_comments("fb-post-long", [mock.comment("c-6", "fan", "Late")]);
    env.advance(Duration::minutes(5));
    let later = poller.poll_due(50, None).await.unwrap();
    assert_eq!(later.comments_stored, 1);
    assert_eq!(comments(&env, post.id).await.len(), 7);
}

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
            rereading: false,
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
/// refused from the start too fails as before, after one more call, and its
/// cursor is dropped, so its next check makes one call.
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
            rereading: false,
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
            rereading: false,
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
    mock.clear_calls();
    mock.fail_permanently_next(MockOp::ListComments, "post deleted");
    env.advance(Duration::minutes(5));
    let still = poller.poll_due(50, None).await.unwrap();
    assert_eq!(still.failures.len(), 1);
    let cursors: Vec<_> = mock
        .calls_of(MockOp::ListComments)
        .into_iter()
        .map(|c| c.cursor)
        .collect();
    assert_eq!(cursors, vec![None], "one call, from the first page");
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

    // A check whose next would fall after the 7 days plans the last one at
    // their end, which reads the window to its end and ends the polling for
    // good.
    let stop = t0 + Duration::days(7);
    env.clock
        .set(stop - Duration::minutes(5) + Duration::seconds(30));
    let before_last = poller.poll_due(50, None).await.unwrap();
    assert_eq!(
        (before_last.posts_polled, before_last.posts_finished),
        (1, 0)
    );
    assert_eq!(env.post(post.id).await.next_check_at, Some(stop));
    env.clock.set(stop - Duration::minutes(1));
    mock.seed_comments("fb-post-1", [mock.comment("late", "fan", "still there?")]);
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    // The last check fails: it is tried again, as any check would be.
    env.clock.set(stop + Duration::seconds(20));
    mock.fail_transient(MockOp::ListComments, 1);
    let failed = poller.poll_due(50, None).await.unwrap();
    assert_eq!((failed.failures.len(), failed.posts_finished), (1, 0));
    env.advance(Duration::minutes(5));
    let last = poller.poll_due(50, None).await.unwrap();
    assert_eq!((last.posts_polled, last.posts_finished), (1, 1));
    assert_eq!(
        ids(&comments(&env, post.id).await),
        vec!["late".to_string()],
        "a comment of the window's last minutes"
    );
    let after = env.post(post.id).await;
    assert_eq!(after.next_check_at, None, "cleared for good");
    assert_eq!(after.last_check_at, Some(env.clock.now()));
    for _ in 0..3 {
        env.advance(Duration::minutes(5));
        assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    }
    env.advance(Duration::days(3));
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 15);
}

/// A post whose checks stopped while no worker ran, its window over since,
/// gets one last check within a day of the window's end
/// (`last_check_grace`), then none; a post whose window ended longer ago is
/// finished with no call.
pub async fn a_window_that_ended_while_no_worker_ran_is_read_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let t0 = env.clock.now();
    let post = published(&env, env.channel, "fb-post-1", t0).await;
    let older = published(&env, env.channel, "fb-post-0", t0).await;
    let a_day_earlier = PostPatch {
        stop_at: Some(Some(t0 + Duration::days(6))),
        ..PostPatch::default()
    };
    env.store
        .update_post(env.tenant, older.id, a_day_earlier, t0)
        .await
        .unwrap();
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 2);
    env.advance(Duration::days(3));
    mock.seed_comments("fb-post-1", [mock.comment("c-1", "fan", "hello")]);
    mock.seed_comments("fb-post-0", [mock.comment("c-0", "fan", "hi")]);
    env.advance(Duration::days(4) + Duration::hours(2));
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!((report.posts_polled, report.posts_finished), (1, 2));
    assert_eq!(ids(&comments(&env, post.id).await), vec!["c-1".to_string()]);
    assert!(
        comments(&env, older.id).await.is_empty(),
        "more than a day late"
    );
    for p in [post.id, older.id] {
        assert_eq!(env.post(p).await.next_check_at, None);
    }
    env.advance(Duration::minutes(5));
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 3);
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

/// A page holding a comment the store refuses (a NUL in its text) and one
/// whose time is implausible (1970, a unit mistake): the first is left out
/// and counted, the second kept with the time it was read, and the other
/// comments and the checkpoint go on as usual, at this check and the next
/// (before, the refused comment failed the post at every check for its 7
/// days; the times written are also clamped to the database's range, where
/// one out of it failed a whole batch's write on Postgres).
pub async fn a_bad_comment_does_not_stop_its_post(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-bad", env.clock.now()).await;
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    mock.seed_comments(
        "fb-post-bad",
        vec![
            mock.comment("ok-1", "fan", "Hello"),
            mock.comment("nul", "fan", "bad\0text"),
            RemoteComment {
                created_at: epoch,
                ..mock.comment("old", "fan", "From 1970?")
            },
            mock.comment("ok-2", "fan", "Bye"),
        ],
    );
    let first = poller.poll_due(50, None).await.unwrap();
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!((first.comments_stored, first.comments_refused), (3, 1));
    let stored = comments(&env, post.id).await;
    assert_eq!(ids(&stored), vec!["ok-1", "ok-2", "old"]);
    let old = stored
        .iter()
        .find(|c| c.platform_comment_id == "old")
        .unwrap();
    assert_eq!(old.created_at, env.clock.now());

    mock.seed_comments("fb-post-bad", [mock.comment("ok-3", "fan", "Later")]);
    env.advance(Duration::minutes(5));
    let next = poller.poll_due(50, None).await.unwrap();
    assert!(next.failures.is_empty(), "{:?}", next.failures);
    assert_eq!(next.comments_stored, 1);
    assert_eq!(comments(&env, post.id).await.len(), 4);
}

/// A last check that stops at the page limit with pages left is not the
/// last: the next checks read on until the last page, then polling ends.
pub async fn a_last_check_cut_short_reads_on_to_the_last_page(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock).with_config(PollingConfig {
        max_pages: 1,
        ..PollingConfig::default()
    });
    let t0 = env.clock.now();
    let post = published(&env, env.channel, "fb-post-1", t0).await;
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 1);
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    env.clock.set(t0 + Duration::days(7) + Duration::minutes(1));
    let mut finished = Vec::new();
    for _ in 0..3 {
        let report = poller.poll_due(50, None).await.unwrap();
        assert_eq!(report.posts_polled, 1);
        finished.push(report.posts_finished);
        env.advance(Duration::minutes(5));
    }
    assert_eq!(finished, vec![0, 0, 1], "three pages of two, one a check");
    assert_eq!(comments(&env, post.id).await.len(), 6);
    assert_eq!(env.post(post.id).await.next_check_at, None);
    assert_eq!(poller.poll_due(50, None).await.unwrap().posts_polled, 0);
}
