//! Publishing at platform speed, on memory and Postgres: a claimed batch runs
//! its channels concurrently under the worker's cap and one call at a time per
//! channel (order kept), a channel that answers 429 with Retry-After holds
//! back only itself (here and in every worker's claims), the heartbeat
//! keeps the leases of a slow batch, and one channel's backlog shares the
//! claims with the other channels' posts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use common::{Env, TestGateway, TestPlatform, batch};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use tokio::sync::Notify;

on_both_backends!(
    channels_run_concurrently_one_call_at_a_time_each,
    a_throttled_channel_holds_back_only_itself,
    the_heartbeat_keeps_a_slow_batch_claimed,
    the_heartbeat_keeps_a_post_processed_alone_claimed,
    a_channels_backlog_never_holds_another_channels_post_back,
    a_post_falling_due_during_a_long_batch_waits_for_the_batch_time_only,
);

#[derive(Default)]
struct Counters {
    in_flight: HashMap<String, usize>,
    peak_per_channel: HashMap<String, usize>,
    total: usize,
    peak_total: usize,
    /// Texts published, per channel, in call order.
    published: HashMap<String, Vec<String>>,
}

/// A platform that records calls in flight, answers 429 (Retry-After 30 s) on
/// the accounts in `throttled`, and holds every call while `gate` is set
/// until it is opened, or moves `latency`'s clock on by its duration at each
/// call; no lookup, no token refresh.
#[derive(Default)]
struct LaneGateway {
    counters: Mutex<Counters>,
    throttled: Vec<String>,
    gate: Option<Arc<Notify>>,
    latency: Option<(Arc<ManualClock>, Duration)>,
}

#[async_trait]
impl TestPlatform for LaneGateway {
    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        let account = channel.external_account_id.clone();
        if let Some((clock, took)) = &self.latency {
            clock.advance(*took);
        }
        {
            let mut c = self.counters.lock().unwrap();
            let n = c.in_flight.entry(account.clone()).or_default();
            *n += 1;
            let n = *n;
            let peak = c.peak_per_channel.entry(account.clone()).or_default();
            *peak = (*peak).max(n);
            c.total += 1;
            c.peak_total = c.peak_total.max(c.total);
        }
        // Let the other lanes start their calls.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        let mut c = self.counters.lock().unwrap();
        *c.in_flight.get_mut(&account).unwrap() -= 1;
        c.total -= 1;
        if self.throttled.contains(&account) {
            return Err(PublishFailure::RateLimited {
                message: "(#4) Application request limit reached".into(),
                retry_after: Some(Duration::seconds(30)),
            });
        }
        c.published
            .entry(account)
            .or_default()
            .push(content.text.clone());
        Ok(PublishedPost {
            platform_post_id: format!("fb-{reference}"),
            url: None,
        })
    }
}

async fn channels(env: &Env, n: usize) -> Vec<Channel> {
    let mut out = vec![
        env.store
            .get_channel(env.tenant, env.channel)
            .await
            .unwrap(),
    ];
    for i in 1..n {
        out.push(
            env.store
                .create_channel(NewChannel {
                    tenant_id: env.tenant,
                    platform: Platform::Facebook,
                    external_account_id: format!("page-{}-{i}", env.tenant),
                    name: format!("Page {i}"),
                    credentials: Credentials::default(),
                    created_at: env.clock.now(),
                })
                .await
                .unwrap(),
        );
    }
    out
}

/// Post `i` of `channel` (its text is the channel's account and `#i`), due
/// at `at`.
async fn post_at(
    env: &Env,
    channel: &Channel,
    i: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> ScheduledPost {
    env.store
        .insert_post(NewScheduledPost::one_off(
            env.tenant,
            channel.id,
            Content::text(format!("{} #{i}", channel.external_account_id)),
            at,
            env.clock.now(),
        ))
        .await
        .unwrap()
        .record
}

/// `per_channel` posts on each channel, due one second apart in channel order.
async fn posts(env: &Env, channels: &[Channel], per_channel: usize) -> Vec<ScheduledPost> {
    let mut out = Vec::new();
    for i in 0..per_channel {
        for (c, channel) in channels.iter().enumerate() {
            let at = env.clock.now() - Duration::seconds(1_000)
                + Duration::seconds((i * 100 + c) as i64);
            out.push(post_at(env, channel, i, at).await);
        }
    }
    out
}

/// The tests' configuration: retries without jitter.
fn q_config(worker: &str) -> PublishConfig {
    PublishConfig {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..PublishConfig::for_worker(worker)
    }
}

fn queue(
    env: &Env,
    worker: &str,
    gateway: Arc<TestGateway<LaneGateway>>,
    lease: Duration,
) -> PublishQueue {
    let config = PublishConfig {
        lease,
        ..q_config(worker)
    };
    PublishQueue::new(env.store.clone(), gateway, env.clock.clone(), config)
}

/// 8 channels × 5 posts in one batch: several channels are in flight at
/// once, never two calls on one channel, and each channel's posts go out in
/// their `publish_at` order.
async fn channels_run_concurrently_one_call_at_a_time_each(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 8).await;
    posts(&env, &chans, 5).await;
    let gateway = Arc::new(TestGateway(LaneGateway::default()));
    let q = queue(&env, "w1", gateway.clone(), Duration::minutes(5));
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!(
        (report.claimed, report.published, report.skipped),
        (40, 40, 0)
    );

    {
        let c = gateway.counters.lock().unwrap();
        assert!(
            c.peak_total >= 2,
            "channels ran one after another: {}",
            c.peak_total
        );
        assert!(
            c.peak_per_channel.values().all(|n| *n == 1),
            "{:?}",
            c.peak_per_channel
        );
        for channel in &chans {
            let expected: Vec<String> = (0..5)
                .map(|i| format!("{} #{i}", channel.external_account_id))
                .collect();
            assert_eq!(c.published[&channel.external_account_id], expected);
        }
    }

    // The worker cap bounds the calls in flight.
    let env2 = Env::new(env.store.clone()).await;
    let chans = channels(&env2, 6).await;
    posts(&env2, &chans, 1).await;
    let gateway = Arc::new(TestGateway(LaneGateway::default()));
    let config = PublishConfig {
        concurrency: ConcurrencyConfig {
            max_in_flight: 2,
            ..ConcurrencyConfig::default()
        },
        ..PublishConfig::for_worker("w2")
    };
    let q = PublishQueue::new(
        env2.store.clone(),
        gateway.clone(),
        env2.clock.clone(),
        config,
    );
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!(report.published, 6);
    assert_eq!(gateway.counters.lock().unwrap().peak_total, 2);
}

/// One of 4 channels answers 429 with Retry-After 30 s: its first post is
/// queued again no sooner than 30 s later, its other posts are handed back
/// untouched (no call, no attempt counted), the others all publish, and no
/// worker claims the channel until the 30 s are over.
async fn a_throttled_channel_holds_back_only_itself(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 4).await;
    let all = posts(&env, &chans, 3).await;
    let throttled = chans[2].clone();
    let gateway = Arc::new(TestGateway(LaneGateway {
        throttled: vec![throttled.external_account_id.clone()],
        ..LaneGateway::default()
    }));
    let q = queue(&env, "w1", gateway.clone(), Duration::minutes(5));
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!(report.published, 9);
    assert_eq!(report.retrying, 1);
    assert_eq!(report.handed_back, 2, "the two handed back");
    assert_eq!(report.skipped, 0);

    let now = env.clock.now();
    let mine: Vec<&ScheduledPost> = all
        .iter()
        .filter(|p| p.channel_id == throttled.id)
        .collect();
    let first = env.post(mine[0].id).await;
    assert_eq!(first.status, PostStatus::Queued);
    assert_eq!(first.retry_count, 1);
    assert!(first.next_attempt_at.unwrap() >= now + Duration::seconds(30));
    for p in &mine[1..] {
        let p = env.post(p.id).await;
        assert_eq!(
            (p.status, p.retry_count, p.lease_owner.clone()),
            (PostStatus::Queued, 0, None)
        );
        assert!(p.next_attempt_at.unwrap() >= now + Duration::seconds(30));
        assert!(env.runs(p.id).await.is_empty(), "no attempt was made");
    }
    assert_eq!(
        gateway
            .counters
            .lock()
            .unwrap()
            .published
            .get(&throttled.external_account_id),
        None
    );

    // Another worker, 10 s later, claims nothing of the held channel.
    let other = Arc::new(TestGateway(LaneGateway::default()));
    let w2 = queue(&env, "w2", other.clone(), Duration::minutes(5));
    env.advance(Duration::seconds(10));
    assert_eq!(w2.run_due(&batch(100), None).await.unwrap().claimed, 0);
    // After the hold (and the first post's backoff), the channel publishes.
    env.advance(Duration::minutes(10));
    let report = w2.run_due(&batch(100), None).await.unwrap();
    assert_eq!((report.claimed, report.published), (3, 3));
}

/// A call held in flight longer than the lease: the heartbeat renews the
/// lease, so another worker's stale release takes nothing back and the post
/// ends published, not lost.
async fn the_heartbeat_keeps_a_slow_batch_claimed(store: Arc<dyn Store>) {
    slow_call_stays_claimed(store, false).await;
}

/// The same, for a post claimed with `enqueue_due_posts` and taken through
/// `PublishQueue::process` by the caller: its lease is renewed too.
async fn the_heartbeat_keeps_a_post_processed_alone_claimed(store: Arc<dyn Store>) {
    slow_call_stays_claimed(store, true).await;
}

async fn slow_call_stays_claimed(store: Arc<dyn Store>, alone: bool) {
    let env = Env::new(store).await;
    let post = env.post_at("slow", env.clock.now()).await;
    let gate = Arc::new(Notify::new());
    let gateway = Arc::new(TestGateway(LaneGateway {
        gate: Some(gate.clone()),
        ..LaneGateway::default()
    }));
    // A 3 s lease: the heartbeat runs every second.
    let q = queue(&env, "w1", gateway.clone(), Duration::seconds(3));
    let task = tokio::spawn(async move {
        if !alone {
            return q.run_due(&batch(10), None).await.unwrap();
        }
        let mut report = QueueReport::default();
        for post in q.enqueue_due_posts(10).await.unwrap() {
            match q.process(post).await.unwrap() {
                PostOutcome::Published(_) => report.published += 1,
                _ => report.skipped += 1,
            }
        }
        report
    });

    // Wait for the call to be in flight (an event, not a time).
    let in_flight = || gateway.counters.lock().unwrap().total == 1;
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !in_flight() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let claimed = env.post(post.id).await;
    assert_eq!(
        claimed.lease_expires_at,
        Some(env.clock.now() + Duration::seconds(3))
    );
    // The platform is slow: 10 s pass on the clock, then we wait for a
    // heartbeat to move the lease past them.
    env.advance(Duration::seconds(10));
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let p = env.post(post.id).await;
            if p.lease_expires_at.unwrap() > env.clock.now() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        env.store
            .release_stale_leases(env.clock.now())
            .await
            .unwrap(),
        0
    );

    gate.notify_one();
    let report = task.await.unwrap();
    assert_eq!((report.published, report.skipped), (1, 0));
    assert_eq!(env.post(post.id).await.status, PostStatus::Published);
}

/// 30 posts due on one Page (a backlog published one call at a time), then
/// one on another Page: the first batch of 10 carries the other Page's post,
/// instead of 10 of the backlog's, so it goes out without waiting for the
/// backlog to drain; the backlog's posts still go out in their order.
async fn a_channels_backlog_never_holds_another_channels_post_back(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 2).await;
    let (busy, quiet) = (&chans[0], &chans[1]);
    let start = env.clock.now() - Duration::seconds(1_000);
    for i in 0..30 {
        post_at(&env, busy, i, start + Duration::seconds(i as i64)).await;
    }
    post_at(&env, quiet, 0, start + Duration::seconds(100)).await;
    let gateway = Arc::new(TestGateway(LaneGateway::default()));
    let q = queue(&env, "w1", gateway.clone(), Duration::minutes(5));
    let one_batch = BatchConfig {
        batch_size: 10,
        max_batches: 1,
        ..BatchConfig::default()
    };
    let report = q.run_due(&one_batch, None).await.unwrap();
    assert_eq!((report.claimed, report.published), (10, 10));
    {
        let c = gateway.counters.lock().unwrap();
        assert_eq!(
            c.published.get(&quiet.external_account_id),
            Some(&vec![format!("{} #0", quiet.external_account_id)]),
            "the other Page's post went out in the first batch"
        );
        let expected: Vec<String> = (0..9)
            .map(|i| format!("{} #{i}", busy.external_account_id))
            .collect();
        assert_eq!(c.published[&busy.external_account_id], expected);
    }
    // The backlog fills the next batches on its own, in order.
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!(report.published, 21);
    let c = gateway.counters.lock().unwrap();
    let expected: Vec<String> = (0..30)
        .map(|i| format!("{} #{i}", busy.external_account_id))
        .collect();
    assert_eq!(c.published[&busy.external_account_id], expected);
}

/// One Page's 10 posts due, published one call at a time at 10 s a call (the
/// clock moves on with each call), and another Page's post falling due 15 s
/// into that batch: the batch starts no call after its 30 s
/// (`PublishConfig::batch_time`, set to 30 s here) and hands its other 7
/// posts back, with no attempt counted, so the next claim takes the other
/// Page's post and it goes out about 30 s after it fell due, not after the
/// whole backlog (100 s).
/// The backlog still goes out whole and in order.
async fn a_post_falling_due_during_a_long_batch_waits_for_the_batch_time_only(
    store: Arc<dyn Store>,
) {
    let env = Env::new(store).await;
    let chans = channels(&env, 2).await;
    let (busy, quiet) = (&chans[0], &chans[1]);
    let t = env.clock.now();
    for i in 0..10 {
        post_at(&env, busy, i, t - Duration::seconds(100 - i as i64)).await;
    }
    let due = t + Duration::seconds(15);
    let late = post_at(&env, quiet, 0, due).await;
    let gateway = Arc::new(TestGateway(LaneGateway {
        latency: Some((env.clock.clone(), Duration::seconds(10))),
        ..LaneGateway::default()
    }));
    let q = PublishQueue::new(
        env.store.clone(),
        gateway.clone(),
        env.clock.clone(),
        PublishConfig {
            batch_time: Duration::seconds(30),
            ..q_config("w1")
        },
    );
    let one_batch = BatchConfig {
        batch_size: 10,
        max_batches: 1,
        ..BatchConfig::default()
    };
    let first = q.run_due(&one_batch, None).await.unwrap();
    assert_eq!(
        (
            first.claimed,
            first.published,
            first.handed_back,
            first.skipped
        ),
        (10, 3, 7, 0),
        "{first:?}"
    );
    q.run_due(&one_batch, None).await.unwrap();
    let published = env.post(late.id).await;
    assert_eq!(published.status, PostStatus::Published);
    let waited = published.published_at.unwrap() - due;
    assert!(waited <= Duration::seconds(40), "waited {waited}");

    q.run_due(&batch(100), None).await.unwrap();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("{} #{i}", busy.external_account_id))
        .collect();
    assert_eq!(
        gateway.counters.lock().unwrap().published[&busy.external_account_id],
        expected
    );
    for post in env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap()
    {
        assert_eq!(post.status, PostStatus::Published);
        assert_eq!(
            post.retry_count, 1,
            "one attempt each: a hand-back counts none"
        );
    }
}
