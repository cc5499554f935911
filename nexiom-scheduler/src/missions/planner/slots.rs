//! Where a day's posts go: the configured daytime hours ([`SlotConfig`]), the
//! UTC bounds of a local day ([`local_day`]), and the choice of distinct whole-second
//! publish times, evenly spaced, none in the past or already taken.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::day::DayRequest;
use super::summary::SkipReason;
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

/// The UTC bounds `[from, to)` of local date `date` in `tz`.
pub fn local_day(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (
        local_instant(date.and_time(NaiveTime::MIN), tz),
        local_instant(next.and_time(NaiveTime::MIN), tz),
    )
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
pub(super) fn publish_times(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::missions::planner::test_dates::{day, utc};
    use chrono_tz::Europe::Paris;
    use nexiom_core::{ChannelId, TenantId};

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
}
