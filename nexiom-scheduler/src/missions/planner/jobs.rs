//! The ready jobs a plan draws from ([`JobPool`]: per mission and phase, oldest
//! first, with the nearest-phase fallback) and the phase a mission is in on a
//! day ([`expected_phase`]).

use std::collections::{HashMap, VecDeque};

use chrono::NaiveDate;
use nexiom_core::{MissionId, Phase, ReadyJob};

/// The ready jobs still available, per mission and phase, oldest first.
/// [`simulate_days`](super::simulate_days) takes the jobs it plans out of the
/// pool, so a later day never plans a job an earlier day used.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::missions::planner::test_dates::{day, utc};
    use nexiom_core::ContentJobId;

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
}
