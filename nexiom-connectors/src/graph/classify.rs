//! How a Graph error answer is read: throttling codes, Instagram's
//! publishing errors, and the mapping to [`ConnectorError`].

use serde_json::Value;

use crate::error::{ApiError, ConnectorError, redact};
use crate::http::{ErrorInput, classify_status, retry_after, short};

/// Graph throttling codes (platform-apis §0.3, §1.6, §2.3): app / user / page /
/// custom throttling, Instagram's publishing quota (9, subcode 2207042), app
/// limit, policy block, BUC 8000x, WhatsApp throughput and pair rate limits,
/// spam rate limit.
pub(crate) fn is_throttle_code(code: i32) -> bool {
    matches!(
        code,
        4 | 9 | 17 | 32 | 341 | 368 | 613 | 80000..=80009 | 130429 | 131048 | 131056 | 133016
    )
}

/// Instagram's subcode of its publishing quota (code 9).
const PUBLISHING_QUOTA_SUBCODE: i32 = 2_207_042;

/// How long a channel waits after Instagram's publishing quota (code 9) when
/// the answer names no wait: the quota is counted over a rolling 24 hours
/// (platform-apis §2.3), so retrying within minutes only spends attempts.
pub(crate) const PUBLISHING_QUOTA_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether an Instagram subcode (the `2207xxx` publishing errors) is one whose
/// documented fix is to try again, with a new container: a media download
/// that timed out (2207003), a container expired (2207020), a server error
/// (2207001), a container not created (2207032), an unknown upload error
/// (2207053). Instagram's error-codes reference.
pub(crate) fn is_try_again_subcode(subcode: i32) -> bool {
    matches!(
        subcode,
        2_207_001 | 2_207_003 | 2_207_020 | 2_207_032 | 2_207_053
    )
}

/// Whether a code 1, 2, -1 or -2 answer is a passing failure: always, but
/// for an Instagram publishing subcode (`2207xxx`) that names a fault of the
/// content (2207057, a thumbnail offset out of the video) rather than one
/// to try again.
fn is_transient_code(subcode: Option<i32>) -> bool {
    subcode.is_none_or(|s| !(2_207_000..2_208_000).contains(&s) || is_try_again_subcode(s))
}

/// Maps a Graph error response (any HTTP status: throttling is usually a 400).
pub(crate) fn classify(input: &ErrorInput<'_>) -> ConnectorError {
    let platform = input.platform.to_owned();
    let after =
        retry_after(input.headers, input.now).or_else(|| crate::http::guard_regain(input.headers));
    let parsed: Option<Value> = serde_json::from_slice(input.body).ok();
    let err = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object());
    let Some(err) = err else {
        let message = short(&redact(&String::from_utf8_lossy(input.body), input.secrets));
        let detail = ApiError {
            status: Some(input.status),
            message,
            ..ApiError::default()
        };
        return classify_status(input.platform, input.status, after, detail);
    };
    let code = err
        .get("code")
        .and_then(crate::time::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    let subcode = err
        .get("error_subcode")
        .and_then(crate::time::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    let mut message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(details) = err.pointer("/error_data/details").and_then(Value::as_str) {
        message = format!("{message} ({details})");
    }
    let detail = ApiError {
        status: Some(input.status),
        code,
        subcode,
        trace_id: err
            .get("fbtrace_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        message: short(&redact(&message, input.secrets)),
    };
    let is_transient = err.get("is_transient").and_then(Value::as_bool) == Some(true);
    match code {
        // Instagram's publishing quota: counted over 24 hours, so a default
        // wait of an hour when none is named (only for that subcode: another
        // code 9 waits as any throttle).
        Some(9) if subcode == Some(PUBLISHING_QUOTA_SUBCODE) => ConnectorError::RateLimited {
            platform,
            retry_after: after.or(Some(PUBLISHING_QUOTA_WAIT)),
            detail,
        },
        Some(c) if is_throttle_code(c) => ConnectorError::RateLimited {
            platform,
            retry_after: after,
            detail,
        },
        Some(190 | 102) => ConnectorError::Unauthorized { platform, detail },
        Some(10 | 200..=299) => ConnectorError::Forbidden { platform, detail },
        _ if matches!(input.status, 408 | 503) && after.is_some() => ConnectorError::RateLimited {
            platform,
            retry_after: after,
            detail,
        },
        Some(-2 | -1 | 1 | 2) if is_transient_code(subcode) => {
            ConnectorError::Transient { platform, detail }
        }
        _ if is_transient => ConnectorError::Transient { platform, detail },
        _ if input.status == 429 => ConnectorError::RateLimited {
            platform,
            retry_after: after,
            detail,
        },
        _ if input.status >= 500 => ConnectorError::Transient { platform, detail },
        _ if input.status == 401 => ConnectorError::Unauthorized { platform, detail },
        _ => ConnectorError::Permanent { platform, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::json;
    use std::time::Duration;

    fn run(status: u16, body: Value, headers: HeaderMap) -> ConnectorError {
        let bytes = serde_json::to_vec(&body).expect("json");
        classify(&ErrorInput {
            platform: "facebook",
            status,
            headers: &headers,
            body: &bytes,
            now: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("t"),
            secrets: &["EAAG-secret-token"],
        })
    }

    fn graph_err(code: i32) -> Value {
        json!({"error":{"message":"m","type":"OAuthException","code":code,"fbtrace_id":"T"}})
    }

    #[test]
    fn throttling_codes_are_rate_limits_whatever_the_status() {
        for code in [
            4, 9, 17, 32, 613, 80000, 80001, 80004, 80007, 130429, 131056,
        ] {
            assert!(
                matches!(
                    run(400, graph_err(code), HeaderMap::new()),
                    ConnectorError::RateLimited { .. }
                ),
                "code {code}"
            );
        }
    }

    /// Instagram's publishing errors (its error-codes reference): the
    /// "try again" ones (-1, -2) are passing failures, a fault of the content
    /// (code 1, 2207057) is not, and the publishing quota (9, 2207042) is a
    /// rate limit that waits an hour when the answer names no wait.
    #[test]
    fn instagram_publishing_errors_are_classified_as_documented() {
        let ig = |code: i32, subcode: i32| {
            json!({"error":{"message":"m","type":"OAuthException","code":code,
                "error_subcode":subcode,"is_transient":false,"fbtrace_id":"t"}})
        };
        for (code, subcode) in [
            (-2, 2_207_003),
            (-2, 2_207_020),
            (-1, 2_207_001),
            (-1, 2_207_032),
            (-1, 2_207_053),
        ] {
            assert!(
                matches!(
                    run(400, ig(code, subcode), HeaderMap::new()),
                    ConnectorError::Transient { .. }
                ),
                "{code}/{subcode}"
            );
        }
        assert!(matches!(
            run(400, ig(1, 2_207_057), HeaderMap::new()),
            ConnectorError::Permanent { .. }
        ));
        assert!(matches!(
            run(500, graph_err(1), HeaderMap::new()),
            ConnectorError::Transient { .. }
        ));
        match run(400, ig(9, 2_207_042), HeaderMap::new()) {
            ConnectorError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(PUBLISHING_QUOTA_WAIT));
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        match run(400, graph_err(9), HeaderMap::new()) {
            ConnectorError::RateLimited { retry_after, .. } => assert_eq!(retry_after, None),
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }

    #[test]
    fn codes_map_to_actions() {
        let e = run(
            400,
            json!({"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"EJplcsCHuLu"}}),
            HeaderMap::new(),
        );
        match &e {
            ConnectorError::Unauthorized { detail, .. } => {
                assert_eq!(detail.code, Some(190));
                assert_eq!(detail.subcode, Some(463));
                assert_eq!(detail.trace_id.as_deref(), Some("EJplcsCHuLu"));
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        assert!(matches!(
            run(400, graph_err(102), HeaderMap::new()),
            ConnectorError::Unauthorized { .. }
        ));
        assert!(matches!(
            run(500, graph_err(1), HeaderMap::new()),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            run(400, graph_err(2), HeaderMap::new()),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            run(403, graph_err(200), HeaderMap::new()),
            ConnectorError::Forbidden { .. }
        ));
        assert!(matches!(
            run(400, graph_err(506), HeaderMap::new()),
            ConnectorError::Permanent { .. }
        ));
        assert!(matches!(
            run(400, graph_err(100), HeaderMap::new()),
            ConnectorError::Permanent { .. }
        ));
        assert!(matches!(
            run(502, json!("bad gateway"), HeaderMap::new()),
            ConnectorError::Transient { .. }
        ));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(
            run(429, json!({}), h).retry_after(),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn buc_regain_time_becomes_retry_after_and_secrets_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"1":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":3}]}"#,
            ),
        );
        let e = run(
            400,
            json!({"error":{"message":"limit for token EAAG-secret-token","code":80001}}),
            h,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(180)));
        assert!(!e.to_string().contains("EAAG-secret-token"));
    }

    /// WhatsApp refusals of the sender or the template (every recipient
    /// would be refused alike) are told apart from a recipient's own.
    #[test]
    fn refusals_of_every_recipient_are_told_apart() {
        let refusal = |code: i64| {
            run(
                400,
                json!({"error": {"message": "refused", "code": code}}),
                HeaderMap::new(),
            )
        };
        for code in [
            131_031, 131_042, 133_010, 132_000, 132_001, 132_015, 132_016, 10, 200, 368,
        ] {
            assert!(refusal(code).refuses_every_recipient(), "{code}");
        }
        for code in [131_026, 131_047, 100, 131_051, 130_429, 131_056, 131_048] {
            let err = refusal(code);
            assert!(!err.refuses_every_recipient(), "{code}: {err:?}");
        }
    }
}
