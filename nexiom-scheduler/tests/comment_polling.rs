//! Comment polling against `MockConnector` (documented pages, scripted
//! failures), and the polling and KPI workers on the runtime; each test on
//! memory and on PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{AutoReplying, Env, batch};
use nexiom_connectors::{Capabilities, ConnectorRegistry, MockConnector, MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::json;

on_both_backends!(
    three_pages_of_comments_arrive_exactly_once,
    a_crash_before_the_checkpoint_stores_no_duplicates,
    polled_every_five_minutes_and_never_after_seven_days,
    a_failing_post_does_not_stop_another,
    a_rate_limited_channel_is_skipped_until_retry_after,
    a_comment_seen_by_webhook_and_polling_is_handled_once,
    hiding_a_comment_goes_through_the_platform_and_is_recorded,
    posts_on_a_platform_without_comments_are_not_polled,
    polling_and_kpi_workers_run_with_flags_logs_and_pipeline_counts,
    claimed_posts_are_skipped_and_a_stopping_pass_hands_its_posts_back,
);

fn mock(env: &Env) -> MockConnector {
    MockConnector::new(Platform::Facebook).with_clock(env.clock.clone())
}

fn poller(env: &Env, mock: &MockConnector) -> CommentPoller {
    CommentPoller::new(
        env.store.clone(),
        env.clock.clone(),
        ConnectorRegistry::new().with(Arc::new(mock.clone())),
    )
}

/// A poller that polls one post at a time: the mock's scripted failure
/// answers its next call whatever the post, so one call at a time keeps
/// which post gets it fixed.
fn sequential_poller(env: &Env, mock: &MockConnector) -> CommentPoller {
    poller(env, mock).with_config(PollingConfig {
        concurrency: ConcurrencyConfig::sequential(),
        ..PollingConfig::default()
    })
}

/// A published post on `channel`, polled from `next_check` until 7 days after `now`.
async fn published(
    env: &Env,
    channel: ChannelId,
    platform_id: &str,
    next_check: DateTime<Utc>,
) -> ScheduledPost {
    let now = env.clock.now();
    let post = env
        .store
        .insert_post(NewScheduledPost::one_off(
            env.tenant,
            channel,
            Content::text("Launch"),
            now,
            now,
        ))
        .await
        .unwrap()
        .record;
    env.store
        .update_post(
            env.tenant,
            post.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some(platform_id.into())),
                published_at: Some(Some(now)),
                next_check_at: Some(Some(next_check)),
                stop_at: Some(Some(now + Duration::days(7))),
                ..PostPatch::default()
            },
            now,
        )
        .await
        .unwrap()
}

/// Six comments (three pages of two), the fourth a reply to the third.
fn six_comments(mock: &MockConnector, prefix: &str) -> Vec<RemoteComment> {
    (0..6)
        .map(|i| RemoteComment {
            parent_id: (i == 3).then(|| format!("{prefix}-2")),
            ..mock.comment(&format!("{prefix}-{i}"), "fan", &format!("Comment {i}"))
        })
        .collect()
}

async fn comments(env: &Env, post: PostId) -> Vec<Comment> {
    env.store
        .list_comments(env.tenant, post, 1000)
        .await
        .unwrap()
}

fn ids(comments: &[Comment]) -> Vec<String> {
    let mut ids: Vec<_> = comments
        .iter()
        .map(|c| c.platform_comment_id.clone())
        .collect();
    ids.sort();
    ids
}

async fn three_pages_of_comments_arrive_exactly_once(store: Arc<dyn Store>) {
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

async fn a_crash_before_the_checkpoint_stores_no_duplicates(store: Arc<dyn Store>) {
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

async fn polled_every_five_minutes_and_never_after_seven_days(store: Arc<dyn Store>) {
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

async fn a_failing_post_does_not_stop_another(store: Arc<dyn Store>) {
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

async fn a_rate_limited_channel_is_skipped_until_retry_after(store: Arc<dyn Store>) {
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

async fn a_comment_seen_by_webhook_and_polling_is_handled_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let now = env.clock.now();
    let AutoReplying { inbound, poller } = env.auto_replying(&mock, "Merci {name} : 9h-18h.").await;
    let post = published(&env, env.channel, "fb-post-1", now).await;

    // The webhook brings comment 1 first; routing stores it.
    env.store
        .insert_event(NewWebhookEvent {
            tenant_id: env.tenant,
            channel_id: env.channel,
            platform: Platform::Facebook,
            event_id: "cm-1".into(),
            kind: EventKind::Comment,
            sender_id: Some("fan".into()),
            sender_name: Some("fan".into()),
            text: Some("Vos horaires ?".into()),
            has_media: false,
            delivery_status: None,
            target_id: Some("fb-post-1".into()),
            parent_id: None,
            occurred_at: now,
            payload: json!({}),
            received_at: now,
        })
        .await
        .unwrap();
    inbound.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!(comments(&env, post.id).await.len(), 1);

    // Polling sees comment 1 again and a new comment 2.
    mock.seed_comments(
        "fb-post-1",
        [
            mock.comment("cm-1", "fan", "Vos horaires ?"),
            mock.comment("cm-2", "other", "Et vos horaires le dimanche ?"),
        ],
    );
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.comments_stored, 1, "cm-1 is on the webhook's key");
    assert_eq!(report.triaged, 2, "each comment triaged");
    assert_eq!(report.auto_replied, 2);
    // Later passes and the pipeline's own steps change nothing.
    env.advance(Duration::minutes(5));
    poller.poll_due(50, None).await.unwrap();
    inbound.triage_new_items(100).await.unwrap();
    inbound
        .auto_reply_recent_inbound(now - Duration::hours(1), 100)
        .await
        .unwrap();

    let stored = comments(&env, post.id).await;
    assert_eq!(ids(&stored), vec!["cm-1", "cm-2"]);
    let decisions = env
        .store
        .list_decisions(env.tenant, None, 100)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2, "one decision per comment");
    assert!(decisions.iter().all(|d| d.triage == Triage::AutoReply));
    let replies: Vec<_> = mock
        .calls_of(MockOp::ReplyComment)
        .into_iter()
        .filter_map(|c| c.target)
        .collect();
    assert_eq!(replies.len(), 2, "one reply per comment");
    assert!(replies.contains(&"cm-1".to_string()) && replies.contains(&"cm-2".to_string()));
}

async fn hiding_a_comment_goes_through_the_platform_and_is_recorded(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    poller.poll_due(50, None).await.unwrap();
    let target = comments(&env, post.id).await.remove(0);

    let hidden = poller
        .hide_comment(env.tenant, target.id, true)
        .await
        .unwrap();
    assert!(hidden.hidden);
    let calls = mock.calls_of(MockOp::HideComment);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].target.as_deref(),
        Some(target.platform_comment_id.as_str())
    );

    // A refusal records nothing.
    mock.fail_permanently_next(MockOp::HideComment, "no permission");
    let err = poller
        .hide_comment(env.tenant, target.id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, PollingError::Connector(_)), "{err}");
    assert!(
        env.store
            .get_comment(env.tenant, target.id)
            .await
            .unwrap()
            .hidden
    );
}

async fn polling_and_kpi_workers_run_with_flags_logs_and_pipeline_counts(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    let kpi = KpiWorker::new(env.store.clone(), env.clock.clone());
    assert_eq!(Worker::cadence(&kpi), Cadence::Every(Duration::minutes(30)));
    let polling = PollCommentsWorker::new(poller);
    assert_eq!(polling.cadence(), Cadence::Every(Duration::minutes(5)));

    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime
        .register_with(Arc::new(polling), batch(10))
        .register(Arc::new(kpi.clone()));
    let shutdown = Shutdown::never();
    let runs = runtime.run_once(&shutdown).await.unwrap();
    let log = |name: &str| -> TaskExecutionLog {
        match runs.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone()) {
            Some(WorkerRun::Ran(log)) => log,
            other => panic!("{name}: {other:?}"),
        }
    };
    let polled = log(POLL_COMMENTS);
    assert_eq!(polled.status, RunStatus::Completed);
    assert_eq!(polled.items_processed, 1);
    assert_eq!(polled.results["comments_stored"], 6);
    let kpis = log(AGGREGATE_KPIS);
    assert_eq!(kpis.status, RunStatus::Completed);
    assert_eq!(kpis.items_processed, 1, "one tenant");
    let rows = kpis.results["rows_upserted"].as_u64().unwrap();
    assert!(rows > 0);
    assert_eq!(
        env.store
            .list_executions(Some(POLL_COMMENTS), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A flag switched off skips the next run, without restart.
    env.store
        .set_worker_flag(POLL_COMMENTS, false, env.clock.now())
        .await
        .unwrap();
    env.advance(Duration::minutes(30));
    let runs = runtime.run_once(&shutdown).await.unwrap();
    assert!(
        runs.iter()
            .any(|(n, r)| n == POLL_COMMENTS && *r == WorkerRun::Disabled)
    );
    assert!(matches!(
        runs.iter()
            .find(|(n, _)| n == AGGREGATE_KPIS)
            .map(|(_, r)| r),
        Some(WorkerRun::Ran(_))
    ));

    // The KPI worker is the pipeline's metrics step.
    let counts = PipelineRunner::new()
        .with_metrics(kpi.clone())
        .run_pipeline_once(env.clock.now() - Duration::hours(1), 100)
        .await;
    assert!(counts.errors.is_empty());
    assert_eq!(
        counts.metrics_collected,
        kpi.aggregate().await.unwrap().rows_upserted
    );
    assert!(counts.metrics_collected > 0);
}

async fn posts_on_a_platform_without_comments_are_not_polled(store: Arc<dyn Store>) {
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

async fn claimed_posts_are_skipped_and_a_stopping_pass_hands_its_posts_back(store: Arc<dyn Store>) {
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
    assert_eq!(stopped, PollReport::default());
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
