//! The scheduling API: creation, refusals, preview, cancel, reschedule, lists.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::Env;
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    refusals_are_typed_and_store_nothing,
    preview_cancel_reschedule_and_list,
    cancelling_a_series_cancels_its_queued_occurrences,
    rescheduling_a_series_replaces_it,
    cancelling_a_finished_series_stops_its_last_occurrences,
    a_refused_reschedule_keeps_the_old_series,
    concurrent_reschedules_replace_a_series_once,
);

fn local(y: i32, m: u32, d: u32, h: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, 0, 0)
        .unwrap()
}

async fn refusals_are_typed_and_store_nothing(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new().with_max_text_chars(20));
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone()).with_gateway(gateway);
    let text = || Content::text("Hi");
    let cases = [
        SeriesSpec::new("FREQ=FORTNIGHTLY", local(2026, 12, 1, 9), "Europe/Paris"),
        SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Pariss"),
        SeriesSpec::new("FREQ=DAILY;COUNT=3", local(2020, 1, 1, 9), "Europe/Paris"),
        SeriesSpec::new(
            "FREQ=DAILY;UNTIL=20210101T000000Z",
            local(2020, 1, 1, 9),
            "UTC",
        ),
    ];
    let errors: Vec<_> = {
        let mut out = Vec::new();
        for spec in &cases {
            out.push(
                scheduler
                    .schedule_series(env.tenant, env.channel, text(), spec)
                    .await
                    .unwrap_err(),
            );
        }
        out
    };
    assert!(
        matches!(errors[0], SchedulerError::InvalidRrule { .. }),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(errors[1], SchedulerError::UnknownTimeZone(_)),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(errors[2], SchedulerError::NoFutureOccurrence { .. }),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], SchedulerError::NoFutureOccurrence { .. }),
        "{:?}",
        errors[3]
    );
    assert!(errors[1].to_string().contains("IANA"));

    let too_long = scheduler
        .schedule_once(
            env.tenant,
            env.channel,
            Content::text("This text is longer than twenty characters"),
            env.clock.now() + Duration::hours(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(too_long, SchedulerError::ContentRefused(_)),
        "{too_long:?}"
    );
    let too_long_series = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("This text is longer than twenty characters"),
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Paris"),
        )
        .await
        .unwrap_err();
    assert!(matches!(too_long_series, SchedulerError::ContentRefused(_)));

    let all = env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap();
    assert!(all.is_empty(), "a refusal stores nothing");
}

async fn preview_cancel_reschedule_and_list(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    // Now: Sunday 22 November 2026, 09:00 UTC (10:00 Paris).
    let spec = SeriesSpec::new(
        "RRULE:FREQ=DAILY;BYHOUR=9,18",
        local(2026, 11, 1, 9),
        "Europe/Paris",
    );
    let preview = scheduler.preview(&spec, 3).unwrap();
    // An endless rule asked for ever more occurrences lists PREVIEW_LIMIT.
    let endless = SeriesSpec::new("FREQ=MINUTELY", local(2026, 11, 1, 9), "UTC");
    let many = scheduler.preview(&endless, usize::MAX).unwrap();
    assert_eq!(many.len(), PREVIEW_LIMIT);
    assert_eq!(
        preview,
        vec![
            Utc.with_ymd_and_hms(2026, 11, 22, 17, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).unwrap(),
        ]
    );
    let series = scheduler
        .schedule_series(env.tenant, env.channel, Content::text("x"), &spec)
        .await
        .unwrap();
    assert_eq!(
        series.recurrence.as_ref().unwrap().rrule,
        "FREQ=DAILY;BYHOUR=9,18"
    );
    assert_eq!(
        scheduler
            .preview_post(env.tenant, series.id, 3)
            .await
            .unwrap(),
        preview
    );
    let all = scheduler
        .preview_post(env.tenant, series.id, usize::MAX)
        .await
        .unwrap();
    assert_eq!(all.len(), PREVIEW_LIMIT);

    let later = env.clock.now() + Duration::days(2);
    let one = scheduler
        .schedule_once(env.tenant, env.channel, Content::text("one"), later)
        .await
        .unwrap();
    let moved = scheduler
        .reschedule(env.tenant, one.id, later + Duration::hours(3))
        .await
        .unwrap();
    assert_eq!(moved.publish_at, later + Duration::hours(3));
    assert!(matches!(
        scheduler.reschedule(env.tenant, series.id, later).await,
        Err(SchedulerError::Unsupported { .. })
    ));

    let queued = scheduler
        .list_by_status(env.tenant, PostStatus::Queued, 10)
        .await
        .unwrap();
    assert_eq!(
        queued.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![series.id, one.id]
    );

    let cancelled = scheduler.cancel(env.tenant, one.id).await.unwrap();
    assert_eq!(cancelled.status, PostStatus::Cancelled);
    let again = scheduler.cancel(env.tenant, one.id).await.unwrap_err();
    assert!(
        matches!(
            again,
            SchedulerError::WrongStatus {
                status: PostStatus::Cancelled,
                ..
            }
        ),
        "{again:?}"
    );
    assert!(matches!(
        scheduler.reschedule(env.tenant, one.id, later).await,
        Err(SchedulerError::WrongStatus { .. })
    ));
    let listed = scheduler
        .list_by_status(env.tenant, PostStatus::Cancelled, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // A post being published cannot be cancelled.
    let due = scheduler
        .schedule_once(
            env.tenant,
            env.channel,
            Content::text("due"),
            env.clock.now(),
        )
        .await
        .unwrap();
    let queue = env.queue("w1", Arc::new(MockGateway::new()));
    queue.enqueue_due_posts(10).await.unwrap();
    assert!(matches!(
        scheduler.cancel(env.tenant, due.id).await,
        Err(SchedulerError::WrongStatus {
            status: PostStatus::Publishing,
            ..
        })
    ));
}

/// An hourly series (`rule`, from an hour on) whose first occurrence the
/// queue has made without publishing it (the template claimed and advanced);
/// the series and the queue.
async fn series_with_one_occurrence(
    env: &Env,
    scheduler: &Scheduler,
    rule: &str,
) -> (ScheduledPost, PublishQueue) {
    let start = env.clock.now().naive_utc() + Duration::hours(1);
    let series = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("x"),
            &SeriesSpec::new(rule, start, "UTC"),
        )
        .await
        .unwrap();
    env.advance(Duration::hours(1));
    let queue = env.queue("w1", Arc::new(MockGateway::new()));
    let claimed = queue.enqueue_due_posts(1).await.unwrap();
    assert_eq!(claimed[0].id, series.id);
    queue.process(claimed[0].clone()).await.unwrap();
    (series, queue)
}

/// The posts of `series`.
async fn occurrences(env: &Env, series: PostId) -> Vec<ScheduledPost> {
    env.store
        .list_posts(
            env.tenant,
            PostFilter {
                series_id: Some(series),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
}

async fn cancelling_a_series_cancels_its_queued_occurrences(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let (series, queue) = series_with_one_occurrence(&env, &scheduler, "FREQ=HOURLY").await;
    scheduler.cancel(env.tenant, series.id).await.unwrap();
    let occurrences = occurrences(&env, series.id).await;
    assert_eq!(occurrences.len(), 1);
    assert_eq!(occurrences[0].status, PostStatus::Cancelled);
    env.advance(Duration::hours(3));
    assert_eq!(queue.enqueue_due_posts(10).await.unwrap().len(), 0);
}

async fn rescheduling_a_series_replaces_it(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let old = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("x"),
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Paris"),
        )
        .await
        .unwrap();
    let bad = scheduler
        .reschedule_series(
            env.tenant,
            old.id,
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Nowhere/City"),
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, SchedulerError::UnknownTimeZone(_)));
    assert_eq!(
        env.post(old.id).await.status,
        PostStatus::Queued,
        "a refused rule changes nothing"
    );
    let new = scheduler
        .reschedule_series(
            env.tenant,
            old.id,
            &SeriesSpec::new(
                "FREQ=WEEKLY;BYDAY=MO",
                local(2026, 12, 1, 18),
                "Europe/Paris",
            ),
        )
        .await
        .unwrap();
    assert_eq!(env.post(old.id).await.status, PostStatus::Cancelled);
    // Monday 7 December 2026, 18:00 Paris = 17:00 UTC.
    assert_eq!(
        new.publish_at,
        Utc.with_ymd_and_hms(2026, 12, 7, 17, 0, 0).unwrap()
    );
}

/// A series whose rule ran out is cancelled by the queue as its last
/// occurrence is created; that occurrence, still queued (here after an
/// outage, or waiting for a retry), is stopped by cancelling the series,
/// which answers the template as it is. A one-off post already cancelled is
/// still refused.
async fn cancelling_a_finished_series_stops_its_last_occurrences(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let (series, queue) = series_with_one_occurrence(&env, &scheduler, "FREQ=HOURLY;COUNT=1").await;
    assert_eq!(env.post(series.id).await.status, PostStatus::Cancelled);

    let cancelled = scheduler.cancel(env.tenant, series.id).await.unwrap();
    assert_eq!(cancelled.status, PostStatus::Cancelled);
    let occurrences = occurrences(&env, series.id).await;
    assert_eq!(occurrences.len(), 1);
    assert_eq!(occurrences[0].status, PostStatus::Cancelled);
    env.advance(Duration::hours(3));
    assert!(queue.enqueue_due_posts(10).await.unwrap().is_empty());

    let once = scheduler
        .schedule_once(env.tenant, env.channel, Content::text("y"), env.clock.now())
        .await
        .unwrap();
    scheduler.cancel(env.tenant, once.id).await.unwrap();
    assert!(matches!(
        scheduler.cancel(env.tenant, once.id).await,
        Err(SchedulerError::WrongStatus {
            status: PostStatus::Cancelled,
            ..
        })
    ));
    // Nor is a finished series rescheduled: it is not queued.
    assert!(matches!(
        scheduler
            .reschedule_series(
                env.tenant,
                series.id,
                &SeriesSpec::new("FREQ=DAILY", env.clock.now().naive_utc(), "UTC"),
            )
            .await,
        Err(SchedulerError::WrongStatus { .. })
    ));
}

/// A series rescheduled through a scheduler whose connector refuses its
/// content (stored before that check existed, or a limit that changed) is
/// refused before anything is written: the old series stays queued, where
/// it used to be cancelled with no new one created.
async fn a_refused_reschedule_keeps_the_old_series(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let old = Scheduler::new(env.store.clone(), env.clock.clone())
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("a text of thirty-one characters"),
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Paris"),
        )
        .await
        .unwrap();
    let strict = Scheduler::new(env.store.clone(), env.clock.clone())
        .with_gateway(Arc::new(MockGateway::new().with_max_text_chars(20)));
    let refused = strict
        .reschedule_series(
            env.tenant,
            old.id,
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 18), "Europe/Paris"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SchedulerError::ContentRefused(_)),
        "{refused:?}"
    );
    assert_eq!(env.post(old.id).await.status, PostStatus::Queued);
    let series = env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(series.len(), 1, "no new series");
}

/// A store that fails while the new series is written (here a trigger
/// refusing its rule, on PostgreSQL) leaves the old series queued with its
/// occurrences: the replacement is one transaction. Before, the old series
/// was cancelled first and stayed cancelled with no new one.
#[tokio::test]
async fn a_store_failing_midway_keeps_the_old_series() {
    let Some((url, ts)) = common::on_postgres().await else {
        return;
    };
    let env = Env::new(ts.store()).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let old = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("x"),
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Paris"),
        )
        .await
        .unwrap();
    common::as_admin(
        &url,
        &ts,
        "CREATE FUNCTION refuse_tuesdays() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'the disk is full'; END $$; \
         CREATE TRIGGER refuse_tuesdays BEFORE INSERT ON scheduled_posts FOR EACH ROW \
         WHEN (NEW.rrule LIKE '%BYDAY=TU%') EXECUTE FUNCTION refuse_tuesdays()",
        None,
    )
    .await;
    let tuesdays = SeriesSpec::new(
        "FREQ=WEEKLY;BYDAY=TU",
        local(2026, 12, 1, 9),
        "Europe/Paris",
    );
    let failed = scheduler
        .reschedule_series(env.tenant, old.id, &tuesdays)
        .await
        .unwrap_err();
    assert!(matches!(failed, SchedulerError::Storage(_)), "{failed:?}");
    assert_eq!(env.post(old.id).await.status, PostStatus::Queued);
    let posts = env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), 1, "no new series");

    common::as_admin(
        &url,
        &ts,
        "DROP TRIGGER refuse_tuesdays ON scheduled_posts",
        None,
    )
    .await;
    let new = scheduler
        .reschedule_series(env.tenant, old.id, &tuesdays)
        .await
        .unwrap();
    assert_eq!(env.post(old.id).await.status, PostStatus::Cancelled);
    assert_eq!(env.post(new.id).await.status, PostStatus::Queued);
}

/// Eight concurrent reschedules of one series: exactly one replaces it, the
/// others are refused (the series is no longer queued), so one live series
/// remains and no post would go out twice.
async fn concurrent_reschedules_replace_a_series_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let old = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("x"),
            &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 9), "Europe/Paris"),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let scheduler = scheduler.clone();
            let tenant = env.tenant;
            tokio::spawn(async move {
                scheduler
                    .reschedule_series(
                        tenant,
                        old.id,
                        &SeriesSpec::new("FREQ=DAILY", local(2026, 12, 1, 10 + i), "Europe/Paris"),
                    )
                    .await
            })
        })
        .collect();
    let mut replaced = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => replaced += 1,
            Err(SchedulerError::WrongStatus { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(replaced, 1);
    let live = env
        .store
        .list_posts(
            env.tenant,
            PostFilter {
                status: Some(PostStatus::Queued),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
}
