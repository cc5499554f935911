//! The HTTP core shared by every connector: one `reqwest` client with timeouts,
//! bounded retries of idempotent requests with jittered exponential backoff, a
//! per-channel guard (circuit breaker and rate-budget pause), a cap on the size
//! of an answer's body, and the mapping of transport failures onto
//! [`ConnectorError`].
//!
//! A request that is not idempotent (publish, send, reply) is sent once. After
//! it may have reached the platform, a failure is
//! [`ConnectorError::OutcomeUnknown`]: a timeout or a dropped connection after
//! sending, a `500`, `502`, `504` (or any other 5xx but `503`), an answer of
//! any other status whose error body says the failure is transient (Graph's
//! codes 1 and 2, `is_transient`: the platform failed while handling it), and
//! a success answer too large to read. Only a connect failure (nothing was
//! sent), a `503` (the platform did not take the request), a `408` (it gave up
//! waiting for the request) and a `429` stay retryable.
//!
//! Platform-specific error bodies are read by a classifier each platform passes in
//! (`graph::classify`, `linkedin::classify`).

mod backoff;
mod guard;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nexiom_core::{Clock, SecretString, SystemClock};
use reqwest::Method;
use reqwest::header::HeaderMap;
use url::Url;

use crate::error::{ApiError, ConnectorError, redact};

pub use backoff::Backoff;
pub use guard::{BreakerConfig, ChannelGuard};

/// The default cap on an answer's body: 4 MiB. The largest answers the
/// connectors read (a page of 100 Graph comments with their fields, a LinkedIn
/// comment list) are tens of kilobytes; 4 MiB leaves a wide margin while keeping
/// a broken or hostile endpoint from filling memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Settings of the HTTP core, shared by the connectors built with it.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries of idempotent requests (GETs) after a transient failure. Publish,
    /// send and reply are never retried here.
    pub max_retries: u32,
    /// The largest answer body read, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]). A larger answer is not read further:
    /// [`ConnectorError::ResponseTooLarge`], or
    /// [`ConnectorError::OutcomeUnknown`] for a successful publish, send or reply.
    pub max_response_bytes: usize,
    /// Backoff between those retries.
    pub backoff: Backoff,
    /// Circuit breaker per channel.
    pub breaker: BreakerConfig,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            user_agent: concat!("nexiom-connectors/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Reads a non-2xx response into an error.
pub(crate) type Classifier = fn(&ErrorInput<'_>) -> ConnectorError;

/// What a classifier gets to decide from.
pub(crate) struct ErrorInput<'a> {
    pub platform: &'a str,
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
    pub secrets: &'a [&'a str],
}

/// A request body.
#[derive(Clone)]
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

/// Form bodies carry client secrets and refresh tokens: `Debug` shows the field
/// names only (and only the shape of a JSON body).
impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::None => f.write_str("None"),
            Body::Json(_) => f.write_str("Json(..)"),
            Body::Form(fields) => f
                .debug_list()
                .entries(fields.iter().map(|(k, _)| k))
                .finish(),
        }
    }
}

/// One request, built by a platform client.
pub(crate) struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub bearer: Option<SecretString>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Safe to repeat (GET): retried on transient failures, and a timeout is
    /// `Transient` rather than `OutcomeUnknown`.
    pub idempotent: bool,
    /// Per-channel guard key (breaker, pause), when the call is for a channel.
    pub channel_key: Option<String>,
    /// Extra values to redact from error messages (client secrets in forms).
    pub extra_secrets: Vec<SecretString>,
}

impl HttpRequest {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        HttpRequest {
            idempotent: method == Method::GET,
            method,
            url,
            bearer: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
            channel_key: None,
            extra_secrets: Vec::new(),
        }
    }
}

/// A successful (2xx) response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn json(&self, platform: &str) -> Result<serde_json::Value, ConnectorError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::invalid_response(platform, format!("body is not JSON: {e}"))
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The shared client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpCore {
    client: reqwest::Client,
    config: HttpConfig,
    clock: Arc<dyn Clock>,
    guard: ChannelGuard,
}

impl fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCore")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl HttpCore {
    /// A core with `config`, reading time from `clock`.
    pub fn new(config: HttpConfig, clock: Arc<dyn Clock>) -> Result<Self, ConnectorError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| ConnectorError::config(format!("cannot build the HTTP client: {e}")))?;
        let guard = ChannelGuard::new(config.breaker.clone());
        Ok(HttpCore {
            client,
            config,
            clock,
            guard,
        })
    }

    /// A core with default settings and the system clock.
    pub fn with_defaults() -> Result<Self, ConnectorError> {
        HttpCore::new(HttpConfig::default(), Arc::new(SystemClock))
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The per-channel guard (breakers and pauses).
    pub fn guard(&self) -> &ChannelGuard {
        &self.guard
    }

    /// Sends `req`; a non-2xx answer goes through `classify`.
    pub(crate) async fn execute(
        &self,
        platform: &str,
        req: HttpRequest,
        classify: Classifier,
    ) -> Result<HttpResponse, ConnectorError> {
        if let Some(key) = &req.channel_key {
            self.guard.check(platform, key, self.clock.now())?;
        }
        let max_attempts = if req.idempotent {
            self.config.max_retries.saturating_add(1)
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(platform, &req, classify).await;
            let retry = match &result {
                Err(e @ ConnectorError::Transient { .. }) if attempt < max_attempts => {
                    tracing::debug!(platform, attempt, error = %e, "retrying idempotent request");
                    true
                }
                _ => false,
            };
            if retry {
                let delay = self.config.backoff.delay(attempt);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                continue;
            }
            if let Some(key) = &req.channel_key {
                let now = self.clock.now();
                match &result {
                    Ok(resp) => self.guard.record_success(key, &resp.headers, now),
                    Err(e) => self.guard.record_failure(key, e, now),
                }
            }
            return result;
        }
    }

    async fn send_once(
        &self,
        platform: &str,
        req: &HttpRequest,
        classify: Classifier,
    ) -> Result<HttpResponse, ConnectorError> {
        let mut builder = self.client.request(req.method.clone(), req.url.clone());
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(token) = &req.bearer {
            builder = builder.bearer_auth(token.expose());
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        builder = match &req.body {
            Body::None => builder,
            Body::Json(v) => builder.json(v),
            Body::Form(f) => builder.form(f),
        };
        let secrets: Vec<&str> = req
            .bearer
            .iter()
            .chain(req.extra_secrets.iter())
            .map(SecretString::expose)
            .collect();
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Err(transport_error(platform, e, req.idempotent, &secrets)),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let limit = self.config.max_response_bytes;
        let (body, whole) = match read_capped(response, limit).await {
            Ok(read) => read,
            Err(e) => return Err(transport_error(platform, e, req.idempotent, &secrets)),
        };
        let success = (200..300).contains(&status);
        if !whole {
            tracing::warn!(platform, status, limit, "platform answer over the size cap");
        }
        if success {
            if !whole {
                return Err(too_large(platform, status, limit, req.idempotent));
            }
            return Ok(HttpResponse { headers, body });
        }
        // An error answer over the cap is classified from its status and the
        // part read (the platform's error object, when it fits).
        let input = ErrorInput {
            platform,
            status,
            headers: &headers,
            body: &body,
            now: self.clock.now(),
            secrets: &secrets,
        };
        let err = classify(&input);
        let err = if req.idempotent {
            err
        } else {
            after_sending(platform, status, err)
        };
        tracing::warn!(platform, status, error = %err, "platform call failed");
        Err(err)
    }
}

/// Reads at most `limit` bytes of the body: `(body, true)` when it was read
/// whole, `(the first limit bytes, false)` when it is larger. A
/// `Content-Length` over the limit is refused before reading anything.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let max = u64::try_from(limit).unwrap_or(u64::MAX);
    if response.content_length().is_some_and(|n| n > max) {
        return Ok((Vec::new(), false));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// A successful answer too large to read: for a request that may have been
/// carried out (not idempotent), the outcome is unknown.
fn too_large(platform: &str, status: u16, limit: usize, idempotent: bool) -> ConnectorError {
    if idempotent {
        ConnectorError::ResponseTooLarge {
            platform: platform.to_owned(),
            status,
            limit_bytes: limit,
        }
    } else {
        ConnectorError::OutcomeUnknown {
            platform: platform.to_owned(),
            reason: format!(
                "HTTP {status} with an answer over the {limit}-byte limit; the request was probably carried out"
            ),
        }
    }
}

/// A non-idempotent request answered with a transient failure: a `503` says
/// the platform did not take it, a `408` that it gave up waiting for the
/// request and a `429` that it refused to (all retryable); any other (a 5xx, or a 4xx whose error body says
/// the failure is transient, such as Graph's code 2 "service temporarily
/// unavailable" on a 400) may come after the platform acted, so it is
/// [`ConnectorError::OutcomeUnknown`], never `Transient` (a retry could
/// publish twice).
fn after_sending(platform: &str, status: u16, err: ConnectorError) -> ConnectorError {
    match err {
        ConnectorError::Transient { detail, .. }
            if status != 503 && status != 408 && status != 429 =>
        {
            ConnectorError::OutcomeUnknown {
                platform: platform.to_owned(),
                reason: format!(
                    "the platform answered HTTP {status}, a transient failure, after receiving the request; it may have been carried out: {detail}"
                ),
            }
        }
        other => other,
    }
}

/// Maps a transport failure. The URL is stripped (it may carry parameters), and
/// a non-idempotent request that may have reached the platform is
/// `OutcomeUnknown`, never `Transient`.
fn transport_error(
    platform: &str,
    e: reqwest::Error,
    idempotent: bool,
    secrets: &[&str],
) -> ConnectorError {
    let (is_builder, is_connect) = (e.is_builder(), e.is_connect());
    let message = redact(&e.without_url().to_string(), secrets);
    if is_builder {
        return ConnectorError::config(format!("bad request: {message}"));
    }
    // A connect failure means nothing reached the platform: safe to retry.
    if idempotent || is_connect {
        ConnectorError::Transient {
            platform: platform.to_owned(),
            detail: ApiError::message(message),
        }
    } else {
        ConnectorError::OutcomeUnknown {
            platform: platform.to_owned(),
            reason: message,
        }
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date (RFC 2822 form).
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(7 * 24 * 3600)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (at.with_timezone(&Utc) - now)
        .num_seconds()
        .clamp(0, 7 * 24 * 3600);
    u64::try_from(secs).ok().map(Duration::from_secs)
}

/// Meta's `estimated_time_to_regain_access` from the usage headers, when non-zero.
pub(crate) fn guard_regain(headers: &HeaderMap) -> Option<Duration> {
    guard::read_usage(headers)
        .map(|(_, regain)| regain)
        .filter(|d| !d.is_zero())
}

/// Generic status mapping when a body says nothing useful.
pub(crate) fn classify_status(
    platform: &str,
    status: u16,
    retry_after: Option<Duration>,
    detail: ApiError,
) -> ConnectorError {
    let platform = platform.to_owned();
    match status {
        429 => ConnectorError::RateLimited {
            platform,
            retry_after,
            detail,
        },
        // "Come back after": nothing was done (a publish that met it is
        // retried, see `after_sending`), and the wait the platform asked for
        // is kept, so no retry comes sooner.
        408 | 503 if retry_after.is_some() => ConnectorError::RateLimited {
            platform,
            retry_after,
            detail,
        },
        401 => ConnectorError::Unauthorized { platform, detail },
        403 => ConnectorError::Forbidden { platform, detail },
        408 | 500..=599 => ConnectorError::Transient { platform, detail },
        _ => ConnectorError::Permanent { platform, detail },
    }
}

/// Truncates a platform message to a sane length for logs and errors.
pub(crate) fn short(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_retry_after_forms() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .expect("time");
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 22 Nov 2026 10:01:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn form_bodies_do_not_show_values() {
        let body = Body::Form(vec![
            ("grant_type".into(), "refresh_token".into()),
            ("client_secret".into(), "li-secret-0123456789".into()),
        ]);
        let shown = format!("{body:?}");
        assert!(!shown.contains("li-secret-0123456789"), "{shown}");
        assert!(shown.contains("client_secret"), "{shown}");
    }

    #[test]
    fn status_mapping() {
        let d = ApiError::default;
        assert!(matches!(
            classify_status("x", 429, None, d()),
            ConnectorError::RateLimited { .. }
        ));
        assert!(matches!(
            classify_status("x", 401, None, d()),
            ConnectorError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify_status("x", 503, None, d()),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            classify_status("x", 400, None, d()),
            ConnectorError::Permanent { .. }
        ));
        // A 503 or 408 that says when to come back keeps the wait.
        let wait = Some(Duration::from_secs(3600));
        for status in [503, 408] {
            assert!(matches!(
                classify_status("x", status, wait, d()),
                ConnectorError::RateLimited { retry_after, .. } if retry_after == wait
            ));
        }
        assert!(matches!(
            classify_status("x", 500, wait, d()),
            ConnectorError::Transient { .. }
        ));
    }
}
