//! 2-hour KPI windows in a tenant's time zone.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
pub use nexiom_core::KpiWindow;

/// The UTC instant of local wall time `local` in `tz`: the instant itself when it
/// exists once; the earlier instant when it is ambiguous (fall-back); the first
/// instant after the gap when it does not exist (spring-forward).
pub fn local_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, later) => earlier.min(later).with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the gap ends at the transition instant, which is the wall
            // time read with the offset in force before the gap. Transitions fall
            // on whole minutes, so scanning forward minute by minute (from the
            // wall time's own minute: its seconds would carry into every probe)
            // finds the first wall time that exists again; it maps to that
            // instant.
            let mut probe = local
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local);
            for _ in 0..(48 * 60) {
                // At the end of the range of dates a wall time has no instant
                // because none can be written: no gap to scan.
                let Some(next) = probe.checked_add_signed(Duration::minutes(1)) else {
                    break;
                };
                probe = next;
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // No zone has a gap of two days; read the wall time as UTC rather than
            // fail (so too a wall time past the last instant chrono can write).
            Utc.from_utc_datetime(&local)
        }
    }
}

/// The twelve windows of local date `date` in `tz`, starting at local 00:00,
/// 02:00, …, 22:00; each ends where the next begins (the last one at the next
/// day's 00:00). On a spring-forward day the window holding the gap is shorter,
/// on a fall-back day the one holding the repeated hour is longer.
pub fn kpi_windows(date: NaiveDate, tz: Tz) -> Vec<KpiWindow> {
    let boundary = |day: NaiveDate, hour: u32| {
        let local = day
            .and_hms_opt(hour, 0, 0)
            .unwrap_or_else(|| day.and_time(chrono::NaiveTime::MIN));
        local_instant(local, tz)
    };
    let next_day = date.succ_opt().unwrap_or(date);
    (0..12)
        .map(|i| {
            let start = boundary(date, 2 * i);
            let end = if i == 11 {
                boundary(next_day, 0)
            } else {
                boundary(date, 2 * i + 2)
            };
            KpiWindow { start, end }
        })
        .collect()
}

/// The window that contains `instant` in `tz`.
pub fn window_containing(instant: DateTime<Utc>, tz: Tz) -> KpiWindow {
    let local_date = instant.with_timezone(&tz).date_naive();
    // The instant belongs to its local date's windows, except right after
    // midnight in a zone whose midnight falls in a gap; look at the day before too.
    let candidates = local_date
        .pred_opt()
        .into_iter()
        .chain(std::iter::once(local_date))
        .flat_map(|d| kpi_windows(d, tz));
    let mut found = None;
    for w in candidates {
        if w.start <= instant && instant < w.end {
            found = Some(w);
        }
    }
    found.unwrap_or(KpiWindow {
        start: instant,
        end: instant + Duration::hours(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn the_last_dates_chrono_can_write_give_windows_without_a_panic() {
        for tz in [America::New_York, Europe::Paris, chrono_tz::UTC] {
            for date in [NaiveDate::MAX, NaiveDate::MIN] {
                assert_eq!(kpi_windows(date, tz).len(), 12, "{date} {tz}");
            }
        }
    }

    #[test]
    fn a_wall_time_in_the_gap_with_seconds_is_the_end_of_the_gap() {
        // Paris skips from 02:00 to 03:00 on 29 March 2026: every wall time
        // in between maps to 03:00 CEST (01:00 UTC), seconds or not.
        let at = |h: u32, m: u32, s: u32| {
            let local = NaiveDate::from_ymd_opt(2026, 3, 29)
                .unwrap()
                .and_hms_opt(h, m, s)
                .unwrap();
            local_instant(local, Europe::Paris)
        };
        assert_eq!(at(2, 30, 45), utc(2026, 3, 29, 1, 0));
        assert_eq!(at(2, 59, 59), utc(2026, 3, 29, 1, 0));
        assert_eq!(at(2, 0, 0), utc(2026, 3, 29, 1, 0));
        assert_eq!(at(3, 0, 1), utc(2026, 3, 29, 1, 0) + Duration::seconds(1));
    }

    fn lengths(windows: &[KpiWindow]) -> Vec<i64> {
        windows
            .iter()
            .map(|w| (w.end - w.start).num_minutes())
            .collect()
    }

    #[test]
    fn an_ordinary_day_has_twelve_two_hour_windows() {
        let w = kpi_windows(NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(), Europe::Paris);
        assert_eq!(lengths(&w), vec![120; 12]);
        assert_eq!(w[0].start, utc(2026, 6, 9, 22, 0));
        assert_eq!(w[11].end, utc(2026, 6, 10, 22, 0));
    }

    #[test]
    fn spring_forward_in_paris_makes_a_one_hour_window() {
        let w = kpi_windows(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(), Europe::Paris);
        assert_eq!(
            w[0],
            KpiWindow {
                start: utc(2026, 3, 28, 23, 0),
                end: utc(2026, 3, 29, 1, 0)
            }
        );
        assert_eq!(
            w[1],
            KpiWindow {
                start: utc(2026, 3, 29, 1, 0),
                end: utc(2026, 3, 29, 2, 0)
            }
        );
        let mut expected = vec![120; 12];
        expected[1] = 60;
        assert_eq!(lengths(&w), expected);
        assert!(w.windows(2).all(|p| p[0].end == p[1].start));
    }

    #[test]
    fn fall_back_in_paris_makes_a_three_hour_window() {
        let w = kpi_windows(
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(),
            Europe::Paris,
        );
        assert_eq!(
            w[1],
            KpiWindow {
                start: utc(2026, 10, 25, 0, 0),
                end: utc(2026, 10, 25, 3, 0)
            }
        );
        let mut expected = vec![120; 12];
        expected[1] = 180;
        assert_eq!(lengths(&w), expected);
    }

    #[test]
    fn new_york_changes_at_two_too() {
        let spring = kpi_windows(
            NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
            America::New_York,
        );
        assert_eq!(spring[1].start, utc(2026, 3, 8, 7, 0));
        assert_eq!((spring[1].end - spring[1].start).num_minutes(), 60);
        let fall = kpi_windows(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            America::New_York,
        );
        assert_eq!(
            (fall[0].end - fall[0].start).num_minutes(),
            180,
            "00:00 to 02:00 EST spans 01:00 twice"
        );
    }

    #[test]
    fn instants_at_the_edges_belong_to_the_right_window() {
        let tz = Europe::Paris;
        let gap_start = utc(2026, 3, 29, 1, 0);
        let before = window_containing(gap_start - Duration::seconds(1), tz);
        assert_eq!(before.end, gap_start);
        let after = window_containing(gap_start, tz);
        assert_eq!(after.start, gap_start);
        assert_eq!(after.end, utc(2026, 3, 29, 2, 0));
        let long = window_containing(utc(2026, 10, 25, 2, 59), tz);
        assert_eq!(long.start, utc(2026, 10, 25, 0, 0));
        assert_eq!(
            window_containing(utc(2026, 10, 25, 3, 0), tz).start,
            utc(2026, 10, 25, 3, 0)
        );
    }
}
