//! Series on the publish queue, on memory and on Postgres: each occurrence
//! published once across a DST change and by two workers, a series that
//! ends, and occurrences reached too late (`PublishConfig::series_max_lateness`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::{Env, batch};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    series_occurrences_are_published_once_each_across_dst,
    series_that_ends_is_retired,
    late_occurrences_are_published_each_by_default,
    occurrences_past_the_max_lateness_are_skipped,
    a_series_whose_late_occurrences_were_its_last_ends,
    a_max_lateness_of_zero_still_publishes_what_is_due,
    an_occurrence_claimed_when_its_series_is_cancelled_is_not_published_later,
    an_occurrence_claimed_when_its_series_is_replaced_is_not_published_later,
    a_last_attempt_a_stopped_worker_began_is_looked_up_then_cancelled,
);

async fn series_occurrences_are_published_once_each_across_dst(store: Arc<dyn Store>) {
    // Friday 27 March 2026, 07:00 UTC; Paris changes to summer time on Sunday.
    let env = Env::at(store, Utc.with_ymd_and_hms(2026, 3, 27, 7, 0, 0).unwrap()).await;
    let gateway = Arc::new(MockGateway::new());
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let spec = SeriesSpec::new(
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        NaiveDate::from_ymd_opt(2026, 3, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        "Europe/Paris",
    );
    let series = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("Good morning"),
            &spec,
        )
        .await
        .unwrap();
    let friday = Utc.with_ymd_and_hms(2026, 3, 27, 8, 0, 0).unwrap();
    let monday = Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap();
    assert_eq!(series.publish_at, friday);

    let a = env.queue("worker-a", gateway.clone());
    let b = env.queue("worker-b", gateway.clone());
    // Two workers run at the same time, twice, at Friday 09:00 Paris.
    env.clock.set(friday);
    let ten = batch(10);
    let (ra, rb) = tokio::join!(a.run_due(&ten, None), b.run_due(&ten, None));
    ra.unwrap();
    rb.unwrap();
    a.run_due(&batch(10), None).await.unwrap();
    let made = occurrences(&env, &series).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].occurrence_at, Some(friday));
    assert_eq!(made[0].status, PostStatus::Published);
    let template = env.post(series.id).await;
    assert_eq!(template.status, PostStatus::Queued);
    assert_eq!(template.publish_at, monday, "Monday 09:00 CEST = 07:00 UTC");

    // Monday 09:00 Paris (after the change).
    env.clock.set(monday);
    a.run_due(&batch(10), None).await.unwrap();
    let made = occurrences(&env, &series).await;
    let at: Vec<_> = made.iter().map(|p| p.occurrence_at.unwrap()).collect();
    assert_eq!(at, vec![friday, monday]);
    assert!(made.iter().all(|p| p.status == PostStatus::Published));
    assert_eq!(gateway.calls().len(), 2, "one publish per occurrence");
    // The template itself is never published.
    assert_eq!(gateway.calls_for(&series.id.to_string()), 0);
}

async fn series_that_ends_is_retired(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let start = env.clock.now().naive_utc() + Duration::hours(1);
    let spec = SeriesSpec::new("FREQ=HOURLY;COUNT=2", start, "UTC");
    let series = scheduler
        .schedule_series(env.tenant, env.channel, Content::text("x"), &spec)
        .await
        .unwrap();
    let queue = env.queue("w1", gateway.clone());
    env.advance(Duration::hours(1));
    queue.run_due(&batch(10), None).await.unwrap();
    env.advance(Duration::hours(1));
    queue.run_due(&batch(10), None).await.unwrap();
    env.advance(Duration::hours(5));
    queue.run_due(&batch(10), None).await.unwrap();
    let template = env.post(series.id).await;
    assert_eq!(template.status, PostStatus::Cancelled);
    assert_eq!(gateway.calls().len(), 2);
}

/// A series of `rule` from 09:00 UTC the day after the env's clock, and a
/// queue that skips occurrences more than `max_lateness` late.
async fn daily_series(
    env: &Env,
    max_lateness: Option<Duration>,
    rule: &str,
) -> (ScheduledPost, PublishQueue, Arc<MockGateway>) {
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    let start = (env.clock.now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let series = scheduler
        .schedule_series(
            env.tenant,
            env.channel,
            Content::text("Good morning"),
            &SeriesSpec::new(rule, start, "UTC"),
        )
        .await
        .unwrap();
    let gateway = Arc::new(MockGateway::new());
    let config = PublishConfig {
        series_max_lateness: max_lateness,
        ..env.queue("w1", gateway.clone()).config().clone()
    };
    let queue = PublishQueue::new(
        env.store.clone(),
        gateway.clone(),
        env.clock.clone(),
        config,
    );
    (series, queue, gateway)
}

/// The occurrences created for `series`, in time order.
async fn occurrences(env: &Env, series: &ScheduledPost) -> Vec<ScheduledPost> {
    let mut posts = env
        .store
        .list_posts(
            env.tenant,
            PostFilter {
                series_id: Some(series.id),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    posts.sort_by_key(|p| p.occurrence_at);
    posts
}

async fn late_occurrences_are_published_each_by_default(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (series, queue, gateway) = daily_series(&env, None, "FREQ=DAILY").await;
    // No worker ran for three days past the first occurrence.
    env.clock
        .set(series.publish_at + Duration::days(3) + Duration::hours(2));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(occurrences(&env, &series).await.len(), 4, "{report:?}");
    assert_eq!(gateway.calls().len(), 4, "each late occurrence published");
    assert_eq!(report.occurrences_skipped, 0);
}

async fn occurrences_past_the_max_lateness_are_skipped(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (series, queue, gateway) = daily_series(&env, Some(Duration::hours(3)), "FREQ=DAILY").await;
    let first = series.publish_at;
    // Three days and two hours late: the fourth occurrence (two hours ago)
    // is within three hours, the three before it are not.
    env.clock
        .set(first + Duration::days(3) + Duration::hours(2));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    let made = occurrences(&env, &series).await;
    let at: Vec<_> = made.iter().map(|p| p.occurrence_at.unwrap()).collect();
    assert_eq!(at, vec![first + Duration::days(3)], "{report:?}");
    assert_eq!(made[0].status, PostStatus::Published);
    assert_eq!(gateway.calls().len(), 1, "one post, not a burst");
    assert_eq!(report.occurrences_skipped, 3);
    assert_eq!(report.published, 1);
    let template = env.post(series.id).await;
    assert_eq!(template.status, PostStatus::Queued);
    assert_eq!(template.publish_at, first + Duration::days(4));
    // On time again: published as usual.
    env.clock.set(first + Duration::days(4));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.occurrences_skipped, 0);
    assert_eq!(gateway.calls().len(), 2);
    // Late, but within the limit: published.
    env.clock
        .set(first + Duration::days(5) + Duration::hours(3));
    queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(gateway.calls().len(), 3);
    assert_eq!(occurrences(&env, &series).await.len(), 3);
}

async fn a_series_whose_late_occurrences_were_its_last_ends(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (series, queue, gateway) =
        daily_series(&env, Some(Duration::hours(1)), "FREQ=DAILY;COUNT=3").await;
    env.clock.set(series.publish_at + Duration::days(10));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.occurrences_skipped, 3);
    assert!(occurrences(&env, &series).await.is_empty());
    assert_eq!(gateway.calls().len(), 0);
    let template = env.post(series.id).await;
    assert_eq!(template.status, PostStatus::Cancelled, "the series ended");
}

/// A limit of zero would skip every occurrence, each being some seconds
/// late when claimed: it counts as the minimum, five minutes.
async fn a_max_lateness_of_zero_still_publishes_what_is_due(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (series, queue, gateway) = daily_series(&env, Some(Duration::zero()), "FREQ=DAILY").await;
    env.clock.set(series.publish_at + Duration::seconds(20));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.occurrences_skipped, 0, "{report:?}");
    assert_eq!(gateway.calls().len(), 1);
    // Ten minutes late is too late.
    env.clock
        .set(series.publish_at + Duration::days(1) + Duration::minutes(10));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.occurrences_skipped, 1, "{report:?}");
    assert_eq!(occurrences(&env, &series).await.len(), 1);
}

/// How a test stops a series.
#[derive(Clone, Copy)]
enum Stop {
    Cancel,
    Replace,
}

/// An occurrence claimed by a worker that then stopped (its lease lapses and
/// it comes back to `queued`, as after a retry) while its series was
/// stopped: the next claim cancels it, with no call to the platform.
async fn occurrence_of_a_stopped_series(store: Arc<dyn Store>, stop: Stop) {
    let env = Env::new(store).await;
    let (series, queue, gateway) = daily_series(&env, None, "FREQ=DAILY").await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    env.clock.set(series.publish_at);
    // The template makes its occurrence; another worker claims it and stops.
    let template = queue.enqueue_due_posts(1).await.unwrap().pop().unwrap();
    assert_eq!(template.id, series.id);
    let advanced = queue.process(template).await.unwrap();
    assert!(
        matches!(advanced, PostOutcome::SeriesAdvanced { .. }),
        "{advanced:?}"
    );
    let dead = env.queue("dead-worker", gateway.clone());
    let claimed = dead.enqueue_due_posts(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].series_id, Some(series.id));
    match stop {
        Stop::Cancel => {
            let template = scheduler.cancel(env.tenant, series.id).await.unwrap();
            assert!(template.is_stopped_series(), "{template:?}");
        }
        Stop::Replace => {
            let tomorrow = (series.publish_at + Duration::days(2)).naive_utc();
            let spec = SeriesSpec::new("FREQ=WEEKLY", tomorrow, "UTC");
            scheduler
                .reschedule_series(env.tenant, series.id, &spec)
                .await
                .unwrap();
            assert!(env.post(series.id).await.is_stopped_series());
        }
    }
    // Being published at that instant, the occurrence could not be
    // cancelled; its worker's lease lapses and it is queued again.
    assert_eq!(env.post(claimed[0].id).await.status, PostStatus::Publishing);
    env.advance(Duration::hours(1));
    assert_eq!(queue.release_stale_leases().await.unwrap(), 1);
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.cancelled, 1, "{report:?}");
    let occurrence = env.post(claimed[0].id).await;
    assert_eq!(occurrence.status, PostStatus::Cancelled, "{occurrence:?}");
    assert_eq!(gateway.calls().len(), 0, "nothing published after the stop");
    assert!(env.runs(occurrence.id).await.is_empty());
}

async fn an_occurrence_claimed_when_its_series_is_cancelled_is_not_published_later(
    store: Arc<dyn Store>,
) {
    occurrence_of_a_stopped_series(store, Stop::Cancel).await;
}

async fn an_occurrence_claimed_when_its_series_is_replaced_is_not_published_later(
    store: Arc<dyn Store>,
) {
    occurrence_of_a_stopped_series(store, Stop::Replace).await;
}

/// The worker publishing an occurrence's last attempt stops mid-call (its
/// run is left open) and the series is cancelled: the next claim looks the
/// post up (the call may have gone through), finds nothing, closes the run
/// and cancels the occurrence. Before, not found on the last attempt ended
/// it `failed` (telling the tenant a post failed that they had cancelled).
async fn a_last_attempt_a_stopped_worker_began_is_looked_up_then_cancelled(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let (series, queue, gateway) = daily_series(&env, None, "FREQ=DAILY").await;
    let scheduler = Scheduler::new(env.store.clone(), env.clock.clone());
    env.clock.set(series.publish_at);
    let template = queue.enqueue_due_posts(1).await.unwrap().pop().unwrap();
    queue.process(template).await.unwrap();
    let occurrence = occurrences(&env, &series).await.pop().unwrap();
    // Two attempts made already; the third is the last.
    let patch = PostPatch {
        retry_count: Some(2),
        ..PostPatch::default()
    };
    env.store
        .update_post(env.tenant, occurrence.id, patch, env.clock.now())
        .await
        .unwrap();
    let dead = env.queue("dead-worker", gateway.clone());
    assert_eq!(dead.enqueue_due_posts(10).await.unwrap().len(), 1);
    env.store
        .insert_post_run(NewPostRun {
            tenant_id: env.tenant,
            post_id: occurrence.id,
            attempt: 3,
            started_at: env.clock.now(),
        })
        .await
        .unwrap();
    scheduler.cancel(env.tenant, series.id).await.unwrap();
    env.advance(Duration::hours(1));
    queue.release_stale_leases().await.unwrap();
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.cancelled, 1, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    let post = env.post(occurrence.id).await;
    assert_eq!(post.status, PostStatus::Cancelled, "{post:?}");
    assert_eq!(gateway.lookups(), 1);
    assert_eq!(gateway.calls().len(), 0);
    let runs = env.runs(occurrence.id).await;
    assert_eq!(runs.len(), 1);
    assert_ne!(runs[0].status, PostRunStatus::Running, "{runs:?}");
}
