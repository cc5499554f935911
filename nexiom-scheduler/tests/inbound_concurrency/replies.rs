//! Auto-replies at platform speed: channels and conversations concurrently
//! under the caps, each conversation in order; a 429 with Retry-After holds
//! back only its channel; the heartbeat keeps a slow batch claimed and a
//! later settlement is written under the renewed lease.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::MockOp;
use nexiom_core::*;
use nexiom_scheduler::inbound::AutoReplyConfig;
use nexiom_storage::Store;
use tokio::sync::Notify;

use super::counting::RETRY_AFTER;
use super::world::{World, caps, sent_by_conversation};
use crate::common::t0;

/// 4 WhatsApp channels × 3 conversations × 3 messages, and a Facebook post
/// with 3 threads of 3 comments, in one batch, at most 3 calls in flight and
/// 2 per channel: several calls are in flight at once, never more than the
/// caps; each conversation's and thread's replies go out in order; every item
/// is answered exactly once and counted once.
pub async fn replies_run_concurrently_in_conversation_order_under_the_caps(store: Arc<dyn Store>) {
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
pub async fn a_rate_limited_channel_holds_back_only_its_own_replies(store: Arc<dyn Store>) {
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
pub async fn the_heartbeat_keeps_slow_replies_claimed(store: Arc<dyn Store>) {
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
pub async fn a_failed_send_after_a_heartbeat_is_settled_under_the_renewed_lease(
    store: Arc<dyn Store>,
) {
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
