//! The orchestrator's decision logic, in one pure function over a day's inputs
//! ([`plan_day`]) and its repetition over a range of days ([`simulate_days`]).
//! Nothing here reads a clock or a store: the caller passes `now` and the
//! [`OrchestrationSnapshot`], so every rule is testable with plain values.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use nexiom_core::{
    ChannelId, ContentJobId, DayPost, Mission, MissionId, MissionStatus, ObjectivePriority,
    OrchestrationSnapshot, Phase, PlannedPost, PostId, ReadyJob, TenantId,
};
use serde::{Deserialize, Serialize};

use crate::windows::local_instant;

/// Where the orchestrator places publish times within a local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotConfig {
    /// Local wall time of the first slot (default 09:00).
    pub day_start: NaiveTime,
    /// Local wall time the slots end, exclusive (default 21:00). When it is not
    /// after `day_start`, slots run to the end of the day.
    pub day_end: NaiveTime,
}

impl Default for SlotConfig {
    fn default() -> Self {
        SlotConfig {
            day_start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            day_end: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

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

/// Why a mission got no post on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SkipReason {
    /// The mission's dates include the day but it is not `active`.
    NotActive {
        /// Its status.
        status: MissionStatus,
    },
    /// The mission already has a post on the day (one post per mission per day).
    AlreadyPostedToday {
        /// That post.
        post_id: PostId,
    },
    /// The mission has no `ready` content job in any phase.
    NoReadyJob,
    /// Higher-ranked candidates (or existing posts) filled the day's cap.
    DailyCapReached,
    /// The whole local day is in the past.
    DateInPast,
    /// The day is not over, but no distinct publish time is left on it.
    NoPublishTimeLeft,
}

impl SkipReason {
    /// The reason in words, for logs and user interfaces.
    pub fn describe(&self) -> String {
        match self {
            SkipReason::NotActive { status } => format!("the mission is {status}, not active"),
            SkipReason::AlreadyPostedToday { post_id } => {
                format!("the mission already has post {post_id} on this day")
            }
            SkipReason::NoReadyJob => "the mission has no ready content job".to_owned(),
            SkipReason::DailyCapReached => "the channel's daily cap is reached".to_owned(),
            SkipReason::DateInPast => "the date is in the past".to_owned(),
            SkipReason::NoPublishTimeLeft => "no publish time is left on this day".to_owned(),
        }
    }
}

/// A mission that got no post, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedMission {
    /// The mission.
    pub mission_id: MissionId,
    /// Why.
    pub reason: SkipReason,
}

/// One post the orchestrator scheduled (or, in a dry run, would schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledItem {
    /// The mission.
    pub mission_id: MissionId,
    /// The content job published.
    pub content_job_id: ContentJobId,
    /// The post created; `None` in a dry run.
    pub post_id: Option<PostId>,
    /// When it is published.
    pub publish_at: DateTime<Utc>,
    /// The job's phase.
    pub phase: Phase,
    /// The phase the mission is in on that day.
    pub expected_phase: Phase,
    /// `true` when no ready job of the expected phase existed and the nearest
    /// phase's job was taken instead.
    pub phase_fallback: bool,
    /// The mission's priority.
    pub objective_priority: ObjectivePriority,
}

/// What one day's orchestration did (or, in a dry run, would do). Serializes
/// to JSON for logs and user interfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestrationSummary {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// The local date.
    pub date: NaiveDate,
    /// The time zone of `date`.
    pub time_zone: Tz,
    /// The day's cap.
    pub cap: u32,
    /// Counted posts (queued, publishing, published) already on the day before
    /// this run.
    pub already_scheduled: u32,
    /// What this run scheduled, in ranking order.
    pub scheduled: Vec<ScheduledItem>,
    /// Missions in play that got nothing, and why.
    pub skipped: Vec<SkippedMission>,
    /// `true` when nothing was written.
    pub dry_run: bool,
}

/// A day's plan: its summary and what to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPlan {
    /// The summary (post ids unset until committed).
    pub summary: OrchestrationSummary,
    /// Start of the local day, UTC.
    pub from: DateTime<Utc>,
    /// End of the local day (exclusive), UTC.
    pub to: DateTime<Utc>,
    /// The counted posts the plan saw on the day.
    pub expected_posts: Vec<PostId>,
    /// The posts to create, in ranking order.
    pub entries: Vec<PlannedPost>,
}

/// The ready jobs still available, per mission and phase, oldest first.
/// [`simulate_days`] takes the jobs it plans out of the pool, so a later day
/// never plans a job an earlier day used.
#[derive(Debug, Clone, Default)]
pub struct JobPool {
    by_mission: HashMap<MissionId, [VecDeque<ReadyJob>; 3]>,
}

impl JobPool {
    /// A pool of `jobs` (any order).
    pub fn new(jobs: &[ReadyJob]) -> Self {
        let mut sorted = jobs.to_vec();
        sorted.sort_by_key(|j| (j.mission_id, j.phase.index(), j.created_at, j.id));
        let mut by_mission: HashMap<MissionId, [VecDeque<ReadyJob>; 3]> = HashMap::new();
        for job in sorted {
            let queues = by_mission.entry(job.mission_id).or_default();
            if let Some(queue) = queues.get_mut(phase_slot(job.phase)) {
                queue.push_back(job);
            }
        }
        JobPool { by_mission }
    }

    /// The mission's candidate for `expected`: its oldest ready job of that
    /// phase, else of the nearest phase (the earlier one on a tie), flagged as a
    /// fallback.
    pub fn candidate(&self, mission: MissionId, expected: Phase) -> Option<(ReadyJob, bool)> {
        let queues = self.by_mission.get(&mission)?;
        fallback_order(expected).into_iter().find_map(|phase| {
            queues
                .get(phase_slot(phase))
                .and_then(VecDeque::front)
                .map(|job| (*job, phase != expected))
        })
    }

    /// Removes `job` (planned or scheduled) from the pool.
    pub fn take(&mut self, job: &ReadyJob) {
        if let Some(queue) = self
            .by_mission
            .get_mut(&job.mission_id)
            .and_then(|queues| queues.get_mut(phase_slot(job.phase)))
        {
            queue.retain(|j| j.id != job.id);
        }
    }
}

fn phase_slot(phase: Phase) -> usize {
    usize::try_from(phase.index()).unwrap_or(2)
}

/// The phases to look in for a mission expected in `expected`: that phase, then
/// the others by distance, the earlier first on a tie.
fn fallback_order(expected: Phase) -> [Phase; 3] {
    match expected {
        Phase::Intro => [Phase::Intro, Phase::Nurture, Phase::Closing],
        Phase::Nurture => [Phase::Nurture, Phase::Intro, Phase::Closing],
        Phase::Closing => [Phase::Closing, Phase::Nurture, Phase::Intro],
    }
}

/// The phase a mission is in on `date` (inside its dates): with `L` its length
/// in days and `date` its day `k` (0-based), `floor(3k / L)` → intro, nurture,
/// closing.
///
/// ```
/// use chrono::NaiveDate;
/// use nexiom_core::Phase;
/// use nexiom_scheduler::expected_phase;
/// let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
/// // A 7-day mission: days 0-2 intro, 3-4 nurture, 5-6 closing.
/// assert_eq!(expected_phase(day(1), day(7), day(3)), Phase::Intro);
/// assert_eq!(expected_phase(day(1), day(7), day(4)), Phase::Nurture);
/// assert_eq!(expected_phase(day(1), day(7), day(6)), Phase::Closing);
/// ```
pub fn expected_phase(start: NaiveDate, end: NaiveDate, date: NaiveDate) -> Phase {
    let length = (end - start).num_days().max(0) + 1;
    let k = (date - start).num_days().clamp(0, length - 1);
    Phase::from_index(u32::try_from(3 * k / length).unwrap_or(2))
}

/// The UTC bounds `[from, to)` of local date `date` in `tz`.
pub fn local_day(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (
        local_instant(date.and_time(NaiveTime::MIN), tz),
        local_instant(next.and_time(NaiveTime::MIN), tz),
    )
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

/// `n` distinct publish times on the local day `[from, to)`, ascending, none at
/// or before `req.now` and none equal to a time in `taken`.
///
/// First choice: the day's `cap` evenly spaced slots between the configured
/// daytime hours (09:00, 13:00, 17:00 for a cap of 3), skipping those past or
/// taken. When too few are left (the day is under way), the times are spread
/// evenly over what is left of the daytime hours, or of the day when they are
/// over. `Err(DateInPast)` when the day is over; fewer than `n` (possibly none)
/// when no distinct time is left.
fn publish_times(
    req: &DayRequest,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    taken: &HashSet<DateTime<Utc>>,
    n: usize,
) -> Result<Vec<DateTime<Utc>>, SkipReason> {
    if to <= req.now {
        return Err(SkipReason::DateInPast);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let tz = req.time_zone;
    let start = local_instant(req.date.and_time(req.slots.day_start), tz).clamp(from, to);
    let end = if req.slots.day_end > req.slots.day_start {
        local_instant(req.date.and_time(req.slots.day_end), tz).clamp(from, to)
    } else {
        to
    };
    // The first whole second strictly after now.
    let earliest = req
        .now
        .with_nanosecond(0)
        .unwrap_or(req.now)
        .checked_add_signed(Duration::seconds(1))
        .unwrap_or(req.now);

    let usable = |t: &DateTime<Utc>| *t >= earliest && !taken.contains(t);
    let cap = usize::try_from(req.max_posts_per_day)
        .unwrap_or(usize::MAX)
        .max(n);
    let grid: Vec<_> = spread(start, end, cap).into_iter().filter(usable).collect();
    if grid.len() >= n {
        return Ok(grid.into_iter().take(n).collect());
    }

    let (mut lo, mut hi) = (start.max(earliest), end);
    if lo >= hi {
        (lo, hi) = (from.max(earliest), to);
    }
    if lo >= hi {
        return Ok(Vec::new());
    }
    let times: Vec<_> = spread(lo, hi, n + taken.len())
        .into_iter()
        .filter(usable)
        .take(n)
        .collect();
    Ok(times)
}

/// `count` distinct whole-second instants evenly spaced from `start` (included)
/// to `end` (excluded); fewer when the span has fewer seconds.
fn spread(start: DateTime<Utc>, end: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let span = (end - start).num_seconds();
    let Ok(count_i) = i64::try_from(count) else {
        return Vec::new();
    };
    if span <= 0 || count_i == 0 {
        return Vec::new();
    }
    let start = start.with_nanosecond(0).unwrap_or(start);
    // With n <= span, consecutive offsets differ by at least one second.
    let n = count_i.min(span);
    let mut out: Vec<DateTime<Utc>> = Vec::with_capacity(count.min(4096));
    for i in 0..n {
        let offset = i128::from(span) * i128::from(i) / i128::from(n);
        let t = start + Duration::seconds(i64::try_from(offset).unwrap_or(0));
        if out.last() != Some(&t) {
            out.push(t);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Paris;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn utc(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
    }

    fn request(date: NaiveDate, cap: u32, now: DateTime<Utc>) -> DayRequest {
        DayRequest {
            tenant_id: TenantId::generate(),
            channel_id: ChannelId::generate(),
            date,
            time_zone: Paris,
            max_posts_per_day: cap,
            now,
            slots: SlotConfig::default(),
        }
    }

    #[test]
    fn phases_split_a_mission_in_thirds() {
        let phases = |len: u32| -> Vec<u32> {
            let start = day(6, 1);
            let end = day(6, len);
            (1..=len)
                .map(|d| expected_phase(start, end, day(6, d)).index())
                .collect()
        };
        assert_eq!(phases(1), vec![0]);
        assert_eq!(phases(2), vec![0, 1]);
        assert_eq!(phases(3), vec![0, 1, 2]);
        assert_eq!(phases(4), vec![0, 0, 1, 2]);
        assert_eq!(phases(7), vec![0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(phases(10), vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn fallback_looks_at_the_nearest_phase_earlier_first() {
        let m = MissionId::generate();
        let job = |phase, minutes| ReadyJob {
            id: ContentJobId::generate(),
            mission_id: m,
            phase,
            created_at: utc(6, 1, 0, minutes),
        };
        let intro = job(Phase::Intro, 5);
        let closing = job(Phase::Closing, 1);
        let pool = JobPool::new(&[closing, intro]);
        assert_eq!(pool.candidate(m, Phase::Nurture), Some((intro, true)));
        assert_eq!(pool.candidate(m, Phase::Closing), Some((closing, false)));
        assert_eq!(pool.candidate(m, Phase::Intro), Some((intro, false)));
        assert_eq!(pool.candidate(MissionId::generate(), Phase::Intro), None);

        let mut pool = JobPool::new(&[intro]);
        assert_eq!(pool.candidate(m, Phase::Closing), Some((intro, true)));
        pool.take(&intro);
        assert_eq!(pool.candidate(m, Phase::Closing), None);
    }

    #[test]
    fn the_oldest_job_of_a_phase_goes_first() {
        let m = MissionId::generate();
        let job = |minutes| ReadyJob {
            id: ContentJobId::generate(),
            mission_id: m,
            phase: Phase::Intro,
            created_at: utc(6, 1, 0, minutes),
        };
        let (newer, older) = (job(9), job(2));
        let mut pool = JobPool::new(&[newer, older]);
        assert_eq!(pool.candidate(m, Phase::Intro), Some((older, false)));
        pool.take(&older);
        assert_eq!(pool.candidate(m, Phase::Intro), Some((newer, false)));
    }

    #[test]
    fn slots_spread_over_the_daytime_hours() {
        // June: Paris is UTC+2. Cap 3 → 09:00, 13:00, 17:00 local.
        let req = request(day(6, 10), 3, utc(6, 1, 0, 0));
        let (from, to) = local_day(req.date, Paris);
        assert_eq!((from, to), (utc(6, 9, 22, 0), utc(6, 10, 22, 0)));
        let times = publish_times(&req, from, to, &HashSet::new(), 3).unwrap();
        assert_eq!(
            times,
            vec![utc(6, 10, 7, 0), utc(6, 10, 11, 0), utc(6, 10, 15, 0)]
        );
        // Fewer wanted than the cap: the first free slots.
        let taken: HashSet<_> = [utc(6, 10, 7, 0)].into();
        let times = publish_times(&req, from, to, &taken, 1).unwrap();
        assert_eq!(times, vec![utc(6, 10, 11, 0)]);
    }

    #[test]
    fn spring_forward_day_still_gets_distinct_local_times() {
        // 2026-03-29 in Paris lasts 23 hours; 09:00 is already summer time.
        let req = request(day(3, 29), 2, utc(3, 1, 0, 0));
        let (from, to) = local_day(req.date, Paris);
        assert_eq!(to - from, Duration::hours(23));
        let times = publish_times(&req, from, to, &HashSet::new(), 2).unwrap();
        assert_eq!(times, vec![utc(3, 29, 7, 0), utc(3, 29, 13, 0)]);
    }

    #[test]
    fn a_past_day_plans_nothing_and_today_plans_after_now() {
        let date = day(6, 10);
        let over = request(date, 3, utc(6, 10, 22, 0));
        let (from, to) = local_day(date, Paris);
        assert_eq!(
            publish_times(&over, from, to, &HashSet::new(), 1),
            Err(SkipReason::DateInPast)
        );
        // 21:59:59.5 local: one whole second is left before midnight… none after now.
        let last = request(date, 3, utc(6, 10, 21, 59) + Duration::milliseconds(59_500));
        assert_eq!(
            publish_times(&last, from, to, &HashSet::new(), 1),
            Ok(Vec::new())
        );
    }

    #[test]
    fn spread_never_repeats_an_instant() {
        let start = utc(6, 1, 0, 0);
        assert_eq!(spread(start, start + Duration::seconds(2), 5).len(), 2);
        assert!(spread(start, start, 3).is_empty());
        let many = spread(start, start + Duration::hours(12), 1000);
        let distinct: HashSet<_> = many.iter().collect();
        assert_eq!((many.len(), distinct.len()), (1000, 1000));
    }

    #[test]
    fn skip_reasons_read_well_and_serialize_with_a_code() {
        let reason = SkipReason::NotActive {
            status: MissionStatus::Paused,
        };
        assert_eq!(reason.describe(), "the mission is paused, not active");
        let json = serde_json::to_value(reason).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "not_active", "status": "paused"})
        );
    }
}
