//! Auto-replies and comment polling at platform speed, on memory and
//! Postgres: a batch runs its channels and conversations concurrently under
//! the worker's and the channel's caps, the replies of one conversation in
//! order; a channel answering 429 with Retry-After holds back only its own
//! replies; the heartbeat keeps a slow reply batch claimed; due posts are
//! polled concurrently, each once, their checkpoints saved.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod inbound_concurrency {
    pub mod counting;
}

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use common::t0;
use inbound_concurrency::counting::{Counting, RETRY_AFTER};
use nexiom_connectors::{ConnectorRegistry, MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::inbound::{AutoReplyConfig, InboundPipeline};
use nexiom_scheduler::{CommentPoller, ConcurrencyConfig, PollingConfig, RetryPolicy};
use nexiom_storage::Store;
use nexiom_triage::{Draft, ReplyError, ReplyGenerator, ReplyRequest};
use tokio::sync::Notify;

on_both_backends!(
    replies_run_concurrently_in_conversation_order_under_the_caps,
    a_rate_limited_channel_holds_back_only_its_own_replies,
    the_heartbeat_keeps_slow_replies_claimed,
    a_failed_send_after_a_heartbeat_is_settled_under_the_renewed_lease,
    due_posts_are_polled_concurrently_under_the_caps,
);

/// Drafts "Re: <text>".
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

struct World {
    store: Arc<dyn Store>,
    clock: ManualClock,
    tenant: TenantId,
    wa: Counting,
    fb: Counting,
}

impl World {
    /// A tenant with AI control ON, over a WhatsApp and a Facebook platform.
    async fn new(store: Arc<dyn Store>) -> World {
        let clock = ManualClock::new(t0() + Duration::minutes(10));
        let mock = |p| MockConnector::new(p).with_clock(Arc::new(clock.clone()));
        let tenant = store
            .create_tenant(NewTenant::new("Acme", t0()))
            .await
            .unwrap()
            .id;
        store
            .set_ai_control(tenant, true, None, t0())
            .await
            .unwrap();
        // One count of calls in flight for both platforms.
        let counters = Arc::default();
        World {
            wa: Counting::new(mock(Platform::WhatsApp), &counters),
            fb: Counting::new(mock(Platform::Facebook), &counters),
            store,
            clock,
            tenant,
        }
    }

    fn pipeline(&self, config: AutoReplyConfig) -> InboundPipeline {
        InboundPipeline::new(
            Arc::clone(&self.store),
            Arc::new(self.clock.clone()),
            Arc::new(Generator),
        )
        .with_connectors(
            ConnectorRegistry::new()
                .with(Arc::new(self.wa.clone()))
                .with(Arc::new(self.fb.clone())),
        )
        .with_auto_reply_config(AutoReplyConfig {
            retry: RetryPolicy {
                jitter: false,
                ..RetryPolicy::default()
            },
            ..config
        })
    }

    async fn channel(&self, platform: Platform, account: &str) -> Channel {
        self.store
            .create_channel(NewChannel {
                tenant_id: self.tenant,
                platform,
                external_account_id: account.into(),
                name: account.into(),
                credentials: Credentials {
                    access_token: Some(SecretString::new("token")),
                    ..Credentials::default()
                },
                created_at: t0(),
            })
            .await
            .unwrap()
    }

    /// A conversation on `channel` with `handle`, and `n` inbound messages
    /// in it ("<handle> #i", one second apart from `at`), triaged AUTO_REPLY.
    async fn conversation(
        &self,
        channel: &Channel,
        handle: &str,
        n: usize,
        at: DateTime<Utc>,
    ) -> Vec<Message> {
        let s = &*self.store;
        let cc = s
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.tenant,
                platform: Platform::WhatsApp,
                external_handle: handle.into(),
                display_name: None,
                created_at: t0(),
            })
            .await
            .unwrap()
            .record;
        let conv = s
            .insert_open_conversation(self.tenant, cc.contact_id, channel.id, t0())
            .await
            .unwrap()
            .record;
        let mut out = Vec::new();
        for i in 0..n {
            let at = at + Duration::seconds(i as i64);
            let m = s
                .insert_message(NewMessage {
                    tenant_id: self.tenant,
                    conversation_id: conv.id,
                    direction: MessageDirection::Inbound,
                    text: format!("{handle} #{i}"),
                    has_media: false,
                    provider_message_id: Some(format!("wamid.{handle}.{i}")),
                    in_reply_to: None,
                    delivery_status: None,
                    created_at: at,
                    stored_at: at,
                })
                .await
                .unwrap()
                .record;
            let m = s
                .set_message_triage(self.tenant, m.id, Triage::AutoReply, 0.9, None)
                .await
                .unwrap();
            out.push(m);
        }
        out
    }

    /// A comment thread on `post`: a top-level comment `t` and `n - 1`
    /// replies under it ("t", "t.1", …), triaged AUTO_REPLY.
    async fn thread(&self, post: PostId, t: &str, n: usize, at: DateTime<Utc>) {
        for i in 0..n {
            let at = at + Duration::seconds(i as i64);
            let c = self
                .store
                .insert_comment(NewComment {
                    tenant_id: self.tenant,
                    post_id: post,
                    platform_comment_id: if i == 0 { t.into() } else { format!("{t}.{i}") },
                    parent_platform_comment_id: (i > 0).then(|| t.to_owned()),
                    author_id: None,
                    author_name: None,
                    text: format!("{t} #{i}"),
                    created_at: at,
                    stored_at: at,
                })
                .await
                .unwrap()
                .record;
            self.store
                .set_comment_triage(self.tenant, c.id, Triage::AutoReply, 0.9, None)
                .await
                .unwrap();
        }
    }

    async fn post(&self, channel: &Channel) -> ScheduledPost {
        self.store
            .insert_post(NewScheduledPost::one_off(
                self.tenant,
                channel.id,
                Content::text("Launch"),
                t0(),
                t0(),
            ))
            .await
            .unwrap()
            .record
    }
}

/// The texts sent (message replies by recipient, comment replies by thread),
/// in call order.
fn sent_by_conversation(w: &World) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for call in w.wa.mock.calls_of(MockOp::SendMessage) {
        out.entry(call.target.unwrap())
            .or_default()
            .push(call.text.unwrap());
    }
    for call in w.fb.mock.calls_of(MockOp::ReplyComment) {
        let target = call.target.unwrap();
        let thread = target.split('.').next().unwrap().to_owned();
        out.entry(thread).or_default().push(call.text.unwrap());
    }
    out
}

fn caps(max_in_flight: usize, per_channel: usize) -> ConcurrencyConfig {
    ConcurrencyConfig {
        max_in_flight,
        per_channel,
        ..ConcurrencyConfig::default()
    }
}

/// 4 WhatsApp channels × 3 conversations × 3 messages, and a Facebook post
/// with 3 threads of 3 comments, in one batch, at most 3 calls in flight and
/// 2 per channel: several calls are in flight at once, never more than the
/// caps; each conversation's and thread's replies go out in order; every item
/// is answered exactly once and counted once.
async fn replies_run_concurrently_in_conversation_order_under_the_caps(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    w.wa.company = true;
    w.fb.company = true;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for c in 0..4 {
        let channel = w
            .channel(Platform::WhatsApp, &format!("pn-{c}-{}", w.tenant))
            .await;
        for k in 0..3 {
            let handle = format!("33{c}{k}");
            // Interleaved in time: the queue mixes conversations and channels.
            let at = t0() + Duration::milliseconds((k * 4 + c) as i64);
            w.conversation(&channel, &handle, 3, at).await;
            expected.insert(
                handle.clone(),
                (0..3).map(|i| format!("Re: {handle} #{i}")).collect(),
            );
        }
    }
    let page = w
        .channel(Platform::Facebook, &format!("page-{}", w.tenant))
        .await;
    let post = w.post(&page).await;
    for t in ["ta", "tb", "tc"] {
        w.thread(post.id, t, 3, t0()).await;
        expected.insert(t.into(), (0..3).map(|i| format!("Re: {t} #{i}")).collect());
    }

    let pipeline = w.pipeline(AutoReplyConfig {
        concurrency: caps(3, 2),
        ..AutoReplyConfig::default()
    });
    let since = t0() - Duration::hours(1);
    let r = pipeline
        .auto_reply_recent_inbound(since, 100)
        .await
        .unwrap();
    assert_eq!(
        (r.sent, r.failed, r.held_back, r.already_replied),
        (45, 0, 0, 0)
    );

    let (total, per_channel) = w.wa.peaks();
    assert!(total >= 2, "sent one after another");
    assert!(total <= 3, "over the worker cap: {total}");
    assert!(per_channel <= 2, "over the channel cap: {per_channel}");
    assert_eq!(sent_by_conversation(&w), expected, "each once, in order");
    assert_eq!(
        pipeline
            .auto_reply_recent_inbound(since, 100)
            .await
            .unwrap(),
        Default::default(),
        "nothing left"
    );
}

/// 3 WhatsApp channels × 4 conversations, one reply each per channel lane
/// (one call at a time per channel); the first channel answers 429 with
/// Retry-After 10 min: its first item is retried after it, its others are put
/// back untouched until then (no call, no attempt), and the other channels'
/// replies all go out in the same run. After the 10 minutes, the held
/// channel's replies go out once each.
async fn a_rate_limited_channel_holds_back_only_its_own_replies(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut mine = Vec::new();
    let mut channels = Vec::new();
    for c in 0..3 {
        let channel = w
            .channel(Platform::WhatsApp, &format!("pn-{c}-{}", w.tenant))
            .await;
        for k in 0..4 {
            let at = t0() + Duration::milliseconds((k * 3 + c) as i64);
            let m = w.conversation(&channel, &format!("33{c}{k}"), 1, at).await;
            if c == 0 {
                mine.extend(m);
            }
        }
        channels.push(channel);
    }
    let held = channels[0].external_account_id.clone();
    w.wa.throttled.lock().unwrap().insert(held.clone());
    let pipeline = w.pipeline(AutoReplyConfig {
        concurrency: caps(64, 1),
        ..AutoReplyConfig::default()
    });
    let since = t0() - Duration::hours(1);
    let now = w.clock.now();
    let r = pipeline
        .auto_reply_recent_inbound(since, 100)
        .await
        .unwrap();
    assert_eq!(
        (r.sent, r.failed, r.retried_later, r.held_back, r.given_up),
        (8, 1, 1, 3, 0)
    );
    let calls = w.wa.mock.calls_of(MockOp::SendMessage);
    assert_eq!(
        calls.len(),
        8,
        "the throttled answer never reached the mock"
    );
    assert!(calls.iter().all(|c| c.account_id != held));
    let until = now + Duration::from_std(RETRY_AFTER).unwrap();
    for (i, m) in mine.iter().enumerate() {
        let reply = w.store.get_message(w.tenant, m.id).await.unwrap().reply;
        let reply = reply.unwrap();
        assert_eq!(reply.state, ReplyState::Pending);
        assert_eq!(reply.next_at, Some(until));
        assert_eq!(
            reply.attempts,
            u32::from(i == 0),
            "only the first was tried"
        );
    }

    // Not before the Retry-After; then each held reply once.
    w.clock
        .advance(Duration::from_std(RETRY_AFTER).unwrap() - Duration::seconds(1));
    let r = pipeline
        .auto_reply_recent_inbound(since, 100)
        .await
        .unwrap();
    assert_eq!(r, Default::default());
    w.wa.throttled.lock().unwrap().clear();
    w.clock.advance(Duration::seconds(1));
    let r = pipeline
        .auto_reply_recent_inbound(since, 100)
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed, r.held_back), (4, 0, 0));
    let sent = sent_by_conversation(&w);
    assert_eq!(sent.len(), 12);
    assert!(sent.values().all(|texts| texts.len() == 1), "none twice");
}

/// A send held in flight longer than the lease: the heartbeat renews the
/// batch's lease, so another worker claims nothing, and the reply ends sent
/// once.
async fn the_heartbeat_keeps_slow_replies_claimed(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    let gate = Arc::new(Notify::new());
    w.wa.gate = Some(gate.clone());
    let channel = w
        .channel(Platform::WhatsApp, &format!("pn-{}", w.tenant))
        .await;
    let m = w.conversation(&channel, "3300", 1, t0()).await.remove(0);
    // A 3 s lease: the heartbeat runs every second.
    let lease = Duration::seconds(3);
    let pipeline = w.pipeline(AutoReplyConfig {
        lease,
        ..AutoReplyConfig::default()
    });
    let since = t0() - Duration::hours(1);
    let task = {
        let pipeline = pipeline.clone();
        tokio::spawn(async move { pipeline.auto_reply_recent_inbound(since, 10).await })
    };

    // Wait for the send to be in flight (an event, not a time).
    let counters = Arc::clone(&w.wa.counters);
    let in_flight = || counters.lock().unwrap().total == 1;
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !in_flight() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let lease_until = |w: &World| {
        let store = Arc::clone(&w.store);
        let (tenant, id) = (w.tenant, m.id);
        async move {
            let reply = store.get_message(tenant, id).await.unwrap().reply;
            reply.unwrap().lease_until.unwrap()
        }
    };
    assert_eq!(lease_until(&w).await, w.clock.now() + lease);
    // The platform is slow: 10 s pass on the clock, then we wait for a
    // heartbeat to move the lease past them.
    w.clock.advance(Duration::seconds(10));
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while lease_until(&w).await <= w.clock.now() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let other = w
        .store
        .claim_pending_replies(w.clock.now(), None, 10, lease)
        .await
        .unwrap();
    assert!(other.is_empty(), "still claimed by the slow batch");

    gate.notify_one();
    let r = task.await.unwrap().unwrap();
    assert_eq!((r.sent, r.failed), (1, 0));
    assert_eq!(w.wa.mock.calls_of(MockOp::SendMessage).len(), 1);
    let stored = w.store.get_message(w.tenant, m.id).await.unwrap();
    assert_eq!(stored.reply.unwrap().state, ReplyState::Sent);
}

/// A send refused (429) after the heartbeat renewed the lease: the
/// withdrawn claim and the retry are written under the renewed lease (the
/// settlement carries the lease the database holds), nothing is counted as
/// a lost lease, and the item is due again with one attempt counted.
async fn a_failed_send_after_a_heartbeat_is_settled_under_the_renewed_lease(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    let gate = Arc::new(Notify::new());
    w.wa.gate = Some(gate.clone());
    let channel = w
        .channel(Platform::WhatsApp, &format!("pn-{}", w.tenant))
        .await;
    let m = w.conversation(&channel, "3301", 1, t0()).await.remove(0);
    let lease = Duration::seconds(3);
    let pipeline = w.pipeline(AutoReplyConfig {
        lease,
        ..AutoReplyConfig::default()
    });
    let since = t0() - Duration::hours(1);
    let task = {
        let pipeline = pipeline.clone();
        tokio::spawn(async move { pipeline.auto_reply_recent_inbound(since, 10).await })
    };
    let counters = Arc::clone(&w.wa.counters);
    let in_flight = || counters.lock().unwrap().total == 1;
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !in_flight() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let lease_until = |w: &World| {
        let store = Arc::clone(&w.store);
        let (tenant, id) = (w.tenant, m.id);
        async move {
            let reply = store.get_message(tenant, id).await.unwrap().reply;
            reply.unwrap().lease_until.unwrap()
        }
    };
    w.clock.advance(Duration::seconds(10));
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while lease_until(&w).await <= w.clock.now() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();

    w.wa.mock
        .rate_limit_next(MockOp::SendMessage, std::time::Duration::from_secs(60));
    gate.notify_one();
    let r = task.await.unwrap().unwrap();
    assert_eq!(
        (r.sent, r.failed, r.retried_later, r.lease_lost),
        (0, 1, 1, 0),
        "{r:?}"
    );
    let stored = w.store.get_message(w.tenant, m.id).await.unwrap();
    let reply = stored.reply.unwrap();
    assert_eq!((reply.state, reply.attempts), (ReplyState::Pending, 1));
    assert_eq!(reply.lease_until, None);
    assert!(reply.next_at.unwrap() >= w.clock.now() + Duration::seconds(60));
}

/// 3 Facebook pages × 4 due posts with 5 comments each (3 pages of 2), at most
/// 3 polls in flight and 2 per channel: several in flight at once, never more
/// than the caps; every post polled once with its pages in cursor order, its
/// comments stored once and its checkpoint and next check saved.
async fn due_posts_are_polled_concurrently_under_the_caps(store: Arc<dyn Store>) {
    let mut w = World::new(store).await;
    w.fb.company = true;
    let now = w.clock.now();
    let mut posts = Vec::new();
    for c in 0..3 {
        let page = w
            .channel(Platform::Facebook, &format!("page-{c}-{}", w.tenant))
            .await;
        for p in 0..4 {
            let post = w.post(&page).await;
            let platform_id = format!("fb-{c}-{p}");
            let post = w
                .store
                .update_post(
                    w.tenant,
                    post.id,
                    PostPatch {
                        status: Some(PostStatus::Published),
                        platform_post_id: Some(Some(platform_id.clone())),
                        published_at: Some(Some(now)),
                        next_check_at: Some(Some(now - Duration::seconds(12 - p - 4 * c))),
                        stop_at: Some(Some(now + Duration::days(7))),
                        ..PostPatch::default()
                    },
                    now,
                )
                .await
                .unwrap();
            let comments: Vec<_> = (0..5)
                .map(|i| {
                    w.fb.mock
                        .comment(&format!("{platform_id}-{i}"), "fan", "Hi")
                })
                .collect();
            w.fb.mock.seed_comments(&platform_id, comments);
            posts.push((post, platform_id));
        }
    }
    let poller = CommentPoller::new(
        Arc::clone(&w.store),
        Arc::new(w.clock.clone()),
        ConnectorRegistry::new().with(Arc::new(w.fb.clone())),
    )
    .with_config(PollingConfig {
        concurrency: caps(3, 2),
        ..PollingConfig::default()
    });
    let report = poller.poll_due(100, None).await.unwrap();
    assert_eq!(
        (
            report.posts_polled,
            report.pages_read,
            report.comments_stored
        ),
        (12, 36, 60)
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let (total, per_channel) = w.fb.peaks();
    assert!(total >= 2, "polled one after another");
    assert!(total <= 3, "over the worker cap: {total}");
    assert!(per_channel <= 2, "over the channel cap: {per_channel}");
    let mut cursors: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for call in w.fb.mock.calls_of(MockOp::ListComments) {
        cursors
            .entry(call.target.unwrap())
            .or_default()
            .push(call.cursor);
    }
    assert_eq!(cursors.len(), 12);
    for (post, platform_id) in &posts {
        assert_eq!(
            cursors[platform_id],
            vec![None, Some("2".into()), Some("4".into())],
            "{platform_id}: pages in order, once"
        );
        let checkpoint = w.store.get_checkpoint(w.tenant, post.id).await.unwrap();
        assert_eq!(checkpoint.unwrap().last_cursor.as_deref(), Some("4"));
        let stored = w.store.list_comments(w.tenant, post.id, 100).await.unwrap();
        assert_eq!(stored.len(), 5);
        let after = w.store.get_post(w.tenant, post.id).await.unwrap();
        assert_eq!(after.last_check_at, Some(now));
        assert_eq!(after.next_check_at, Some(now + Duration::minutes(5)));
    }
    let again = poller.poll_due(100, None).await.unwrap();
    assert_eq!(again.posts_polled, 0, "each polled once");
}
