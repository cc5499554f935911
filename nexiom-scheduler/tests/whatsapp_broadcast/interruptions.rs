//! A fan-out interrupted: a worker killed mid-fan-out sends no one twice, a
//! Retry-After pauses the fan-out and holds the channel back, and a large
//! audience goes out in bounded passes; a series cancelled during an
//! occurrence's broadcast stops it and says how far it went.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::{
    BatchConfig, PublishConfig, PublishQueue, RetryPolicy, Scheduler, SeriesSpec,
};
use nexiom_storage::Store;
use serde_json::json;

use super::fixture::{Fx, fx};
use crate::common::{batch, t0};

pub async fn a_worker_killed_mid_fan_out_sends_no_one_twice(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    for r in ["15550001", "15550002", "15550003"] {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&["15550001", "15550002", "15550003"]).await;
    let post = f.broadcast(audience, t).await;
    *f.fake.slow.lock().unwrap() = Some("15550002".into());

    // w1 sends to the first, then is killed while its second send is out.
    let queue = f.queue("w1");
    let arrived = f.fake.arrived_slow.clone();
    let worker = tokio::spawn(async move { queue.run_due(&batch(10), None).await });
    tokio::time::timeout(StdDuration::from_secs(30), arrived.notified())
        .await
        .unwrap();
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 0)
    );

    // Restarted after its lease lapsed: the one in doubt is not sent again.
    f.clock.advance(Duration::minutes(6));
    f.store.release_stale_leases(f.clock.now()).await.unwrap();
    let report = f.queue("w2").run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 1)
    );
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Failed);
    assert_eq!(
        d["15550002"].error.as_deref(),
        Some(nexiom_storage::DELIVERY_OUTCOME_UNKNOWN)
    );
    assert_eq!(f.post(post.id).await.status, PostStatus::Published);

    // The platform's status webhook, echoing the delivery id, settles it.
    let ts = f.clock.now().timestamp().to_string();
    f.webhook(
        "messages",
        json!({"statuses": [{"id": "wamid.2", "status": "delivered", "timestamp": ts,
            "recipient_id": "15550002",
            "biz_opaque_callback_data": d["15550002"].id.to_string()}]}),
    )
    .await;
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
    assert_eq!(
        d["15550002"].delivery_status,
        Some(DeliveryStatus::Delivered)
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (3, 0));

    // One says "stop" through the platform: the next broadcast skips them.
    f.webhook(
        "user_preferences",
        json!({"contacts": [{"profile": {"name": "Bo"}, "wa_id": "15550003"}],
            "user_preferences": [{"wa_id": "15550003", "detail": "stop",
                "category": "marketing_messages", "value": "stop", "timestamp": ts}]}),
    )
    .await;
    *f.fake.slow.lock().unwrap() = None;
    let next = f.broadcast(audience, f.clock.now()).await;
    f.queue("w2").run_due(&batch(10), None).await.unwrap();
    assert_eq!(f.post(next.id).await.status, PostStatus::Published);
    assert_eq!(f.fake.calls_to("15550003"), 1, "not sent after the stop");
    assert_eq!(f.fake.calls_to("15550001"), 2);
    assert_eq!(f.fake.calls_to("15550002"), 2);
}

pub async fn a_retry_after_pauses_the_fan_out_and_holds_the_channel(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    for r in ["15550001", "15550002", "15550003"] {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&["15550001", "15550002", "15550003"]).await;
    let post = f.broadcast(audience, t).await;
    f.fake
        .throttled
        .lock()
        .unwrap()
        .insert("15550002".into(), 1);
    let queue = f.queue("w1");

    // The second recipient is throttled: the third is not tried in this pass.
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (1, 1, 0)
    );
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t + Duration::seconds(120)));
    let d = f.deliveries(post.id).await;
    assert_eq!(
        d["15550003"].attempts, 0,
        "not attempted, no attempt counted"
    );

    // The channel is held back for every worker until the Retry-After, even
    // for another post due at once.
    let (other, _) = f
        .store
        .insert_broadcast_post(
            NewScheduledPost::one_off(
                f.tenant,
                f.channel,
                Content::text("Another"),
                f.clock.now(),
                f.clock.now(),
            ),
            BroadcastAudience::Recipients {
                recipients: vec!["15550001".into()],
            },
            None,
        )
        .await
        .unwrap();
    f.clock.advance(Duration::seconds(119));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .claimed,
        0
    );
    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .published,
        2
    );
    assert_eq!(f.post(other.id).await.status, PostStatus::Published);
    assert_eq!(
        (
            f.fake.calls_to("15550001"),
            f.fake.calls_to("15550002"),
            f.fake.calls_to("15550003")
        ),
        (2, 2, 1)
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (3, 0));
}

/// A throttle that names no wait (130429 without Retry-After) still pauses
/// the fan-out and holds the channel, for the delivery's backoff: the other
/// recipients are not each sent into it (before, every one was, spent an
/// attempt, and after three passes the whole audience failed). WhatsApp's
/// pair rate limit (131056) is about one recipient: the others go on at once
/// and the channel is not held.
pub async fn a_throttle_without_a_wait_holds_the_channel_but_a_pair_limit_does_not(
    store: Arc<dyn Store>,
) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550001", "15550002", "15550003"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let calls = || recipients.map(|r| f.fake.calls_to(r));
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    f.fake
        .throttled_silently
        .lock()
        .unwrap()
        .insert("15550002".into(), 1);
    let queue = f.queue("w1");
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(
        calls(),
        [1, 1, 0],
        "the third is not sent into the throttle"
    );
    let backoff = RetryPolicy::default().base;
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.next_attempt_at, Some(t + backoff));
    // Held for every worker until then.
    f.clock.advance(backoff - Duration::seconds(1));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .claimed,
        0
    );
    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        f.queue("w2")
            .run_due(&batch(10), None)
            .await
            .unwrap()
            .published,
        1
    );
    assert_eq!(calls(), [1, 2, 1]);

    // The pair rate limit: the others are sent in the same pass.
    let post = f.broadcast(audience, f.clock.now()).await;
    f.fake
        .pair_limited
        .lock()
        .unwrap()
        .insert("15550001".into(), 1);
    queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(calls(), [2, 3, 2], "no hold: every recipient tried");
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550001"].state, BroadcastDeliveryState::Pending);
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
}

/// One claim sends to a bounded share of the audience, then hands the post
/// back due at once: the worker's run ends (its other posts and the
/// runtime's other workers take their turn) and the next claim goes on with
/// the next recipients. Each recipient still gets exactly one message.
pub async fn a_large_audience_goes_out_in_bounded_passes(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550011", "15550012", "15550013", "15550014", "15550015"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    let queue = PublishQueue::new(
        f.store.clone(),
        f.gateway.clone(),
        f.clock.clone(),
        PublishConfig {
            broadcast_pass: 2,
            ..PublishConfig::for_worker("w1")
        },
    );
    let calls = || recipients.iter().map(|r| f.fake.calls_to(r)).sum::<usize>();

    let first = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((first.claimed, first.published), (1, 0));
    assert_eq!(calls(), 2, "the first pass sends to two recipients");
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t), "due again at once");
    assert_eq!(waiting.retry_count, 0, "a pass is not a failed attempt");

    queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(calls(), 4);
    let last = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(last.published, 1);
    assert_eq!(f.post(post.id).await.status, PostStatus::Published);
    for r in recipients {
        assert_eq!(f.fake.calls_to(r), 1, "{r} gets one message");
    }
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed, counts.pending), (5, 0, 0));
}

/// A large broadcast whose pass ends full is due again at once, first of its
/// channel's posts; a batch out of time (`PublishConfig::batch_time`, zero
/// here) still runs the channel's next post after the pass, so the large
/// audience does not hold the channel's other posts for all of its passes.
pub async fn a_large_broadcast_does_not_hold_its_channels_next_post(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550021", "15550022", "15550023", "15550024", "15550025"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let large = f.broadcast(f.audience(&recipients).await, t).await;
    let vip = f
        .store
        .create_audience(NewAudience {
            tenant_id: f.tenant,
            channel_id: f.channel,
            name: "VIP".into(),
            created_at: t,
        })
        .await
        .unwrap();
    f.store
        .add_audience_members(f.tenant, vip.id, &["15550021".to_owned()], t)
        .await
        .unwrap();
    let small = f.broadcast(vip.id, t + Duration::seconds(1)).await;
    f.clock.advance(Duration::seconds(1));
    let (queue, one_batch) = out_of_time(&f);
    let first = queue.run_due(&one_batch, None).await.unwrap();
    assert_eq!((first.claimed, first.published), (2, 1), "{first:?}");
    assert_eq!(f.post(small.id).await.status, PostStatus::Published);
    assert_eq!(f.post(large.id).await.status, PostStatus::Queued);
}

/// A lane of large broadcasts alone (each pass ends full, due again at
/// once), in a batch out of time: the lane runs two passes past the batch's
/// time, then hands the third broadcast back, so the worker claims again
/// instead of running every broadcast's pass in one batch (up to a minute
/// each) while other channels' posts fall due.
pub async fn a_lane_of_large_broadcasts_stops_with_its_batch(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550031", "15550032", "15550033"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&recipients).await;
    let mut posts = Vec::new();
    for i in 0..3 {
        posts.push(f.broadcast(audience, t + Duration::seconds(i)).await);
    }
    f.clock.advance(Duration::seconds(3));
    let (queue, one_batch) = out_of_time(&f);
    let first = queue.run_due(&one_batch, None).await.unwrap();
    assert_eq!(
        (first.claimed, first.published, first.handed_back),
        (3, 0, 1),
        "{first:?}"
    );
    for post in &posts {
        assert_eq!(f.post(post.id).await.status, PostStatus::Queued);
    }
    // Every broadcast still goes out in full over the next batches.
    for _ in 0..10 {
        queue.run_due(&one_batch, None).await.unwrap();
    }
    for post in &posts {
        assert_eq!(f.post(post.id).await.status, PostStatus::Published);
    }
}

/// A queue of passes of two recipients whose batches are out of time from
/// the start, and a run of one batch of 10.
fn out_of_time(f: &Fx) -> (PublishQueue, BatchConfig) {
    let queue = PublishQueue::new(
        f.store.clone(),
        f.gateway.clone(),
        f.clock.clone(),
        PublishConfig {
            broadcast_pass: 2,
            batch_time: Duration::zero(),
            ..PublishConfig::for_worker("w1")
        },
    );
    let one_batch = BatchConfig {
        batch_size: 10,
        max_batches: 1,
        ..BatchConfig::default()
    };
    (queue, one_batch)
}

/// A broadcast series cancelled while a worker holds an occurrence after
/// its first pass (two of four recipients sent), then stops: the next claim
/// cancels the occurrence as cancelling a queued broadcast does (the other
/// two get nothing), and its message says two of four were sent. Before,
/// the rest of the broadcast went out after the cancel.
pub async fn a_series_cancelled_mid_broadcast_stops_it_and_says_how_far_it_went(
    store: Arc<dyn Store>,
) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550021", "15550022", "15550023", "15550024"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&recipients).await;
    let scheduler =
        Scheduler::new(f.store.clone(), f.clock.clone()).with_gateway(f.gateway.clone());
    let start = t + Duration::minutes(1);
    let mut new = NewScheduledPost::one_off(f.tenant, f.channel, Content::text("Daily deal"), t, t);
    new.recurrence = Some(
        SeriesSpec::new("FREQ=DAILY", start.naive_utc(), "UTC")
            .rule()
            .unwrap()
            .recurrence()
            .clone(),
    );
    let (series, _) = scheduler
        .schedule_broadcast(
            new,
            BroadcastAudience::Stored {
                audience_id: audience,
            },
            None,
        )
        .await
        .unwrap();
    let queue = PublishQueue::new(
        f.store.clone(),
        f.gateway.clone(),
        f.clock.clone(),
        PublishConfig {
            broadcast_pass: 2,
            ..PublishConfig::for_worker("w1")
        },
    );
    let calls = || recipients.iter().map(|r| f.fake.calls_to(r)).sum::<usize>();
    f.clock.set(start);
    for _ in 0..3 {
        if calls() > 0 {
            break;
        }
        queue.run_due(&batch(10), None).await.unwrap();
    }
    assert_eq!(calls(), 2, "one pass of two");
    // Another worker claims the occurrence for its next pass and stops.
    let dead = f.queue("dead-worker");
    assert_eq!(dead.enqueue_due_posts(10).await.unwrap().len(), 1);
    scheduler.cancel(f.tenant, series.id).await.unwrap();
    f.clock.advance(Duration::hours(1));
    queue.release_stale_leases().await.unwrap();
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.cancelled, 1, "{report:?}");
    assert_eq!(calls(), 2, "nothing more after the cancel");
    let occurrence = f
        .store
        .list_posts(
            f.tenant,
            PostFilter {
                series_id: Some(series.id),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(occurrence.status, PostStatus::Cancelled, "{occurrence:?}");
    let said = occurrence.error_message.unwrap_or_default();
    assert!(said.contains("2 of 4 recipients sent"), "{said}");
    // The two it never reached are closed as cancelled, not left pending.
    let counts = f
        .store
        .broadcast_counts(f.tenant, occurrence.id)
        .await
        .unwrap();
    assert!(counts.is_settled(), "{counts:?}");
    assert_eq!((counts.sent, counts.failed), (2, 2));
}
