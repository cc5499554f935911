//! Publishing rules of behaviour.md ("Scheduled publishing"), on memory and on
//! Postgres: retries, Retry-After, token refresh, permanent errors, ambiguous
//! outcomes, crashes mid-publish (series occurrences are in
//! `series_publishing.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::{Env, batch};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    one_off_post_is_published_once_with_polling_armed,
    fails_twice_then_succeeds_gives_three_runs,
    fails_three_times_ends_failed_with_the_last_error,
    retry_after_600_seconds_delays_the_next_attempt,
    a_throttle_without_retry_after_holds_the_channel,
    permanent_error_fails_at_once,
    unauthorized_refreshes_the_token_once,
    unauthorized_on_the_last_attempt_still_refreshes_and_retries,
    unauthorized_after_refresh_fails,
    timeout_after_send_is_found_by_lookup,
    timeout_after_send_without_lookup_is_outcome_unknown,
    timeout_after_send_not_found_is_retried_as_a_new_attempt,
    a_post_shown_late_after_a_timeout_is_found_before_publishing_again,
    a_failing_lookup_before_publishing_again_is_retried,
    a_throttled_lookup_holds_the_channel,
    a_refresh_that_fails_for_now_retries_the_post_later,
    not_found_on_the_last_attempt_fails_for_good,
    crash_after_the_call_is_settled_by_lookup,
    a_post_shown_late_after_a_crash_is_found_before_publishing_again,
    crash_during_an_attempt_not_found_is_retried,
    crash_after_the_claim_before_the_call_publishes_once,
    content_the_channel_refuses_fails_before_any_call,
);

fn transient(message: &str) -> MockStep {
    MockStep::Fail(PublishFailure::Transient {
        message: message.into(),
        retry_after: None,
    })
}

async fn one_off_post_is_published_once_with_polling_armed(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let queue = env.queue("w1", gateway.clone());
    let post = env
        .post_at("Hello", env.clock.now() + Duration::hours(1))
        .await;

    let early = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(early.claimed, 0, "not due yet");

    env.advance(Duration::hours(1));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.claimed, report.published), (1, 1));
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some("mock-1"));
    assert!(stored.url.is_some());
    let published_at = stored.published_at.unwrap();
    assert_eq!(published_at, env.clock.now());
    assert_eq!(stored.next_check_at, Some(published_at));
    assert_eq!(stored.stop_at, Some(published_at + Duration::days(7)));
    assert_eq!(stored.lease_owner, None);
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, PostRunStatus::Success);
    assert!(runs[0].finished_at.is_some());

    // Running again publishes nothing more.
    env.advance(Duration::hours(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(gateway.calls_for(&post.id.to_string()), 1);
}

async fn fails_twice_then_succeeds_gives_three_runs(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([transient("HTTP 503"), transient("connection reset")]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;

    let first = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(first.retrying, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Queued);
    assert_eq!(stored.retry_count, 1);
    // Backoff without jitter: 60 s after attempt 1, 120 s after attempt 2.
    assert_eq!(
        stored.next_attempt_at,
        Some(env.clock.now() + Duration::seconds(60))
    );
    env.advance(Duration::seconds(59));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    env.advance(Duration::seconds(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    env.advance(Duration::seconds(120));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);

    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.retry_count, 3);
    assert_eq!(stored.error_message, None);
    let runs = env.runs(post.id).await;
    let statuses: Vec<_> = runs.iter().map(|r| (r.attempt, r.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (1, PostRunStatus::Failed),
            (2, PostRunStatus::Failed),
            (3, PostRunStatus::Success)
        ]
    );
    assert!(runs[0].error.as_deref().unwrap().contains("HTTP 503"));
    assert_eq!(gateway.calls().len(), 3);
}

async fn fails_three_times_ends_failed_with_the_last_error(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([
        transient("first"),
        transient("second"),
        transient("third and last"),
    ]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    for _ in 0..3 {
        queue.run_due(&batch(10), None).await.unwrap();
        env.advance(Duration::minutes(10));
    }
    // Nothing more is attempted afterwards.
    env.advance(Duration::hours(2));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);

    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    let error = stored.error_message.unwrap();
    assert!(error.contains("third and last"), "{error}");
    assert_eq!(stored.retry_count, 3);
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == PostRunStatus::Failed));
    assert_eq!(gateway.calls().len(), 3);
}

async fn retry_after_600_seconds_delays_the_next_attempt(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::RateLimited {
        message: "HTTP 429".into(),
        retry_after: Some(Duration::seconds(600)),
    })]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    let failed_at = env.clock.now();
    queue.run_due(&batch(10), None).await.unwrap();
    let stored = env.post(post.id).await;
    assert!(stored.next_attempt_at.unwrap() >= failed_at + Duration::seconds(600));

    env.advance(Duration::seconds(599));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(gateway.calls().len(), 1, "no attempt before Retry-After");
    env.advance(Duration::seconds(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let runs = env.runs(post.id).await;
    assert!(runs[1].started_at - runs[0].started_at >= Duration::seconds(600));
}

/// Meta's throttling codes come as a 400 without Retry-After: the channel is
/// still held back (for the post's backoff), so its other due posts are not
/// attempted into the throttle, each spending an attempt.
async fn a_throttle_without_retry_after_holds_the_channel(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::RateLimited {
        message: "(#4) Application request limit reached".into(),
        retry_after: None,
    })]);
    let queue = env.queue("w1", gateway.clone());
    let mut posts = Vec::new();
    for text in ["One", "Two", "Three"] {
        posts.push(env.post_at(text, env.clock.now()).await);
    }
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.retrying, 1);
    assert_eq!(gateway.calls().len(), 1, "one call into the throttle");
    let mut untouched = 0;
    for post in &posts {
        let stored = env.post(post.id).await;
        assert_eq!(stored.status, PostStatus::Queued);
        untouched += usize::from(stored.retry_count == 0);
    }
    assert_eq!(untouched, 2, "the other posts spent no attempt");
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    env.advance(Duration::minutes(10));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 3);
    assert_eq!(gateway.calls().len(), 4);
}

async fn permanent_error_fails_at_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::Permanent(
        "(#100) the link is not allowed".into(),
    ))]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(
        stored
            .error_message
            .unwrap()
            .contains("link is not allowed")
    );
    assert_eq!(env.runs(post.id).await.len(), 1);
    assert_eq!(gateway.calls().len(), 1);
}

async fn unauthorized_refreshes_the_token_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::Unauthorized(
        "token expired".into(),
    ))]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.refreshes(), 1);
    assert_eq!(gateway.calls().len(), 2);
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, PostRunStatus::Failed);
    assert_eq!(runs[1].status, PostRunStatus::Success);
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    assert_eq!(
        channel.credentials.access_token.unwrap().expose(),
        "refreshed-1"
    );
}

async fn unauthorized_after_refresh_fails(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let unauthorized = MockStep::Fail(PublishFailure::Unauthorized("token revoked".into()));
    gateway.script([unauthorized.clone(), unauthorized]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    assert_eq!(gateway.refreshes(), 1, "refreshed once only");
    assert_eq!(gateway.calls().len(), 2);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(stored.error_message.unwrap().contains("token revoked"));
}

async fn timeout_after_send_is_found_by_lookup(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::TimeoutAfterSend { created: true }]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some("mock-1"));
    assert_eq!(
        gateway.calls_for(&post.id.to_string()),
        1,
        "one platform call"
    );
    assert_eq!(gateway.lookups(), 1);
}

async fn timeout_after_send_without_lookup_is_outcome_unknown(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new().without_lookup());
    gateway.script([MockStep::TimeoutAfterSend { created: true }]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    env.advance(Duration::hours(3));
    queue.release_stale_leases().await.unwrap();
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(stored.error_message.unwrap().starts_with(OUTCOME_UNKNOWN));
    assert_eq!(gateway.calls().len(), 1, "never a second publish call");
}

async fn timeout_after_send_not_found_is_retried_as_a_new_attempt(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::TimeoutAfterSend { created: false }]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Queued);
    assert!(stored.error_message.unwrap().contains("not found"));
    assert_eq!(
        gateway.calls().len(),
        1,
        "no second call before the backoff"
    );
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.calls().len(), 2);
    assert_eq!(
        gateway.lookups(),
        2,
        "looked up after the timeout and again before publishing once more"
    );
    assert_eq!(env.runs(post.id).await.len(), 2);
}

/// The platform was still creating the post when it was looked up right
/// after the timeout: the next attempt looks it up again first and records
/// it, with no second publish call.
async fn a_post_shown_late_after_a_timeout_is_found_before_publishing_again(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::TimeoutThenAppear]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(gateway.lookups(), 1);
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(
        gateway.calls_for(&post.id.to_string()),
        1,
        "never published twice"
    );
    assert_eq!(gateway.lookups(), 2);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some("mock-1"));
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 1, "the lookup is not a new attempt");
    assert_eq!(runs[0].status, PostRunStatus::Failed);
}

/// After a timeout whose lookup found nothing, the lookup before the next
/// attempt fails (the listing is throttled): it counts as an attempt and is
/// made again after the backoff, with no publish call meanwhile; then the
/// post is published once.
async fn a_failing_lookup_before_publishing_again_is_retried(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::TimeoutAfterSend { created: false }]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    gateway.fail_lookups([PublishFailure::RateLimited {
        message: "HTTP 429".into(),
        retry_after: None,
    }]);
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Queued);
    assert_eq!(stored.retry_count, 2);
    assert_eq!(gateway.calls().len(), 1, "no publish without the lookup");
    env.advance(Duration::minutes(10));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.calls().len(), 2);
    assert_eq!(gateway.lookups(), 3);
}

/// A 401, then a token refresh that fails for now (the platform answers
/// 503): the post is not failed for it; it is tried again after the
/// backoff, with the attempt counted.
async fn a_refresh_that_fails_for_now_retries_the_post_later(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::Fail(PublishFailure::Unauthorized(
        "token expired".into(),
    ))]);
    gateway.fail_refreshes([PublishFailure::Transient {
        message: "HTTP 503".into(),
        retry_after: None,
    }]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Queued);
    assert_eq!(stored.retry_count, 1);
    assert!(stored.error_message.unwrap().contains("HTTP 503"));
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.calls().len(), 2);
    assert_eq!(env.runs(post.id).await.len(), 2);
}

async fn not_found_on_the_last_attempt_fails_for_good(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let lost = MockStep::TimeoutAfterSend { created: false };
    gateway.script([lost.clone(), lost.clone(), lost]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    for _ in 0..5 {
        queue.run_due(&batch(10), None).await.unwrap();
        env.advance(Duration::minutes(10));
    }
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    let error = stored.error_message.unwrap();
    assert!(!error.starts_with(OUTCOME_UNKNOWN), "{error}");
    assert!(error.contains("no attempt left"), "{error}");
    assert_eq!(gateway.calls().len(), 3);
    assert_eq!(
        gateway.lookups(),
        5,
        "after each timeout, and before each attempt that follows one"
    );
}

/// Runs worker `a` until its request reaches the platform (the event, not a
/// time), then aborts it there, as a process killed mid-publish.
async fn killed_after_sending(a: PublishQueue, gateway: &MockGateway) {
    let task = tokio::spawn(async move { a.run_due(&batch(10), None).await });
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while gateway.calls().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
}

/// Worker A is aborted after the platform received its request and before it
/// wrote anything; after A's lease lapses, worker B settles the post by lookup.
/// Platform publish calls for the post: exactly 1 (A's), plus 1 lookup by B.
async fn crash_after_the_call_is_settled_by_lookup(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::HangAfterSend]);
    let a = env.queue("worker-a", gateway.clone());
    let b = env.queue("worker-b", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;

    killed_after_sending(a, &gateway).await;

    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Publishing);
    assert_eq!(stored.lease_owner.as_deref(), Some("worker-a"));
    // B cannot take it while A's lease holds.
    assert_eq!(b.run_due(&batch(10), None).await.unwrap().claimed, 0);
    env.advance(Duration::minutes(5) + Duration::seconds(1));
    assert_eq!(b.release_stale_leases().await.unwrap(), 1);
    let report = b.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1);

    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some("mock-1"));
    assert_eq!(
        gateway.calls_for(&post.id.to_string()),
        1,
        "exactly one platform publish call"
    );
    assert_eq!(gateway.lookups(), 1);
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, PostRunStatus::Success);
}

/// Worker A dies after sending; the platform shows the post only after the
/// first lookup. After A's lease lapses (its run closed as stale), worker B's
/// lookup misses it and queues a new attempt; that attempt looks the post up
/// again before publishing and records it: one publish call in all.
async fn a_post_shown_late_after_a_crash_is_found_before_publishing_again(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::HangThenAppear]);
    let a = env.queue("worker-a", gateway.clone());
    let b = env.queue("worker-b", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    killed_after_sending(a, &gateway).await;

    env.advance(Duration::minutes(5) + Duration::seconds(1));
    assert_eq!(b.release_stale_leases().await.unwrap(), 1);
    assert_eq!(b.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(gateway.lookups(), 1);
    env.advance(Duration::minutes(5));
    assert_eq!(b.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(
        gateway.calls_for(&post.id.to_string()),
        1,
        "never published twice"
    );
    assert_eq!(gateway.lookups(), 2);
    assert_eq!(env.post(post.id).await.status, PostStatus::Published);
}

/// A run of attempt 1 is left `running` by a worker that died; the post was not
/// created. The next worker looks it up, finds nothing for certain, ends that
/// run failed and publishes under attempt 2 after the backoff: one platform call.
async fn crash_during_an_attempt_not_found_is_retried(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    env.store
        .insert_post_run(NewPostRun {
            tenant_id: env.tenant,
            post_id: post.id,
            attempt: 1,
            started_at: env.clock.now(),
        })
        .await
        .unwrap();
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(gateway.lookups(), 1);
    assert!(gateway.calls().is_empty(), "no publish before the backoff");
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.calls_for(&post.id.to_string()), 1);
    let runs = env.runs(post.id).await;
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![PostRunStatus::Failed, PostRunStatus::Success]
    );
}

/// Worker A dies right after its claim (before any run or call): B publishes
/// after the lease lapses, with exactly one platform call and one run.
async fn crash_after_the_claim_before_the_call_publishes_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let a = env.queue("worker-a", gateway.clone());
    let b = env.queue("worker-b", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    let claimed = a.enqueue_due_posts(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(a);
    env.advance(Duration::minutes(6));
    assert_eq!(b.release_stale_leases().await.unwrap(), 1);
    assert_eq!(b.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(gateway.calls_for(&post.id.to_string()), 1);
    assert_eq!(gateway.lookups(), 0);
    assert_eq!(env.runs(post.id).await.len(), 1);
}

async fn content_the_channel_refuses_fails_before_any_call(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new().with_max_text_chars(5));
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Much too long", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(stored.error_message.unwrap().contains("at most 5"));
    assert!(gateway.calls().is_empty());
}

/// The lookup before publishing again is throttled (429, Retry-After 10
/// minutes): the channel is held as a throttled publish holds it, so the
/// channel's next post is not sent into the throttle (and charged an
/// attempt) in the same batch; both go out once the wait is over.
async fn a_throttled_lookup_holds_the_channel(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([MockStep::TimeoutAfterSend { created: false }]);
    let queue = env.queue("w1", gateway.clone());
    let first = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    let second = env.post_at("Next", env.clock.now()).await;
    gateway.fail_lookups([PublishFailure::RateLimited {
        message: "HTTP 429".into(),
        retry_after: Some(Duration::minutes(10)),
    }]);
    env.advance(Duration::minutes(5));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.retrying, report.published), (1, 0), "{report:?}");
    assert_eq!(gateway.calls().len(), 1, "no call into the throttle");
    let held = env.post(second.id).await;
    assert_eq!((held.status, held.retry_count), (PostStatus::Queued, 0));
    assert!(env.runs(second.id).await.is_empty(), "no attempt charged");
    env.advance(Duration::minutes(11));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 2);
    assert_eq!(env.post(first.id).await.status, PostStatus::Published);
}

/// An expired token met on a post's last attempt (two transient failures
/// before it): the token is refreshed and the call made again, as on any
/// attempt, and the post is published. Before, the post failed on the
/// expired token with no refresh, and the channel's next posts met it too.
async fn unauthorized_on_the_last_attempt_still_refreshes_and_retries(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    gateway.script([
        transient("HTTP 502"),
        transient("HTTP 502"),
        MockStep::Fail(PublishFailure::Unauthorized("token expired".into())),
    ]);
    let queue = env.queue("w1", gateway.clone());
    let post = env.post_at("Hello", env.clock.now()).await;
    for _ in 0..2 {
        assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
        env.advance(Duration::hours(1));
    }
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1, "{report:?}");
    assert_eq!(gateway.refreshes(), 1);
    let runs = env.runs(post.id).await;
    assert_eq!(
        runs.len(),
        4,
        "the call after the refresh has a run of its own"
    );
    assert_eq!(runs[3].status, PostRunStatus::Success);
}
