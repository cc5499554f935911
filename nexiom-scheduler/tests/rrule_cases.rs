//! The RRULE test set: RFC 5545's own examples (section 3.8.5.3, in
//! America/New_York as the RFC writes them) and daylight-saving crossings
//! (`rrule_cases/dst.rs`).
#![allow(clippy::unwrap_used)]

mod rrule_cases {
    pub mod dst;
}

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
