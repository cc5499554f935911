//! The RRULE test set: RFC 5545's own examples (section 3.8.5.3, in
//! America/New_York as the RFC writes them) and daylight-saving crossings in
//! Europe/Paris and America/New_York.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use nexiom_scheduler::RecurrenceRule;

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").unwrap()
}

/// The first `n` occurrences from DTSTART on, as local wall times.
fn occurrences(rule: &str, dtstart: &str, tz: &str, n: usize) -> Vec<String> {
    let r = RecurrenceRule::parse(rule, local(dtstart), tz).unwrap();
    let zone = r.time_zone();
    let start = nexiom_scheduler::local_instant(local(dtstart), zone);
    r.occurrences_after(start - Duration::seconds(1), n)
        .unwrap()
        .into_iter()
        .map(|t| t.with_timezone(&zone).format("%Y%m%dT%H%M%S").to_string())
        .collect()
}

/// The same, as UTC instants.
fn occurrences_utc(rule: &str, dtstart: &str, tz: &str, n: usize) -> Vec<DateTime<Utc>> {
    let r = RecurrenceRule::parse(rule, local(dtstart), tz).unwrap();
    let start = nexiom_scheduler::local_instant(local(dtstart), r.time_zone());
    r.occurrences_after(start - Duration::seconds(1), n)
        .unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

const NY: &str = "America/New_York";

fn days(prefix: &str, days: &[u32], time: &str) -> Vec<String> {
    days.iter()
        .map(|d| format!("{prefix}{d:02}T{time}"))
        .collect()
}

#[test]
fn rfc_daily_for_10_occurrences() {
    let got = occurrences("FREQ=DAILY;COUNT=10", "19970902T090000", NY, 20);
    assert_eq!(
        got,
        days("199709", &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "090000")
    );
}

#[test]
fn rfc_daily_until_december_24() {
    let got = occurrences(
        "FREQ=DAILY;UNTIL=19971224T000000Z",
        "19970902T090000",
        NY,
        500,
    );
    assert_eq!(got.len(), 113);
    assert_eq!(got.first().unwrap(), "19970902T090000");
    // After the October change the wall time stays 09:00 (EST).
    assert_eq!(got.last().unwrap(), "19971223T090000");
}

#[test]
fn rfc_every_other_day() {
    let got = occurrences("FREQ=DAILY;INTERVAL=2", "19970902T090000", NY, 5);
    assert_eq!(got, days("199709", &[2, 4, 6, 8, 10], "090000"));
}

#[test]
fn rfc_every_10_days_5_occurrences() {
    let got = occurrences("FREQ=DAILY;INTERVAL=10;COUNT=5", "19970902T090000", NY, 10);
    assert_eq!(
        got,
        vec![
            "19970902T090000",
            "19970912T090000",
            "19970922T090000",
            "19971002T090000",
            "19971012T090000"
        ]
    );
}

#[test]
fn rfc_weekly_for_10_occurrences_across_the_change() {
    let got = occurrences("FREQ=WEEKLY;COUNT=10", "19970902T090000", NY, 20);
    let mut want = days("199709", &[2, 9, 16, 23, 30], "090000");
    want.extend(days("199710", &[7, 14, 21, 28], "090000"));
    want.push("19971104T090000".into());
    assert_eq!(got, want);
}

#[test]
fn rfc_every_other_week_mon_wed_fri_until() {
    let got = occurrences(
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        "19970901T090000",
        NY,
        100,
    );
    assert_eq!(got.len(), 25);
    assert_eq!(
        &got[..7],
        &days("199709", &[1, 3, 5, 15, 17, 19, 29], "090000")[..]
    );
    assert_eq!(got.last().unwrap(), "19971222T090000");
}

#[test]
fn rfc_tuesday_and_thursday_for_five_weeks() {
    let got = occurrences(
        "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        "19970902T090000",
        NY,
        20,
    );
    let mut want = days("199709", &[2, 4, 9, 11, 16, 18, 23, 25, 30], "090000");
    want.push("19971002T090000".into());
    assert_eq!(got, want);
}

#[test]
fn rfc_monthly_first_friday() {
    let got = occurrences("FREQ=MONTHLY;COUNT=10;BYDAY=1FR", "19970905T090000", NY, 20);
    assert_eq!(
        got,
        vec![
            "19970905T090000",
            "19971003T090000",
            "19971107T090000",
            "19971205T090000",
            "19980102T090000",
            "19980206T090000",
            "19980306T090000",
            "19980403T090000",
            "19980501T090000",
            "19980605T090000",
        ]
    );
}

#[test]
fn rfc_monthly_second_to_last_monday() {
    let got = occurrences("FREQ=MONTHLY;COUNT=6;BYDAY=-2MO", "19970922T090000", NY, 10);
    assert_eq!(
        got,
        vec![
            "19970922T090000",
            "19971020T090000",
            "19971117T090000",
            "19971222T090000",
            "19980119T090000",
            "19980216T090000",
        ]
    );
}

#[test]
fn rfc_monthly_third_to_last_day() {
    let got = occurrences("FREQ=MONTHLY;BYMONTHDAY=-3", "19970928T090000", NY, 6);
    assert_eq!(
        got,
        vec![
            "19970928T090000",
            "19971029T090000",
            "19971128T090000",
            "19971229T090000",
            "19980129T090000",
            "19980226T090000",
        ]
    );
}

#[test]
fn rfc_monthly_2nd_and_15th() {
    let got = occurrences(
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        "19970902T090000",
        NY,
        20,
    );
    assert_eq!(
        got,
        vec![
            "19970902T090000",
            "19970915T090000",
            "19971002T090000",
            "19971015T090000",
            "19971102T090000",
            "19971115T090000",
            "19971202T090000",
            "19971215T090000",
            "19980102T090000",
            "19980115T090000",
        ]
    );
}

#[test]
fn rfc_yearly_in_june_and_july() {
    let got = occurrences(
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        "19970610T090000",
        NY,
        20,
    );
    let want: Vec<String> = (1997..=2001)
        .flat_map(|y| [format!("{y}0610T090000"), format!("{y}0710T090000")])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn rfc_every_friday_the_13th() {
    let got = occurrences(
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        "19970902T090000",
        NY,
        5,
    );
    assert_eq!(
        got,
        vec![
            "19980213T090000",
            "19980313T090000",
            "19981113T090000",
            "19990813T090000",
            "20001013T090000"
        ]
    );
}

#[test]
fn rfc_first_saturday_after_first_sunday() {
    let got = occurrences(
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        "19970913T090000",
        NY,
        10,
    );
    assert_eq!(
        got,
        vec![
            "19970913T090000",
            "19971011T090000",
            "19971108T090000",
            "19971213T090000",
            "19980110T090000",
            "19980207T090000",
            "19980307T090000",
            "19980411T090000",
            "19980509T090000",
            "19980613T090000",
        ]
    );
}

#[test]
fn rfc_us_presidential_election_day() {
    let got = occurrences(
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        "19961105T090000",
        NY,
        3,
    );
    assert_eq!(
        got,
        vec!["19961105T090000", "20001107T090000", "20041102T090000"]
    );
}

#[test]
fn rfc_third_tuesday_wednesday_or_thursday() {
    let got = occurrences(
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        "19970904T090000",
        NY,
        5,
    );
    assert_eq!(
        got,
        vec!["19970904T090000", "19971007T090000", "19971106T090000"]
    );
}

#[test]
fn rfc_second_to_last_weekday_of_the_month() {
    let got = occurrences(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        "19970929T090000",
        NY,
        7,
    );
    assert_eq!(
        got,
        vec![
            "19970929T090000",
            "19971030T090000",
            "19971127T090000",
            "19971230T090000",
            "19980129T090000",
            "19980226T090000",
            "19980330T090000",
        ]
    );
}

#[test]
fn rfc_every_15_minutes_for_6_occurrences() {
    let got = occurrences(
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        "19970902T090000",
        NY,
        10,
    );
    assert_eq!(
        got,
        vec![
            "19970902T090000",
            "19970902T091500",
            "19970902T093000",
            "19970902T094500",
            "19970902T100000",
            "19970902T101500"
        ]
    );
}

#[test]
fn rfc_every_hour_and_a_half_for_4_occurrences() {
    let got = occurrences(
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        "19970902T090000",
        NY,
        10,
    );
    assert_eq!(
        got,
        vec![
            "19970902T090000",
            "19970902T103000",
            "19970902T120000",
            "19970902T133000"
        ]
    );
}

#[test]
fn rfc_every_20_minutes_from_9_to_16_40() {
    let got = occurrences(
        "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
        "19970902T090000",
        NY,
        25,
    );
    assert_eq!(
        &got[..3],
        &["19970902T090000", "19970902T092000", "19970902T094000"]
    );
    assert_eq!(got[23], "19970902T164000");
    assert_eq!(got[24], "19970903T090000");
}

#[test]
fn rfc_week_start_changes_the_result() {
    let mo = occurrences(
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        "19970805T090000",
        NY,
        10,
    );
    assert_eq!(mo, days("199708", &[5, 10, 19, 24], "090000"));
    let su = occurrences(
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        "19970805T090000",
        NY,
        10,
    );
    assert_eq!(su, days("199708", &[5, 17, 19, 31], "090000"));
}

#[test]
fn rfc_invalid_dates_are_skipped() {
    let got = occurrences(
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        "20070115T090000",
        NY,
        10,
    );
    assert_eq!(
        got,
        vec![
            "20070115T090000",
            "20070130T090000",
            "20070215T090000",
            "20070315T090000",
            "20070330T090000"
        ]
    );
}

#[test]
fn rfc_yearly_by_year_day_every_third_year() {
    let got = occurrences(
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        "19970101T090000",
        NY,
        20,
    );
    assert_eq!(
        got,
        vec![
            "19970101T090000",
            "19970410T090000",
            "19970719T090000",
            "20000101T090000",
            "20000409T090000",
            "20000718T090000",
            "20030101T090000",
            "20030410T090000",
            "20030719T090000",
            "20060101T090000",
        ]
    );
}

#[test]
fn rfc_monday_of_week_20() {
    let got = occurrences("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "19970512T090000", NY, 3);
    assert_eq!(
        got,
        vec!["19970512T090000", "19980511T090000", "19990517T090000"]
    );
}

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
