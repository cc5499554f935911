//! Which windows a run or a read covers.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use nexiom_core::KpiWindow;

use crate::windows::kpi_windows;

/// A KPI window with its place in the local calendar: the local date it
/// belongs to and its index on that date (0 for 00:00, 1 for 02:00, … 11 for
/// 22:00). The same window another day is the same `index` on another date,
/// whatever daylight-saving did in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalKpiWindow {
    /// The local date.
    pub date: NaiveDate,
    /// 0..=11: the window starting at local `2 × index` hours.
    pub index: usize,
    /// The window in UTC.
    pub window: KpiWindow,
}

impl LocalKpiWindow {
    /// The window `days` local days earlier (same index).
    pub fn days_earlier(&self, days: u32, tz: Tz) -> Option<LocalKpiWindow> {
        let date = self.date.checked_sub_days(Days::new(u64::from(days)))?;
        let window = *kpi_windows(date, tz).get(self.index)?;
        Some(LocalKpiWindow {
            date,
            index: self.index,
            window,
        })
    }
}

/// The windows of `tz` that end after `now - span` and have started by `now`,
/// oldest first: what a run recomputes and a read shows. The window holding
/// `now` is included (it is still filling up).
pub fn recent_windows(now: DateTime<Utc>, span: chrono::Duration, tz: Tz) -> Vec<LocalKpiWindow> {
    let from = now - span;
    // A window of local date d lies within d's local day; one day of margin
    // each side covers any offset.
    let first = from
        .with_timezone(&tz)
        .date_naive()
        .pred_opt()
        .unwrap_or(NaiveDate::MIN);
    let last = now.with_timezone(&tz).date_naive();
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .flat_map(|date| {
            kpi_windows(date, tz)
                .into_iter()
                .enumerate()
                .map(move |(index, window)| LocalKpiWindow {
                    date,
                    index,
                    window,
                })
        })
        .filter(|w| w.window.end > from && w.window.start <= now)
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use chrono_tz::Europe::Paris;

    use super::*;

    fn utc(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn forty_eight_hours_are_twenty_five_windows_on_an_ordinary_day() {
        // 10:30 UTC = 12:30 CEST: the 12:00 window is under way.
        let now = utc(6, 10, 10, 30);
        let w = recent_windows(now, Duration::hours(48), Paris);
        assert_eq!(w.len(), 25);
        assert_eq!(w[0].window.start, utc(6, 8, 10, 0), "holds now - 48 h");
        assert_eq!(w[24].window.start, utc(6, 10, 10, 0), "holds now");
        assert!(w.windows(2).all(|p| p[0].window.end == p[1].window.start));
    }

    #[test]
    fn a_span_over_the_fall_back_night_has_one_window_less() {
        // 2026-10-26 00:00 UTC = 01:00 CET; 48 h earlier = 2026-10-24 02:00 CEST.
        let now = utc(10, 26, 0, 0);
        let w = recent_windows(now, Duration::hours(48), Paris);
        // 49 hours: 2-hour windows and the 3-hour one.
        assert_eq!(w.first().unwrap().window.start, utc(10, 24, 0, 0));
        assert_eq!(w.last().unwrap().window.start, utc(10, 25, 23, 0));
        let three_hours = w
            .iter()
            .filter(|l| l.window.end - l.window.start == Duration::hours(3))
            .count();
        assert_eq!(three_hours, 1);
        // 11 windows of the 24th (from 02:00), 12 of the 25th, 1 of the 26th.
        assert_eq!(w.len(), 24);
    }

    #[test]
    fn a_week_earlier_is_the_same_local_window() {
        // The 02:00 window of 2026-04-05 (2 h, CEST) a week after the 1-hour one.
        let day = NaiveDate::from_ymd_opt(2026, 4, 5).unwrap();
        let w = LocalKpiWindow {
            date: day,
            index: 1,
            window: kpi_windows(day, Paris)[1],
        };
        let before = w.days_earlier(7, Paris).unwrap();
        assert_eq!(before.date, NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        assert_eq!(before.window.start, utc(3, 29, 1, 0));
        assert_eq!(before.window.end, utc(3, 29, 2, 0));
        assert_eq!(w.window.start - before.window.start, Duration::hours(167));
    }
}
