//! Conformance tests of orchestration: the planner's snapshot, all-or-nothing
//! commits, and the daily cap under concurrent commits.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::{World, assert_invalid, mins, post, t0, world};
use crate::Store;

/// One mission on `w`'s channel from March `start` to `end`.
async fn orch_mission(
    s: &dyn Store,
    w: &World,
    name: &str,
    start: u32,
    end: u32,
    status: MissionStatus,
) -> Mission {
    s.create_mission(NewMission {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        name: name.into(),
        status,
        objective_priority: ObjectivePriority::Medium,
        start_date: NaiveDate::from_ymd_opt(2026, 3, start).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, end).unwrap(),
        created_at: t0(),
    })
    .await
    .unwrap()
}

async fn orch_job(
    s: &dyn Store,
    w: &World,
    mission: Option<MissionId>,
    phase: Phase,
    status: ContentJobStatus,
    at: DateTime<Utc>,
) -> ContentJob {
    s.create_content_job(NewContentJob {
        tenant_id: w.tenant.id,
        mission_id: mission,
        channel_id: w.channel.id,
        phase,
        status,
        content: Content::text(format!("{phase} at {at}")),
        source_ref: None,
        created_at: at,
    })
    .await
    .unwrap()
}

/// The UTC day of March `d` (the tests use UTC days; the planner maps local days).
fn utc_day(d: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap();
    (start, start + Duration::days(1))
}

fn orch_query(w: &World, first: u32, last: u32, per_phase: u32) -> OrchestrationQuery {
    OrchestrationQuery {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        first_date: NaiveDate::from_ymd_opt(2026, 3, first).unwrap(),
        last_date: NaiveDate::from_ymd_opt(2026, 3, last).unwrap(),
        from: utc_day(first).0,
        to: utc_day(last).1,
        jobs_per_phase: per_phase,
    }
}

fn commit_for(
    w: &World,
    d: u32,
    cap: u32,
    expected: Vec<PostId>,
    entries: Vec<PlannedPost>,
) -> OrchestrationCommit {
    let (from, to) = utc_day(d);
    OrchestrationCommit {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        from,
        to,
        max_posts_per_day: cap,
        expected_posts: expected,
        entries,
        at: t0() + mins(30),
    }
}

fn at_hour(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

pub async fn orchestration_snapshot_reads_what_the_planner_needs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let a = orch_mission(s, &w, "A", 1, 10, MissionStatus::Active).await;
    let paused = orch_mission(s, &w, "Paused", 5, 6, MissionStatus::Paused).await;
    let _later = orch_mission(s, &w, "Later", 20, 25, MissionStatus::Active).await;
    // Ready jobs of A: three intro (oldest two kept with 2 per phase), one closing.
    let i3 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(3),
    )
    .await;
    let i1 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(1),
    )
    .await;
    let i2 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(2),
    )
    .await;
    let c1 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Closing,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let _draft = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Nurture,
        ContentJobStatus::Draft,
        t0(),
    )
    .await;
    let _loose = orch_job(s, &w, None, Phase::Intro, ContentJobStatus::Ready, t0()).await;
    let p1 = orch_job(
        s,
        &w,
        Some(paused.id),
        Phase::Nurture,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;

    // Posts: two counted on the 5th, one cancelled, one on the 7th.
    let mut counted = post(&w, "counted", at_hour(5, 9));
    counted.mission_id = Some(a.id);
    let counted = s.insert_post(counted).await.unwrap().record;
    let other = s
        .insert_post(post(&w, "other", at_hour(5, 8)))
        .await
        .unwrap()
        .record;
    let cancelled = s
        .insert_post(post(&w, "cancelled", at_hour(5, 10)))
        .await
        .unwrap()
        .record;
    s.update_post(
        t,
        cancelled.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    s.insert_post(post(&w, "next day", at_hour(7, 9)))
        .await
        .unwrap();

    let snap = s
        .orchestration_snapshot(orch_query(&w, 5, 6, 2))
        .await
        .unwrap();
    assert_eq!(
        snap.missions.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![a.id, paused.id],
        "missions overlapping the dates, any status, by start date"
    );
    let mut expected_jobs = vec![
        (a.id, 0, i1.id),
        (a.id, 0, i2.id),
        (a.id, 2, c1.id),
        (paused.id, 1, p1.id),
    ];
    expected_jobs.sort_by_key(|(m, p, _)| (*m, *p));
    assert_eq!(
        snap.ready_jobs
            .iter()
            .map(|j| (j.mission_id, j.phase.index(), j.id))
            .collect::<Vec<_>>(),
        expected_jobs
    );
    assert!(
        !snap.ready_jobs.iter().any(|j| j.id == i3.id),
        "only 2 per phase"
    );
    assert_eq!(
        snap.posts,
        vec![
            DayPost {
                id: other.id,
                mission_id: None,
                publish_at: at_hour(5, 8)
            },
            DayPost {
                id: counted.id,
                mission_id: Some(a.id),
                publish_at: at_hour(5, 9)
            },
        ]
    );

    // Another tenant reads nothing of this one.
    let globex = world(s, "Globex", Platform::Facebook, "page-2").await;
    let mut foreign = orch_query(&w, 1, 30, 5);
    foreign.tenant_id = globex.tenant.id;
    assert_eq!(
        s.orchestration_snapshot(foreign).await.unwrap(),
        OrchestrationSnapshot::default()
    );
    let mut bad = orch_query(&w, 6, 5, 1);
    assert_invalid(s.orchestration_snapshot(bad.clone()).await, "last_date");
    bad = orch_query(&w, 5, 6, 0);
    assert_invalid(s.orchestration_snapshot(bad).await, "jobs_per_phase");
}

pub async fn orchestration_commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let a = orch_mission(s, &w, "A", 1, 10, MissionStatus::Active).await;
    let b = orch_mission(s, &w, "B", 1, 10, MissionStatus::Active).await;
    let ja = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let jb = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let jb2 = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(1),
    )
    .await;
    let existing = s
        .insert_post(post(&w, "existing", at_hour(5, 8)))
        .await
        .unwrap()
        .record;
    let entry = |m: &Mission, j: &ContentJob, h| PlannedPost {
        mission_id: m.id,
        content_job_id: j.id,
        publish_at: at_hour(5, h),
    };

    // Invalid plans are refused before anything is read.
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            2,
            vec![existing.id],
            vec![entry(&a, &ja, 9), entry(&b, &jb, 10)],
        ))
        .await,
        "entries",
    );
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            5,
            vec![existing.id],
            vec![entry(&b, &jb, 9), entry(&b, &jb2, 10)],
        ))
        .await,
        "entries",
    );
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            5,
            vec![existing.id],
            vec![
                entry(&a, &ja, 9),
                PlannedPost {
                    publish_at: at_hour(6, 9),
                    ..entry(&b, &jb, 9)
                },
            ],
        ))
        .await,
        "publish_at",
    );

    // A plan that did not see the existing post is stale and writes nothing.
    let stale = s
        .commit_orchestration(commit_for(&w, 5, 3, vec![], vec![entry(&a, &ja, 9)]))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        s.get_content_job(t, ja.id).await.unwrap().status,
        ContentJobStatus::Ready
    );

    // A job that is not ready makes the whole plan stale.
    let drafted = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Nurture,
        ContentJobStatus::Draft,
        t0(),
    )
    .await;
    let stale = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&a, &ja, 9), entry(&b, &drafted, 10)],
        ))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");
    assert_eq!(
        s.get_content_job(t, ja.id).await.unwrap().status,
        ContentJobStatus::Ready
    );
    // So does a job of another mission than the entry says.
    let stale = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&a, &jb, 9)],
        ))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");

    // The right plan commits: posts in entry order, jobs scheduled and linked.
    let done = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&b, &jb, 10), entry(&a, &ja, 9)],
        ))
        .await
        .unwrap();
    let CommitOutcome::Committed(posts) = done else {
        panic!("expected a commit, got {done:?}")
    };
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].content_job_id, Some(jb.id));
    assert_eq!(posts[0].mission_id, Some(b.id));
    assert_eq!(posts[0].publish_at, at_hour(5, 10));
    assert_eq!(posts[0].status, PostStatus::Queued);
    assert_eq!(posts[0].content, jb.content);
    assert_eq!(posts[0].created_at, t0() + mins(30));
    assert_eq!(posts[1].content_job_id, Some(ja.id));
    assert_eq!(s.get_post(t, posts[1].id).await.unwrap(), posts[1]);
    let job = s.get_content_job(t, ja.id).await.unwrap();
    assert_eq!(job.status, ContentJobStatus::Scheduled);
    assert_eq!(job.scheduled_post_id, Some(posts[1].id));
    assert_eq!(job.updated_at, t0() + mins(30));

    // Replaying the same commit is stale: the day changed and the jobs are taken.
    let replay = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&b, &jb, 10), entry(&a, &ja, 9)],
        ))
        .await
        .unwrap();
    assert!(matches!(replay, CommitOutcome::Stale { .. }));
    // Seeing the day as it is now, mission B may not post twice.
    let now_there = vec![existing.id, posts[0].id, posts[1].id];
    let twice = s
        .commit_orchestration(commit_for(
            &w,
            5,
            4,
            now_there.clone(),
            vec![entry(&b, &jb2, 11)],
        ))
        .await
        .unwrap();
    assert!(matches!(twice, CommitOutcome::Stale { .. }), "{twice:?}");
    // An empty plan against the right state commits nothing.
    assert_eq!(
        s.commit_orchestration(commit_for(&w, 5, 3, now_there, vec![]))
            .await
            .unwrap(),
        CommitOutcome::Committed(vec![])
    );
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        3
    );
}

pub async fn concurrent_orchestration_commits_never_exceed_the_cap(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    // Eight racers, each with three missions of its own and the same view of the
    // (empty) day; the cap is 3, so exactly one racer may commit.
    let mut plans = Vec::new();
    for r in 0..8u32 {
        let mut entries = Vec::new();
        for k in 0..3u32 {
            let m = orch_mission(s, &w, &format!("m{r}-{k}"), 1, 10, MissionStatus::Active).await;
            let j = orch_job(
                s,
                &w,
                Some(m.id),
                Phase::Intro,
                ContentJobStatus::Ready,
                t0(),
            )
            .await;
            entries.push(PlannedPost {
                mission_id: m.id,
                content_job_id: j.id,
                publish_at: at_hour(5, 9 + k),
            });
        }
        plans.push(commit_for(&w, 5, 3, vec![], entries));
    }
    let mut tasks = Vec::new();
    for plan in plans {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.commit_orchestration(plan).await.unwrap()
        }));
    }
    let mut committed = 0;
    for task in tasks {
        if let CommitOutcome::Committed(posts) = task.await.unwrap() {
            assert_eq!(posts.len(), 3);
            committed += 1;
        }
    }
    assert_eq!(committed, 1);
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        3
    );
}
