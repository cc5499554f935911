//! The data a harness serves (seeded comments and posts, documented webhook
//! samples) and the answers the suite expects of the connector.

use nexiom_core::{DeliveryStatus, EventKind};

use crate::types::NormalizedEvent;

/// A comment to serve from the mock server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedComment {
    /// Platform id of the comment.
    pub id: String,
    /// Author's platform id.
    pub author_id: String,
    /// Text.
    pub text: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
}

/// A post of the account to serve from the mock server's recent-post listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPost {
    /// Platform id of the post.
    pub id: String,
    /// Its text (message, caption, commentary).
    pub text: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
}

/// What a successful publish must return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPublish {
    /// The post id.
    pub post_id: String,
    /// The URL, when the connector returns one.
    pub url: Option<String>,
}

/// An event a webhook sample must normalize to. Fields left `None` are not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEvent {
    /// `event_id`.
    pub event_id: String,
    /// `kind`.
    pub kind: EventKind,
    /// `sender_id`.
    pub sender_id: Option<String>,
    /// `text`.
    pub text: Option<String>,
    /// `post_id`.
    pub post_id: Option<String>,
    /// `parent_id`.
    pub parent_id: Option<String>,
    /// `message_id`.
    pub message_id: Option<String>,
    /// `delivery_status`.
    pub delivery_status: Option<DeliveryStatus>,
    /// `occurred_at`, Unix seconds.
    pub occurred_unix: Option<i64>,
}

impl ExpectedEvent {
    /// An expectation on id and kind only.
    pub fn new(event_id: impl Into<String>, kind: EventKind) -> Self {
        ExpectedEvent {
            event_id: event_id.into(),
            kind,
            sender_id: None,
            text: None,
            post_id: None,
            parent_id: None,
            message_id: None,
            delivery_status: None,
            occurred_unix: None,
        }
    }

    /// Also expects this sender.
    pub fn sender(mut self, id: impl Into<String>) -> Self {
        self.sender_id = Some(id.into());
        self
    }

    /// Also expects this text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Also expects this post.
    pub fn post(mut self, id: impl Into<String>) -> Self {
        self.post_id = Some(id.into());
        self
    }

    /// Also expects this parent.
    pub fn parent(mut self, id: impl Into<String>) -> Self {
        self.parent_id = Some(id.into());
        self
    }

    /// Also expects a status event about `message_id` with `status`.
    pub fn status(mut self, message_id: impl Into<String>, status: DeliveryStatus) -> Self {
        self.message_id = Some(message_id.into());
        self.delivery_status = Some(status);
        self
    }

    /// Also expects this time (Unix seconds).
    pub fn at(mut self, unix: i64) -> Self {
        self.occurred_unix = Some(unix);
        self
    }

    pub(super) fn check(&self, got: &NormalizedEvent) -> Result<(), String> {
        let mut diffs = Vec::new();
        if got.event_id != self.event_id {
            diffs.push(format!(
                "event_id {:?} != {:?}",
                got.event_id, self.event_id
            ));
        }
        if got.kind != self.kind {
            diffs.push(format!("kind {} != {}", got.kind, self.kind));
        }
        let opt =
            |name: &str, got: &Option<String>, want: &Option<String>, diffs: &mut Vec<String>| {
                if want.is_some() && got != want {
                    diffs.push(format!("{name} {got:?} != {want:?}"));
                }
            };
        opt("sender_id", &got.sender_id, &self.sender_id, &mut diffs);
        opt("text", &got.text, &self.text, &mut diffs);
        opt("post_id", &got.post_id, &self.post_id, &mut diffs);
        opt("parent_id", &got.parent_id, &self.parent_id, &mut diffs);
        opt("message_id", &got.message_id, &self.message_id, &mut diffs);
        if self.delivery_status.is_some() && got.delivery_status != self.delivery_status {
            diffs.push(format!(
                "delivery_status {:?} != {:?}",
                got.delivery_status, self.delivery_status
            ));
        }
        if let Some(t) = self.occurred_unix
            && got.occurred_at.timestamp() != t
        {
            diffs.push(format!(
                "occurred_at {} != {t}",
                got.occurred_at.timestamp()
            ));
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(format!("event {}: {}", self.event_id, diffs.join("; ")))
        }
    }
}

/// A documented webhook body and the events it must produce.
#[derive(Debug, Clone)]
pub struct WebhookSample {
    /// A name for reports.
    pub name: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// The expected events, in order.
    pub expected: Vec<ExpectedEvent>,
}
