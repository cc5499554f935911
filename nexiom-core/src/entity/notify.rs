//! Notifications: events that people must hear about (an escalation, a post
//! failed for good, …), the endpoints a tenant subscribes to them, and one
//! delivery per (notification, endpoint) tracked through an outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enums::{EndpointKind, NotificationDeliveryState, NotificationKind};
use crate::error::CoreError;
use crate::id::{ChannelId, EndpointId, NotificationDeliveryId, NotificationId, TenantId};
use crate::secret::SecretString;
use crate::validate;

/// The longest endpoint URL accepted, in bytes.
pub const MAX_ENDPOINT_URL_LEN: usize = 2048;

/// An event written to the outbox, in the same transaction as the change that
/// caused it. Unique by `(tenant, key)`: the same cause never notifies twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Id; also the idempotency key sent with every delivery attempt.
    pub id: NotificationId,
    /// Owner.
    pub tenant_id: TenantId,
    /// What happened.
    pub kind: NotificationKind,
    /// The deduplication key of the cause (for example
    /// `item_escalated:message:<id>`).
    pub key: String,
    /// The event's details (ids, text, error), sent as the body's `data`.
    pub payload: serde_json::Value,
    /// When the cause happened.
    pub occurred_at: DateTime<Utc>,
}

/// Input to enqueue a [`Notification`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Owner (must exist).
    pub tenant_id: TenantId,
    /// What happened.
    pub kind: NotificationKind,
    /// The deduplication key (a key): a second notification with the same key
    /// is not enqueued.
    pub key: String,
    /// Details (a JSON object).
    pub payload: serde_json::Value,
    /// When the cause happened.
    pub occurred_at: DateTime<Utc>,
}

impl NewNotification {
    /// The `channel_needs_reauth` notification of `channel`, which must be
    /// authorized again since `since` (the instant its status changed, so
    /// one notification per episode whatever the number of refused calls),
    /// with `reason` (the platform's refusal). Enqueue it with
    /// `OutboxStore::enqueue_notification` where the channel's status is
    /// changed.
    pub fn channel_needs_reauth(
        tenant: TenantId,
        channel: ChannelId,
        reason: &str,
        since: DateTime<Utc>,
    ) -> Self {
        NewNotification {
            tenant_id: tenant,
            kind: NotificationKind::ChannelNeedsReauth,
            key: format!(
                "channel_needs_reauth:{channel}:{}",
                since.timestamp_millis()
            ),
            payload: serde_json::json!({
                "channel_id": channel,
                "reason": reason.replace('\0', " "),
                "since": since,
            }),
            occurred_at: since,
        }
    }

    /// Checks the key and the payload.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("key", &self.key)?;
        if !self.payload.is_object() {
            return Err(CoreError::invalid("payload", "must be a JSON object"));
        }
        validate::json("payload", &self.payload)
    }
}

/// Where a tenant's notifications of some kinds go. Its `Debug` and its
/// serialized form show the URL's scheme and host only (a Slack URL is
/// itself the credential, and a webhook's may carry a token), and its
/// serialized form leaves the signing secret out: an application may hand
/// endpoints to its users as JSON without handing them the credentials. So
/// the JSON is a view, not a copy, and is not read back (no `Deserialize`:
/// an endpoint read from it would post to an elided URL).
#[derive(Clone, PartialEq, Serialize)]
pub struct NotificationEndpoint {
    /// Id.
    pub id: EndpointId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Unique name within the tenant.
    pub name: String,
    /// How it is called.
    pub kind: EndpointKind,
    /// The URL posted to; a Slack URL (the credential of its Slack channel)
    /// is sealed at rest on Postgres. Serialized up to its host only.
    #[serde(serialize_with = "serialize_shown_url")]
    pub url: String,
    /// The signing secret (webhooks); sealed at rest on Postgres.
    #[serde(skip)]
    pub secret: Option<SecretString>,
    /// The kinds it subscribes to, sorted.
    pub kinds: Vec<NotificationKind>,
    /// Disabled endpoints get no new deliveries.
    pub enabled: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Set when a listing could not open the endpoint's sealed secret or
    /// Slack URL with the store's keys (a key rotated away, a process started
    /// without the older key), with the reason: `secret` is then `None` and
    /// a sealed `url` empty. Its deliveries wait for a process holding the
    /// key (dead a day after the first such wait); configure the key, or
    /// give the endpoint its target again with
    /// `OutboxStore::set_notification_endpoint_target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl std::fmt::Debug for NotificationEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationEndpoint")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &shown_url(&self.url))
            .field("secret", &self.secret)
            .field("kinds", &self.kinds)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .field("unreadable", &self.unreadable)
            .finish()
    }
}

/// `url` as `Debug` and `Serialize` show it.
fn serialize_shown_url<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&shown_url(url))
}

/// `url` as `Debug` shows it: its scheme and host, the rest elided.
fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.len() + scheme.len() + 3 >= url.len() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/…")
    }
}

/// Input to create a [`NotificationEndpoint`] (its `Debug` elides the URL
/// past the host).
#[derive(Clone, PartialEq)]
pub struct NewNotificationEndpoint {
    /// Owner (must exist).
    pub tenant_id: TenantId,
    /// Unique name within the tenant (a key).
    pub name: String,
    /// How it is called.
    pub kind: EndpointKind,
    /// An `https://` URL (`http://` only to a loopback address, such as a
    /// receiver on the same machine: a notification carries customer text
    /// and its signature, which must not cross a network in clear). The
    /// built-in notifiers deliver to public addresses only unless the
    /// application allows the local network, so a loopback or private
    /// endpoint is accepted here but only reached by a dispatcher built with
    /// `allow_local_network`.
    pub url: String,
    /// The signing secret: required for a webhook (at least 16 bytes).
    pub secret: Option<SecretString>,
    /// The kinds it subscribes to (at least one; order and repeats do not
    /// matter).
    pub kinds: Vec<NotificationKind>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// Whether `url` is `http://` to a loopback host (`localhost`, `127.0.0.0/8`,
/// `[::1]`). A backslash anywhere refuses it: URL parsers (the one the HTTP
/// client uses among them) read `\` as `/` in `http` URLs, so
/// `http://evil.example\@127.0.0.1/` would be sent to `evil.example`.
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    if rest.contains('\\') {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl std::fmt::Debug for NewNotificationEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewNotificationEndpoint")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &shown_url(&self.url))
            .field("secret", &self.secret)
            .field("kinds", &self.kinds)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Checks an endpoint's `url` and `secret` for its `kind`, as a new endpoint
/// is checked: an `https://` URL (`http://` only to a loopback address) of at
/// most [`MAX_ENDPOINT_URL_LEN`] bytes without spaces; a secret of at least
/// 16 bytes, required for a webhook.
pub fn validate_endpoint_target(
    kind: EndpointKind,
    url: &str,
    secret: Option<&SecretString>,
) -> Result<(), CoreError> {
    if !(url.starts_with("https://") || loopback_http(url))
        || url.len() > MAX_ENDPOINT_URL_LEN
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(CoreError::invalid(
            "url",
            format!(
                "must be an https:// URL (http:// only to a loopback address) of at most \
                     {MAX_ENDPOINT_URL_LEN} bytes without spaces"
            ),
        ));
    }
    match (kind, secret) {
        (EndpointKind::Webhook, None) => {
            return Err(CoreError::invalid(
                "secret",
                "a webhook endpoint needs a signing secret",
            ));
        }
        (_, Some(secret)) if secret.expose().len() < 16 => {
            return Err(CoreError::invalid(
                "secret",
                "must be at least 16 bytes long",
            ));
        }
        (_, Some(secret)) if secret.expose().contains('\0') => {
            return Err(CoreError::invalid(
                "secret",
                "must not contain a NUL character",
            ));
        }
        _ => {}
    }
    Ok(())
}

impl NewNotificationEndpoint {
    /// Checks the name, the URL, the secret and the kinds.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)?;
        validate_endpoint_target(self.kind, &self.url, self.secret.as_ref())?;
        if self.kinds.is_empty() {
            return Err(CoreError::invalid(
                "kinds",
                "subscribe the endpoint to at least one notification kind",
            ));
        }
        Ok(())
    }

    /// The kinds sorted, without repeats (as stored).
    pub fn sorted_kinds(&self) -> Vec<NotificationKind> {
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// One notification's delivery to one endpoint: created with the notification
/// for every enabled endpoint subscribed to its kind, then attempted until the
/// endpoint accepts it or the attempts run out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationDelivery {
    /// Id.
    pub id: NotificationDeliveryId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The notification.
    pub notification_id: NotificationId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// Where it stands.
    pub state: NotificationDeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// While pending: not due before this instant (`None`: due now).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While an attempt is in flight: its claim holds until then.
    pub lease_until: Option<DateTime<Utc>>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery claimed for an attempt, with what the attempt needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedNotification {
    /// The delivery (its `lease_until` set by the claim).
    pub delivery: NotificationDelivery,
    /// Its notification.
    pub notification: Notification,
    /// Its endpoint, secret opened.
    pub endpoint: NotificationEndpoint,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryAttempt {
    /// The endpoint accepted it: `delivered`.
    Delivered,
    /// It failed; try again at `retry_at`, or give up (`dead`) when `None`.
    Failed {
        /// What went wrong.
        error: String,
        /// The next attempt, or `None` for the last one.
        retry_at: Option<DateTime<Utc>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_url_up_to_its_host() {
        let endpoint = NewNotificationEndpoint {
            tenant_id: TenantId::generate(),
            name: "ops".into(),
            kind: EndpointKind::Slack,
            url: "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX".into(),
            secret: None,
            kinds: vec![NotificationKind::ItemEscalated],
            created_at: chrono::Utc::now(),
        };
        let shown = format!("{endpoint:?}");
        assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
        assert!(!shown.contains("XXXXsecret"), "{shown}");
        assert_eq!(
            shown_url("https://user:pw@h.example"),
            "https://h.example/…"
        );
        assert_eq!(shown_url("https://h.example"), "https://h.example");
        assert_eq!(shown_url("no scheme/at all"), "…");
    }

    #[test]
    fn json_shows_neither_the_slack_url_nor_the_secret() {
        let endpoint = NotificationEndpoint {
            id: EndpointId::generate(),
            tenant_id: TenantId::generate(),
            name: "ops".into(),
            kind: EndpointKind::Slack,
            url: "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX".into(),
            secret: Some(SecretString::new("signing-XXXXsecretXXXX")),
            kinds: vec![NotificationKind::ItemEscalated],
            enabled: true,
            created_at: chrono::Utc::now(),
            unreadable: None,
        };
        let json = serde_json::to_string(&endpoint).unwrap();
        assert!(
            json.contains("\"url\":\"https://hooks.slack.com/…\""),
            "{json}"
        );
        assert!(!json.contains("XXXXsecret"), "{json}");
    }

    #[test]
    fn http_is_accepted_only_to_a_loopback_address() {
        for ok in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9000/hook",
            "http://user@127.0.0.2/hook",
        ] {
            assert!(loopback_http(ok), "{ok}");
        }
        for refused in [
            "http://hooks.example.com/hook",
            "http://10.0.0.5/hook",
            "http://127.0.0.1.example.com/hook",
            "http://evil.example.com@/hook",
            "https://127.0.0.1/hook",
            // Read by the HTTP client as a request to evil.example.
            "http://evil.example\\@127.0.0.1/hook",
            "http://10.0.0.5\\@localhost/admin",
        ] {
            assert!(!loopback_http(refused), "{refused}");
        }
        // And no URL with a backslash is accepted at all.
        let endpoint = |url: &str| NewNotificationEndpoint {
            tenant_id: TenantId::generate(),
            name: "ops".into(),
            kind: EndpointKind::Slack,
            url: url.into(),
            secret: None,
            kinds: vec![NotificationKind::ItemEscalated],
            created_at: chrono::Utc::now(),
        };
        assert!(endpoint("https://hooks.example.com/a").validate().is_ok());
        assert!(
            endpoint("https://hooks.example.com\\@internal/a")
                .validate()
                .is_err()
        );
    }
}
