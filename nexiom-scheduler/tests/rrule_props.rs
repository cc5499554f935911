//! The stable, short counterpart of the `rrule_series` fuzz target: rules
//! assembled from arbitrary RRULE parts (valid and not), arbitrary DTSTARTs and
//! zones into `RecurrenceRule::parse` and its expansion. A rule is refused with
//! an error or expands to strictly increasing instants after the requested one,
//! never a panic.

use chrono::{DateTime, Duration};
use nexiom_scheduler::RecurrenceRule;
use proptest::prelude::*;

fn part() -> impl Strategy<Value = String> {
    let n = || prop_oneof![-400i64..400, any::<i64>()];
    let list = move || {
        prop::collection::vec(n(), 1..4).prop_map(|v| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    prop_oneof![
        prop::sample::select(vec![
            "FREQ=YEARLY",
            "FREQ=MONTHLY",
            "FREQ=WEEKLY",
            "FREQ=DAILY",
            "FREQ=HOURLY",
            "FREQ=MINUTELY",
            "FREQ=SECONDLY",
            "FREQ=SOMETIMES",
            "WKST=SU",
            "BYDAY=-1SU",
            "BYDAY=MO,TU,WE,TH,FR",
            "BYDAY=53MO",
            "UNTIL=20210101T000000Z",
            "UNTIL=99991231T235959Z",
            "X-NAME=1",
            "",
        ])
        .prop_map(str::to_owned),
        n().prop_map(|v| format!("INTERVAL={v}")),
        n().prop_map(|v| format!("COUNT={v}")),
        list().prop_map(|v| format!("BYMONTHDAY={v}")),
        list().prop_map(|v| format!("BYMONTH={v}")),
        list().prop_map(|v| format!("BYYEARDAY={v}")),
        list().prop_map(|v| format!("BYWEEKNO={v}")),
        list().prop_map(|v| format!("BYHOUR={v}")),
        list().prop_map(|v| format!("BYMINUTE={v}")),
        list().prop_map(|v| format!("BYSECOND={v}")),
        list().prop_map(|v| format!("BYSETPOS={v}")),
        ".{0,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_rrules_expand_or_refuse(
        parts in prop::collection::vec(part(), 0..5),
        prefix in any::<bool>(),
        start in prop_oneof![946_684_800i64..4_102_444_800, -100_000_000_000i64..100_000_000_000],
        zone in prop::sample::select(vec![
            "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "UTC",
            "Asia/Kathmandu", "Nowhere/City", "",
        ]),
        offset in -259_200i64..259_200,
        n in 0usize..12,
    ) {
        let Some(start) = DateTime::from_timestamp(start, 0) else {
            return Ok(());
        };
        let text = format!("{}{}", if prefix { "RRULE:" } else { "" }, parts.join(";"));
        let Ok(rule) = RecurrenceRule::parse(&text, start.naive_utc(), zone) else {
            return Ok(());
        };
        let Some(now) = start.checked_add_signed(Duration::seconds(offset)) else {
            return Ok(());
        };
        if let Ok(next) = rule.occurrences_after(now, n) {
            prop_assert!(next.len() <= n);
            prop_assert!(next.iter().all(|t| *t > now));
            prop_assert!(next.windows(2).all(|w| w[0] < w[1]));
        }
        let _ = rule.first_at_or_after(now);
    }
}

/// Found by the `rrule_series` fuzz target: a non-ASCII character in a BYDAY
/// value (`MO\u{32b}U`) reached the rrule parser, which slices weekdays by byte
/// and panicked inside the character. Such a rule is now refused as invalid.
#[test]
fn non_ascii_rule_is_refused_not_a_panic() {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .expect("date");
    let crashing = "FrEQ=MONTHLY;BYDAY=MO\u{32b}U,WE,TH,F\u{16}RYSETPOS=\u{1}DAY=MO,";
    for text in [
        crashing,
        "FREQ=WEEKLY;BYDAY=\u{e9}",
        "FREQ=DAILY;COUNT=\u{663}",
    ] {
        let spec = nexiom_scheduler::SeriesSpec::new(text, start, "Asia/Kolkata");
        let err = spec.rule().expect_err("refused");
        assert!(err.to_string().contains("ASCII"), "{err}");
    }
    assert!(RecurrenceRule::parse("FREQ=WEEKLY;BYDAY=MO", start, "Asia/Kolkata").is_ok());
}
