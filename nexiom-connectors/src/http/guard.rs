//! [`ChannelGuard`]: per-channel circuit breaker and rate-budget pause.
//!
//! - **Breaker.** After `failure_threshold` consecutive transient failures of one
//!   channel, calls for it fail fast with [`ConnectorError::CircuitOpen`] for
//!   `cooldown`; then one call goes through (half-open): success closes the
//!   breaker, failure reopens it.
//! - **Rate budget.** Meta's `X-App-Usage` and `X-Business-Use-Case-Usage` headers
//!   say how much of the budget is used (percent) and, when throttled, the
//!   `estimated_time_to_regain_access` (minutes). At or above
//!   `usage_pause_percent`, or when a regain time is announced, the channel is
//!   paused and calls fail fast with [`ConnectorError::RateLimited`] instead of
//!   retrying into a block. A `RateLimited` answer pauses the channel for its
//!   `retry_after` as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use crate::error::{ApiError, ConnectorError};
use crate::time::after;

/// Settings of the per-channel guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker (0 disables it).
    pub failure_threshold: u32,
    /// How long the breaker stays open.
    pub cooldown: Duration,
    /// Usage percentage at which a channel is paused (over 100 disables it).
    pub usage_pause_percent: u32,
    /// Pause length when usage is high but the platform gave no regain time.
    pub usage_pause: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(60),
            usage_pause_percent: 95,
            usage_pause: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct State {
    consecutive_failures: u32,
    open_until: Option<DateTime<Utc>>,
    paused_until: Option<DateTime<Utc>>,
    usage_percent: Option<u32>,
}

/// Per-channel state shared by clones of one HTTP core.
#[derive(Debug, Clone, Default)]
pub struct ChannelGuard {
    config: BreakerConfig,
    states: Arc<Mutex<HashMap<String, State>>>,
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (until - now).to_std().unwrap_or(Duration::ZERO)
}

impl ChannelGuard {
    /// A guard with `config`.
    pub fn new(config: BreakerConfig) -> Self {
        ChannelGuard {
            config,
            states: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, State>> {
        // The map holds plain values; a panic elsewhere cannot leave it torn.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails fast when the channel's breaker is open or the channel is paused.
    pub fn check(
        &self,
        platform: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ConnectorError> {
        let states = self.lock();
        let Some(state) = states.get(key) else {
            return Ok(());
        };
        if let Some(until) = state.open_until
            && until > now
        {
            return Err(ConnectorError::CircuitOpen {
                platform: platform.to_owned(),
                retry_after: remaining(until, now),
            });
        }
        if let Some(until) = state.paused_until
            && until > now
        {
            return Err(ConnectorError::RateLimited {
                platform: platform.to_owned(),
                retry_after: Some(remaining(until, now)),
                detail: ApiError::message(format!(
                    "channel paused by the rate budget (usage {}%)",
                    state.usage_percent.unwrap_or(100)
                )),
            });
        }
        Ok(())
    }

    /// Records a success and reads Meta's usage headers.
    pub fn record_success(&self, key: &str, headers: &HeaderMap, now: DateTime<Utc>) {
        let usage = read_usage(headers);
        let mut states = self.lock();
        let state = states.entry(key.to_owned()).or_default();
        state.consecutive_failures = 0;
        state.open_until = None;
        if let Some((percent, regain)) = usage {
            state.usage_percent = Some(percent);
            let pause = if regain > Duration::ZERO {
                Some(regain)
            } else if percent >= self.config.usage_pause_percent {
                Some(self.config.usage_pause)
            } else {
                None
            };
            if let Some(p) = pause {
                tracing::info!(
                    channel = key,
                    percent,
                    pause_secs = p.as_secs(),
                    "pausing channel: rate budget nearly spent"
                );
                state.paused_until = Some(after(now, p));
            }
        }
    }

    /// Records a failure: transient ones count toward the breaker, rate limits
    /// pause the channel for their `retry_after`.
    pub fn record_failure(&self, key: &str, error: &ConnectorError, now: DateTime<Utc>) {
        let mut states = self.lock();
        let state = states.entry(key.to_owned()).or_default();
        match error {
            ConnectorError::Transient { .. } | ConnectorError::OutcomeUnknown { .. } => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                if self.config.failure_threshold > 0
                    && state.consecutive_failures >= self.config.failure_threshold
                {
                    tracing::warn!(
                        channel = key,
                        failures = state.consecutive_failures,
                        "circuit opened"
                    );
                    state.open_until = Some(after(now, self.config.cooldown));
                }
            }
            // WhatsApp's pair rate limit is about one recipient: the
            // channel's other sends go on.
            ConnectorError::RateLimited {
                retry_after: Some(wait),
                ..
            } if !error.is_pair_rate_limit() => {
                state.paused_until = Some(after(now, *wait));
            }
            _ => {}
        }
    }

    /// The last usage percentage the platform reported for the channel.
    pub fn usage_percent(&self, key: &str) -> Option<u32> {
        self.lock().get(key).and_then(|s| s.usage_percent)
    }
}

/// Reads `X-App-Usage` and `X-Business-Use-Case-Usage`: the highest percentage
/// and the longest `estimated_time_to_regain_access` (minutes → duration).
pub(crate) fn read_usage(headers: &HeaderMap) -> Option<(u32, Duration)> {
    fn pct(v: &serde_json::Value) -> u32 {
        ["call_count", "total_cputime", "total_time"]
            .iter()
            .filter_map(|k| v.get(*k).and_then(serde_json::Value::as_f64))
            .map(|f| f.clamp(0.0, 10_000.0) as u32)
            .max()
            .unwrap_or(0)
    }
    let mut found = false;
    let mut max_pct = 0;
    let mut regain_min = 0u64;
    if let Some(v) = headers
        .get("x-app-usage")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    {
        found = true;
        max_pct = max_pct.max(pct(&v));
    }
    if let Some(serde_json::Value::Object(map)) = headers
        .get("x-business-use-case-usage")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    {
        for entries in map.values() {
            for e in entries.as_array().into_iter().flatten() {
                found = true;
                max_pct = max_pct.max(pct(e));
                let regain = e
                    .get("estimated_time_to_regain_access")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                regain_min = regain_min.max(regain.min(24 * 60));
            }
        }
    }
    found.then(|| (max_pct, Duration::from_secs(regain_min * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn transient() -> ConnectorError {
        ConnectorError::Transient {
            platform: "facebook".into(),
            detail: ApiError::default(),
        }
    }

    #[test]
    fn breaker_opens_after_threshold_and_half_opens_after_cooldown() {
        let g = ChannelGuard::new(BreakerConfig {
            failure_threshold: 3,
            cooldown: Duration::from_secs(60),
            ..BreakerConfig::default()
        });
        for _ in 0..2 {
            g.record_failure("ch", &transient(), t0());
        }
        assert!(g.check("facebook", "ch", t0()).is_ok());
        g.record_failure("ch", &transient(), t0());
        let err = g.check("facebook", "ch", t0()).expect_err("open");
        assert!(matches!(err, ConnectorError::CircuitOpen { .. }));
        assert!(g.check("facebook", "other", t0()).is_ok());
        let later = t0() + chrono::Duration::seconds(61);
        assert!(g.check("facebook", "ch", later).is_ok());
        g.record_success("ch", &HeaderMap::new(), later);
        g.record_failure("ch", &transient(), later);
        assert!(g.check("facebook", "ch", later).is_ok());
    }

    #[test]
    fn a_pair_rate_limit_does_not_pause_the_channel() {
        let g = ChannelGuard::new(BreakerConfig::default());
        let limited = |code| ConnectorError::RateLimited {
            platform: "whatsapp".into(),
            retry_after: Some(Duration::from_secs(120)),
            detail: ApiError {
                code: Some(code),
                ..ApiError::message("rate limit")
            },
        };
        g.record_failure("ch", &limited(crate::WHATSAPP_PAIR_RATE_LIMIT), t0());
        assert!(
            g.check("whatsapp", "ch", t0()).is_ok(),
            "one recipient's limit"
        );
        g.record_failure("ch", &limited(130_429), t0());
        assert!(
            g.check("whatsapp", "ch", t0()).is_err(),
            "the channel's limit"
        );
    }

    #[test]
    fn usage_headers_pause_the_channel() {
        let g = ChannelGuard::new(BreakerConfig::default());
        let mut h = HeaderMap::new();
        h.insert(
            "x-app-usage",
            HeaderValue::from_static(r#"{"call_count":96,"total_cputime":10,"total_time":12}"#),
        );
        g.record_success("ch", &h, t0());
        assert_eq!(g.usage_percent("ch"), Some(96));
        assert!(matches!(
            g.check("facebook", "ch", t0()),
            Err(ConnectorError::RateLimited {
                retry_after: Some(_),
                ..
            })
        ));

        let mut h = HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"112130216863063":[{"type":"pages","call_count":40,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":7}]}"#,
            ),
        );
        assert_eq!(read_usage(&h), Some((40, Duration::from_secs(420))));
        let g2 = ChannelGuard::new(BreakerConfig::default());
        g2.record_success("ch", &h, t0());
        let err = g2.check("facebook", "ch", t0()).expect_err("paused");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(420)));
        assert!(
            g2.check("facebook", "ch", t0() + chrono::Duration::minutes(8))
                .is_ok()
        );

        let mut low = HeaderMap::new();
        low.insert(
            "x-app-usage",
            HeaderValue::from_static(r#"{"call_count":5}"#),
        );
        let g3 = ChannelGuard::new(BreakerConfig::default());
        g3.record_success("ch", &low, t0());
        assert!(g3.check("facebook", "ch", t0()).is_ok());
        let mut junk = HeaderMap::new();
        junk.insert("x-app-usage", HeaderValue::from_static("{not json"));
        assert_eq!(read_usage(&junk), None);
    }
}
