//! Recurrence rules against python-dateutil: `rrule_dateutil/cases.txt`
//! holds 600 rules near the 2026 daylight-saving changes of zones with
//! unusual ones (Cairo and Havana change at midnight, Lord Howe by 30
//! minutes, St John's at 02:01 local, the southern hemisphere), DTSTART in
//! gaps, in repeated hours and at odd seconds, with COUNT, UNTIL or neither,
//! and the first occurrences python-dateutil gives for each
//! (`rrule_dateutil/generate.py` writes the file). Each must be the same
//! here, instant for instant.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use nexiom_scheduler::RecurrenceRule;

const CASES: &str = include_str!("rrule_dateutil/cases.txt");

/// Occurrences listed per case (fewer when the rule ends before).
const FIRST: usize = 8;

fn instant(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y%m%dT%H%M%S").unwrap();
    Utc.from_utc_datetime(&naive)
}

#[test]
fn occurrences_are_those_python_dateutil_gives() {
    let mut differing = Vec::new();
    let mut checked = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split('|').collect();
        let [rule, dtstart, zone, want] = parts[..] else {
            panic!("a case line has four fields: {line}");
        };
        let dtstart = NaiveDateTime::parse_from_str(dtstart, "%Y%m%dT%H%M%S").unwrap();
        let want: Vec<DateTime<Utc>> = want
            .split(',')
            .filter(|s| !s.is_empty())
            .map(instant)
            .collect();
        let got = RecurrenceRule::parse(rule, dtstart, zone).and_then(|r| {
            let before = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
            r.occurrences_after(before, FIRST)
        });
        checked += 1;
        let same = match &got {
            // Fewer than FIRST: the rule ends there, here too.
            Ok(got) => *got == want,
            // An UNTIL before DTSTART: dateutil gives nothing, the rule is refused.
            Err(err) => want.is_empty() && err.to_string().contains("UNTIL"),
        };
        if !same {
            differing.push(format!("{line}\n    got {got:?}"));
        }
    }
    assert_eq!(checked, 600);
    assert!(
        differing.is_empty(),
        "{} of {checked} differ from python-dateutil:\n{}",
        differing.len(),
        differing.join("\n")
    );
}
