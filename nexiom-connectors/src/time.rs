//! Timestamp parsing for the platforms' many units (see platform-apis §6): Unix
//! seconds as strings or integers, Unix milliseconds, and Graph's ISO-8601 with a
//! `+0000` offset.
//!
//! Event times from webhooks are also checked for plausibility
//! ([`check_event_time`]): a time before 2000-01-01 or more than a day after
//! `now` is not an event time. A Unix number in the wrong unit (milliseconds
//! where seconds are documented, as Instagram's `entry.time` sometimes is, or
//! the reverse) is read in the other unit when that makes it plausible;
//! otherwise the event is refused with the reason.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

/// The earliest plausible event time, 2000-01-01T00:00:00Z, as Unix seconds.
pub const EARLIEST_EVENT_TIME: i64 = 946_684_800;

/// How far after `now` an event time may be and still be plausible (clock skew
/// between the platform and us): one day.
pub const MAX_EVENT_TIME_AHEAD: TimeDelta = TimeDelta::days(1);

/// Whether `t` is a plausible event time at `now`: not before 2000-01-01 and
/// not more than [`MAX_EVENT_TIME_AHEAD`] after `now`.
pub fn is_plausible_event_time(t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    t.timestamp() >= EARLIEST_EVENT_TIME
        && now
            .checked_add_signed(MAX_EVENT_TIME_AHEAD)
            .is_none_or(|latest| t <= latest)
}

/// `Ok(t)` when `t` is a plausible event time at `now`
/// ([`is_plausible_event_time`]), otherwise the reason, in words.
pub fn check_event_time(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if is_plausible_event_time(t, now) {
        Ok(t)
    } else {
        Err(format!(
            "timestamp {} is implausible: before 2000-01-01 or more than a day after {}",
            t.to_rfc3339(),
            now.to_rfc3339()
        ))
    }
}

/// The unit a platform documents for a time field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Unix seconds (integer or numeric string).
    Secs,
    /// Unix milliseconds (integer or numeric string).
    Millis,
    /// Graph's ISO-8601 (`2017-08-31T18:10:30+0000`), RFC 3339, or Unix seconds.
    Graph,
}

/// A Unix number read in `unit`, or in the other unit when only that reading
/// is plausible at `now`.
fn unix_event_time(raw: i64, unit: Unit, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let (first, second) = match unit {
        Unit::Millis => (from_millis(raw), from_secs(raw)),
        Unit::Secs | Unit::Graph => (from_secs(raw), from_millis(raw)),
    };
    first
        .into_iter()
        .chain(second)
        .find(|t| is_plausible_event_time(*t, now))
        .ok_or_else(|| {
            format!(
                "timestamp {raw} is implausible in seconds and in milliseconds: \
                 before 2000-01-01 or more than a day after {}",
                now.to_rfc3339()
            )
        })
}

/// The event time from the first of `candidates` that holds a readable time
/// (absent, `null` or unreadable values are skipped), checked for plausibility
/// at `now`. `Err` names `what` when no candidate holds a time, or says why
/// the time found is implausible.
pub(crate) fn event_time(
    candidates: &[(Option<&Value>, Unit)],
    now: DateTime<Utc>,
    what: &str,
) -> Result<DateTime<Utc>, String> {
    for (value, unit) in candidates {
        let Some(value) = value else { continue };
        if let (Unit::Graph, Value::String(s)) = (unit, value) {
            let parsed = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
                .or_else(|_| DateTime::parse_from_rfc3339(s));
            if let Ok(t) = parsed {
                return check_event_time(t.with_timezone(&Utc), now);
            }
        }
        if let Some(raw) = as_i64(value) {
            return unix_event_time(raw, *unit, now);
        }
    }
    Err(format!("{what} without a valid timestamp"))
}

/// `now` plus `secs` seconds from a platform answer (`expires_in`…), bounded to
/// ten years so that hostile values can neither overflow nor panic.
pub(crate) fn after_secs(now: DateTime<Utc>, secs: i64) -> Option<DateTime<Utc>> {
    const TEN_YEARS: i64 = 10 * 366 * 24 * 3600;
    if secs <= 0 {
        return None;
    }
    now.checked_add_signed(chrono::TimeDelta::try_seconds(secs.min(TEN_YEARS))?)
}

/// `now` plus a std duration, saturating at the end of time.
pub(crate) fn after(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Unix seconds.
pub(crate) fn from_secs(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// Unix milliseconds.
pub(crate) fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// An integer or a numeric string.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Seconds given as an integer or a string (WhatsApp sends strings).
pub(crate) fn secs_value(v: &Value) -> Option<DateTime<Utc>> {
    as_i64(v).and_then(from_secs)
}

/// Milliseconds given as an integer or a string.
pub(crate) fn millis_value(v: &Value) -> Option<DateTime<Utc>> {
    as_i64(v).and_then(from_millis)
}

/// Graph's `2017-08-31T18:10:30+0000` (also RFC 3339 and Unix seconds).
pub(crate) fn graph_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .or_else(|_| DateTime::parse_from_rfc3339(s))
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| secs_value(v)),
        Value::Number(_) => secs_value(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_documented_unit() {
        let t = graph_time(&json!("2017-08-31T18:10:30+0000")).expect("graph");
        assert_eq!(t.timestamp(), 1_504_203_030);
        assert_eq!(graph_time(&json!("2017-08-31T18:10:30+00:00")), Some(t));
        assert_eq!(secs_value(&json!("1504203030")), Some(t));
        assert_eq!(secs_value(&json!(1_504_203_030)), Some(t));
        assert_eq!(millis_value(&json!(1_504_203_030_000_i64)), Some(t));
        assert_eq!(graph_time(&json!("yesterday")), None);
        assert_eq!(secs_value(&json!(null)), None);
        assert_eq!(secs_value(&json!(i64::MAX)), None);
        assert!(after_secs(t, i64::MAX).is_some());
        assert_eq!(after_secs(t, 0), None);
        assert_eq!(after(t, std::time::Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }

    fn now() -> DateTime<Utc> {
        from_secs(1_767_225_600).expect("2026-01-01")
    }

    #[test]
    fn plausible_times_pass_in_their_unit() {
        let secs = json!(1_700_000_000);
        let t = event_time(&[(Some(&secs), Unit::Secs)], now(), "x").expect("secs");
        assert_eq!(t.timestamp(), 1_700_000_000);
        let ms = json!("1700000000123");
        let t = event_time(&[(Some(&ms), Unit::Millis)], now(), "x").expect("ms");
        assert_eq!(t.timestamp_millis(), 1_700_000_000_123);
        let iso = json!("2025-08-31T18:10:30+0000");
        assert!(event_time(&[(Some(&iso), Unit::Graph)], now(), "x").is_ok());
        // Exactly the bounds.
        let first = json!(EARLIEST_EVENT_TIME);
        assert!(event_time(&[(Some(&first), Unit::Secs)], now(), "x").is_ok());
        let ahead = json!(now().timestamp() + 86_400);
        assert!(event_time(&[(Some(&ahead), Unit::Secs)], now(), "x").is_ok());
    }

    #[test]
    fn a_number_in_the_other_unit_is_read_in_that_unit() {
        // Instagram's entry.time in milliseconds where seconds are documented
        // (read as seconds it is year 57971).
        let ms = json!(1_755_779_280_000_i64);
        let t = event_time(&[(Some(&ms), Unit::Secs)], now(), "x").expect("as ms");
        assert_eq!(t.timestamp(), 1_755_779_280);
        let t = event_time(&[(Some(&ms), Unit::Graph)], now(), "x").expect("as ms");
        assert_eq!(t.timestamp(), 1_755_779_280);
        // Seconds where milliseconds are documented (January 1970 as ms).
        let secs = json!(1_755_779_280);
        let t = event_time(&[(Some(&secs), Unit::Millis)], now(), "x").expect("as s");
        assert_eq!(t.timestamp(), 1_755_779_280);
    }

    #[test]
    fn implausible_times_are_refused_with_a_reason() {
        for (raw, unit) in [
            (json!(-1), Unit::Secs),
            (json!(-62_135_596_800_i64), Unit::Secs),
            (json!(0), Unit::Millis),
            (json!(1), Unit::Secs),
            (json!(i64::MAX), Unit::Secs),
            (json!(i64::MIN), Unit::Millis),
            (json!(now().timestamp() + 2 * 86_400), Unit::Secs),
            (json!("1999-12-31T23:59:59+0000"), Unit::Graph),
            (json!("2126-01-01T00:00:00+0000"), Unit::Graph),
        ] {
            let err = event_time(&[(Some(&raw), unit)], now(), "x").expect_err("implausible");
            assert!(err.contains("implausible"), "{raw}: {err}");
        }
        let err = event_time(&[(None, Unit::Secs)], now(), "message").expect_err("missing");
        assert_eq!(err, "message without a valid timestamp");
        // The first readable candidate decides; unreadable ones are skipped.
        let soon = json!("soon");
        let ok = json!(1_700_000_000);
        assert!(
            event_time(
                &[(Some(&soon), Unit::Secs), (Some(&ok), Unit::Secs)],
                now(),
                "x"
            )
            .is_ok()
        );
        assert!(check_event_time(from_secs(0).expect("epoch"), now()).is_err());
        assert!(is_plausible_event_time(now(), now()));
    }
}
