//! Property tests of the orchestrator over random missions, jobs and posts:
//! no day exceeds its cap, no mission gets two posts on one day, a
//! higher-priority mission with a ready job is never passed over for a
//! lower-priority one, and the dry run plans exactly what committing does.
// Test helpers unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexiom_core::*;
use nexiom_scheduler::{
    DayRequest, MissionOrchestrator, PlanMode, SlotConfig, local_day, simulate_days,
};
use nexiom_storage::{MemoryStore, Store};
use proptest::prelude::*;

const FIRST: (i32, u32, u32) = (2026, 3, 25); // spans the Paris spring-forward night

fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(FIRST.0, FIRST.1, FIRST.2).unwrap()
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
struct MissionSpec {
    priority: usize,
    status: usize,
    start: i64,
    len: i64,
    jobs: Vec<(u32, i64)>, // (phase index, age in minutes)
}

#[derive(Debug, Clone)]
struct World {
    missions: Vec<MissionSpec>,
    /// Existing counted posts: (day offset, minute of day, mission index or none).
    posts: Vec<(i64, i64, Option<usize>)>,
    cap: u32,
    days: u32,
    /// Minutes after the first day's local midnight (may be negative).
    now_minutes: i64,
}

fn world() -> impl Strategy<Value = World> {
    let mission = (
        0..3usize,
        prop_oneof![4 => Just(1usize), 1 => 0..5usize],
        -3..8i64,
        1..10i64,
        prop::collection::vec((0..3u32, 0..50i64), 0..5),
    )
        .prop_map(|(priority, status, start, len, jobs)| MissionSpec {
            priority,
            status,
            start,
            len,
            jobs,
        });
    (
        prop::collection::vec(mission, 0..12),
        prop::collection::vec((0..8i64, 0..1440i64, prop::option::of(0..12usize)), 0..8),
        0..6u32,
        1..8u32,
        -1440..4000i64,
    )
        .prop_map(|(missions, posts, cap, days, now_minutes)| World {
            missions,
            posts,
            cap,
            days,
            now_minutes,
        })
}

/// The world as a snapshot, with the missions and jobs it made.
fn snapshot(w: &World, tenant: TenantId, channel: ChannelId) -> OrchestrationSnapshot {
    let tz = chrono_tz::Europe::Paris;
    let mut missions = Vec::new();
    let mut jobs = Vec::new();
    for spec in &w.missions {
        let start = first_date() + Duration::days(spec.start);
        let m = Mission {
            id: MissionId::generate(),
            tenant_id: tenant,
            channel_id: channel,
            name: "m".into(),
            status: MissionStatus::ALL[spec.status],
            objective_priority: ObjectivePriority::ALL[spec.priority],
            start_date: start,
            end_date: start + Duration::days(spec.len - 1),
            created_at: base(),
        };
        for (phase, age) in &spec.jobs {
            jobs.push(ReadyJob {
                id: ContentJobId::generate(),
                mission_id: m.id,
                phase: Phase::from_index(*phase),
                created_at: base() + Duration::minutes(*age),
            });
        }
        missions.push(m);
    }
    let posts = w
        .posts
        .iter()
        .map(|(day, minute, mission)| DayPost {
            id: PostId::generate(),
            mission_id: mission
                .and_then(|i| missions.get(i))
                .map(|m: &Mission| m.id),
            publish_at: local_day(first_date() + Duration::days(*day), tz).0
                + Duration::minutes(*minute),
        })
        .collect();
    missions.sort_by_key(|m| (m.start_date, m.id));
    OrchestrationSnapshot {
        missions,
        ready_jobs: jobs,
        posts,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn caps_one_post_per_mission_and_priority_hold(w in world()) {
        let tz = chrono_tz::Europe::Paris;
        let (tenant, channel) = (TenantId::generate(), ChannelId::generate());
        let snap = snapshot(&w, tenant, channel);
        let now = local_day(first_date(), tz).0 + Duration::minutes(w.now_minutes);
        let req = DayRequest {
            tenant_id: tenant,
            channel_id: channel,
            date: first_date(),
            time_zone: tz,
            max_posts_per_day: w.cap,
            now,
            slots: SlotConfig::default(),
        };
        let plans = simulate_days(&req, w.days, &snap);
        prop_assert_eq!(plans.len(), w.days as usize);

        let missions: HashMap<MissionId, &Mission> = snap.missions.iter().map(|m| (m.id, m)).collect();
        let job_mission: HashMap<ContentJobId, MissionId> =
            snap.ready_jobs.iter().map(|j| (j.id, j.mission_id)).collect();
        let mut left: HashMap<MissionId, usize> = HashMap::new();
        for j in &snap.ready_jobs {
            *left.entry(j.mission_id).or_default() += 1;
        }
        let mut used = HashSet::new();

        for plan in &plans {
            let s = &plan.summary;
            let existing: Vec<&DayPost> = snap
                .posts
                .iter()
                .filter(|p| plan.from <= p.publish_at && p.publish_at < plan.to)
                .collect();
            prop_assert_eq!(s.already_scheduled as usize, existing.len());
            // The cap.
            prop_assert!(s.scheduled.len() <= (w.cap as usize).saturating_sub(existing.len()));
            // One post per mission per day, existing posts included.
            let mut day_missions: HashSet<MissionId> =
                existing.iter().filter_map(|p| p.mission_id).collect();
            for item in &s.scheduled {
                prop_assert!(day_missions.insert(item.mission_id), "two posts for one mission");
                let m = missions[&item.mission_id];
                prop_assert_eq!(m.status, MissionStatus::Active);
                prop_assert!(m.start_date <= s.date && s.date <= m.end_date);
                prop_assert_eq!(job_mission[&item.content_job_id], item.mission_id);
                prop_assert!(used.insert(item.content_job_id), "a job used twice");
                // Times: on the day, in the future, distinct from each other and
                // from existing posts.
                prop_assert!(plan.from <= item.publish_at && item.publish_at < plan.to);
                prop_assert!(item.publish_at > now);
            }
            let mut instants: HashSet<DateTime<Utc>> = existing.iter().map(|p| p.publish_at).collect();
            for item in &s.scheduled {
                prop_assert!(instants.insert(item.publish_at), "two posts at one instant");
            }
            // Priority: an eligible mission left out outranks no scheduled one.
            let scheduled: HashSet<MissionId> = s.scheduled.iter().map(|i| i.mission_id).collect();
            let worst = s.scheduled.iter().map(|i| i.objective_priority.rank()).max();
            let mut eligible = 0;
            for m in &snap.missions {
                let in_play = m.status == MissionStatus::Active
                    && m.start_date <= s.date
                    && s.date <= m.end_date
                    && !existing.iter().any(|p| p.mission_id == Some(m.id))
                    && left.get(&m.id).copied().unwrap_or(0) > 0;
                if !in_play {
                    continue;
                }
                eligible += 1;
                if !scheduled.contains(&m.id) && let Some(worst) = worst {
                    prop_assert!(
                        m.objective_priority.rank() >= worst,
                        "{:?} mission skipped while a lower one was scheduled",
                        m.objective_priority
                    );
                }
            }
            // A future day schedules as many as cap and candidates allow.
            if now < plan.from {
                let room = (w.cap as usize).saturating_sub(existing.len());
                prop_assert_eq!(s.scheduled.len(), room.min(eligible));
            }
            for item in &s.scheduled {
                if let Some(n) = left.get_mut(&item.mission_id) {
                    *n -= 1;
                }
            }
        }
    }
}

/// Creates the world in a memory store and returns what the dry run and the
/// commit each produced (post ids cleared).
async fn dry_run_and_commit(
    w: World,
) -> (
    Vec<nexiom_scheduler::OrchestrationSummary>,
    Vec<nexiom_scheduler::OrchestrationSummary>,
) {
    let tz = chrono_tz::Europe::Paris;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tenant = store
        .create_tenant(NewTenant::new("T", base()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: "p".into(),
            name: "p".into(),
            credentials: Credentials::default(),
            created_at: base(),
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for spec in &w.missions {
        let start = first_date() + Duration::days(spec.start);
        let m = store
            .create_mission(NewMission {
                tenant_id: tenant.id,
                channel_id: channel.id,
                name: "m".into(),
                status: MissionStatus::ALL[spec.status],
                objective_priority: ObjectivePriority::ALL[spec.priority],
                start_date: start,
                end_date: start + Duration::days(spec.len - 1),
                created_at: base(),
            })
            .await
            .unwrap();
        for (phase, age) in &spec.jobs {
            store
                .create_content_job(NewContentJob {
                    tenant_id: tenant.id,
                    mission_id: Some(m.id),
                    channel_id: channel.id,
                    phase: Phase::from_index(*phase),
                    status: ContentJobStatus::Ready,
                    content: Content::text("x"),
                    source_ref: None,
                    created_at: base() + Duration::minutes(*age),
                })
                .await
                .unwrap();
        }
        ids.push(m.id);
    }
    for (day, minute, mission) in &w.posts {
        let mut post = NewScheduledPost::one_off(
            tenant.id,
            channel.id,
            Content::text("existing"),
            local_day(first_date() + Duration::days(*day), tz).0 + Duration::minutes(*minute),
            base(),
        );
        post.mission_id = mission.and_then(|i| ids.get(i)).copied();
        store.insert_post(post).await.unwrap();
    }
    let clock = Arc::new(ManualClock::new(
        local_day(first_date(), tz).0 + Duration::minutes(w.now_minutes),
    ));
    let orch = MissionOrchestrator::new(Arc::clone(&store), clock);
    let run = |mode| orch.plan_range(tenant.id, channel.id, first_date(), w.days, w.cap, tz, mode);
    let strip = |plan: nexiom_scheduler::RangePlan| {
        plan.days
            .into_iter()
            .map(|mut d| {
                d.dry_run = false;
                d.scheduled.iter_mut().for_each(|i| i.post_id = None);
                d
            })
            .collect::<Vec<_>>()
    };
    let dry = strip(run(PlanMode::DryRun).await.unwrap());
    let committed = strip(run(PlanMode::Commit).await.unwrap());
    (dry, committed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn the_dry_run_plans_what_committing_does(w in world()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (dry, committed) = runtime.block_on(dry_run_and_commit(w));
        prop_assert_eq!(dry, committed);
    }
}
