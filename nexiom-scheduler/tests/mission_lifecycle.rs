//! A mission's content job follows its post through the publishing worker
//! (issue 14, point 5), on memory and on Postgres: mission → orchestrated job
//! → post published by the worker → job `published` with the platform's post
//! id and time; a post failed for good → job `failed` with the reason, and the
//! orchestrator may then plan another job for that day under its rules (a
//! failed post does not count against the cap nor against "one post per
//! mission per day"; the failed job is not `ready`, so it is never planned
//! again by itself).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::UTC;
use common::Env;
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    a_published_post_publishes_its_job_with_the_post_id_and_time,
    a_post_failed_for_good_fails_its_job_and_the_day_can_be_planned_again,
);

/// The day of `common::t0()` (2026-11-22, 09:00 UTC).
fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

struct Fx {
    env: Env,
    gateway: Arc<MockGateway>,
    runtime: WorkerRuntime,
    orchestrator: MissionOrchestrator,
    mission: Mission,
}

async fn fx(store: Arc<dyn Store>) -> Fx {
    let env = Env::new(store).await;
    let gateway = Arc::new(MockGateway::new());
    let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
    runtime.register(Arc::new(EnqueueDuePostsWorker::new(
        env.queue("w1", gateway.clone()),
    )));
    let orchestrator = MissionOrchestrator::new(env.store.clone(), env.clock.clone());
    let mission = env
        .store
        .create_mission(NewMission {
            tenant_id: env.tenant,
            channel_id: env.channel,
            name: "Launch".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::High,
            start_date: day(),
            end_date: day(),
            created_at: env.clock.now(),
        })
        .await
        .unwrap();
    Fx {
        env,
        gateway,
        runtime,
        orchestrator,
        mission,
    }
}

impl Fx {
    async fn ready_job(&self, text: &str, age: i64) -> ContentJob {
        self.env
            .store
            .create_content_job(NewContentJob {
                tenant_id: self.env.tenant,
                mission_id: Some(self.mission.id),
                channel_id: self.env.channel,
                phase: Phase::Intro,
                status: ContentJobStatus::Ready,
                content: Content::text(text),
                source_ref: None,
                created_at: self.env.clock.now() - Duration::minutes(60 - age),
            })
            .await
            .unwrap()
    }

    /// Orchestrates the day with a cap of 2; the scheduled (job, post, time).
    async fn orchestrate(&self) -> Vec<(ContentJobId, PostId, DateTime<Utc>)> {
        self.orchestrator
            .orchestrate_global_publishing(self.env.tenant, self.env.channel, day(), 2, UTC)
            .await
            .unwrap()
            .scheduled
            .iter()
            .map(|s| (s.content_job_id, s.post_id.unwrap(), s.publish_at))
            .collect()
    }

    async fn job(&self, id: ContentJobId) -> ContentJob {
        self.env
            .store
            .get_content_job(self.env.tenant, id)
            .await
            .unwrap()
    }

    /// Moves the clock to `at` (at least one worker cadence on) and runs the
    /// due workers once.
    async fn run_worker_at(&mut self, at: DateTime<Utc>) {
        let now = self.env.clock.now();
        self.env
            .advance((at - now).max(Duration::zero()) + Duration::minutes(1));
        self.runtime.run_once(&Shutdown::never()).await.unwrap();
    }
}

async fn a_published_post_publishes_its_job_with_the_post_id_and_time(store: Arc<dyn Store>) {
    let mut f = fx(store).await;
    let job = f.ready_job("Launch day", 0).await;
    let planned = f.orchestrate().await;
    assert_eq!(planned.len(), 1);
    let (job_id, post_id, publish_at) = planned[0];
    assert_eq!(job_id, job.id);
    let scheduled = f.job(job.id).await;
    assert_eq!(scheduled.status, ContentJobStatus::Scheduled);
    assert_eq!(scheduled.scheduled_post_id, Some(post_id));

    f.run_worker_at(publish_at).await;
    let post = f.env.post(post_id).await;
    assert_eq!(post.status, PostStatus::Published);
    let published = f.job(job.id).await;
    assert_eq!(published.status, ContentJobStatus::Published);
    assert_eq!(published.scheduled_post_id, Some(post_id));
    assert_eq!(published.platform_post_id, post.platform_post_id);
    assert_eq!(published.platform_post_id.as_deref(), Some("mock-1"));
    assert_eq!(published.published_at, post.published_at);
    assert_eq!(published.published_at, Some(f.env.clock.now()));
    assert_eq!(published.error_message, None);
    assert_eq!(published.updated_at, f.env.clock.now());
    assert_eq!(f.gateway.calls().len(), 1);

    // The day is done for this mission: nothing more is planned.
    f.ready_job("Another", 1).await;
    assert!(f.orchestrate().await.is_empty());
}

async fn a_post_failed_for_good_fails_its_job_and_the_day_can_be_planned_again(
    store: Arc<dyn Store>,
) {
    let mut f = fx(store).await;
    let first = f.ready_job("First", 0).await;
    let second = f.ready_job("Second", 1).await;
    let transient = |m: &str| {
        MockStep::Fail(PublishFailure::Transient {
            message: m.into(),
            retry_after: None,
        })
    };
    f.gateway.script([
        transient("HTTP 502"),
        transient("HTTP 502"),
        transient("HTTP 502, third time"),
    ]);
    let planned = f.orchestrate().await;
    assert_eq!(planned.len(), 1, "one post per mission per day");
    let (job_id, post_id, publish_at) = planned[0];
    assert_eq!(job_id, first.id);

    // Two failed attempts: the post is queued again and the job waits with it.
    f.run_worker_at(publish_at).await;
    assert_eq!(f.env.post(post_id).await.status, PostStatus::Queued);
    assert_eq!(f.job(first.id).await.status, ContentJobStatus::Scheduled);
    f.run_worker_at(f.env.clock.now() + Duration::minutes(5))
        .await;
    assert_eq!(f.job(first.id).await.status, ContentJobStatus::Scheduled);
    // The third fails the post for good, and its job with it, with the reason.
    f.run_worker_at(f.env.clock.now() + Duration::minutes(5))
        .await;
    let post = f.env.post(post_id).await;
    assert_eq!(post.status, PostStatus::Failed);
    let failed = f.job(first.id).await;
    assert_eq!(failed.status, ContentJobStatus::Failed);
    assert_eq!(failed.error_message, post.error_message);
    assert!(
        failed
            .error_message
            .as_deref()
            .unwrap()
            .contains("third time"),
        "{:?}",
        failed.error_message
    );
    assert_eq!((failed.platform_post_id, failed.published_at), (None, None));
    assert_eq!(f.gateway.calls().len(), 3);

    // Planned again the same day: the failed post no longer holds the
    // mission's place, so the next ready job goes out, never in the past.
    let again = f.orchestrate().await;
    assert_eq!(again.len(), 1);
    let (job_id, retry_post, retry_at) = again[0];
    assert_eq!(job_id, second.id);
    assert!(retry_at >= f.env.clock.now());
    assert_eq!(f.job(first.id).await.status, ContentJobStatus::Failed);
    f.run_worker_at(retry_at).await;
    let published = f.job(second.id).await;
    assert_eq!(published.status, ContentJobStatus::Published);
    assert_eq!(
        published.platform_post_id,
        f.env.post(retry_post).await.platform_post_id
    );
    // And then the day is done for the mission.
    f.ready_job("Third", 2).await;
    assert!(f.orchestrate().await.is_empty());
}
