//! What holds up one post holds up no other: a failing post, a rate-limited
//! channel, posts claimed by another poller; a stopping pass hands its
//! claimed posts back.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

use super::fixture::{comments, mock, poller, published, sequential_poller, six_comments};
use crate::common::{Env, batch};

pub async fn a_failing_post_does_not_stop_another(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = sequential_poller(&env, &mock);
    let now = env.clock.now();
    let failing = published(&env, env.channel, "fb-post-1", now - Duration::minutes(1)).await;
    let fine = published(&env, env.channel, "fb-post-2", now).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "a"));
    mock.seed_comments("fb-post-2", six_comments(&mock, "b"));
    mock.fail_permanently_next(MockOp::ListComments, "post deleted");

    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].post_id, failing.id);
    assert_eq!(report.posts_polled, 1);
    assert_eq!(comments(&env, failing.id).await.len(), 0);
    assert_eq!(comments(&env, fine.id).await.len(), 6);
    // The failed post is tried again at the next step, and then succeeds.
    let failed = env.post(failing.id).await;
    assert_eq!(failed.next_check_at, Some(now + Duration::minutes(5)));
    assert_eq!(failed.last_check_at, None);
    env.advance(Duration::minutes(5));
    let next = poller.poll_due(50, None).await.unwrap();
    assert!(next.failures.is_empty());
    assert_eq!(comments(&env, failing.id).await.len(), 6);
}

/// A post the platform refuses at every check (deleted: Graph's `#100`
/// "does not exist") is checked less and less often: the interval after
/// the first failure, twice as long after each one in a row, at most an
/// hour; and every 5 minutes again once a check reads. An outage before
/// them is retried after the interval and not counted.
pub async fn a_post_refused_at_every_check_is_checked_less_often(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = sequential_poller(&env, &mock);
    let gone = published(&env, env.channel, "fb-gone", env.clock.now()).await;
    // An outage is no refusal: retried after the interval, not counted.
    mock.fail_transient(MockOp::ListComments, 1);
    assert_eq!(poller.poll_due(50, None).await.unwrap().failures.len(), 1);
    let post = env.post(gone.id).await;
    assert_eq!(post.poll_failures, 0);
    assert_eq!(
        post.next_check_at,
        Some(env.clock.now() + Duration::minutes(5))
    );
    env.advance(Duration::minutes(5));
    let start = env.clock.now();
    let error = nexiom_connectors::ConnectorError::Permanent {
        platform: "facebook".into(),
        detail: nexiom_connectors::ApiError::message(
            "(#100) Object with ID 'fb-gone' does not exist (subcode 33)",
        ),
    };
    mock.fail_next(MockOp::ListComments, 6, error);
    let mut checks = 0;
    for (failures, wait) in [(1u32, 5i64), (2, 10), (3, 20), (4, 40), (5, 60), (6, 60)] {
        let report = poller.poll_due(50, None).await.unwrap();
        checks += 1;
        assert_eq!(report.failures.len(), 1, "check {failures}");
        let now = env.clock.now();
        let post = env.post(gone.id).await;
        assert_eq!(post.poll_failures, failures);
        assert_eq!(post.next_check_at, Some(now + Duration::minutes(wait)));
        env.advance(Duration::minutes(wait - 1));
        let early = poller.poll_due(50, None).await.unwrap();
        assert_eq!(early.pages_read + early.failures.len() as u64, 0);
        env.advance(Duration::minutes(1));
    }
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), checks + 1);
    // 3 h 15 min of refusals: 6 calls, where every 5 minutes made 39.
    assert_eq!(env.clock.now() - start, Duration::minutes(195));
    // The platform answers again: back to every 5 minutes.
    mock.seed_comments("fb-gone", six_comments(&mock, "g"));
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!((report.posts_polled, report.failures.len()), (1, 0));
    let post = env.post(gone.id).await;
    assert_eq!(post.poll_failures, 0);
    assert_eq!(
        post.next_check_at,
        Some(env.clock.now() + Duration::minutes(5))
    );
    assert_eq!(comments(&env, gone.id).await.len(), 6);
}

/// Past the window's end a post the platform keeps refusing still gets
/// the retries its last check's grace has room for: the longer wait is cut
/// to leave one before the grace ends.
pub async fn refusals_after_the_window_keep_the_graces_retries(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock).with_config(PollingConfig {
        concurrency: ConcurrencyConfig::sequential(),
        last_check_grace: Duration::hours(1),
        ..PollingConfig::default()
    });
    let now = env.clock.now();
    let post = published(&env, env.channel, "fb-late", now).await;
    let stop = now - Duration::minutes(1);
    env.store
        .update_post(
            env.tenant,
            post.id,
            PostPatch {
                stop_at: Some(Some(stop)),
                ..PostPatch::default()
            },
            now,
        )
        .await
        .unwrap();
    let error = nexiom_connectors::ConnectorError::Permanent {
        platform: "facebook".into(),
        detail: nexiom_connectors::ApiError::message("(#100) does not exist"),
    };
    mock.fail_next(MockOp::ListComments, 10, error);
    // Refused at stop+1, +6, +16, +36 (next due +76, cut to +55: the
    // grace ends at +60), +55; then no room is left.
    let mut at = Vec::new();
    for _ in 0..10 {
        let report = poller.poll_due(50, None).await.unwrap();
        if !report.failures.is_empty() {
            at.push((env.clock.now() - stop).num_minutes());
        }
        let next = env.post(post.id).await.next_check_at;
        let Some(next) = next else { break };
        env.clock.set(next.max(env.clock.now()));
    }
    assert_eq!(at, vec![1, 6, 16, 36, 55]);
    assert_eq!(env.post(post.id).await.next_check_at, None);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 5);
}

pub async fn a_rate_limited_channel_is_skipped_until_retry_after(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let other = env
        .store
        .create_channel(NewChannel {
            tenant_id: env.tenant,
            platform: Platform::Facebook,
            external_account_id: "page-other".into(),
            name: "Other page".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("token")),
                ..Credentials::default()
            },
            created_at: env.clock.now(),
        })
        .await
        .unwrap();
    let mock = mock(&env);
    let poller = sequential_poller(&env, &mock);
    let t0 = env.clock.now();
    let limited_a = published(&env, env.channel, "fb-a", t0 - Duration::minutes(2)).await;
    let limited_b = published(&env, env.channel, "fb-b", t0 - Duration::minutes(1)).await;
    let free = published(&env, other.id, "fb-c", t0).await;
    for (id, prefix) in [("fb-a", "a"), ("fb-b", "b"), ("fb-c", "c")] {
        mock.seed_comments(id, six_comments(&mock, prefix));
    }
    mock.rate_limit_next(MockOp::ListComments, std::time::Duration::from_secs(600));

    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(
        report.posts_rate_limited, 2,
        "the limited post and its sibling"
    );
    assert_eq!(report.posts_polled, 1, "another channel is not held up");
    let targets = |mock: &MockConnector| -> Vec<String> {
        mock.calls_of(MockOp::ListComments)
            .into_iter()
            .filter_map(|c| c.target)
            .filter(|t| t != "fb-c")
            .collect()
    };
    assert_eq!(targets(&mock), vec!["fb-a"], "the sibling is not asked");
    assert_eq!(
        poller.channel_not_before(env.channel),
        Some(t0 + Duration::minutes(10))
    );
    assert_eq!(comments(&env, free.id).await.len(), 6);
    for post in [limited_a.id, limited_b.id] {
        assert_eq!(
            env.post(post).await.next_check_at,
            Some(t0 + Duration::minutes(10))
        );
    }

    // At +5 minutes only the free channel is polled.
    env.advance(Duration::minutes(5));
    let during = poller.poll_due(50, None).await.unwrap();
    assert_eq!(during.posts_polled, 1);
    assert_eq!(targets(&mock).len(), 1);

    // After Retry-After both posts are polled again.
    env.advance(Duration::minutes(5));
    let after = poller.poll_due(50, None).await.unwrap();
    assert_eq!(after.posts_polled, 3);
    assert_eq!(poller.channel_not_before(env.channel), None);
    assert_eq!(comments(&env, limited_a.id).await.len(), 6);
    assert_eq!(comments(&env, limited_b.id).await.len(), 6);
}

/// A throttle met by one poller holds the channel for every process: a
/// second poller (another process: its own memory, the same store) polls
/// nothing of the channel before the Retry-After, and the publish queue
/// claims none of its due posts either; another channel goes on. The reverse
/// too: a hold recorded by publishing keeps the poller off the channel.
pub async fn a_throttle_met_by_one_poller_holds_the_channel_for_every_process(
    store: Arc<dyn Store>,
) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let first = sequential_poller(&env, &mock);
    let second = sequential_poller(&env, &mock);
    let t0 = env.clock.now();
    let polled = published(&env, env.channel, "fb-a", t0 - Duration::minutes(1)).await;
    mock.seed_comments("fb-a", six_comments(&mock, "a"));
    mock.rate_limit_next(MockOp::ListComments, std::time::Duration::from_secs(600));
    let report = first.poll_due(50, None).await.unwrap();
    assert_eq!(report.posts_rate_limited, 1);

    // The post's lease ends before the hold does: the second poller, which
    // met no throttle itself, still leaves the channel alone.
    env.store
        .update_post(
            env.tenant,
            polled.id,
            PostPatch {
                next_check_at: Some(Some(t0)),
                ..PostPatch::default()
            },
            t0,
        )
        .await
        .unwrap();
    env.advance(Duration::minutes(2));
    assert_eq!(second.channel_not_before(env.channel), None);
    let during = second.poll_due(50, None).await.unwrap();
    assert_eq!(during.posts_polled, 0, "held for every poller");
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 1);
    let gateway = Arc::new(MockGateway::new());
    let queue = env.queue("publisher", gateway.clone());
    env.post_at("Due now", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);

    env.advance(Duration::minutes(9));
    let after = second.poll_due(50, None).await.unwrap();
    assert_eq!(after.posts_polled, 1);
    assert_eq!(comments(&env, polled.id).await.len(), 6);
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);

    // A hold publishing recorded keeps the poller off the channel too.
    env.store
        .throttle_channel(
            env.tenant,
            env.channel,
            env.clock.now() + Duration::minutes(30),
        )
        .await
        .unwrap();
    env.advance(Duration::minutes(6));
    let held = second.poll_due(50, None).await.unwrap();
    assert_eq!(held.posts_polled, 0);
}

pub async fn claimed_posts_are_skipped_and_a_stopping_pass_hands_its_posts_back(
    store: Arc<dyn Store>,
) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let now = env.clock.now();
    let a = published(&env, env.channel, "fb-a", now - Duration::minutes(1)).await;
    let b = published(&env, env.channel, "fb-b", now).await;
    mock.seed_comments("fb-a", six_comments(&mock, "a"));

    // Another poller holds `a`: this pass polls only `b`.
    let held = env
        .store
        .claim_polls(now, 1, Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(held[0].post.id, a.id);
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!((report.posts_polled, report.comments_stored), (1, 0));
    assert_eq!(comments(&env, a.id).await.len(), 0);

    // A pass that is stopping hands its claimed posts back, due as they were.
    env.advance(Duration::minutes(10));
    let (trigger, shutdown) = shutdown_channel();
    trigger.trigger();
    let stopped = poller.poll_due(50, Some(&shutdown)).await.unwrap();
    // Claimed, then handed back: nothing else counted.
    let handed_back = PollReport {
        posts_claimed: 2,
        ..PollReport::default()
    };
    assert_eq!(stopped, handed_back);
    assert_eq!(
        env.post(a.id).await.next_check_at,
        Some(now + Duration::minutes(10))
    );
    assert_eq!(
        env.post(b.id).await.next_check_at,
        Some(now + Duration::minutes(5))
    );
    assert!(
        mock.calls_of(MockOp::ListComments)
            .iter()
            .all(|c| c.target.as_deref() != Some("fb-a"))
    );

    // The other poller's claim has lapsed: `a` is polled now.
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!((report.posts_polled, report.comments_stored), (2, 6));
    assert_eq!(report.posts_lease_lost, 0);
}
