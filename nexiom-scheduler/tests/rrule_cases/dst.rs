//! Daylight-saving crossings: Europe/Paris and America/New_York across
//! their changes, and DTSTART or an occurrence in a gap (Paris, New York,
//! Cairo and Santiago at midnight, Lord Howe's 30 minutes) or in a
//! repeated hour.

use crate::{NY, local, occurrences_utc, utc};
use nexiom_scheduler::RecurrenceRule;

#[test]
fn paris_weekdays_at_nine_across_spring_forward() {
    let got = occurrences_utc(
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "20260326T090000",
        "Europe/Paris",
        4,
    );
    assert_eq!(
        got,
        vec![
            utc(2026, 3, 26, 8, 0),
            utc(2026, 3, 27, 8, 0),
            utc(2026, 3, 30, 7, 0),
            utc(2026, 3, 31, 7, 0)
        ]
    );
}

#[test]
fn paris_weekdays_at_nine_across_fall_back() {
    let got = occurrences_utc(
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "20261022T090000",
        "Europe/Paris",
        3,
    );
    assert_eq!(
        got,
        vec![
            utc(2026, 10, 22, 7, 0),
            utc(2026, 10, 23, 7, 0),
            utc(2026, 10, 26, 8, 0)
        ]
    );
}

#[test]
fn paris_daily_over_the_change_day_itself() {
    let got = occurrences_utc("FREQ=DAILY", "20260328T120000", "Europe/Paris", 3);
    assert_eq!(
        got,
        vec![
            utc(2026, 3, 28, 11, 0),
            utc(2026, 3, 29, 10, 0),
            utc(2026, 3, 30, 10, 0)
        ]
    );
}

#[test]
fn paris_last_sunday_of_the_month_lands_on_change_days() {
    let got = occurrences_utc(
        "FREQ=MONTHLY;BYDAY=-1SU",
        "20260201T100000",
        "Europe/Paris",
        3,
    );
    // 22 Feb (CET, +1), 29 Mar (the change day, CEST, +2), 26 Apr (CEST).
    assert_eq!(
        got,
        vec![
            utc(2026, 2, 22, 9, 0),
            utc(2026, 3, 29, 8, 0),
            utc(2026, 4, 26, 8, 0)
        ]
    );
}

#[test]
fn new_york_daily_at_nine_across_spring_forward() {
    let got = occurrences_utc("FREQ=DAILY;COUNT=3", "20260307T090000", NY, 5);
    assert_eq!(
        got,
        vec![
            utc(2026, 3, 7, 14, 0),
            utc(2026, 3, 8, 13, 0),
            utc(2026, 3, 9, 13, 0)
        ]
    );
}

#[test]
fn new_york_weekly_across_fall_back() {
    let got = occurrences_utc("FREQ=WEEKLY;BYDAY=MO;COUNT=2", "20261026T083000", NY, 5);
    assert_eq!(
        got,
        vec![utc(2026, 10, 26, 12, 30), utc(2026, 11, 2, 13, 30)]
    );
}

#[test]
fn new_york_hourly_over_the_gap() {
    let got = occurrences_utc("FREQ=HOURLY;COUNT=3", "20260308T010000", NY, 5);
    // 01:00 EST; 02:00 does not exist (the crate moves it to 03:00 EDT, the
    // same instant as the next one, kept once); 03:00 EDT; 04:00 EDT would be
    // next but COUNT=3 counted the moved one.
    assert_eq!(got, vec![utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 7, 0)]);
}

#[test]
fn dtstart_in_a_gap_is_read_with_the_offset_before_the_gap() {
    // 02:30 does not exist in Paris on 29 March 2026 (02:00 CET jumps to
    // 03:00 CEST). RFC 5545 (3.3.5) reads it with the offset before the gap:
    // the series starts at 03:30 CEST (01:30 UTC); the next days keep 02:30
    // local (00:30 UTC), as python-dateutil with zoneinfo gives.
    let r = RecurrenceRule::parse(
        "FREQ=DAILY;COUNT=3",
        local("20260329T023000"),
        "Europe/Paris",
    )
    .unwrap();
    let first = r
        .first_at_or_after(utc(2026, 3, 29, 0, 0))
        .unwrap()
        .unwrap();
    assert_eq!(first, utc(2026, 3, 29, 1, 30));
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=3", "20260329T023000", "Europe/Paris", 5),
        vec![
            utc(2026, 3, 29, 1, 30),
            utc(2026, 3, 30, 0, 30),
            utc(2026, 3, 31, 0, 30)
        ]
    );
    // The RFC's own example: 03:30 EDT, then 02:30 EDT.
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=3", "20070311T023000", NY, 5),
        vec![
            utc(2007, 3, 11, 7, 30),
            utc(2007, 3, 12, 6, 30),
            utc(2007, 3, 13, 6, 30)
        ]
    );
    // A weekly series, and one whose rule names its hour (kept as given; the
    // minutes are DTSTART's: 09:30).
    assert_eq!(
        occurrences_utc("FREQ=WEEKLY;COUNT=3", "20260329T023000", "Europe/Paris", 5),
        vec![
            utc(2026, 3, 29, 1, 30),
            utc(2026, 4, 5, 0, 30),
            utc(2026, 4, 12, 0, 30)
        ]
    );
    assert_eq!(
        occurrences_utc(
            "FREQ=DAILY;BYHOUR=9;COUNT=2",
            "20260329T023000",
            "Europe/Paris",
            5
        ),
        vec![utc(2026, 3, 29, 7, 30), utc(2026, 3, 30, 7, 30)]
    );
}

#[test]
fn dtstart_in_a_gap_at_midnight_is_the_first_occurrence() {
    // Cairo skips from 00:00 to 01:00 on 24 April 2026: 00:30 is read as
    // 01:30 EEST (22:30 UTC the day before) and is the first occurrence; the
    // next days keep 00:30 (21:30 UTC), as python-dateutil with zoneinfo
    // gives. COUNT counts DTSTART.
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=3", "20260424T003000", "Africa/Cairo", 5),
        vec![
            utc(2026, 4, 23, 22, 30),
            utc(2026, 4, 24, 21, 30),
            utc(2026, 4, 25, 21, 30)
        ]
    );
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=1", "20260424T003000", "Africa/Cairo", 5),
        vec![utc(2026, 4, 23, 22, 30)]
    );
    // Santiago skips from 00:00 to 01:00 on 6 September 2026.
    assert_eq!(
        occurrences_utc("FREQ=WEEKLY", "20260906T003000", "America/Santiago", 2),
        vec![utc(2026, 9, 6, 4, 30), utc(2026, 9, 13, 3, 30)]
    );
}

#[test]
fn an_occurrence_in_a_gap_at_midnight_is_kept() {
    // DTSTART exists (00:30 EET on 23 April); the next day's 00:30 falls in
    // Cairo's gap (00:00 to 01:00 on 24 April) and is read with the offset
    // before it, 01:30 EEST (22:30 UTC); then 00:30 EEST. Before, the gap
    // day's occurrence was dropped (the crate skips a day whose midnight
    // does not exist), and COUNT reached a day later.
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=3", "20260423T003000", "Africa/Cairo", 5),
        vec![
            utc(2026, 4, 22, 22, 30),
            utc(2026, 4, 23, 22, 30),
            utc(2026, 4, 24, 21, 30)
        ]
    );
}

#[test]
fn dtstart_in_a_gap_with_seconds_keeps_its_offset_and_its_seconds() {
    // 02:30:45 on the night Paris skips 02:00 to 03:00: 03:30:45 CEST, then
    // 02:30:45 CEST. Before, the seconds threw the gap's end off by a
    // minute and DTSTART was read at 00:30:45 UTC, before the gap.
    let s = |d: u32, h: u32| utc(2026, 3, d, h, 30) + chrono::Duration::seconds(45);
    assert_eq!(
        occurrences_utc("FREQ=DAILY;COUNT=2", "20260329T023045", "Europe/Paris", 5),
        vec![s(29, 1), s(30, 0)]
    );
}

#[test]
fn hourly_over_a_thirty_minute_gap() {
    // Lord Howe Island skips from 02:00 to 02:30 on 4 October 2026: 02:00 is
    // read with the offset before (+10:30), 15:30 UTC; then 03:00 +11:00.
    assert_eq!(
        occurrences_utc(
            "FREQ=HOURLY;COUNT=4",
            "20261004T010000",
            "Australia/Lord_Howe",
            5
        ),
        vec![
            utc(2026, 10, 3, 14, 30),
            utc(2026, 10, 3, 15, 30),
            utc(2026, 10, 3, 16, 0),
            utc(2026, 10, 3, 17, 0)
        ]
    );
}

#[test]
fn ambiguous_dtstart_takes_the_earlier_instant() {
    // 02:30 happens twice in Paris on 25 October 2026: the first one (CEST, 00:30 UTC).
    let r = RecurrenceRule::parse(
        "FREQ=DAILY;COUNT=1",
        local("20261025T023000"),
        "Europe/Paris",
    )
    .unwrap();
    let first = r
        .first_at_or_after(utc(2026, 10, 24, 0, 0))
        .unwrap()
        .unwrap();
    assert_eq!(first, utc(2026, 10, 25, 0, 30));
}
