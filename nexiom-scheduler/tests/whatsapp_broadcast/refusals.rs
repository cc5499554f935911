//! A broadcast whose sender the platform refuses for every recipient (the
//! business account locked, 131031): the fan-out stops and waits, the post
//! says why, and the audience is sent to once the refusal is lifted; a
//! refusal that never lifts fails the post after the attempt limit. Before,
//! each recipient was failed in turn, the whole audience in minutes.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_storage::Store;

use super::fixture::fx;
use crate::common::{batch, t0};

pub async fn a_refused_sender_stops_the_fan_out_instead_of_failing_everyone(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550101", "15550102", "15550103"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let calls = || recipients.map(|r| f.fake.calls_to(r));
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    *f.fake.account_locked.lock().unwrap() = 1;
    let queue = f.queue("w1");
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    assert_eq!(calls(), [1, 0, 0], "no one else is sent into the refusal");
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t + Duration::hours(2)));
    let error = waiting.error_message.unwrap_or_default();
    assert!(
        error.contains("refuses every recipient") && error.contains("131031"),
        "{error}"
    );
    let d = f.deliveries(post.id).await;
    assert!(
        recipients
            .iter()
            .all(|r| d[*r].state == BroadcastDeliveryState::Pending),
        "{d:?}"
    );

    // Lifted two hours later: everyone gets exactly one message.
    f.clock.advance(Duration::minutes(119));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    f.clock.advance(Duration::minutes(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(calls(), [2, 1, 1]);
    let d = f.deliveries(post.id).await;
    assert!(
        recipients
            .iter()
            .all(|r| d[*r].state == BroadcastDeliveryState::Sent),
        "{d:?}"
    );
}

/// The refusal never lifts: the post fails after the attempt limit (three
/// tries, two hours apart), saying why, its other recipients unsent, instead
/// of being held for as long as the audience lasts.
pub async fn a_sender_refused_at_every_try_fails_the_post(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550111", "15550112", "15550113"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let calls = || recipients.map(|r| f.fake.calls_to(r));
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    *f.fake.account_locked.lock().unwrap() = 100;
    let queue = f.queue("w1");
    for _ in 0..2 {
        assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
        f.clock.advance(Duration::hours(2));
    }
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().failed, 1);
    assert_eq!(calls(), [3, 0, 0]);
    let failed = f.post(post.id).await;
    assert_eq!(failed.status, PostStatus::Failed);
    let error = failed.error_message.unwrap_or_default();
    assert!(
        error.contains("131031") && error.contains("2 recipients left were not sent"),
        "{error}"
    );
    f.clock.advance(Duration::days(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(calls(), [3, 0, 0]);
}

/// A recipient who spent its attempts on 503s meets one refusal of the
/// sender on its last try: that recipient fails, but the post, whose
/// other recipients were sent, is `published` (one refusal is not a
/// refusal at every try), not failed.
pub async fn one_refusal_on_a_last_attempt_does_not_fail_the_broadcast(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550121", "15550122", "15550123"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    f.fake.failures.lock().unwrap().insert("15550121".into(), 2);
    let queue = f.queue("w1");
    for _ in 0..2 {
        queue.run_due(&batch(10), None).await.unwrap();
        f.clock.advance(Duration::hours(1));
    }
    *f.fake.account_locked.lock().unwrap() = 1;
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let published = f.post(post.id).await;
    assert_eq!(published.status, PostStatus::Published);
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550121"].state, BroadcastDeliveryState::Failed);
    assert_eq!(d["15550122"].state, BroadcastDeliveryState::Sent);
    assert_eq!(d["15550123"].state, BroadcastDeliveryState::Sent);
}

/// A broadcast waiting out a refusal is cancelled: it sends to no one more,
/// and its deliveries not sent say so (`failed`, cancelled), so its counts
/// are settled. Before, they stayed `pending` for ever.
pub async fn a_broadcast_cancelled_while_it_waits_sends_to_no_one_more(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550121", "15550122", "15550123"];
    for r in recipients {
        f.contact(r, Some(t - Duration::hours(1))).await;
    }
    let audience = f.audience(&recipients).await;
    let post = f.broadcast(audience, t).await;
    *f.fake.account_locked.lock().unwrap() = 1;
    let queue = f.queue("w1");
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);

    let scheduler = nexiom_scheduler::Scheduler::new(f.store.clone(), f.clock.clone())
        .with_gateway(f.gateway.clone());
    let cancelled = scheduler.cancel(f.tenant, post.id).await.unwrap();
    assert_eq!(cancelled.status, PostStatus::Cancelled);
    let d = f.deliveries(post.id).await;
    for r in recipients {
        assert_eq!(d[r].state, BroadcastDeliveryState::Failed, "{d:?}");
        assert_eq!(
            d[r].error.as_deref(),
            Some(nexiom_storage::BROADCAST_CANCELLED)
        );
    }
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert!(counts.is_settled(), "{counts:?}");
    f.clock.advance(Duration::hours(3));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(recipients.map(|r| f.fake.calls_to(r)), [1, 0, 0]);
}

/// The same for an occurrence of a broadcast series waiting out a refusal
/// when the series is replaced (`reschedule_series` cancels its queued
/// occurrences): its deliveries not sent are closed as cancelled.
pub async fn a_replaced_series_closes_its_waiting_occurrences_deliveries(store: Arc<dyn Store>) {
    use nexiom_scheduler::{Scheduler, SeriesSpec};
    let f = fx(store).await;
    let t = t0();
    let recipients = ["15550131", "15550132"];
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
    *f.fake.account_locked.lock().unwrap() = 1;
    let queue = f.queue("w1");
    f.clock.set(start);
    for _ in 0..3 {
        queue.run_due(&batch(10), None).await.unwrap();
    }
    let occurrences = |status| {
        let store = f.store.clone();
        async move {
            store
                .list_posts(
                    f.tenant,
                    PostFilter {
                        series_id: Some(series.id),
                        status: Some(status),
                        ..PostFilter::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    let waiting = occurrences(PostStatus::Queued).await;
    assert_eq!(waiting.len(), 1, "the occurrence waits out the refusal");
    let occurrence = waiting[0].id;
    assert_eq!(
        f.store
            .broadcast_counts(f.tenant, occurrence)
            .await
            .unwrap()
            .pending,
        2
    );

    scheduler
        .reschedule_series(
            f.tenant,
            series.id,
            &SeriesSpec::new("FREQ=WEEKLY", start.naive_utc() + Duration::days(1), "UTC"),
        )
        .await
        .unwrap();
    assert_eq!(f.post(occurrence).await.status, PostStatus::Cancelled);
    let d = f.deliveries(occurrence).await;
    for r in recipients {
        assert_eq!(d[r].state, BroadcastDeliveryState::Failed, "{d:?}");
        assert_eq!(
            d[r].error.as_deref(),
            Some(nexiom_storage::BROADCAST_CANCELLED)
        );
    }
}
