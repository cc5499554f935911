//! [`ConnectorError`]: what went wrong, phrased as what the caller should do next.
//!
//! Every platform's private error shapes (Graph `error` objects, LinkedIn
//! `serviceErrorCode` bodies, HTTP statuses, transport failures) are mapped onto a
//! few variants that carry meaning for a scheduler: wait and retry
//! ([`ConnectorError::RateLimited`], [`ConnectorError::Transient`]), refresh the token
//! ([`ConnectorError::Unauthorized`]), give up ([`ConnectorError::Permanent`],
//! validation and policy errors), or ask a person ([`ConnectorError::OutcomeUnknown`]).
//!
//! Messages never contain tokens or secrets: request URLs are stripped from transport
//! errors, and platform messages are passed through [`redact`] before they are kept.

use std::fmt;
use std::time::Duration;

use nexiom_core::MediaKind;
use thiserror::Error;

/// WhatsApp Cloud API error 131056, the pair rate limit ("too many messages
/// to this user"): a limit on one recipient, not on the channel, so it never
/// pauses the channel (nor, in the scheduler, holds its other sends).
pub const WHATSAPP_PAIR_RATE_LIMIT: i32 = 131_056;

/// What a platform said about a failed call: HTTP status, platform codes, the
/// platform's message and its support trace id. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// HTTP status, when the failure came from an HTTP response.
    pub status: Option<u16>,
    /// The platform's main error code (Graph `error.code`, LinkedIn `serviceErrorCode`).
    pub code: Option<i32>,
    /// The platform's sub-code (Graph `error_subcode`).
    pub subcode: Option<i32>,
    /// The support trace id (Graph `fbtrace_id`, LinkedIn request id).
    pub trace_id: Option<String>,
    /// The platform's message (already redacted).
    pub message: String,
}

impl ApiError {
    /// An error with only a message.
    pub fn message(message: impl Into<String>) -> Self {
        ApiError {
            message: message.into(),
            ..ApiError::default()
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(status) = self.status {
            parts.push(format!("HTTP {status}"));
        }
        match (self.code, self.subcode) {
            (Some(c), Some(s)) => parts.push(format!("code {c}/{s}")),
            (Some(c), None) => parts.push(format!("code {c}")),
            _ => {}
        }
        if !parts.is_empty() {
            write!(f, "[{}] ", parts.join(", "))?;
        }
        f.write_str(if self.message.is_empty() {
            "no message"
        } else {
            &self.message
        })?;
        if let Some(trace) = &self.trace_id {
            write!(f, " (trace id {trace})")?;
        }
        Ok(())
    }
}

/// Content refused against a connector's [`Capabilities`](crate::Capabilities)
/// before any request was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Neither text, media nor link.
    #[error("the content is empty")]
    EmptyContent,
    /// The text is longer than the platform accepts.
    #[error("the text is {len} characters long; {platform} accepts at most {max}")]
    TextTooLong {
        /// Platform name.
        platform: String,
        /// Length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The platform needs at least one media item (Instagram).
    #[error("{platform} needs at least one image or video")]
    MediaRequired {
        /// Platform name.
        platform: String,
    },
    /// A media kind the platform (or this connector) does not publish.
    #[error("{platform} does not accept {kind} media here")]
    UnsupportedMedia {
        /// Platform name.
        platform: String,
        /// The refused kind.
        kind: MediaKind,
    },
    /// Too many attachments.
    #[error("{count} media items attached; {platform} accepts at most {max}")]
    TooManyMedia {
        /// Platform name.
        platform: String,
        /// Attached.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A media item is larger than the platform accepts.
    #[error("a {kind} of {size_bytes} bytes exceeds the {max_mb} MB limit of {platform}")]
    MediaTooLarge {
        /// Platform name.
        platform: String,
        /// Kind of the media.
        kind: MediaKind,
        /// Its size.
        size_bytes: u64,
        /// The limit in MB (10^6 bytes).
        max_mb: u32,
    },
    /// A video is longer than the platform accepts.
    #[error("a video of {secs} s exceeds the {max_secs} s limit of {platform}")]
    VideoTooLong {
        /// Platform name.
        platform: String,
        /// Duration.
        secs: u32,
        /// The limit.
        max_secs: u32,
    },
    /// Native scheduling was asked of a platform without it.
    #[error("{platform} has no native scheduling; publish at the due time instead")]
    SchedulingUnsupported {
        /// Platform name.
        platform: String,
    },
    /// A native schedule time outside the window the platform accepts.
    #[error("scheduled time {reason}")]
    ScheduleOutOfRange {
        /// What is wrong (for example "must be at least 10 minutes ahead").
        reason: String,
    },
    /// A request field is missing or wrong (a recipient, an id, a template).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A send refused by a platform rule before the call (messaging windows, one
/// private reply per comment).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A free-form message outside the customer-service window.
    #[error(
        "{platform}: the last inbound message is {hours_since} h old, outside the {window_hours} h window; allowed: {allowed}"
    )]
    OutsideMessagingWindow {
        /// Platform name.
        platform: String,
        /// Hours since the contact's last inbound message.
        hours_since: i64,
        /// The window.
        window_hours: i64,
        /// What may still be sent (for example "a template message").
        allowed: &'static str,
    },
    /// A second private reply to the same comment: the platform allows one.
    #[error(
        "{platform}: comment {comment_id} already has its private reply (one per comment); allowed: {allowed}"
    )]
    PrivateReplyAlreadySent {
        /// Platform name.
        platform: String,
        /// The comment.
        comment_id: String,
        /// What may still be sent instead.
        allowed: &'static str,
    },
    /// A private reply to a comment older than the platform's window.
    #[error(
        "{platform}: comment {comment_id} is {hours_since} h old; private replies are allowed within {window_days} days of the comment; allowed: {allowed}"
    )]
    OutsidePrivateReplyWindow {
        /// Platform name.
        platform: String,
        /// The comment.
        comment_id: String,
        /// Hours since the comment was made.
        hours_since: i64,
        /// The window, in days.
        window_days: i64,
        /// What may still be sent instead.
        allowed: &'static str,
    },
}

/// Why a webhook request was refused. Each case is distinct so that a receiver can
/// log and count them apart.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature header is absent.
    #[error("missing signature header {header}")]
    MissingSignature {
        /// The header that was expected.
        header: &'static str,
    },
    /// The signature header is present but not in the documented form.
    #[error("malformed signature header {header}: {reason}")]
    MalformedSignature {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature does not match the body.
    #[error("signature does not match the body (header {header})")]
    SignatureMismatch {
        /// The header.
        header: &'static str,
    },
    /// The connector has no secret configured to check signatures with.
    #[error("no {what} configured; cannot verify webhooks")]
    NotConfigured {
        /// The missing setting (app secret, verify token, client secret).
        what: &'static str,
    },
    /// The subscription handshake is wrong (mode, token or challenge).
    #[error("webhook handshake refused: {reason}")]
    HandshakeRefused {
        /// Why.
        reason: &'static str,
    },
    /// The body is not a payload this platform documents.
    #[error("invalid webhook payload: {reason}")]
    InvalidPayload {
        /// What is wrong.
        reason: String,
    },
}

impl WebhookError {
    pub(crate) fn payload(reason: impl Into<String>) -> Self {
        WebhookError::InvalidPayload {
            reason: reason.into(),
        }
    }
}

/// An error from a connector. The variant says what to do next; see
/// [`ConnectorError::action`].
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The platform throttled the call. Wait at least `retry_after` when given
    /// (from `Retry-After`, or Meta's `estimated_time_to_regain_access`), otherwise
    /// back off exponentially. Never retry at once.
    #[error("{platform}: rate limited{}: {detail}", fmt_after(*retry_after))]
    RateLimited {
        /// Platform name.
        platform: String,
        /// How long to wait, when the platform said (for Instagram's
        /// publishing quota, which names none, an hour).
        retry_after: Option<Duration>,
        /// What the platform said.
        detail: ApiError,
    },
    /// The token is expired, revoked or invalid: refresh it once, then re-authorize.
    #[error("{platform}: unauthorized (refresh or re-authorize the channel): {detail}")]
    Unauthorized {
        /// Platform name.
        platform: String,
        /// What the platform said.
        detail: ApiError,
    },
    /// The token is valid but lacks a permission or role: a person must fix the
    /// app's permissions or the account's role. Refreshing does not help.
    #[error("{platform}: permission denied: {detail}")]
    Forbidden {
        /// Platform name.
        platform: String,
        /// What the platform said.
        detail: ApiError,
    },
    /// A temporary failure (5xx, network, Graph codes 1/2): retry with backoff.
    #[error("{platform}: temporary failure: {detail}")]
    Transient {
        /// Platform name.
        platform: String,
        /// What happened.
        detail: ApiError,
    },
    /// The platform refused the request for good (bad parameter, duplicate post,
    /// unsupported operation): do not retry.
    #[error("{platform}: refused: {detail}")]
    Permanent {
        /// Platform name.
        platform: String,
        /// What the platform said.
        detail: ApiError,
    },
    /// A non-idempotent request (publish, send, reply) may or may not have been
    /// carried out (a timeout after sending, a 5xx other than `503`, a 4xx
    /// whose error body calls the failure transient, such as Graph's code 2,
    /// a success answer too large to read). Never retry blindly: look the item up or ask a
    /// person.
    #[error("{platform}: outcome unknown, do not retry blindly: {reason}")]
    OutcomeUnknown {
        /// Platform name.
        platform: String,
        /// What happened.
        reason: String,
    },
    /// The platform says a publish request was carried out, but the post's
    /// id could not be read (Instagram: the attempt's media container is
    /// `PUBLISHED` after `media_publish` got no answer, and the new media was
    /// not found among the account's recent media). The post exists: never
    /// publish it again; look it up later for its id, or ask a person.
    #[error("{platform}: published, but the post's id is unknown; do not publish again: {reason}")]
    PublishedWithoutId {
        /// Platform name.
        platform: String,
        /// What the platform said, and what was tried to find the id.
        reason: String,
    },
    /// A post lookup ([`PlatformConnector::find_published`](crate::PlatformConnector::find_published))
    /// read the platform's answers but cannot tell whether the post exists (more
    /// recent posts than it may page through, content it cannot match on, an
    /// item without a readable time). Treat the publish as of unknown outcome.
    #[error("{platform}: the post lookup cannot tell whether the post exists: {reason}")]
    LookupInconclusive {
        /// Platform name.
        platform: String,
        /// Why.
        reason: String,
    },
    /// The platform's answer is larger than
    /// [`HttpConfig::max_response_bytes`](crate::HttpConfig::max_response_bytes);
    /// it was not read further. Retrying gets the same answer: do not retry (raise
    /// the limit if such answers are expected).
    #[error(
        "{platform}: the answer (HTTP {status}) is larger than the {limit_bytes}-byte limit and was not read"
    )]
    ResponseTooLarge {
        /// Platform name.
        platform: String,
        /// The HTTP status of the answer.
        status: u16,
        /// The limit in force.
        limit_bytes: usize,
    },
    /// The platform answered something this connector cannot read.
    #[error("{platform}: unexpected response: {reason}")]
    InvalidResponse {
        /// Platform name.
        platform: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Content or a request refused before any call.
    #[error("validation failed: {0}")]
    Validation(#[from] ValidationError),
    /// A messaging-policy rule refused the send before any call.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// A webhook failed verification or could not be read.
    #[error("webhook: {0}")]
    Webhook(#[from] WebhookError),
    /// The circuit breaker of a channel is open after repeated failures.
    #[error("{platform}: circuit open for this channel after repeated failures; retry in {}s", retry_after.as_secs())]
    CircuitOpen {
        /// Platform name.
        platform: String,
        /// When the breaker lets a probe through.
        retry_after: Duration,
    },
    /// A refresh was refused: the channel needs a person to re-authorize it.
    #[error("{platform}: the channel needs re-authorization: {reason}")]
    NeedsReauth {
        /// Platform name.
        platform: String,
        /// Why.
        reason: String,
    },
    /// `registry.get(name)` for a name nobody registered.
    #[error("unknown connector {name:?}; registered: {known}")]
    UnknownConnector {
        /// The name asked for.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },
    /// The platform (or this connector) does not do this operation.
    #[error("{platform} does not support {operation}")]
    Unsupported {
        /// Platform name.
        platform: String,
        /// The operation.
        operation: &'static str,
    },
    /// The connector or the channel context is misconfigured.
    #[error("configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

fn fmt_after(after: Option<Duration>) -> String {
    after.map_or_else(String::new, |d| format!(" (retry after {}s)", d.as_secs()))
}

/// What a caller (a scheduler, a poller) should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Retry later, not before `after` when given.
    RetryLater {
        /// The minimum wait, when known.
        after: Option<Duration>,
    },
    /// Refresh the channel's token, then retry once.
    RefreshToken,
    /// Stop: the channel needs a person (re-authorization, permissions, an
    /// ambiguous outcome to check).
    NeedsAttention,
    /// Fail for good: retrying cannot succeed.
    Fail,
}

/// The items of one listing page as they are read: each item that cannot be
/// read (a comment without its id or time, say) is logged, counted and left
/// out, so one malformed item does not fail every read of its page; but a
/// page listing at least [`Sift::SHAPE_CHANGED`] top-level items none of
/// which can be read fails ([`Sift::finish`]): the payload's shape has
/// changed, and moving past the page would lose its comments for good.
#[derive(Debug)]
pub(crate) struct Sift {
    platform: &'static str,
    read: u32,
    left_out: u32,
    top_left_out: u32,
}

impl Sift {
    /// How many top-level items, all unreadable, make a page fail: fewer
    /// (a page of one or two new comments, say) are left out, so a single
    /// malformed comment never stops a post's polling at its page.
    pub(crate) const SHAPE_CHANGED: u32 = 3;

    /// Nothing read yet.
    pub(crate) fn new(platform: &'static str) -> Self {
        Sift {
            platform,
            read: 0,
            left_out: 0,
            top_left_out: 0,
        }
    }

    /// A top-level item of the page, or `None` (logged, counted).
    pub(crate) fn top<T>(&mut self, item: Result<T, ConnectorError>) -> Option<T> {
        let item = self.reply(item);
        match item {
            Some(_) => self.read += 1,
            None => self.top_left_out += 1,
        }
        item
    }

    /// A reply listed under a top-level item, or `None` (logged, counted).
    pub(crate) fn reply<T>(&mut self, item: Result<T, ConnectorError>) -> Option<T> {
        match item {
            Ok(item) => Some(item),
            Err(error) => {
                let platform = self.platform;
                tracing::warn!(platform, %error, "an item of a listing cannot be read; it is left out");
                self.left_out += 1;
                None
            }
        }
    }

    /// How many items were left out; an error when the page listed at
    /// least [`Sift::SHAPE_CHANGED`] top-level items and none could be read.
    pub(crate) fn finish(self) -> Result<u32, ConnectorError> {
        if self.read == 0 && self.top_left_out >= Self::SHAPE_CHANGED {
            return Err(ConnectorError::invalid_response(
                self.platform,
                format!(
                    "none of the {} comments of a page could be read (has the payload's shape \
                     changed?); the page is not skipped",
                    self.top_left_out
                ),
            ));
        }
        Ok(self.left_out)
    }
}

impl ConnectorError {
    /// Whether this is WhatsApp's pair rate limit
    /// ([`WHATSAPP_PAIR_RATE_LIMIT`]): about one recipient only.
    pub fn is_pair_rate_limit(&self) -> bool {
        self.api_error().and_then(|e| e.code) == Some(WHATSAPP_PAIR_RATE_LIMIT)
    }

    /// Whether this error, met while reading the extra pages of a listing
    /// (a comment's replies), must fail the listing: a throttle (the caller
    /// holds the channel), an expired token (the caller renews it) or an open
    /// circuit (every call after it would fail at once, and the page would
    /// count as read without its replies). Any other error leaves the items
    /// read so far.
    pub(crate) fn stops_a_listing(&self) -> bool {
        matches!(
            self,
            ConnectorError::RateLimited { .. }
                | ConnectorError::Unauthorized { .. }
                | ConnectorError::CircuitOpen { .. }
        )
    }

    /// What to do next.
    pub fn action(&self) -> ErrorAction {
        match self {
            ConnectorError::RateLimited { retry_after, .. } => ErrorAction::RetryLater {
                after: *retry_after,
            },
            ConnectorError::CircuitOpen { retry_after, .. } => ErrorAction::RetryLater {
                after: Some(*retry_after),
            },
            ConnectorError::Transient { .. } => ErrorAction::RetryLater { after: None },
            ConnectorError::Unauthorized { .. } => ErrorAction::RefreshToken,
            ConnectorError::Forbidden { .. }
            | ConnectorError::OutcomeUnknown { .. }
            | ConnectorError::PublishedWithoutId { .. }
            | ConnectorError::LookupInconclusive { .. }
            | ConnectorError::NeedsReauth { .. } => ErrorAction::NeedsAttention,
            _ => ErrorAction::Fail,
        }
    }

    /// Whether a message send was refused for its sender or its template,
    /// whatever the recipient, so every other recipient would be refused
    /// the same way: a missing permission ([`ConnectorError::Forbidden`]),
    /// or WhatsApp's business account locked (131031), its payment issue
    /// (131042), its number not registered (133010), or the template
    /// refused (132000 to 132069: parameters that do not match, a template
    /// that does not exist, is paused or disabled); and a block for a policy
    /// violation (368, a throttle naming no wait, lasting hours or days).
    pub fn refuses_every_recipient(&self) -> bool {
        match self {
            ConnectorError::Forbidden { .. } => true,
            ConnectorError::RateLimited {
                detail,
                retry_after: None,
                ..
            } => detail.code == Some(368),
            ConnectorError::Permanent { detail, .. } => detail
                .code
                .is_some_and(|c| matches!(c, 131_031 | 131_042 | 133_010 | 132_000..=132_069)),
            _ => false,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.action(), ErrorAction::RetryLater { .. })
    }

    /// The platform's wait hint, for [`ConnectorError::RateLimited`] and
    /// [`ConnectorError::CircuitOpen`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::RateLimited { retry_after, .. } => *retry_after,
            ConnectorError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The platform's error details, when the platform gave any.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ConnectorError::RateLimited { detail, .. }
            | ConnectorError::Unauthorized { detail, .. }
            | ConnectorError::Forbidden { detail, .. }
            | ConnectorError::Transient { detail, .. }
            | ConnectorError::Permanent { detail, .. } => Some(detail),
            _ => None,
        }
    }

    pub(crate) fn invalid_response(platform: &str, reason: impl Into<String>) -> Self {
        ConnectorError::InvalidResponse {
            platform: platform.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(platform: &str, operation: &'static str) -> Self {
        ConnectorError::Unsupported {
            platform: platform.to_owned(),
            operation,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        ConnectorError::Config {
            reason: reason.into(),
        }
    }
}

/// Replaces every occurrence of each non-trivial secret in `text` with `[redacted]`.
///
/// Platforms sometimes echo request parameters in their error messages; every
/// message a connector keeps goes through this first.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        // Very short values would redact ordinary words; real tokens are long.
        if secret.len() >= 6 && out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_variant() {
        let rl = ConnectorError::RateLimited {
            platform: "facebook".into(),
            retry_after: Some(Duration::from_secs(60)),
            detail: ApiError::message("slow down"),
        };
        assert_eq!(
            rl.action(),
            ErrorAction::RetryLater {
                after: Some(Duration::from_secs(60))
            }
        );
        assert!(rl.is_retryable());
        assert!(rl.to_string().contains("retry after 60s"));
        let un = ConnectorError::Unauthorized {
            platform: "linkedin".into(),
            detail: ApiError::default(),
        };
        assert_eq!(un.action(), ErrorAction::RefreshToken);
        assert!(!un.is_retryable());
        let v: ConnectorError = ValidationError::EmptyContent.into();
        assert_eq!(v.action(), ErrorAction::Fail);
    }

    #[test]
    fn api_error_display_names_codes_and_trace() {
        let e = ApiError {
            status: Some(400),
            code: Some(190),
            subcode: Some(460),
            trace_id: Some("EJplcsCHuLu".into()),
            message: "Session expired".into(),
        };
        assert_eq!(
            e.to_string(),
            "[HTTP 400, code 190/460] Session expired (trace id EJplcsCHuLu)"
        );
    }

    #[test]
    fn redact_removes_secrets() {
        let s = redact("bad token EAAGsecret123 in call", &["EAAGsecret123", "x"]);
        assert_eq!(s, "bad token [redacted] in call");
    }
}
