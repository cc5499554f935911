//! Reading a post's comments again from the first page, with their
//! replies, and checks that stop before their claim ends.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

use super::fixture::{comments, mock, poller, published, six_comments};
use crate::common::Env;

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
/// page where it stopped (its checkpoint was written, marked as a re-read),
/// with every reply, instead of starting over from the first page at every
/// check while the hour lasts, or going on without the replies.
pub async fn a_reread_stopped_part_way_goes_on_where_it_stopped(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_replies_under_comments();
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "ig-media-2", env.clock.now()).await;
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
    assert!(
        mock.calls_of(MockOp::ListComments)
            .iter()
            .all(|c| c.with_replies),
        "with every reply, as the re-read began"
    );
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, post.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!checkpoint.rereading, "its last page was read");

    // Done: the next check of the hour is the plain listing again.
    mock.clear_calls();
    env.advance(Duration::minutes(5));
    poller.poll_due(50, None).await.unwrap();
    let calls = mock.calls_of(MockOp::ListComments);
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].with_replies);
}

/// A platform answering each comment page in a minute, a post of 20 pages:
/// the check stops reading once half its 10-minute claim is gone and writes
/// what it read while the claim holds (nothing lost to another poller
/// taking the post over), and the next check reads on from there. The
/// channel's other post, behind it in the same lane, is handed back due as
/// it was instead of being checked under a claim about to end.
pub async fn a_slow_check_stops_before_its_claim_ends_and_goes_on(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_listing_time(env.clock.clone(), Duration::minutes(1));
    let poller = poller(&env, &mock).with_config(PollingConfig {
        concurrency: nexiom_scheduler::ConcurrencyConfig::sequential(),
        ..PollingConfig::default()
    });
    let start = env.clock.now();
    let long = published(&env, env.channel, "fb-long", start).await;
    let behind = published(&env, env.channel, "fb-behind", start + Duration::seconds(1)).await;
    let many: Vec<RemoteComment> = (0..40)
        .map(|i| mock.comment(&format!("l-{i}"), "fan", &format!("Comment {i}")))
        .collect();
    mock.seed_comments("fb-long", many);
    mock.seed_comments("fb-behind", six_comments(&mock, "b"));
    env.advance(Duration::seconds(1));

    let first = poller.poll_due(50, None).await.unwrap();
    assert_eq!(first.posts_lease_lost, 0, "{first:?}");
    assert_eq!((first.posts_polled, first.pages_read), (1, 5), "{first:?}");
    assert_eq!(comments(&env, long.id).await.len(), 10);
    let checkpoint = env
        .store
        .get_checkpoint(env.tenant, long.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.last_cursor.as_deref(), Some("10"));
    let handed_back = env.post(behind.id).await;
    assert_eq!(
        handed_back.next_check_at,
        Some(start + Duration::seconds(1)),
        "due again as it was"
    );
    assert!(comments(&env, behind.id).await.is_empty());

    // The next passes read on from the cursor, and reach the other post.
    for _ in 0..4 {
        env.advance(Duration::minutes(5));
        poller.poll_due(50, None).await.unwrap();
    }
    assert_eq!(comments(&env, long.id).await.len(), 40);
    assert_eq!(comments(&env, behind.id).await.len(), 6);
}

/// A re-read begun in the second hour and finished in the third (throttled
/// on its second page until then) counts for the hour it began: the next
/// check, still in the third hour, makes that hour's own re-read from the
/// first page, so the replies added meanwhile to the first pages' comments
/// are not left unread for another hour.
pub async fn a_reread_finished_in_the_next_hour_counts_for_the_hour_it_began(
    store: Arc<dyn Store>,
) {
    let env = Env::new(store).await;
    let mock = mock(&env).with_replies_under_comments();
    let poller = poller(&env, &mock);
    published(&env, env.channel, "ig-media-3", env.clock.now()).await;
    mock.seed_comments("ig-media-3", six_comments(&mock, "c"));
    poller.poll_due(50, None).await.unwrap();

    env.advance(Duration::minutes(60));
    mock.pass_next(MockOp::ListComments, 1);
    mock.rate_limit_next(MockOp::ListComments, std::time::Duration::from_secs(60));
    poller.poll_due(50, None).await.unwrap();
    env.advance(Duration::minutes(65));
    let finished = poller.poll_due(50, None).await.unwrap();
    assert!(finished.failures.is_empty(), "{finished:?}");

    mock.clear_calls();
    env.advance(Duration::minutes(5));
    poller.poll_due(50, None).await.unwrap();
    let calls = mock.calls_of(MockOp::ListComments);
    assert_eq!(
        calls.first().map(|c| c.cursor.clone()),
        Some(None),
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| c.with_replies), "{calls:?}");
}
