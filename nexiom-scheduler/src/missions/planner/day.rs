//! One day's plan ([`plan_day`]: which missions get a post, with which job, at
//! what time, and why the others get none) and its repetition over a range of
//! days on one snapshot ([`simulate_days`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use nexiom_core::{
    ChannelId, ContentJobId, DayPost, Mission, MissionId, MissionStatus, OrchestrationSnapshot,
    Phase, PlannedPost, PostId, ReadyJob, TenantId,
};

use super::jobs::{JobPool, expected_phase};
use super::slots::{SlotConfig, local_day, publish_times};
use super::summary::{DayPlan, OrchestrationSummary, ScheduledItem, SkipReason, SkippedMission};

/// One day's orchestration request, with the time it is made at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayRequest {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// The local date planned.
    pub date: NaiveDate,
    /// The time zone `date` is read in.
    pub time_zone: Tz,
    /// The channel's cap for the day, existing posts included.
    pub max_posts_per_day: u32,
    /// The current instant: no publish time is planned at or before it.
    pub now: DateTime<Utc>,
    /// Where slots go.
    pub slots: SlotConfig,
}

/// A candidate: a mission with the job it would publish.
struct Candidate<'a> {
    mission: &'a Mission,
    job: ReadyJob,
    expected: Phase,
    fallback: bool,
}

/// Plans one day (steps 1–7 of the orchestrator): which missions get a post,
/// with which job, at what time, and why the others get none.
///
/// `missions` are the channel's missions (any status, any dates: those whose
/// dates exclude the day are ignored); `posts` the channel's counted posts on
/// the day; `pool` the ready jobs still available.
pub fn plan_day(
    req: &DayRequest,
    missions: &[Mission],
    posts: &[DayPost],
    pool: &JobPool,
) -> DayPlan {
    let (from, to) = local_day(req.date, req.time_zone);
    let posted: HashMap<MissionId, PostId> = posts
        .iter()
        .filter_map(|p| p.mission_id.map(|m| (m, p.id)))
        .collect();
    let already = u32::try_from(posts.len()).unwrap_or(u32::MAX);
    let remaining = req.max_posts_per_day.saturating_sub(already);

    let mut skipped = Vec::new();
    let mut candidates = Vec::new();
    for mission in missions {
        if mission.channel_id != req.channel_id
            || mission.tenant_id != req.tenant_id
            || req.date < mission.start_date
            || mission.end_date < req.date
        {
            continue;
        }
        let skip = |reason| SkippedMission {
            mission_id: mission.id,
            reason,
        };
        if mission.status != MissionStatus::Active {
            skipped.push(skip(SkipReason::NotActive {
                status: mission.status,
            }));
            continue;
        }
        if let Some(post_id) = posted.get(&mission.id) {
            skipped.push(skip(SkipReason::AlreadyPostedToday { post_id: *post_id }));
            continue;
        }
        let expected = expected_phase(mission.start_date, mission.end_date, req.date);
        match pool.candidate(mission.id, expected) {
            Some((job, fallback)) => candidates.push(Candidate {
                mission,
                job,
                expected,
                fallback,
            }),
            None => skipped.push(skip(SkipReason::NoReadyJob)),
        }
    }
    candidates.sort_by_key(|c| {
        (
            c.mission.objective_priority.rank(),
            c.fallback,
            c.mission.end_date,
            c.job.created_at,
            c.job.id,
        )
    });

    let wanted = candidates
        .len()
        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
    let taken: HashSet<DateTime<Utc>> = posts.iter().map(|p| p.publish_at).collect();
    let times = publish_times(req, from, to, &taken, wanted);
    let (times, short_reason) = match times {
        Ok(times) => (times, SkipReason::NoPublishTimeLeft),
        Err(reason) => (Vec::new(), reason),
    };

    let mut scheduled = Vec::new();
    let mut entries = Vec::new();
    for (rank, candidate) in candidates.into_iter().enumerate() {
        match times.get(rank) {
            Some(&publish_at) => {
                entries.push(PlannedPost {
                    mission_id: candidate.mission.id,
                    content_job_id: candidate.job.id,
                    publish_at,
                });
                scheduled.push(ScheduledItem {
                    mission_id: candidate.mission.id,
                    content_job_id: candidate.job.id,
                    post_id: None,
                    publish_at,
                    phase: candidate.job.phase,
                    expected_phase: candidate.expected,
                    phase_fallback: candidate.fallback,
                    objective_priority: candidate.mission.objective_priority,
                });
            }
            None => skipped.push(SkippedMission {
                mission_id: candidate.mission.id,
                reason: if rank >= wanted {
                    SkipReason::DailyCapReached
                } else {
                    short_reason
                },
            }),
        }
    }

    DayPlan {
        summary: OrchestrationSummary {
            tenant_id: req.tenant_id,
            channel_id: req.channel_id,
            date: req.date,
            time_zone: req.time_zone,
            cap: req.max_posts_per_day,
            already_scheduled: already,
            scheduled,
            skipped,
            dry_run: true,
        },
        from,
        to,
        expected_posts: posts.iter().map(|p| p.id).collect(),
        entries,
    }
}

/// Plans `days` consecutive days from `req.date` on one snapshot, as if each
/// day's plan had been committed before the next: a job planned on one day is
/// not available on the next, and each day counts its own planned posts. Used by
/// the dry-run planner; the property tests drive it directly.
pub fn simulate_days(
    req: &DayRequest,
    days: u32,
    snapshot: &OrchestrationSnapshot,
) -> Vec<DayPlan> {
    let mut pool = JobPool::new(&snapshot.ready_jobs);
    let by_id: HashMap<ContentJobId, ReadyJob> =
        snapshot.ready_jobs.iter().map(|j| (j.id, *j)).collect();
    let mut plans = Vec::new();
    let mut date = req.date;
    for _ in 0..days {
        let (from, to) = local_day(date, req.time_zone);
        let posts: Vec<DayPost> = snapshot
            .posts
            .iter()
            .filter(|p| from <= p.publish_at && p.publish_at < to)
            .copied()
            .collect();
        let day = DayRequest { date, ..*req };
        let plan = plan_day(&day, &snapshot.missions, &posts, &pool);
        for entry in &plan.entries {
            if let Some(job) = by_id.get(&entry.content_job_id) {
                pool.take(job);
            }
        }
        plans.push(plan);
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    plans
}
