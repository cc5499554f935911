//! [`Notifier`]: how a notification reaches an endpoint, and the two built
//! in: [`WebhookNotifier`] (signed JSON) and [`SlackNotifier`] (a Slack
//! incoming-webhook message).

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Notification, NotificationEndpoint, NotificationKind};
use serde_json::json;
use thiserror::Error;

use super::egress::{Http, refusal};
use super::signature::{
    EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};

/// Why one delivery attempt failed. Every failure is retried (with backoff)
/// until the attempts run out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotifyError {
    /// The endpoint answered, but not 2xx.
    #[error("the endpoint answered HTTP {status}: {body}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// No answer: connection refused, timeout, TLS error…
    #[error("the endpoint could not be reached: {0}")]
    Transport(String),
    /// The endpoint cannot be called as configured (a webhook without a
    /// secret): fix the endpoint.
    #[error("the endpoint is misconfigured: {0}")]
    Misconfigured(String),
}

/// Sends one notification to one endpoint. An `Ok` means the endpoint
/// accepted it (the delivery is then never attempted again).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// One attempt; `now` is the attempt's time (the signature's timestamp).
    async fn send(
        &self,
        endpoint: &NotificationEndpoint,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<(), NotifyError>;
}

/// The JSON body of a webhook delivery: `id` (also the idempotency key),
/// `kind`, `tenant_id`, `occurred_at` and the notification's `data`.
pub fn webhook_body(notification: &Notification) -> serde_json::Value {
    json!({
        "id": notification.id,
        "kind": notification.kind,
        "tenant_id": notification.tenant_id,
        "occurred_at": notification.occurred_at,
        "data": notification.payload,
    })
}

/// Sends `body` and maps the answer.
async fn post(request: reqwest::RequestBuilder, body: Vec<u8>) -> Result<(), NotifyError> {
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| match refusal(&e) {
            Some(refused) => NotifyError::Misconfigured(refused.to_string()),
            // Without the URL: a Slack incoming webhook's URL is its
            // credential, and the error is logged and recorded on the
            // delivery.
            None => NotifyError::Transport(e.without_url().to_string()),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = head_of(response, REJECTION_BODY_BYTES).await;
    Err(NotifyError::Rejected {
        status: status.as_u16(),
        body: text.chars().take(300).collect(),
    })
}

/// How much of a refusing answer's body is read (for the recorded error):
/// an endpoint answering an error with a huge body must not fill the
/// worker's memory.
const REJECTION_BODY_BYTES: usize = 1024;

/// The first `max` bytes of `response`'s body (lossily decoded); the rest is
/// not read.
async fn head_of(mut response: reqwest::Response, max: usize) -> String {
    let mut head = Vec::new();
    while head.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk[..chunk.len().min(max - head.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The outgoing webhook: POSTs [`webhook_body`] as JSON with the headers
/// `X-Nexiom-Signature` (see [`sign`]), `X-Nexiom-Timestamp`,
/// `X-Nexiom-Idempotency-Key` (the notification id) and `X-Nexiom-Event`
/// (its kind). Any 2xx answer accepts it. It never follows a redirect, and
/// delivers to public addresses only unless told otherwise
/// ([`allowing_local_network`](Self::allowing_local_network); see
/// [`is_local_network`](super::is_local_network)).
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    http: Http,
}

impl WebhookNotifier {
    /// A notifier with a 10-second timeout per attempt.
    pub fn new() -> Self {
        WebhookNotifier::with_timeout(StdDuration::from_secs(10))
    }

    /// A notifier with another timeout per attempt.
    pub fn with_timeout(timeout: StdDuration) -> Self {
        WebhookNotifier {
            http: Http::new(timeout, false),
        }
    }

    /// The same notifier delivering to local-network addresses too (a
    /// receiver on this machine or in the private network).
    pub fn allowing_local_network(self) -> Self {
        WebhookNotifier {
            http: self.http.allowing_local_network(),
        }
    }
}

impl Default for WebhookNotifier {
    fn default() -> Self {
        WebhookNotifier::new()
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(
        &self,
        endpoint: &NotificationEndpoint,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<(), NotifyError> {
        let Some(secret) = &endpoint.secret else {
            return Err(NotifyError::Misconfigured(format!(
                "webhook endpoint {:?} has no signing secret (or the store's keys \
                 cannot open it)",
                endpoint.name
            )));
        };
        let body = serde_json::to_vec(&webhook_body(notification))
            .map_err(|e| NotifyError::Misconfigured(e.to_string()))?;
        let timestamp = now.timestamp();
        let request = self
            .http
            .post(&endpoint.url)?
            .header(SIGNATURE_HEADER, sign(secret.expose(), timestamp, &body))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(IDEMPOTENCY_HEADER, notification.id.to_string())
            .header(EVENT_HEADER, notification.kind.as_str());
        post(request, body).await
    }
}

/// A Slack-compatible incoming webhook: POSTs `{"text": …}`, a one-line
/// summary of the notification (what happened, the item, the text or error).
/// The idempotency key is sent as `X-Nexiom-Idempotency-Key` too. Public
/// addresses only unless told otherwise, as [`WebhookNotifier`].
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    http: Http,
}

impl SlackNotifier {
    /// A notifier with a 10-second timeout per attempt.
    pub fn new() -> Self {
        SlackNotifier {
            http: Http::new(StdDuration::from_secs(10), false),
        }
    }

    /// The same notifier delivering to local-network addresses too.
    pub fn allowing_local_network(self) -> Self {
        SlackNotifier {
            http: self.http.allowing_local_network(),
        }
    }
}

impl Default for SlackNotifier {
    fn default() -> Self {
        SlackNotifier::new()
    }
}

/// The Slack message of a notification.
pub fn slack_text(notification: &Notification) -> String {
    let data = &notification.payload;
    // Every value is escaped as Slack's formatting asks (`&`, `<`, `>`), so
    // a customer's `<!channel>` or `<https://…|label>` is shown as written,
    // not turned into a mention of everyone or a disguised link.
    let raw = |name: &str| data.get(name).and_then(|v| v.as_str()).unwrap_or("?");
    let field = |name: &str| slack_escape(raw(name));
    // Cut, then escaped: an entity is never cut in two.
    let excerpt = |name: &str| -> String {
        let text = raw(name);
        let cut: String = text.chars().take(200).collect();
        if cut.len() < text.len() {
            format!("{}…", slack_escape(&cut))
        } else {
            slack_escape(&cut)
        }
    };
    match notification.kind {
        NotificationKind::ItemEscalated => format!(
            ":rotating_light: A {} was escalated to a person: \"{}\" ({})",
            field("subject"),
            excerpt("text"),
            slack_escape(&notification.key)
        ),
        NotificationKind::PostFailed => format!(
            ":x: Post {} failed for good: {}",
            field("post_id"),
            excerpt("error")
        ),
        NotificationKind::PublishOutcomeUnknown => format!(
            ":grey_question: Post {} may or may not be live (outcome unknown): check the \
             platform. {}",
            field("post_id"),
            excerpt("error")
        ),
        NotificationKind::ChannelNeedsReauth => format!(
            ":key: Channel {} must be authorized again: {}",
            field("channel_id"),
            excerpt("reason")
        ),
        NotificationKind::WorkerFailing => format!(
            ":warning: Worker {} failed {} runs in a row ({}): its execution log {} has the error",
            field("worker"),
            data.get("failures").and_then(|v| v.as_u64()).unwrap_or(0),
            field("error_kind"),
            field("execution_id")
        ),
        NotificationKind::SlaBreached => format!(
            ":hourglass: A {} {} has waited {} min for a first answer (target {} min)",
            field("subject"),
            field("id"),
            data.get("waited_minutes")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            data.get("target_minutes")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
        ),
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn send(
        &self,
        endpoint: &NotificationEndpoint,
        notification: &Notification,
        _now: DateTime<Utc>,
    ) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&json!({ "text": slack_text(notification) }))
            .map_err(|e| NotifyError::Misconfigured(e.to_string()))?;
        let request = self
            .http
            .post(&endpoint.url)?
            .header(IDEMPOTENCY_HEADER, notification.id.to_string());
        post(request, body).await
    }
}

/// `text` escaped for Slack's message formatting: `&`, `<` and `>` as
/// `&amp;`, `&lt;` and `&gt;` (Slack reads `<…>` as a mention or a link).
fn slack_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A customer's text cannot mention everyone or disguise a link in the
    /// Slack message an escalation makes.
    #[test]
    fn customer_text_is_escaped_for_slack() {
        assert_eq!(
            slack_escape("<!channel> see <https://phish.example|your ticket> & more"),
            "&lt;!channel&gt; see &lt;https://phish.example|your ticket&gt; &amp; more"
        );
        assert_eq!(
            slack_escape("Bonjour, vos horaires ?"),
            "Bonjour, vos horaires ?"
        );
    }
}
