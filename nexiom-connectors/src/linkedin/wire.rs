//! LinkedIn's wire formats: URNs in paths and Rest.li keys, the "little" text
//! format, comment elements and error bodies.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NAME;
use crate::error::{ApiError, ConnectorError, redact};
use crate::http::{ErrorInput, classify_status, retry_after, short};
use crate::time;
use crate::types::RemoteComment;

/// Percent-encodes a URN for a path or a Rest.li key (`:` → `%3A`, `(` → `%28`…).
pub(crate) fn encode_urn(urn: &str) -> String {
    url::form_urlencoded::byte_serialize(urn.as_bytes()).collect()
}

/// Escapes LinkedIn's "little" text format reserved characters, so the
/// commentary is shown as written instead of cut or misparsed.
pub fn escape_little_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '|'
                | '{'
                | '}'
                | '@'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '>'
                | '#'
                | '*'
                | '_'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The post (activity) a comment URN `urn:li:comment:(urn:li:activity:X,Y)` is on.
pub(crate) fn comment_object(comment_urn: &str) -> Option<&str> {
    let inner = comment_urn
        .strip_prefix("urn:li:comment:(")?
        .strip_suffix(')')?;
    let (object, _) = inner.rsplit_once(',')?;
    (!object.is_empty()).then_some(object)
}

/// Maps a LinkedIn error: `{"status", "serviceErrorCode", "message", "code"}`.
pub(crate) fn classify(input: &ErrorInput<'_>) -> ConnectorError {
    let parsed: Option<Value> = serde_json::from_slice(input.body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(input.body).into_owned(),
            str::to_owned,
        );
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("serviceErrorCode"))
        .and_then(time::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    let detail = ApiError {
        status: Some(input.status),
        code,
        subcode: None,
        trace_id: input
            .headers
            .get("x-li-uuid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        message: short(&redact(&message, input.secrets)),
    };
    if input.status == 426 {
        // "Version Header is Deprecated": configuration, not retryable.
        return ConnectorError::Permanent {
            platform: NAME.into(),
            detail,
        };
    }
    let wait = retry_after(input.headers, input.now).or_else(|| {
        (input.status == 429 && names_daily_limit(code, &message))
            .then(|| until_utc_midnight(input.now).min(DAILY_LIMIT_MAX_WAIT))
    });
    classify_status(input.platform, input.status, wait, detail)
}

/// The longest a daily-limit 429 holds the channel: LinkedIn counts its
/// daily limits per endpoint, while the hold covers every call on the
/// channel (a limit met by comment listings must not keep its posts back
/// for a day), and the throttle code is not documented as daily-only. So
/// the wait is the time to midnight UTC, at most an hour: a call that meets
/// the limit again waits again, one refusal an hour instead of one per
/// backoff.
const DAILY_LIMIT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether a 429 is LinkedIn's daily limit (per application or per member,
/// reset at midnight UTC): its throttle code, `serviceErrorCode` 101
/// ("Resource level throttle limit for calls to this resource is reached"),
/// or a message naming a `DAY` limit ("Resource level throttle APPLICATION
/// DAY limit ..."). LinkedIn sends no `Retry-After`.
fn names_daily_limit(code: Option<i32>, message: &str) -> bool {
    code == Some(101) || message.contains("DAY limit")
}

/// The wait from `now` to the next midnight UTC, when LinkedIn's daily
/// limits reset (at least one second).
fn until_utc_midnight(now: DateTime<Utc>) -> std::time::Duration {
    let next = now
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc());
    next.and_then(|at| (at - now).to_std().ok())
        .unwrap_or_default()
        .max(std::time::Duration::from_secs(1))
}
pub(super) fn comment_from(v: &Value) -> Result<RemoteComment, ConnectorError> {
    let id = ["commentUrn", "$URN", "id"]
        .iter()
        .find_map(|k| match v.get(*k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            ConnectorError::invalid_response(NAME, "comment without commentUrn or id")
        })?;
    let created_at = v
        .pointer("/created/time")
        .and_then(time::millis_value)
        .ok_or_else(|| {
            ConnectorError::invalid_response(NAME, format!("comment {id} has no created.time"))
        })?;
    Ok(RemoteComment {
        parent_id: v
            .get("parentComment")
            .and_then(Value::as_str)
            .map(str::to_owned),
        author_id: v
            .get("actor")
            .or_else(|| v.pointer("/created/actor"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        author_name: None,
        text: v
            .pointer("/message/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created_at,
        hidden: false,
        id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn urns_and_little_text() {
        assert_eq!(encode_urn("urn:li:share:7001"), "urn%3Ali%3Ashare%3A7001");
        assert_eq!(
            encode_urn("urn:li:comment:(urn:li:activity:1,2)"),
            "urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A1%2C2%29"
        );
        assert_eq!(
            comment_object("urn:li:comment:(urn:li:activity:7001,6001)"),
            Some("urn:li:activity:7001")
        );
        assert_eq!(comment_object("urn:li:share:1"), None);
        assert_eq!(
            escape_little_text("Sale (50%) #deal @you"),
            "Sale \\(50%\\) \\#deal \\@you"
        );
    }

    fn throttled(body: &serde_json::Value, headers: &reqwest::header::HeaderMap) -> ConnectorError {
        let body = serde_json::to_vec(body).expect("json");
        let now = "2026-12-03T21:30:00Z".parse().expect("time");
        classify(&ErrorInput {
            platform: NAME,
            status: 429,
            headers,
            body: &body,
            now,
            secrets: &[],
        })
    }

    #[test]
    fn a_daily_limit_waits_until_midnight_utc_at_most_an_hour() {
        let none = reqwest::header::HeaderMap::new();
        // 21:30 UTC: midnight is 2 h 30 away, the hold an hour.
        let an_hour = Some(DAILY_LIMIT_MAX_WAIT);
        for body in [
            json!({"serviceErrorCode": 101, "status": 429,
                "message": "Resource level throttle limit for calls to this resource is reached."}),
            json!({"status": 429, "message":
                "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}),
            json!({"status": 429, "message":
                "Resource level throttle MEMBER DAY limit for calls to this resource is reached."}),
        ] {
            match throttled(&body, &none) {
                ConnectorError::RateLimited { retry_after, .. } => {
                    assert_eq!(retry_after, an_hour, "{body}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Any other 429 (LinkedIn protecting itself) keeps the backoff.
        let other = json!({"status": 429, "message": "Too many requests"});
        assert!(matches!(
            throttled(&other, &none),
            ConnectorError::RateLimited {
                retry_after: None,
                ..
            }
        ));
        // A Retry-After, where one comes, wins.
        let mut given = reqwest::header::HeaderMap::new();
        given.insert("retry-after", "30".parse().expect("header"));
        let day = json!({"serviceErrorCode": 101, "status": 429, "message": "throttle"});
        assert!(matches!(
            throttled(&day, &given),
            ConnectorError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 30
        ));
        // Near midnight: until then, at least a second.
        let near = "2026-12-03T23:40:00Z".parse().expect("time");
        assert_eq!(
            until_utc_midnight(near),
            std::time::Duration::from_secs(20 * 60)
        );
        let late = "2026-12-03T23:59:59.900Z".parse().expect("time");
        assert_eq!(until_utc_midnight(late), std::time::Duration::from_secs(1));
    }

    #[test]
    fn comment_elements() {
        let c = comment_from(&json!({
            "actor":"urn:li:person:abc","commentUrn":"urn:li:comment:(urn:li:activity:1,2)","id":"2",
            "created":{"actor":"urn:li:person:abc","time":1700000000000_i64},"message":{"text":"Great"},
            "object":"urn:li:activity:1"}))
        .expect("comment");
        assert_eq!(c.id, "urn:li:comment:(urn:li:activity:1,2)");
        assert_eq!(c.text, "Great");
        assert_eq!(c.created_at.timestamp(), 1_700_000_000);
        assert!(comment_from(&json!({"id":"x"})).is_err());
    }
}
