//! The auto-reply step as a queue (issue "Auto-replies starve"), each test on
//! memory and on PostgreSQL: every pending item answered in ceil(n / limit)
//! runs and none twice, one failing item retried with backoff then given up
//! and escalated without stopping the run, concurrent runs never sending
//! twice, a reply whose worker stopped never sent again, and an item handed
//! back for AI OFF due again a minute later, not at once; a reply too old
//! for the run's window escalated, not left waiting (`reply_queue/expiry`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use nexiom_connectors::{ApiError, ConnectorError, MockOp};
use nexiom_core::*;
use nexiom_scheduler::TenantConfigs;
use nexiom_scheduler::inbound::{AutoReplyConfig, AutoReplyReport};
use nexiom_storage::Store;

mod reply_queue {
    pub mod expiry;
    pub mod ordering;
    pub mod support;
    pub mod throttles;
}

use reply_queue::support::{pending, recipients, t0, tenant, world, world_with};

/// 120 pending items, limit 50: answered in exactly ceil(120 / 50) = 3 runs at
/// the same instant (no time window to move), none twice; the 4th run finds
/// nothing.
async fn all_pending_items_are_answered_in_ceil_n_over_limit_runs(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    for i in 0..120 {
        pending(
            &*w.store,
            acme,
            &format!("{i:04}"),
            "Horaires ?",
            t0() + Duration::seconds(i),
        )
        .await;
    }
    let since = t0() - Duration::hours(1);
    let mut sent = Vec::new();
    for _ in 0..3 {
        let r = w
            .pipeline
            .auto_reply_recent_inbound(since, 50)
            .await
            .unwrap();
        assert_eq!(r.failed, 0);
        sent.push(r.sent);
    }
    assert_eq!(sent, vec![50, 50, 20]);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 50)
        .await
        .unwrap();
    assert_eq!(
        r,
        AutoReplyReport::default(),
        "nothing left, nothing re-read"
    );
    assert_eq!(recipients(&w.mock), (120, 120), "120 sends, none twice");
    let answered = w
        .store
        .list_messages_by_triage(acme.0, Triage::AutoReply, since, 1000)
        .await
        .unwrap();
    assert_eq!(answered.len(), 120);
    assert!(
        answered
            .iter()
            .all(|m| m.reply.as_ref().unwrap().state == ReplyState::Sent)
    );
}

/// One always-failing item among good ones (and a second tenant after it):
/// the run goes on; the item is retried after 60 s, then 120 s (from the
/// clock), and after 3 attempts given up and escalated with its error.
async fn a_failing_item_is_retried_then_given_up_and_never_stops_the_run(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let globex = tenant(&*w.store, "globex").await;
    for i in 0..5 {
        pending(
            &*w.store,
            acme,
            &format!("a{i}"),
            "Bonjour",
            t0() + Duration::seconds(i),
        )
        .await;
    }
    let bad = pending(&*w.store, acme, "bad", "boom", t0() + Duration::seconds(5)).await;
    for i in 6..10 {
        pending(
            &*w.store,
            acme,
            &format!("a{i}"),
            "Bonjour",
            t0() + Duration::seconds(i),
        )
        .await;
    }
    pending(
        &*w.store,
        globex,
        "g",
        "Hello",
        t0() + Duration::seconds(20),
    )
    .await;
    let since = t0() - Duration::hours(1);
    let p = &w.pipeline;

    let r = p.auto_reply_recent_inbound(since, 50).await.unwrap();
    assert_eq!(
        (r.sent, r.failed, r.retried_later, r.given_up),
        (10, 1, 1, 0)
    );
    let state = w
        .store
        .get_message(acme.0, bad.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(state.state, ReplyState::Pending);
    assert_eq!(state.attempts, 1);
    assert!(
        state
            .error
            .as_deref()
            .unwrap()
            .contains("upstream overloaded")
    );
    assert_eq!(state.next_at, Some(w.clock.now() + Duration::seconds(60)));

    // Not before its backoff.
    w.clock.advance(Duration::seconds(59));
    assert_eq!(
        p.auto_reply_recent_inbound(since, 50).await.unwrap(),
        AutoReplyReport::default()
    );
    w.clock.advance(Duration::seconds(1));
    let r = p.auto_reply_recent_inbound(since, 50).await.unwrap();
    assert_eq!((r.failed, r.retried_later, r.given_up), (1, 1, 0));
    let state = w
        .store
        .get_message(acme.0, bad.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(state.attempts, 2);
    assert_eq!(state.next_at, Some(w.clock.now() + Duration::seconds(120)));

    w.clock.advance(Duration::seconds(120));
    let r = p.auto_reply_recent_inbound(since, 50).await.unwrap();
    assert_eq!((r.failed, r.retried_later, r.given_up), (1, 0, 1));
    let given_up = w.store.get_message(acme.0, bad.id).await.unwrap();
    assert_eq!(given_up.triage, Some(Triage::Escalate), "a person sees it");
    let state = given_up.reply.unwrap();
    assert_eq!(state.state, ReplyState::GivenUp);
    assert_eq!(state.attempts, 3);
    assert!(state.error.unwrap().contains("gave up after 3 attempts"));

    w.clock.advance(Duration::days(1));
    assert_eq!(
        p.auto_reply_recent_inbound(since, 50).await.unwrap(),
        AutoReplyReport::default()
    );
    assert_eq!(
        recipients(&w.mock),
        (10, 10),
        "the good ones once each, the bad one never"
    );
}

/// Four concurrent workers over 120 pending items (limit 10 per run, until
/// empty): every item answered, none twice.
async fn concurrent_runs_never_send_twice(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    for i in 0..120 {
        pending(
            &*w.store,
            acme,
            &format!("{i:04}"),
            "Prix ?",
            t0() + Duration::seconds(i % 7),
        )
        .await;
    }
    let since = t0() - Duration::hours(1);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let p = w.pipeline.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let r = p.auto_reply_recent_inbound(since, 10).await.unwrap();
                assert_eq!((r.failed, r.already_replied), (0, 0));
                if r.sent == 0 {
                    return sent;
                }
                sent += r.sent;
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 120);
    assert_eq!(recipients(&w.mock), (120, 120));
}

/// A worker claimed an item and its reply, then stopped: after the lease the
/// item comes back, but its reply is never sent again: it is given up as an
/// outcome unknown and escalated.
async fn a_reply_whose_worker_stopped_is_never_sent_again(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let m = pending(&*w.store, acme, "x", "Bonjour", t0()).await;
    let lease = AutoReplyConfig::default().lease;
    let claimed = w
        .store
        .claim_pending_replies(w.clock.now(), None, 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // The dead worker's reply claim, its outcome never recorded.
    w.store
        .insert_message(NewMessage {
            tenant_id: acme.0,
            conversation_id: m.conversation_id,
            direction: MessageDirection::Outbound,
            text: "Re: Bonjour".into(),
            has_media: false,
            provider_message_id: None,
            in_reply_to: Some(m.id),
            delivery_status: Some(DeliveryStatus::Pending),
            created_at: w.clock.now(),
            stored_at: w.clock.now(),
        })
        .await
        .unwrap();
    let since = t0() - Duration::hours(1);
    assert_eq!(
        w.pipeline
            .auto_reply_recent_inbound(since, 10)
            .await
            .unwrap(),
        AutoReplyReport::default(),
        "held by the lease"
    );
    w.clock.advance(lease);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.given_up), (0, 1));
    assert!(
        w.mock.calls_of(MockOp::SendMessage).is_empty(),
        "never re-sent"
    );
    let stored = w.store.get_message(acme.0, m.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    let state = stored.reply.unwrap();
    assert_eq!(state.state, ReplyState::GivenUp);
    assert!(state.error.unwrap().starts_with("outcome unknown"));
}

/// A send the platform refuses before acting (429 with Retry-After 10 min):
/// nothing was sent, so the claim is withdrawn and the item retried, not
/// before the Retry-After (longer than the 60 s backoff); then answered once,
/// with one reply row.
async fn a_rate_limited_send_is_retried_after_retry_after_and_sent_once(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let m = pending(&*w.store, acme, "0001", "Horaires ?", t0()).await;
    let since = t0() - Duration::hours(1);
    w.mock
        .rate_limit_next(MockOp::SendMessage, std::time::Duration::from_secs(600));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.retried_later, r.given_up), (0, 1, 0));
    let item = w.store.get_message(acme.0, m.id).await.unwrap();
    let reply = item.reply.unwrap();
    assert_eq!(reply.state, ReplyState::Pending);
    assert_eq!(reply.attempts, 1);
    assert_eq!(reply.next_at, Some(w.clock.now() + Duration::seconds(600)));

    // After the 60 s backoff but before the Retry-After: not claimed.
    w.clock.advance(Duration::seconds(120));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(r, AutoReplyReport::default());

    w.clock.advance(Duration::seconds(481));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed), (1, 0));
    let item = w.store.get_message(acme.0, m.id).await.unwrap();
    assert_eq!(item.reply.unwrap().state, ReplyState::Sent);
    let outbound: Vec<_> = w
        .store
        .list_messages(acme.0, m.conversation_id, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.direction == MessageDirection::Outbound)
        .collect();
    assert_eq!(outbound.len(), 1, "one reply row");
    assert_eq!(outbound[0].delivery_status, Some(DeliveryStatus::Sent));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(r, AutoReplyReport::default(), "answered, never read again");
}

/// The channel's auto-replies were switched off through this worker's
/// settings, then on again elsewhere (another process), while the worker's
/// cached copy still says off. The queue's claim reads the store and takes
/// the item; its turn reads the cache and meets AI OFF, so the item is handed
/// back due a minute later, not at once: a run at the same instant claims
/// nothing (due at once, it would be claimed and handed back run after run).
/// Once the cache has caught up and the minute has passed, it is answered
/// once.
async fn an_item_handed_back_for_ai_off_is_due_again_after_a_minute(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let (tenant_id, channel) = acme;
    let m = pending(&*w.store, acme, "0001", "Horaires ?", t0()).await;
    let since = t0() - Duration::hours(1);
    // The worker's settings, cached for an hour: they never expire on their
    // own during the test.
    let configs = TenantConfigs::new(Arc::clone(&w.store), Arc::new(w.clock.clone()))
        .with_ttl(StdDuration::from_secs(3600));
    let pipeline = w.pipeline.clone().with_tenant_configs(configs.clone());
    let off = configs
        .update(tenant_id, |s| {
            s.auto_reply_off_channels.insert(channel);
        })
        .await
        .unwrap();
    assert!(!configs.get(tenant_id).await.unwrap().auto_reply_on(channel));
    let mut on = off.clone();
    on.auto_reply_off_channels.remove(&channel);
    w.store
        .put_tenant_settings(tenant_id, &on, w.clock.now())
        .await
        .unwrap();

    let r = pipeline.auto_reply_recent_inbound(since, 10).await.unwrap();
    assert_eq!((r.sent, r.skipped_ai_off), (0, 1), "{r:?}");
    let reply = w
        .store
        .get_message(tenant_id, m.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.state, ReplyState::Pending);
    assert_eq!(reply.next_at, Some(w.clock.now() + Duration::minutes(1)));

    // The same instant, the cache still saying off: not claimed again.
    let r = pipeline.auto_reply_recent_inbound(since, 10).await.unwrap();
    assert_eq!(r, AutoReplyReport::default(), "not due again at once");
    // The cache caught up (AI ON for the channel again), a second before the
    // minute: still not due.
    configs.invalidate(tenant_id);
    assert!(configs.get(tenant_id).await.unwrap().auto_reply_on(channel));
    w.clock.advance(Duration::seconds(59));
    let r = pipeline.auto_reply_recent_inbound(since, 10).await.unwrap();
    assert_eq!(r, AutoReplyReport::default(), "not due before the minute");
    assert!(w.mock.calls_of(MockOp::SendMessage).is_empty());

    w.clock.advance(Duration::seconds(1));
    let r = pipeline.auto_reply_recent_inbound(since, 10).await.unwrap();
    assert_eq!((r.sent, r.skipped_ai_off, r.failed), (1, 0, 0), "{r:?}");
    let reply = w
        .store
        .get_message(tenant_id, m.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.state, ReplyState::Sent);
    assert_eq!(recipients(&w.mock), (1, 1), "answered once");
}

/// A send answered 401 (the token was revoked or expired early): nothing
/// was sent, so the claim is withdrawn, the channel's token refreshed once,
/// and the retry goes out with the new token, once.
async fn a_send_answered_401_refreshes_the_token_and_is_sent_once(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let m = pending(&*w.store, acme, "0001", "Horaires ?", t0()).await;
    let since = t0() - Duration::hours(1);
    w.mock.unauthorized_next(MockOp::SendMessage);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.retried_later, r.given_up), (0, 1, 0));
    assert_eq!(w.mock.calls_of(MockOp::RefreshToken).len(), 1);
    let channel = w.store.get_channel(acme.0, acme.1).await.unwrap();
    assert_eq!(
        channel.credentials.access_token.unwrap().expose(),
        "mock-token-1",
        "the refreshed token is stored"
    );
    w.clock.advance(Duration::minutes(5));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed), (1, 0));
    let sends = w.mock.calls_of(MockOp::SendMessage);
    assert_eq!(sends.len(), 2, "the refused send and the retry");
    assert_eq!(w.mock.calls_of(MockOp::RefreshToken).len(), 1);
    let item = w.store.get_message(acme.0, m.id).await.unwrap();
    assert_eq!(item.reply.unwrap().state, ReplyState::Sent);
}

/// One channel's backlog (a post gone viral) does not hold another
/// channel's reply behind it: 100 of acme's items older than globex's one,
/// runs of 50. The first run answers globex and 49 of acme's (the oldest 50
/// would all be acme's): globex's unused share goes back to acme, read a
/// second time. Two more runs answer acme's other 51.
async fn a_channels_backlog_never_holds_another_channels_reply_back(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let globex = tenant(&*w.store, "globex").await;
    for i in 0..100 {
        let at = t0() + Duration::seconds(i);
        pending(&*w.store, acme, &format!("a{i:04}"), "Horaires ?", at).await;
    }
    let late = pending(
        &*w.store,
        globex,
        "g0001",
        "Prix ?",
        t0() + Duration::seconds(200),
    )
    .await;
    let since = t0() - Duration::hours(1);
    let first = w
        .pipeline
        .auto_reply_recent_inbound(since, 50)
        .await
        .unwrap();
    assert_eq!(first.sent, 50, "{first:?}");
    let answered = w.store.get_message(globex.0, late.id).await.unwrap();
    assert_eq!(answered.reply.unwrap().state, ReplyState::Sent);
    let mut sent = Vec::new();
    for _ in 0..2 {
        sent.push(
            w.pipeline
                .auto_reply_recent_inbound(since, 50)
                .await
                .unwrap()
                .sent,
        );
    }
    assert_eq!(sent, vec![50, 1]);
    assert_eq!(recipients(&w.mock), (101, 101), "every item once");
}

/// A throttle that names no wait (Meta's codes 4, 17, 32, 613; a LinkedIn
/// 429 without Retry-After), one reply at a time on the channel: the
/// refused reply is retried after the policy's 60 s, and the channel's other
/// two replies in the batch are held back for those 60 s with no attempt
/// spent (before, each was sent into the throttle in turn, the platform
/// scripted here to accept them, a real throttled one to refuse them and
/// spend their attempts).
async fn a_throttle_without_a_wait_holds_the_channels_other_replies(store: Arc<dyn Store>) {
    let w = world_with(store, 1);
    let acme = tenant(&*w.store, "acme").await;
    let mut items = Vec::new();
    for i in 0..3 {
        let at = t0() + Duration::seconds(i);
        items.push(pending(&*w.store, acme, &format!("t{i}"), "Horaires ?", at).await);
    }
    w.mock.fail_next(
        MockOp::SendMessage,
        1,
        ConnectorError::RateLimited {
            platform: "whatsapp".into(),
            retry_after: None,
            detail: ApiError::message("(#4) Application request limit reached"),
        },
    );
    let since = t0() - Duration::hours(1);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.retried_later, r.held_back), (0, 1, 2), "{r:?}");
    let until = w.clock.now() + Duration::seconds(60);
    for (i, item) in items.iter().enumerate() {
        let reply = w
            .store
            .get_message(acme.0, item.id)
            .await
            .unwrap()
            .reply
            .unwrap();
        assert_eq!(reply.state, ReplyState::Pending);
        assert_eq!(
            reply.attempts,
            u32::from(i == 0),
            "only the refused reply spent one"
        );
        assert_eq!(reply.next_at, Some(until));
    }
    assert_eq!(w.mock.calls_of(MockOp::SendMessage).len(), 1);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(
        r,
        AutoReplyReport::default(),
        "nothing due before the hold ends"
    );
    w.clock.advance(Duration::seconds(60));
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed), (3, 0), "{r:?}");
}

/// WhatsApp's pair rate limit (131056) is about one customer: the refused
/// reply is retried later, the channel's replies to other customers go on.
async fn a_pair_rate_limit_holds_only_its_own_reply(store: Arc<dyn Store>) {
    pair_limited(store, None).await;
}

/// The same with a Retry-After of two minutes: the wait is that customer's
/// reply's (not before it), and holds no other reply of the channel.
async fn a_pair_rate_limits_wait_holds_only_its_own_reply(store: Arc<dyn Store>) {
    pair_limited(store, Some(StdDuration::from_secs(120))).await;
}

async fn pair_limited(store: Arc<dyn Store>, retry_after: Option<StdDuration>) {
    let w = world_with(store, 1);
    let acme = tenant(&*w.store, "acme").await;
    let mut items = Vec::new();
    for i in 0..3 {
        let at = t0() + Duration::seconds(i);
        items.push(pending(&*w.store, acme, &format!("p{i}"), "Horaires ?", at).await);
    }
    let mut detail = ApiError::message("(#131056) Pair rate limit hit");
    detail.code = Some(131_056);
    w.mock.fail_next(
        MockOp::SendMessage,
        1,
        ConnectorError::RateLimited {
            platform: "whatsapp".into(),
            retry_after,
            detail,
        },
    );
    let since = t0() - Duration::hours(1);
    let now = w.clock.now();
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.retried_later, r.held_back), (2, 1, 0), "{r:?}");
    let refused = w.store.get_message(acme.0, items[0].id).await.unwrap();
    let reply = refused.reply.unwrap();
    assert_eq!((reply.state, reply.attempts), (ReplyState::Pending, 1));
    if let Some(wait) = retry_after {
        let wait = Duration::from_std(wait).unwrap();
        assert!(reply.next_at.unwrap() >= now + wait, "{reply:?}");
    }
}

on_both_backends!(
    a_pair_rate_limit_holds_only_its_own_reply,
    a_pair_rate_limits_wait_holds_only_its_own_reply,
    a_throttle_without_a_wait_holds_the_channels_other_replies,
    a_channels_backlog_never_holds_another_channels_reply_back,
    a_send_answered_401_refreshes_the_token_and_is_sent_once,
    a_rate_limited_send_is_retried_after_retry_after_and_sent_once,
    all_pending_items_are_answered_in_ceil_n_over_limit_runs,
    a_failing_item_is_retried_then_given_up_and_never_stops_the_run,
    concurrent_runs_never_send_twice,
    a_reply_whose_worker_stopped_is_never_sent_again,
    an_item_handed_back_for_ai_off_is_due_again_after_a_minute,
);

mod split {
    use crate::reply_queue::{expiry, ordering, throttles};

    crate::on_both_backends!(
        expiry::a_reply_waiting_out_a_long_pause_is_escalated,
        expiry::a_recent_reply_is_never_expired_by_a_narrow_window,
        ordering::a_message_left_for_later_holds_its_conversations_next_one,
        throttles::a_channel_throttled_elsewhere_gets_no_reply_until_it_ends,
        throttles::a_throttle_met_by_a_reply_holds_the_channel_for_every_process,
    );
}
