//! Timestamp parsing for the platforms' many units (see platform-apis §6): Unix
//! seconds as strings or integers, Unix milliseconds, and Graph's ISO-8601 with a
//! `+0000` offset.

use chrono::{DateTime, Utc};
use serde_json::Value;

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
}
