//! A broadcast to an audience of 3 goes out at T: a recipient outside the
//! 24-hour window is refused before any call, one failing twice gets exactly
//! one message, an opted-out member is never sent to.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

use super::fixture::fx;
use crate::common::{batch, t0};

pub async fn a_broadcast_to_an_audience_of_3_goes_out_at_t(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let t = t0() + Duration::hours(1);
    // Two wrote within the day before T, one two days before.
    f.contact("15550001", Some(t - Duration::hours(2))).await;
    f.contact("15550002", Some(t - Duration::hours(3))).await;
    f.contact("15550003", Some(t - Duration::days(2))).await;
    // A fourth member said "stop" after joining: never sent to.
    f.contact("15550004", Some(t - Duration::hours(1))).await;
    let audience = f
        .audience(&["15550001", "15550002", "15550003", "15550004"])
        .await;
    f.store
        .apply_opt_change(OptChange {
            tenant_id: f.tenant,
            channel_id: f.channel,
            recipient: "15550004".into(),
            opted_in: false,
            source: "stop".into(),
            at: t0(),
        })
        .await
        .unwrap();
    let post = f.broadcast(audience, t).await;
    f.fake.failures.lock().unwrap().insert("15550002".into(), 2);
    let queue = f.queue("w1");

    // Not before T.
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(f.fake.calls(), 0);

    // At T: one sent, one retried, one refused before any call.
    f.clock.set(t);
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!((report.claimed, report.retrying), (1, 1));
    assert_eq!(f.fake.calls_to("15550001"), 1);
    assert_eq!(f.fake.calls_to("15550002"), 1);
    assert_eq!(f.fake.calls_to("15550003"), 0, "refused before any call");
    assert_eq!(f.fake.calls_to("15550004"), 0, "opted out");
    let waiting = f.post(post.id).await;
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(t + Duration::seconds(60)));
    let d = f.deliveries(post.id).await;
    assert_eq!(d.len(), 3, "opted-in members only");
    assert_eq!(d["15550003"].state, BroadcastDeliveryState::Failed);
    assert!(
        d["15550003"]
            .error
            .as_deref()
            .unwrap()
            .contains("24-hour window"),
        "{:?}",
        d["15550003"].error
    );
    assert_eq!(d["15550003"].attempts, 1);

    // The second failure, then the success 2 minutes later.
    f.clock.advance(Duration::seconds(60));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().retrying, 1);
    f.clock.advance(Duration::seconds(120));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    assert_eq!(f.fake.calls_to("15550002"), 3);
    assert_eq!(f.fake.calls_to("15550001"), 1);
    assert_eq!(f.fake.calls(), 4);

    let published = f.post(post.id).await;
    assert_eq!(published.status, PostStatus::Published);
    assert_eq!(
        published.error_message.as_deref(),
        Some("2 of 3 recipients sent, 1 failed")
    );
    let counts = f.store.broadcast_counts(f.tenant, post.id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (2, 1));
    let d = f.deliveries(post.id).await;
    assert_eq!(d["15550002"].state, BroadcastDeliveryState::Sent);
    assert_eq!(d["15550002"].attempts, 3);
    // The message carried its delivery id, which status webhooks echo.
    let log = f.fake.log.lock().unwrap().clone();
    let sent_to_2 = log.iter().rfind(|b| b["to"] == "15550002").unwrap();
    assert_eq!(
        sent_to_2["biz_opaque_callback_data"],
        d["15550002"].id.to_string()
    );
    assert_eq!(sent_to_2["type"], "text");

    // Nothing more goes out.
    f.clock.advance(Duration::hours(1));
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().claimed, 0);
    assert_eq!(f.fake.calls(), 4);

    // With an approved template, explicit recipients outside their window
    // get the template (with its parameters); inside, the free-form text.
    let scheduler =
        Scheduler::new(f.store.clone(), f.clock.clone()).with_gateway(f.gateway.clone());
    let (with_template, _) = scheduler
        .schedule_broadcast(
            NewScheduledPost::one_off(
                f.tenant,
                f.channel,
                Content::text("Last day of the sale"),
                f.clock.now(),
                f.clock.now(),
            ),
            BroadcastAudience::Recipients {
                recipients: vec!["+15550003".into(), "15550001".into()],
            },
            Some(BroadcastTemplate {
                name: "sale_last_day".into(),
                language: "en_US".into(),
                parameters: vec!["20%".into()],
            }),
        )
        .await
        .unwrap();
    assert_eq!(queue.run_due(&batch(10), None).await.unwrap().published, 1);
    let log = f.fake.log.lock().unwrap().clone();
    let to_3 = log.iter().rfind(|b| b["to"] == "15550003").unwrap();
    assert_eq!(to_3["type"], "template");
    assert_eq!(to_3["template"]["name"], "sale_last_day");
    assert_eq!(to_3["template"]["language"]["code"], "en_US");
    assert_eq!(
        to_3["template"]["components"][0]["parameters"][0]["text"],
        "20%"
    );
    // 15550001 wrote 2 hours before T, about 3 hours ago: still inside.
    let to_1 = log.iter().rfind(|b| b["to"] == "15550001").unwrap();
    assert_eq!(to_1["type"], "text");
    assert_eq!(to_1["text"]["body"], "Last day of the sale");
    assert_eq!(f.post(with_template.id).await.error_message, None);
}

/// A broadcast series rescheduled with a new rule keeps its audience and
/// template: its next occurrence goes out to the same recipients. (The
/// new series used to be created without them, so its occurrences had no
/// one to send to.)
pub async fn a_rescheduled_broadcast_series_keeps_its_audience(store: Arc<dyn Store>) {
    let f = fx(store).await;
    for recipient in ["15550001", "15550002"] {
        f.contact(recipient, None).await;
    }
    let audience = f.audience(&["15550001", "15550002"]).await;
    let scheduler =
        Scheduler::new(f.store.clone(), f.clock.clone()).with_gateway(f.gateway.clone());
    let start = f.clock.now().naive_utc() + Duration::hours(1);
    let mut new = NewScheduledPost::one_off(
        f.tenant,
        f.channel,
        Content::text("Weekly news"),
        f.clock.now(),
        f.clock.now(),
    );
    new.recurrence = Some(
        SeriesSpec::new("FREQ=WEEKLY", start, "UTC")
            .rule()
            .unwrap()
            .recurrence()
            .clone(),
    );
    let template = BroadcastTemplate {
        name: "weekly_news".into(),
        language: "en_US".into(),
        parameters: vec![],
    };
    let (old, _) = scheduler
        .schedule_broadcast(
            new,
            BroadcastAudience::Stored {
                audience_id: audience,
            },
            Some(template.clone()),
        )
        .await
        .unwrap();
    let moved = scheduler
        .reschedule_series(
            f.tenant,
            old.id,
            &SeriesSpec::new("FREQ=DAILY", start + Duration::hours(2), "UTC"),
        )
        .await
        .unwrap();
    let kept = f
        .store
        .get_post_broadcast(f.tenant, moved.id)
        .await
        .unwrap()
        .expect("the audience moved with the series");
    assert_eq!(
        kept.audience,
        BroadcastAudience::Stored {
            audience_id: audience
        }
    );
    assert_eq!(kept.template, Some(template));
    assert_eq!(f.post(old.id).await.status, PostStatus::Cancelled);
}
