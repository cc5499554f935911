//! Scenario tests of the mission orchestrator and the mission reads, with
//! hand-computed expectations. Each scenario is written once and runs on the
//! memory store and on PostgreSQL (when `DATABASE_URL` is set).
//!
//! Dates are in June 2026, Europe/Paris (UTC+2, no DST change), with the
//! default slots: a cap of `C` puts posts at 09:00 + i × 12 h / C local time.
// Test helpers unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::{
    MissionError, MissionOrchestrator, OrchestrationSummary, PlanMode, SkipReason, local_instant,
};
use nexiom_storage::{StorageError, Store};

macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::memory_test_store().await else { return };
                    super::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable (see README: Tests)")]
                async fn $name() {
                    let Some(ts) = nexiom_storage::conformance::postgres_test_store().await else { return };
                    super::$name(ts.store()).await;
                    ts.cleanup().await;
                }
            )+
        }
    };
}

scenarios!(
    cap_reached_by_existing_posts,
    mission_already_posted_that_day,
    priority_ordering,
    ties_broken_by_exact_phase_end_date_then_job_age,
    phase_boundaries_for_missions_of_1_2_3_7_and_10_days,
    fallback_to_the_nearest_phase,
    mission_outside_its_dates,
    paused_mission,
    date_in_the_past_and_times_never_in_the_past,
    rerun_schedules_nothing,
    two_concurrent_runs_with_cap_3_schedule_exactly_3,
    dry_run_writes_nothing_and_matches_the_commit,
    mission_reads,
);

// ----------------------------------------------------------------- fixture

fn june(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
}

/// Local wall time in Paris, as UTC.
fn paris(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    local_instant(june(d).and_hms_opt(h, m, 0).unwrap(), Paris)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 6, 0, 0).unwrap()
}

struct Fx {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    orch: MissionOrchestrator,
    tenant: TenantId,
    channel: ChannelId,
}

async fn fx(store: Arc<dyn Store>) -> Fx {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Studio", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: "page-1".into(),
            name: "Page".into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let orch = MissionOrchestrator::new(Arc::clone(&store), clock.clone());
    Fx {
        store,
        clock,
        orch,
        tenant: tenant.id,
        channel: channel.id,
    }
}

impl Fx {
    async fn mission(
        &self,
        name: &str,
        priority: ObjectivePriority,
        start: u32,
        end: u32,
    ) -> Mission {
        self.store
            .create_mission(NewMission {
                tenant_id: self.tenant,
                channel_id: self.channel,
                name: name.into(),
                status: MissionStatus::Active,
                objective_priority: priority,
                start_date: june(start),
                end_date: june(end),
                created_at: t0(),
            })
            .await
            .unwrap()
    }

    /// A ready job created `age_rank` minutes after t0 (smaller is older).
    async fn job(&self, mission: &Mission, phase: Phase, age_rank: i64) -> ContentJob {
        self.store
            .create_content_job(NewContentJob {
                tenant_id: self.tenant,
                mission_id: Some(mission.id),
                channel_id: self.channel,
                phase,
                status: ContentJobStatus::Ready,
                content: Content::text(format!("{} {phase} {age_rank}", mission.name)),
                source_ref: Some(format!(
                    "prepared_facebook_post:{}-{age_rank}",
                    mission.name
                )),
                created_at: t0() + Duration::minutes(age_rank),
            })
            .await
            .unwrap()
    }

    async fn post(&self, mission: Option<MissionId>, at: DateTime<Utc>) -> ScheduledPost {
        let mut new =
            NewScheduledPost::one_off(self.tenant, self.channel, Content::text("manual"), at, t0());
        new.mission_id = mission;
        self.store.insert_post(new).await.unwrap().record
    }

    async fn run(&self, day: u32, cap: u32) -> OrchestrationSummary {
        self.orch
            .orchestrate_global_publishing(self.tenant, self.channel, june(day), cap, Paris)
            .await
            .unwrap()
    }

    async fn counted(&self, day: u32) -> u64 {
        self.store
            .count_posts(
                self.tenant,
                self.channel,
                paris(day, 0, 0),
                paris(day + 1, 0, 0),
                &COUNTED_POST_STATUSES,
            )
            .await
            .unwrap()
    }

    async fn job_status(&self, job: &ContentJob) -> ContentJobStatus {
        self.store
            .get_content_job(self.tenant, job.id)
            .await
            .unwrap()
            .status
    }
}

fn scheduled_missions(s: &OrchestrationSummary) -> Vec<MissionId> {
    s.scheduled.iter().map(|i| i.mission_id).collect()
}

fn times(s: &OrchestrationSummary) -> Vec<DateTime<Utc>> {
    s.scheduled.iter().map(|i| i.publish_at).collect()
}

fn skip_of(s: &OrchestrationSummary, mission: &Mission) -> Option<SkipReason> {
    s.skipped
        .iter()
        .find(|k| k.mission_id == mission.id)
        .map(|k| k.reason)
}

// ----------------------------------------------------------------- scenarios

async fn cap_reached_by_existing_posts(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let high = f.mission("High", ObjectivePriority::High, 10, 10).await;
    let medium = f.mission("Medium", ObjectivePriority::Medium, 10, 10).await;
    let low = f.mission("Low", ObjectivePriority::Low, 10, 10).await;
    for m in [&high, &medium, &low] {
        f.job(m, Phase::Intro, 0).await;
    }
    // Two counted posts (09:00 queued, 12:00 published) and a cancelled one.
    f.post(None, paris(10, 9, 0)).await;
    let published = f.post(None, paris(10, 12, 0)).await;
    f.store
        .update_post(
            f.tenant,
            published.id,
            PostPatch {
                status: Some(PostStatus::Published),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let cancelled = f.post(None, paris(10, 14, 0)).await;
    f.store
        .update_post(
            f.tenant,
            cancelled.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();

    // Cap 3, 2 counted: one left, for the high mission, at the first free slot
    // (09:00 is taken, so 13:00).
    let s = f.run(10, 3).await;
    assert_eq!(s.cap, 3);
    assert_eq!(s.already_scheduled, 2);
    assert_eq!(scheduled_missions(&s), vec![high.id]);
    assert_eq!(times(&s), vec![paris(10, 13, 0)]);
    assert_eq!(skip_of(&s, &medium), Some(SkipReason::DailyCapReached));
    assert_eq!(skip_of(&s, &low), Some(SkipReason::DailyCapReached));
    assert_eq!(f.counted(10).await, 3);

    // Cap 2 with 3 counted: nothing at all.
    let s = f.run(10, 2).await;
    assert_eq!(s.already_scheduled, 3);
    assert!(s.scheduled.is_empty());
    assert_eq!(skip_of(&s, &medium), Some(SkipReason::DailyCapReached));
    assert_eq!(f.counted(10).await, 3);
}

async fn mission_already_posted_that_day(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let a = f.mission("A", ObjectivePriority::High, 10, 12).await;
    let b = f.mission("B", ObjectivePriority::Low, 10, 12).await;
    let c = f.mission("C", ObjectivePriority::Low, 10, 12).await;
    let ja = f.job(&a, Phase::Intro, 0).await;
    let jb = f.job(&b, Phase::Intro, 1).await;
    let jc = f.job(&c, Phase::Intro, 2).await;
    // A has a queued post on the 10th; C had one, but it was cancelled.
    let a_post = f.post(Some(a.id), paris(10, 20, 0)).await;
    let c_post = f.post(Some(c.id), paris(10, 20, 30)).await;
    f.store
        .update_post(
            f.tenant,
            c_post.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();

    let s = f.run(10, 5).await;
    assert_eq!(
        skip_of(&s, &a),
        Some(SkipReason::AlreadyPostedToday { post_id: a_post.id })
    );
    // B and C tie on priority, exact phase and end date: the older job first.
    assert_eq!(scheduled_missions(&s), vec![b.id, c.id]);
    assert_eq!(times(&s), vec![paris(10, 9, 0), paris(10, 11, 24)]);
    assert_eq!(f.job_status(&ja).await, ContentJobStatus::Ready);
    assert_eq!(f.job_status(&jc).await, ContentJobStatus::Scheduled);

    // The post carries the mission and job links and the job's content.
    let post_id = s.scheduled[0].post_id.unwrap();
    let post = f.store.get_post(f.tenant, post_id).await.unwrap();
    assert_eq!(post.mission_id, Some(b.id));
    assert_eq!(post.content_job_id, Some(jb.id));
    assert_eq!(post.content, jb.content);
    assert_eq!(post.status, PostStatus::Queued);
    let job = f.store.get_content_job(f.tenant, jb.id).await.unwrap();
    assert_eq!(job.scheduled_post_id, Some(post_id));
    assert_eq!(
        job.mission_id,
        Some(b.id),
        "the prepared content keeps its mission"
    );
}

async fn priority_ordering(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Created low first, so creation order cannot explain the result.
    let low = f.mission("Low", ObjectivePriority::Low, 10, 10).await;
    let high = f.mission("High", ObjectivePriority::High, 10, 10).await;
    let medium = f.mission("Medium", ObjectivePriority::Medium, 10, 10).await;
    f.job(&low, Phase::Intro, 0).await;
    f.job(&high, Phase::Intro, 5).await;
    f.job(&medium, Phase::Intro, 3).await;
    let s = f.run(10, 2).await;
    assert_eq!(scheduled_missions(&s), vec![high.id, medium.id]);
    // Cap 2: 09:00 and 15:00.
    assert_eq!(times(&s), vec![paris(10, 9, 0), paris(10, 15, 0)]);
    assert_eq!(skip_of(&s, &low), Some(SkipReason::DailyCapReached));
    assert!(s.scheduled.iter().all(|i| !i.phase_fallback));
    assert_eq!(s.scheduled[0].objective_priority, ObjectivePriority::High);
}

async fn ties_broken_by_exact_phase_end_date_then_job_age(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Same priority; all start on the 10th (day 0: intro expected).
    let late_end = f
        .mission("LateEnd", ObjectivePriority::Medium, 10, 15)
        .await;
    let newer = f.mission("Newer", ObjectivePriority::Medium, 10, 12).await;
    let older = f.mission("Older", ObjectivePriority::Medium, 10, 12).await;
    let fallback = f
        .mission("Fallback", ObjectivePriority::Medium, 10, 10)
        .await;
    f.job(&late_end, Phase::Intro, 0).await;
    f.job(&newer, Phase::Intro, 7).await;
    f.job(&older, Phase::Intro, 4).await;
    f.job(&fallback, Phase::Nurture, 1).await;
    let s = f.run(10, 4).await;
    assert_eq!(
        scheduled_missions(&s),
        vec![older.id, newer.id, late_end.id, fallback.id]
    );
    assert_eq!(
        times(&s),
        vec![
            paris(10, 9, 0),
            paris(10, 12, 0),
            paris(10, 15, 0),
            paris(10, 18, 0)
        ]
    );
    let last = s.scheduled[3];
    assert!(last.phase_fallback);
    assert_eq!(
        (last.phase, last.expected_phase),
        (Phase::Nurture, Phase::Intro)
    );
}

async fn phase_boundaries_for_missions_of_1_2_3_7_and_10_days(store: Arc<dyn Store>) {
    use Phase::{Closing as C, Intro as I, Nurture as N};
    let f = fx(store).await;
    let expected: [(u32, Vec<Phase>); 5] = [
        (1, vec![I]),
        (2, vec![I, N]),
        (3, vec![I, N, C]),
        (7, vec![I, I, I, N, N, C, C]),
        (10, vec![I, I, I, I, N, N, N, C, C, C]),
    ];
    let mut missions = Vec::new();
    for (length, _) in &expected {
        let m = f
            .mission(
                &format!("L{length}"),
                ObjectivePriority::High,
                10,
                10 + length - 1,
            )
            .await;
        // Enough ready jobs of every phase for every day.
        for (i, phase) in [I, N, C].into_iter().enumerate() {
            for k in 0..*length {
                f.job(&m, phase, i64::from(k) * 3 + i as i64).await;
            }
        }
        missions.push(m);
    }
    for day in 0..10u32 {
        let s = f.run(10 + day, 10).await;
        for ((length, phases), m) in expected.iter().zip(&missions) {
            let item = s.scheduled.iter().find(|i| i.mission_id == m.id);
            if day < *length {
                let item = item.unwrap_or_else(|| panic!("L{length} day {day}: {s:?}"));
                assert_eq!(item.phase, phases[day as usize], "L{length} day {day}");
                assert_eq!(item.expected_phase, phases[day as usize]);
                assert!(!item.phase_fallback);
            } else {
                assert!(item.is_none(), "L{length} is over on day {day}");
                assert_eq!(skip_of(&s, m), None, "outside its dates: not in play");
            }
        }
    }
}

async fn fallback_to_the_nearest_phase(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Three-day missions from the 9th: on the 10th (day 1) nurture is expected.
    let tie = f.mission("Tie", ObjectivePriority::High, 9, 11).await;
    let tie_closing = f.job(&tie, Phase::Closing, 0).await;
    let tie_intro = f.job(&tie, Phase::Intro, 1).await;
    // From the 8th: day 2, closing expected; only an intro job (distance 2).
    let far = f.mission("Far", ObjectivePriority::High, 8, 10).await;
    let far_intro = f.job(&far, Phase::Intro, 2).await;
    // From the 10th: day 0, intro expected; nurture and closing ready.
    let early = f.mission("Early", ObjectivePriority::High, 10, 12).await;
    f.job(&early, Phase::Closing, 3).await;
    let early_nurture = f.job(&early, Phase::Nurture, 4).await;
    let empty = f.mission("Empty", ObjectivePriority::High, 10, 12).await;

    let s = f.run(10, 5).await;
    let item = |m: &Mission| *s.scheduled.iter().find(|i| i.mission_id == m.id).unwrap();
    let t = item(&tie);
    assert_eq!(
        (
            t.content_job_id,
            t.phase,
            t.expected_phase,
            t.phase_fallback
        ),
        (tie_intro.id, Phase::Intro, Phase::Nurture, true),
        "a tie between intro and closing takes the earlier phase"
    );
    assert_ne!(t.content_job_id, tie_closing.id);
    let fa = item(&far);
    assert_eq!(
        (
            fa.content_job_id,
            fa.phase,
            fa.expected_phase,
            fa.phase_fallback
        ),
        (far_intro.id, Phase::Intro, Phase::Closing, true)
    );
    let e = item(&early);
    assert_eq!(
        (e.content_job_id, e.phase),
        (early_nurture.id, Phase::Nurture)
    );
    assert_eq!(skip_of(&s, &empty), Some(SkipReason::NoReadyJob));
}

async fn mission_outside_its_dates(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let ended = f.mission("Ended", ObjectivePriority::High, 5, 9).await;
    let future = f.mission("Future", ObjectivePriority::High, 11, 20).await;
    let current = f.mission("Current", ObjectivePriority::Low, 10, 10).await;
    let j_ended = f.job(&ended, Phase::Closing, 0).await;
    let j_future = f.job(&future, Phase::Intro, 1).await;
    f.job(&current, Phase::Intro, 2).await;
    let s = f.run(10, 3).await;
    assert_eq!(scheduled_missions(&s), vec![current.id]);
    assert_eq!(skip_of(&s, &ended), None);
    assert_eq!(skip_of(&s, &future), None);
    assert_eq!(f.job_status(&j_ended).await, ContentJobStatus::Ready);
    assert_eq!(f.job_status(&j_future).await, ContentJobStatus::Ready);
}

async fn paused_mission(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let paused = f.mission("Paused", ObjectivePriority::High, 10, 12).await;
    f.store
        .set_mission_status(f.tenant, paused.id, MissionStatus::Paused)
        .await
        .unwrap();
    let running = f.mission("Running", ObjectivePriority::Low, 10, 12).await;
    let jp = f.job(&paused, Phase::Intro, 0).await;
    f.job(&running, Phase::Intro, 1).await;
    let s = f.run(10, 3).await;
    assert_eq!(scheduled_missions(&s), vec![running.id]);
    assert_eq!(
        skip_of(&s, &paused),
        Some(SkipReason::NotActive {
            status: MissionStatus::Paused
        })
    );
    assert_eq!(f.job_status(&jp).await, ContentJobStatus::Ready);
}

async fn date_in_the_past_and_times_never_in_the_past(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let a = f.mission("A", ObjectivePriority::High, 1, 30).await;
    let b = f.mission("B", ObjectivePriority::Medium, 1, 30).await;
    let c = f.mission("C", ObjectivePriority::Low, 1, 30).await;
    for (i, m) in [&a, &b, &c].into_iter().enumerate() {
        for k in 0..3 {
            f.job(m, Phase::Intro, (i * 3 + k) as i64).await;
        }
    }
    // The 10th is over: nothing, and each candidate says why.
    f.clock.set(paris(11, 8, 0));
    let s = f.run(10, 3).await;
    assert!(s.scheduled.is_empty());
    assert_eq!(skip_of(&s, &a), Some(SkipReason::DateInPast));
    assert_eq!(skip_of(&s, &c), Some(SkipReason::DateInPast));
    assert_eq!(f.counted(10).await, 0);

    // The 11th at 14:30 local: 09:00 and 13:00 are past, so the three posts are
    // spread over what is left of the daytime hours, from 14:30:01 to 21:00.
    f.clock.set(paris(11, 14, 30));
    let s = f.run(11, 3).await;
    let expected_first = paris(11, 14, 30) + Duration::seconds(1);
    assert_eq!(
        times(&s),
        vec![expected_first, paris(11, 16, 40), paris(11, 18, 50)]
    );
    assert!(times(&s).iter().all(|t| *t > f.clock.now()));

    // 23:59:30 on the 12th: no daytime left, so the rest of the day is used.
    f.clock.set(paris(12, 23, 59) + Duration::seconds(30));
    let s = f.run(12, 1).await;
    assert_eq!(times(&s), vec![paris(12, 23, 59) + Duration::seconds(31)]);
}

async fn rerun_schedules_nothing(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let mut missions = Vec::new();
    for (i, p) in [
        ObjectivePriority::High,
        ObjectivePriority::High,
        ObjectivePriority::Medium,
        ObjectivePriority::Low,
        ObjectivePriority::Low,
    ]
    .into_iter()
    .enumerate()
    {
        let m = f.mission(&format!("M{i}"), p, 10, 10).await;
        f.job(&m, Phase::Intro, i as i64).await;
        f.job(&m, Phase::Intro, 10 + i as i64).await;
        missions.push(m);
    }
    let first = f.run(10, 3).await;
    assert_eq!(
        scheduled_missions(&first),
        vec![missions[0].id, missions[1].id, missions[2].id]
    );
    let second = f.run(10, 3).await;
    assert!(second.scheduled.is_empty());
    assert_eq!(second.already_scheduled, 3);
    for (m, item) in missions.iter().zip(&first.scheduled) {
        assert_eq!(
            skip_of(&second, m),
            Some(SkipReason::AlreadyPostedToday {
                post_id: item.post_id.unwrap()
            })
        );
    }
    assert_eq!(
        skip_of(&second, &missions[3]),
        Some(SkipReason::DailyCapReached)
    );
    // Even with a higher cap, the missions already posted stay out.
    let third = f.run(10, 10).await;
    assert_eq!(
        scheduled_missions(&third),
        vec![missions[3].id, missions[4].id]
    );
    assert_eq!(f.counted(10).await, 5);
    // The summary is JSON.
    let json = serde_json::to_value(&first).unwrap();
    assert_eq!(json["cap"], 3);
    assert_eq!(json["scheduled"].as_array().unwrap().len(), 3);
    assert_eq!(json["time_zone"], "Europe/Paris");
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["skipped"][0]["reason"]["code"], "already_posted_today");
}

async fn two_concurrent_runs_with_cap_3_schedule_exactly_3(store: Arc<dyn Store>) {
    let f = fx(store).await;
    for i in 0..6 {
        let m = f
            .mission(&format!("M{i}"), ObjectivePriority::High, 10, 10)
            .await;
        f.job(&m, Phase::Intro, i).await;
    }
    let orch = Arc::new(f.orch.clone());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let orch = Arc::clone(&orch);
        let (tenant, channel) = (f.tenant, f.channel);
        tasks.push(tokio::spawn(async move {
            orch.orchestrate_global_publishing(tenant, channel, june(10), 3, Paris)
                .await
                .unwrap()
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap().scheduled.len();
    }
    assert_eq!(total, 3);
    assert_eq!(f.counted(10).await, 3);
    let posts = f
        .store
        .list_posts(
            f.tenant,
            PostFilter {
                channel_id: Some(f.channel),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    let missions: HashSet<_> = posts.iter().map(|p| p.mission_id).collect();
    let instants: HashSet<_> = posts.iter().map(|p| p.publish_at).collect();
    assert_eq!((missions.len(), instants.len()), (3, 3));
}

async fn dry_run_writes_nothing_and_matches_the_commit(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Two missions over 5 days with fewer jobs than days: consumption carries.
    let a = f.mission("A", ObjectivePriority::High, 10, 14).await;
    let b = f.mission("B", ObjectivePriority::Low, 11, 13).await;
    for k in 0..3 {
        f.job(&a, Phase::Intro, k).await;
    }
    f.job(&a, Phase::Closing, 3).await;
    f.job(&b, Phase::Nurture, 4).await;
    f.job(&b, Phase::Nurture, 5).await;
    // An existing post of A on the 12th.
    f.post(Some(a.id), paris(12, 10, 0)).await;

    let dry = f
        .orch
        .plan_range(f.tenant, f.channel, june(10), 5, 2, Paris, PlanMode::DryRun)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.days.len(), 5);
    let plan: Vec<Vec<(MissionId, Phase, bool)>> = dry
        .days
        .iter()
        .map(|d| {
            d.scheduled
                .iter()
                .map(|i| (i.mission_id, i.phase, i.phase_fallback))
                .collect()
        })
        .collect();
    // Expected phases: A (10th-14th, L=5) I I N N C; B (11th-13th, L=3) I N C.
    // 10th: A intro. 11th: A intro; B wants intro, has only nurture (fallback).
    // 12th: A already posted; B nurture, its last job. 13th: A wants nurture,
    // has intro and closing left: the earlier phase wins the tie (fallback); B has
    // nothing left. 14th: A closing.
    assert_eq!(
        plan,
        vec![
            vec![(a.id, Phase::Intro, false)],
            vec![(a.id, Phase::Intro, false), (b.id, Phase::Nurture, true)],
            vec![(b.id, Phase::Nurture, false)],
            vec![(a.id, Phase::Intro, true)],
            vec![(a.id, Phase::Closing, false)],
        ]
    );
    assert_eq!(dry.total_scheduled(), 6);
    assert_eq!(skip_of(&dry.days[3], &b), Some(SkipReason::NoReadyJob));
    assert!(
        dry.days
            .iter()
            .flat_map(|d| &d.scheduled)
            .all(|i| i.post_id.is_none())
    );
    // Nothing written.
    for day in 10..15 {
        assert_eq!(f.counted(day).await, u64::from(day == 12));
    }
    let ready = f
        .orch
        .list_content_jobs_for_mission(f.tenant, a.id, Some(ContentJobStatus::Ready), 100)
        .await
        .unwrap();
    assert_eq!(ready.len(), 4);

    let committed = f
        .orch
        .plan_range(f.tenant, f.channel, june(10), 5, 2, Paris, PlanMode::Commit)
        .await
        .unwrap();
    assert!(!committed.dry_run);
    let strip = |days: &[OrchestrationSummary]| {
        days.iter()
            .map(|d| {
                let mut d = d.clone();
                d.dry_run = false;
                d.scheduled.iter_mut().for_each(|i| i.post_id = None);
                d
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&dry.days), strip(&committed.days));
    assert_eq!(f.counted(11).await, 2);

    assert!(matches!(
        f.orch
            .plan_range(f.tenant, f.channel, june(10), 0, 2, Paris, PlanMode::DryRun)
            .await,
        Err(MissionError::Invalid { field: "days", .. })
    ));
}

async fn mission_reads(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let m = f.mission("M", ObjectivePriority::High, 10, 12).await;
    let j1 = f.job(&m, Phase::Intro, 0).await;
    let j2 = f.job(&m, Phase::Nurture, 1).await;
    let j3 = f.job(&m, Phase::Closing, 2).await;
    let s = f.run(10, 3).await;
    assert_eq!(s.scheduled[0].content_job_id, j1.id);
    // A manual post of the mission at 00:30 Paris on the 12th (22:30 UTC on the
    // 11th): the calendar files it under the 12th, the tenant's local day.
    let late = f.post(Some(m.id), paris(12, 0, 30)).await;
    assert_eq!(
        late.publish_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 22, 30, 0).unwrap()
    );

    let ids = |v: Vec<ContentJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, None, 10)
            .await
            .unwrap()),
        vec![j1.id, j2.id, j3.id]
    );
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, Some(ContentJobStatus::Ready), 1)
            .await
            .unwrap()),
        vec![j2.id]
    );
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, Some(ContentJobStatus::Scheduled), 10)
            .await
            .unwrap()),
        vec![j1.id]
    );

    let calendar = f
        .orch
        .list_mission_calendar(f.tenant, m.id, june(9), 4)
        .await
        .unwrap();
    let shape: Vec<(NaiveDate, usize)> = calendar.iter().map(|d| (d.date, d.posts.len())).collect();
    assert_eq!(
        shape,
        vec![(june(9), 0), (june(10), 1), (june(11), 0), (june(12), 1)]
    );
    assert_eq!(calendar[1].posts[0].content_job_id, Some(j1.id));
    assert_eq!(calendar[3].posts[0].id, late.id);

    assert_eq!(
        f.orch
            .get_mission_intelligence_summary(f.tenant, m.id)
            .await
            .unwrap(),
        None
    );
    f.store
        .add_report(f.tenant, m.id, serde_json::json!({"reach": 1}), t0())
        .await
        .unwrap();
    let latest = f
        .store
        .add_report(
            f.tenant,
            m.id,
            serde_json::json!({"reach": 2}),
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        f.orch
            .get_mission_intelligence_summary(f.tenant, m.id)
            .await
            .unwrap(),
        Some(latest)
    );

    // Another tenant's mission is not found; a bad range is refused.
    let other = f
        .store
        .create_tenant(NewTenant::new("Other", t0()))
        .await
        .unwrap();
    assert!(matches!(
        f.orch
            .get_mission_intelligence_summary(other.id, m.id)
            .await,
        Err(MissionError::Storage(StorageError::NotFound { .. }))
    ));
    assert!(matches!(
        f.orch
            .list_mission_calendar(f.tenant, m.id, june(9), 0)
            .await,
        Err(MissionError::Invalid { field: "days", .. })
    ));
    assert!(matches!(
        f.orch
            .orchestrate_global_publishing(other.id, f.channel, june(10), 3, Paris)
            .await,
        Err(MissionError::Storage(StorageError::NotFound { .. }))
    ));
}
