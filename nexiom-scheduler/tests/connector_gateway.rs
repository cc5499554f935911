//! The publish queue through the real connector trait: `ConnectorGateway` over
//! `nexiom_connectors::MockConnector`, on memory and on Postgres.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::{Env, batch};
use nexiom_connectors::{ApiError, Capabilities, ConnectorError, MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    mock_connector_fails_twice_then_succeeds,
    mock_connector_fails_three_times_with_the_last_error,
    mock_connector_retry_after_600_seconds,
    mock_connector_outcome_unknown_is_never_published_twice,
    mock_connector_lookup_finds_the_lost_post,
    mock_connector_lookup_not_found_publishes_again,
    mock_connector_unauthorized_refreshes_once,
    mock_connector_capabilities_refuse_at_creation_and_before_any_call,
    mock_connector_throttled_lookup_before_publishing_again_waits_its_retry_after,
    mock_connector_throttled_lookup_after_a_lost_answer_looks_again_later,
    mock_connector_published_without_id_is_never_published_again,
    mock_connector_published_without_id_takes_the_id_the_lookup_finds,
);

struct Setup {
    env: Env,
    mock: MockConnector,
    queue: PublishQueue,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    setup_with(store, |m| m).await
}

async fn setup_with(
    store: Arc<dyn Store>,
    f: impl FnOnce(MockConnector) -> MockConnector,
) -> Setup {
    let env = Env::new(store).await;
    let mock = f(MockConnector::new(Platform::Facebook).with_clock(env.clock.clone()));
    let queue = PublishQueue::new(
        env.store.clone(),
        Arc::new(ConnectorGateway::single(Arc::new(mock.clone()))),
        env.clock.clone(),
        PublishConfig {
            retry: RetryPolicy {
                jitter: false,
                ..RetryPolicy::default()
            },
            ..PublishConfig::for_worker("w1")
        },
    );
    Setup { env, mock, queue }
}

fn publishes(mock: &MockConnector) -> usize {
    mock.calls_of(MockOp::Publish).len()
}

async fn mock_connector_fails_twice_then_succeeds(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.fail_transient(MockOp::Publish, 2);
    let post = env.post_at("Hello", env.clock.now()).await;
    for _ in 0..3 {
        queue.run_due(&batch(10), None).await.unwrap();
        env.advance(Duration::minutes(5));
    }
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert!(stored.platform_post_id.unwrap().starts_with("mock-post-"));
    let runs = env.runs(post.id).await;
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![
            PostRunStatus::Failed,
            PostRunStatus::Failed,
            PostRunStatus::Success
        ]
    );
    assert_eq!(publishes(&mock), 3);
}

async fn mock_connector_fails_three_times_with_the_last_error(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    for message in ["HTTP 502", "HTTP 503", "HTTP 504 at the gateway"] {
        mock.fail_next(
            MockOp::Publish,
            1,
            ConnectorError::Transient {
                platform: "facebook".into(),
                detail: ApiError::message(message),
            },
        );
    }
    let post = env.post_at("Hello", env.clock.now()).await;
    for _ in 0..5 {
        queue.run_due(&batch(10), None).await.unwrap();
        env.advance(Duration::minutes(10));
    }
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(
        stored
            .error_message
            .unwrap()
            .contains("HTTP 504 at the gateway")
    );
    assert_eq!(env.runs(post.id).await.len(), 3);
    assert_eq!(publishes(&mock), 3);
}

async fn mock_connector_retry_after_600_seconds(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.rate_limit_next(MockOp::Publish, std::time::Duration::from_secs(600));
    let post = env.post_at("Hello", env.clock.now()).await;
    queue.run_due(&batch(10), None).await.unwrap();
    env.advance(Duration::seconds(599));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(publishes(&mock), 1);
    env.advance(Duration::seconds(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let calls = mock.calls_of(MockOp::Publish);
    assert!(calls[1].at - calls[0].at >= Duration::seconds(600));
    assert_eq!(env.post(post.id).await.status, PostStatus::Published);
}

/// Without a lookup, an unknown outcome is never published again.
async fn mock_connector_outcome_unknown_is_never_published_twice(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup_with(store, MockConnector::without_lookup).await;
    mock.fail_next(
        MockOp::Publish,
        1,
        ConnectorError::OutcomeUnknown {
            platform: "facebook".into(),
            reason: "timed out after the request was sent".into(),
        },
    );
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    env.advance(Duration::hours(1));
    queue.release_stale_leases().await.unwrap();
    queue.run_due(&batch(10), None).await.unwrap();
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    assert!(stored.error_message.unwrap().starts_with(OUTCOME_UNKNOWN));
    assert_eq!(publishes(&mock), 1, "never a second publish call");
}

async fn mock_connector_unauthorized_refreshes_once(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.unauthorized_next(MockOp::Publish);
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
    assert_eq!(publishes(&mock), 2);
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    let token = channel.credentials.access_token.unwrap();
    assert!(
        token.expose().starts_with("mock-token-"),
        "the refreshed token is stored"
    );
    assert_eq!(env.runs(post.id).await.len(), 2);
}

async fn mock_connector_capabilities_refuse_at_creation_and_before_any_call(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = MockConnector::new(Platform::Facebook).with_capabilities(Capabilities {
        max_text_length: 10,
        ..Capabilities::default()
    });
    let gateway = Arc::new(ConnectorGateway::single(Arc::new(mock.clone())));
    let scheduler =
        Scheduler::new(env.store.clone(), env.clock.clone()).with_gateway(gateway.clone());
    let refused = scheduler
        .schedule_once(
            env.tenant,
            env.channel,
            Content::text("far more than ten"),
            env.clock.now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SchedulerError::ContentRefused(_)),
        "{refused:?}"
    );
    // A post stored without the check (e.g. before the limit changed) fails at once.
    let post = env.post_at("far more than ten", env.clock.now()).await;
    let queue = PublishQueue::new(
        env.store.clone(),
        gateway,
        env.clock.clone(),
        PublishConfig::for_worker("w1"),
    );
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    assert_eq!(env.post(post.id).await.status, PostStatus::Failed);
    assert!(mock.calls().is_empty());
}

async fn mock_connector_lookup_finds_the_lost_post(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.publish_then_lose_answer();
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.platform_post_id.as_deref(), Some("mock-post-1"));
    assert_eq!(publishes(&mock), 1);
    assert_eq!(mock.calls_of(MockOp::FindPublished).len(), 1);
}

async fn mock_connector_lookup_not_found_publishes_again(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.fail_next(
        MockOp::Publish,
        1,
        ConnectorError::OutcomeUnknown {
            platform: "facebook".into(),
            reason: "HTTP 502 after the request was sent".into(),
        },
    );
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    env.advance(Duration::minutes(5));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(env.post(post.id).await.status, PostStatus::Published);
    assert_eq!(publishes(&mock), 2);
    assert_eq!(
        mock.calls_of(MockOp::FindPublished).len(),
        2,
        "after the 502, and again before the new attempt"
    );
}

/// The lookup before publishing again answers 429 with a Retry-After of 10
/// minutes (through the real connector trait, so the error is the
/// connector's `RateLimited`): the post waits the 10 minutes and the channel
/// is held, so its other post is not sent into the throttle. Before, the
/// gateway turned the 429 into an ambiguous failure: no hold, the backoff's
/// 60 s instead of the platform's wait.
async fn mock_connector_throttled_lookup_before_publishing_again_waits_its_retry_after(
    store: Arc<dyn Store>,
) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.fail_next(
        MockOp::Publish,
        1,
        ConnectorError::OutcomeUnknown {
            platform: "facebook".into(),
            reason: "HTTP 502 after the request was sent".into(),
        },
    );
    let first = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    let second = env.post_at("Next", env.clock.now()).await;
    mock.rate_limit_next(MockOp::FindPublished, std::time::Duration::from_secs(600));
    env.advance(Duration::minutes(5));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.retrying, report.published), (1, 0), "{report:?}");
    assert_eq!(publishes(&mock), 1, "no publish into the throttle");
    let waiting = env.post(first.id).await;
    assert!(
        waiting.next_attempt_at.unwrap() >= env.clock.now() + Duration::minutes(10),
        "{:?}",
        waiting.next_attempt_at
    );
    let held = env.post(second.id).await;
    assert_eq!((held.status, held.retry_count), (PostStatus::Queued, 0));
    env.advance(Duration::minutes(9));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 0);
    env.advance(Duration::minutes(2));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 2);
    assert_eq!(publishes(&mock), 3);
    assert_eq!(
        mock.calls_of(MockOp::FindPublished).len(),
        3,
        "after the 502, the throttled one, and again before publishing again"
    );
}

/// The answer to a publish is lost and the lookup right after it is
/// throttled (429, Retry-After 10 minutes): the post is neither failed as
/// `outcome_unknown` at once nor published blindly. It waits the 10
/// minutes, the channel held meanwhile, is looked up first, and found.
async fn mock_connector_throttled_lookup_after_a_lost_answer_looks_again_later(
    store: Arc<dyn Store>,
) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.publish_then_lose_answer();
    mock.rate_limit_next(MockOp::FindPublished, std::time::Duration::from_secs(600));
    let first = env.post_at("Hello", env.clock.now()).await;
    let second = env
        .post_at("Next", env.clock.now() + Duration::seconds(1))
        .await;
    env.advance(Duration::seconds(1));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.retrying, report.published), (1, 0), "{report:?}");
    assert_eq!(publishes(&mock), 1);
    let waiting = env.post(first.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert!(waiting.next_attempt_at.unwrap() >= env.clock.now() + Duration::minutes(10));
    assert_eq!(env.post(second.id).await.retry_count, 0);
    env.advance(Duration::minutes(11));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 2);
    let found = env.post(first.id).await;
    assert_eq!(found.platform_post_id.as_deref(), Some("mock-post-1"));
    assert_eq!(
        publishes(&mock),
        2,
        "the lost post is found, not sent again"
    );
}

fn published_without_id() -> ConnectorError {
    ConnectorError::PublishedWithoutId {
        platform: "facebook".into(),
        reason: "container C7 is PUBLISHED, but its media is not listed".into(),
    }
}

/// The platform says it published the post but not under which id (an
/// Instagram container `PUBLISHED` after a lost answer): a lookup that does
/// not find it leaves the post `outcome_unknown`, never published again, where
/// an ambiguous answer not found is published again.
async fn mock_connector_published_without_id_is_never_published_again(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.fail_next(MockOp::Publish, 1, published_without_id());
    let post = env.post_at("Hello", env.clock.now()).await;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    for _ in 0..3 {
        env.advance(Duration::hours(1));
        queue.release_stale_leases().await.unwrap();
        queue.run_due(&batch(10), None).await.unwrap();
    }
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Failed);
    let error = stored.error_message.unwrap();
    assert!(error.starts_with(OUTCOME_UNKNOWN), "{error}");
    assert!(error.contains("C7"), "{error}");
    assert_eq!(publishes(&mock), 1, "never a second publish call");
    assert_eq!(mock.calls_of(MockOp::FindPublished).len(), 1);
}

async fn mock_connector_published_without_id_takes_the_id_the_lookup_finds(store: Arc<dyn Store>) {
    let Setup { env, mock, queue } = setup(store).await;
    mock.fail_next(MockOp::Publish, 1, published_without_id());
    let post = env.post_at("Hello", env.clock.now()).await;
    let account = format!("page-{}", env.tenant);
    mock.seed_post(&account, "fb-77", "Hello", env.clock.now());
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let stored = env.post(post.id).await;
    assert_eq!(stored.status, PostStatus::Published);
    assert_eq!(stored.platform_post_id.as_deref(), Some("fb-77"));
    assert_eq!(publishes(&mock), 1);
}
