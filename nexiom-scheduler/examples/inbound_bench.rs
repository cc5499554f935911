//! Benchmark: comment polling and auto-replies against a platform answering
//! each call in 100 ms, side by side with the same work one call at a time.
//!
//! - **polling**: 20,000 published posts over 500 Facebook Pages, all due;
//!   each poll reads one page of comments (100 ms).
//! - **replies**: 10,000 pending auto-replies over 500 WhatsApp numbers (4
//!   conversations of 5 messages each per number); each send takes 100 ms.
//! - **baselines**: the same with `max_in_flight = 1` (one call at a time, the
//!   behaviour before), on 200 items.
//! - **backlog**: 2,100 pending replies on one number, older than one on a
//!   second number: how long the second number's reply waits (runs of
//!   2,000 items).
//!
//! The platform is the in-process `MockConnector` behind a wrapper that
//! sleeps 100 ms per call and records the most calls in flight in all and on
//! one account; the bench fails if the per-channel cap is exceeded.
//!
//! ```sh
//! cargo run --release -p nexiom-scheduler --example inbound_bench
//! STORE=postgres DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p nexiom-scheduler --example inbound_bench
//! ```
//!
//! Optional: `POSTS` (20000), `REPLIES` (10000), `CHANNELS` (500),
//! `IN_FLIGHT` (256, calls in flight per worker), `LATENCY_MS` (100),
//! `BACKLOG` (2100; 0 leaves that scenario out).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/inbound_concurrency/counting.rs"]
mod counting;

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use counting::Counting;
use nexiom_connectors::{ConnectorRegistry, MockConnector};
use nexiom_core::*;
use nexiom_scheduler::inbound::{AutoReplyConfig, InboundPipeline};
use nexiom_scheduler::{CommentPoller, ConcurrencyConfig, PollingConfig};
use nexiom_storage::Store;
use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store};
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap()
}

#[derive(Debug)]
struct Generator;

#[async_trait]
impl ReplyGenerator for Generator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        Ok(Draft {
            text: format!("Re: {}", request.text),
            confidence: Some(0.9),
        })
    }
}

struct Setup {
    test_store: TestStore,
    store: Arc<dyn Store>,
    clock: ManualClock,
    tenant: TenantId,
    platform: Counting,
}

async fn setup(platform: Platform, latency: StdDuration) -> Setup {
    let test_store = if std::env::var("STORE").as_deref() == Ok("postgres") {
        postgres_test_store()
            .await
            .expect("STORE=postgres needs DATABASE_URL")
    } else {
        memory_test_store().await.expect("memory store")
    };
    let store = test_store.store();
    let clock = ManualClock::new(t0() + Duration::minutes(10));
    let tenant = store
        .create_tenant(NewTenant::new("bench", t0()))
        .await
        .unwrap()
        .id;
    store
        .set_ai_control(tenant, true, None, t0())
        .await
        .unwrap();
    let mut counting = Counting::new(
        MockConnector::new(platform).with_clock(Arc::new(clock.clone())),
        &Arc::new(Mutex::default()),
    );
    counting.latency = Some(latency);
    Setup {
        test_store,
        store,
        clock,
        tenant,
        platform: counting,
    }
}

async fn channels(s: &Setup, platform: Platform, n: usize) -> Vec<Channel> {
    let mut out = Vec::new();
    for c in 0..n {
        out.push(
            s.store
                .create_channel(NewChannel {
                    tenant_id: s.tenant,
                    platform: platform.clone(),
                    external_account_id: format!("acct-{c}"),
                    name: format!("acct-{c}"),
                    credentials: Credentials {
                        access_token: Some(SecretString::new("token")),
                        ..Credentials::default()
                    },
                    created_at: t0(),
                })
                .await
                .unwrap(),
        );
    }
    out
}

fn concurrency(in_flight: usize) -> ConcurrencyConfig {
    ConcurrencyConfig {
        max_in_flight: in_flight,
        ..ConcurrencyConfig::default()
    }
}

/// Polls `posts` due posts over `n_channels` Pages; posts polled per second.
async fn polling(posts: usize, n_channels: usize, in_flight: usize, latency: StdDuration) -> f64 {
    let s = setup(Platform::Facebook, latency).await;
    let chans = channels(&s, Platform::Facebook, n_channels).await;
    let now = s.clock.now();
    for i in 0..posts {
        let post = s
            .store
            .insert_post(NewScheduledPost::one_off(
                s.tenant,
                chans[i % n_channels].id,
                Content::text(format!("post {i}")),
                t0(),
                t0(),
            ))
            .await
            .unwrap()
            .record;
        s.store
            .update_post(
                s.tenant,
                post.id,
                PostPatch {
                    status: Some(PostStatus::Published),
                    platform_post_id: Some(Some(format!("fb-{i}"))),
                    published_at: Some(Some(t0())),
                    next_check_at: Some(Some(now)),
                    stop_at: Some(Some(t0() + Duration::days(7))),
                    ..PostPatch::default()
                },
                t0(),
            )
            .await
            .unwrap();
    }
    let poller = CommentPoller::new(
        s.store.clone(),
        Arc::new(s.clock.clone()),
        ConnectorRegistry::new().with(Arc::new(s.platform.clone())),
    )
    .with_config(PollingConfig {
        concurrency: ConcurrencyConfig {
            per_channel: nexiom_scheduler::DEFAULT_POLLS_PER_CHANNEL,
            ..concurrency(in_flight)
        },
        ..PollingConfig::default()
    });
    let started = Instant::now();
    let mut polled = 0;
    while polled < posts as u64 {
        let report = poller.poll_due(5_000, None).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures.first());
        if report.posts_polled == 0 {
            break;
        }
        polled += report.posts_polled;
    }
    let rate = polled as f64 / started.elapsed().as_secs_f64();
    assert_eq!(polled, posts as u64);
    let (peak, per_account) = s.platform.peaks();
    println!(
        "  polling: {polled} posts, at most {peak} calls in flight, {per_account} on one Page \
         (cap {})",
        nexiom_scheduler::DEFAULT_POLLS_PER_CHANNEL
    );
    assert!(per_account <= nexiom_scheduler::DEFAULT_POLLS_PER_CHANNEL);
    s.test_store.cleanup().await;
    rate
}

/// Sends `replies` pending auto-replies over `n_channels` numbers; replies
/// per second.
async fn replies(replies: usize, n_channels: usize, in_flight: usize, latency: StdDuration) -> f64 {
    let s = setup(Platform::WhatsApp, latency).await;
    let chans = channels(&s, Platform::WhatsApp, n_channels).await;
    let per_conversation = 5;
    let conversations = replies.div_ceil(per_conversation);
    let mut made = 0;
    for k in 0..conversations {
        let channel = &chans[k % n_channels];
        let conv = conversation(&s, channel, k).await;
        for i in 0..per_conversation.min(replies - made) {
            let at = t0() + Duration::seconds(i as i64);
            pending_reply(&s, conv, &format!("{k}.{i}"), at).await;
            made += 1;
        }
    }
    let pipeline = reply_pipeline(&s, in_flight);
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let report = pipeline
            .auto_reply_recent_inbound(t0() - Duration::hours(1), 2_000)
            .await
            .unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        if report.sent == 0 {
            break;
        }
        sent += report.sent;
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    assert_eq!(sent, replies as u64);
    let (peak, per_account) = s.platform.peaks();
    println!(
        "  replies: {sent} sent, at most {peak} calls in flight, {per_account} on one number (cap {})",
        nexiom_scheduler::inbound::DEFAULT_REPLIES_PER_CHANNEL
    );
    assert!(per_account <= nexiom_scheduler::inbound::DEFAULT_REPLIES_PER_CHANNEL);
    s.test_store.cleanup().await;
    rate
}

/// A new contact's open conversation on `channel`.
async fn conversation(s: &Setup, channel: &Channel, k: usize) -> ConversationId {
    let cc = s
        .store
        .insert_contact_channel(NewContactChannel {
            tenant_id: s.tenant,
            platform: channel.platform.clone(),
            external_handle: format!("+33600{k:06}"),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    s.store
        .insert_open_conversation(s.tenant, cc.contact_id, channel.id, t0())
        .await
        .unwrap()
        .record
        .id
}

/// An inbound message of `conv` at `at`, triaged AUTO_REPLY.
async fn pending_reply(s: &Setup, conv: ConversationId, key: &str, at: DateTime<Utc>) -> MessageId {
    let m = s
        .store
        .insert_message(NewMessage {
            tenant_id: s.tenant,
            conversation_id: conv,
            direction: MessageDirection::Inbound,
            text: format!("question {key}"),
            has_media: false,
            provider_message_id: Some(format!("wamid.{key}")),
            in_reply_to: None,
            delivery_status: None,
            created_at: at,
            stored_at: at,
        })
        .await
        .unwrap()
        .record;
    s.store
        .set_message_triage(s.tenant, m.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    m.id
}

/// The auto-reply pipeline of the bench, at the default caps per channel.
fn reply_pipeline(s: &Setup, in_flight: usize) -> InboundPipeline {
    InboundPipeline::new(
        s.store.clone(),
        Arc::new(s.clock.clone()),
        Arc::new(Generator),
    )
    .with_connectors(ConnectorRegistry::new().with(Arc::new(s.platform.clone())))
    .with_auto_reply_config(AutoReplyConfig {
        concurrency: ConcurrencyConfig {
            per_channel: nexiom_scheduler::inbound::DEFAULT_REPLIES_PER_CHANNEL,
            ..concurrency(in_flight)
        },
        ..AutoReplyConfig::default()
    })
}

/// One number's backlog of `backlog` pending replies, older than one reply
/// pending on a second number: the seconds until the second number's reply
/// is recorded sent (runs of 2,000, as the replies scenario; a watcher reads
/// the store every 20 ms beside them). Before replies were
/// shared among channels a run took the oldest 2,000 items, so the late
/// reply waited for the whole backlog ahead of it.
async fn late_reply_behind_a_backlog(backlog: usize, latency: StdDuration) -> f64 {
    let s = setup(Platform::WhatsApp, latency).await;
    let chans = channels(&s, Platform::WhatsApp, 2).await;
    for k in 0..backlog {
        let conv = conversation(&s, &chans[0], k).await;
        let at = t0() + Duration::milliseconds(k as i64);
        pending_reply(&s, conv, &format!("b{k}"), at).await;
    }
    let conv = conversation(&s, &chans[1], backlog).await;
    let late = pending_reply(&s, conv, "late", t0() + Duration::minutes(5)).await;
    let pipeline = reply_pipeline(&s, 256);
    let started = Instant::now();
    // Watches the store beside the runs: a reply is recorded `sent` as soon
    // as its settlement is written, while its run may go on for long after.
    let watcher = {
        let (store, tenant) = (s.store.clone(), s.tenant);
        tokio::spawn(async move {
            loop {
                let m = store.get_message(tenant, late).await.unwrap();
                if m.reply.is_some_and(|r| r.state == ReplyState::Sent) {
                    return started.elapsed().as_secs_f64();
                }
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
        })
    };
    let mut sent = 0;
    loop {
        let report = pipeline
            .auto_reply_recent_inbound(t0() - Duration::hours(1), 2_000)
            .await
            .unwrap();
        sent += report.sent;
        if report.sent == 0 {
            break;
        }
    }
    let waited = watcher.await.unwrap();
    assert_eq!(sent, backlog as u64 + 1);
    println!(
        "  backlog: {backlog} replies on one number, all sent in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    s.test_store.cleanup().await;
    waited
}

#[tokio::main]
async fn main() {
    let posts = env_number("POSTS", 20_000);
    let n_replies = env_number("REPLIES", 10_000);
    let n_channels = env_number("CHANNELS", 500);
    let in_flight = env_number("IN_FLIGHT", 256);
    let latency = StdDuration::from_millis(env_number("LATENCY_MS", 100) as u64);
    let backlog = env_number("BACKLOG", 2_100);
    let store = std::env::var("STORE").unwrap_or_else(|_| "memory".into());
    println!(
        "store {store}, {n_channels} channels, {} ms per call, {in_flight} calls in flight per \
         worker, {} cores",
        latency.as_millis(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let fast = polling(posts, n_channels, in_flight, latency).await;
    let slow = polling(200, n_channels, 1, latency).await;
    println!(
        "polling: {fast:.0} posts/s; one call at a time: {slow:.1} posts/s ({:.0}x)",
        fast / slow
    );
    let fast = replies(n_replies, n_channels, in_flight, latency).await;
    let slow = replies(200, n_channels, 1, latency).await;
    println!(
        "replies: {fast:.0} replies/s; one call at a time: {slow:.1} replies/s ({:.0}x)",
        fast / slow
    );
    if backlog > 0 {
        let waited = late_reply_behind_a_backlog(backlog, latency).await;
        println!(
            "a reply on a second number, behind {backlog} on one number: sent after {waited:.1} s"
        );
    }
}
