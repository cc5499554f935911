//! The inbox people work from: one item per conversation and per comment,
//! with its assignee, status, labels and notes, and the tenant's canned
//! replies.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::enums::Triage;
use crate::error::CoreError;
use crate::id::{CannedReplyId, ChannelId, CommentId, ConversationId, InboxNoteId, TenantId};
use crate::validate;

/// The most labels an item carries.
pub const MAX_LABELS: usize = 32;

/// What an inbox item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum InboxSubject {
    /// A conversation (direct messages).
    Conversation(ConversationId),
    /// A comment on a post.
    Comment(CommentId),
}

impl InboxSubject {
    /// The conversation's or comment's id.
    pub const fn id(&self) -> Uuid {
        match self {
            InboxSubject::Conversation(id) => id.as_uuid(),
            InboxSubject::Comment(id) => id.as_uuid(),
        }
    }

    /// `conversation` or `comment`.
    pub const fn kind(&self) -> &'static str {
        match self {
            InboxSubject::Conversation(_) => "conversation",
            InboxSubject::Comment(_) => "comment",
        }
    }

    /// The subject of kind `kind` and id `id`.
    pub fn from_parts(kind: &str, id: Uuid) -> Result<Self, CoreError> {
        match kind {
            "conversation" => Ok(InboxSubject::Conversation(id.into())),
            "comment" => Ok(InboxSubject::Comment(id.into())),
            other => Err(CoreError::UnknownValue {
                kind: "InboxSubject",
                value: other.to_owned(),
                expected: "conversation, comment".into(),
            }),
        }
    }
}

/// Where an item stands for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InboxStatus {
    /// To be handled (every new item; a resolved or snoozed conversation
    /// whose contact writes again comes back to it).
    Open,
    /// Waiting on someone else (the customer, another team).
    Pending,
    /// Done.
    Resolved,
    /// Out of the lists until `until`.
    Snoozed {
        /// When it comes back.
        until: DateTime<Utc>,
    },
}

impl InboxStatus {
    /// `open`, `pending`, `resolved` or `snoozed`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            InboxStatus::Open => "open",
            InboxStatus::Pending => "pending",
            InboxStatus::Resolved => "resolved",
            InboxStatus::Snoozed { .. } => "snoozed",
        }
    }

    /// The status stored as `status` (and `snoozed_until`).
    pub fn from_parts(status: &str, until: Option<DateTime<Utc>>) -> Result<Self, CoreError> {
        match (status, until) {
            ("open", _) => Ok(InboxStatus::Open),
            ("pending", _) => Ok(InboxStatus::Pending),
            ("resolved", _) => Ok(InboxStatus::Resolved),
            ("snoozed", Some(until)) => Ok(InboxStatus::Snoozed { until }),
            (other, _) => Err(CoreError::UnknownValue {
                kind: "InboxStatus",
                value: other.to_owned(),
                expected: "open, pending, resolved, snoozed (with a time)".into(),
            }),
        }
    }

    /// Whether the item shows in the lists at `now` (not resolved, not
    /// snoozed past `now`).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        match self {
            InboxStatus::Resolved => false,
            InboxStatus::Snoozed { until } => *until <= now,
            InboxStatus::Open | InboxStatus::Pending => true,
        }
    }
}

/// One conversation or comment as the inbox shows it. The store keeps the
/// derived fields (`triage`, `waiting_since`, `last_activity_at`) current
/// with the messages, comments and replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The conversation or comment.
    pub subject: InboxSubject,
    /// Owner.
    pub tenant_id: TenantId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Who handles it (an opaque agent id).
    pub assignee: Option<String>,
    /// Its status.
    pub status: InboxStatus,
    /// Its labels, sorted.
    pub labels: Vec<String>,
    /// A conversation: the triage of its latest triaged inbound message; a
    /// comment: its triage.
    pub triage: Option<Triage>,
    /// Since when the contact waits for an answer: a conversation's first
    /// inbound message after its last outbound one; a comment's time until
    /// a reply to it is sent (a comment hidden on the platform waits for no
    /// one). `None` when nobody waits.
    pub waiting_since: Option<DateTime<Utc>>,
    /// Its latest message (a conversation without any: its opening; a
    /// comment: its time).
    pub last_activity_at: DateTime<Utc>,
}

impl InboxItem {
    /// The list order's instant: `waiting_since`, else `last_activity_at`
    /// (lists go oldest first, then by the subject's id).
    pub fn since(&self) -> DateTime<Utc> {
        self.waiting_since.unwrap_or(self.last_activity_at)
    }

    /// The cursor that resumes a list after this item.
    pub fn cursor(&self) -> InboxCursor {
        InboxCursor {
            since: self.since(),
            id: self.subject.id(),
        }
    }
}

/// Which items a list shows. Every view shows active items only (see
/// [`InboxStatus::is_active`]), oldest [`InboxItem::since`] first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxView {
    /// Escalated (`triage = escalate`) and nobody assigned.
    UnassignedEscalations,
    /// Assigned to this agent.
    AssignedTo(String),
    /// Carrying this label.
    Label(String),
    /// Of this channel.
    Channel(ChannelId),
    /// Of this triage outcome.
    Triage(Triage),
    /// Waiting for an answer since at least this long.
    WaitingLongerThan(Duration),
}

/// Where a list resumes: after the item of this `since` and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InboxCursor {
    /// The last item's [`InboxItem::since`].
    pub since: DateTime<Utc>,
    /// The last item's subject id.
    pub id: Uuid,
}

/// A list request.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxQuery {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Which items.
    pub view: InboxView,
    /// The time the list is for (snoozes, waits).
    pub now: DateTime<Utc>,
    /// Resume after this item (`None`: from the start).
    pub after: Option<InboxCursor>,
    /// At most this many items (1 to 500).
    pub limit: u32,
}

impl InboxQuery {
    /// Checks the view's key and the limit.
    pub fn validate(&self) -> Result<(), CoreError> {
        match &self.view {
            InboxView::AssignedTo(agent) => validate::key("assignee", agent)?,
            InboxView::Label(label) => validate::key("label", label)?,
            _ => {}
        }
        if !(1..=500).contains(&self.limit) {
            return Err(CoreError::invalid("limit", "must be between 1 and 500"));
        }
        Ok(())
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    /// The items, in list order.
    pub items: Vec<InboxItem>,
    /// Where the next page starts, when this one is full.
    pub next: Option<InboxCursor>,
}

/// An internal note on an item (never sent to the contact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxNote {
    /// Id.
    pub id: InboxNoteId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The item.
    pub subject: InboxSubject,
    /// Who wrote it.
    pub author: String,
    /// The note.
    pub text: String,
    /// Written at.
    pub created_at: DateTime<Utc>,
}

/// A reply text a tenant keeps ready, with `{placeholders}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CannedReply {
    /// Id.
    pub id: CannedReplyId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Unique name within the tenant.
    pub name: String,
    /// The text, with `{name}` placeholders (`{{` and `}}` for braces).
    pub text: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// Why a canned reply could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder has no value.
    #[error("no value for the placeholder {{{0}}}: pass it in the values")]
    Missing(String),
    /// A `{` without its `}` (or a lone `}`).
    #[error("unbalanced brace at byte {0}: write {{{{ or }}}} for a literal brace")]
    Unbalanced(usize),
}

impl CannedReply {
    /// Checks a canned reply's name and text (its placeholders balanced).
    pub fn check(name: &str, text: &str) -> Result<(), CoreError> {
        validate::key("name", name)?;
        validate::text("text", text)?;
        if text.trim().is_empty() {
            return Err(CoreError::invalid("text", "must not be empty"));
        }
        placeholders(text).map_err(|e| CoreError::invalid("text", e.to_string()))?;
        Ok(())
    }

    /// The placeholders of the text, in order of first use.
    pub fn placeholders(&self) -> Vec<String> {
        placeholders(&self.text).unwrap_or_default()
    }

    /// The text with every `{name}` replaced by `values[name]`.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, RenderError> {
        render(&self.text, values)
    }
}

/// The `{name}` placeholders of `text`, in order of first use.
fn placeholders(text: &str) -> Result<Vec<String>, RenderError> {
    let mut found: Vec<String> = Vec::new();
    walk(text, |name| {
        if !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
        Ok(String::new())
    })?;
    Ok(found)
}

fn render(text: &str, values: &BTreeMap<String, String>) -> Result<String, RenderError> {
    walk(text, |name| {
        values
            .get(name)
            .cloned()
            .ok_or_else(|| RenderError::Missing(name.to_owned()))
    })
}

/// Copies `text`, replacing each placeholder by `value(name)`.
fn walk(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, RenderError>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text.char_indices().peekable();
    while let Some((at, c)) = rest.next() {
        match c {
            '{' if rest.peek().map(|p| p.1) == Some('{') => {
                rest.next();
                out.push('{');
            }
            '}' if rest.peek().map(|p| p.1) == Some('}') => {
                rest.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match rest.next() {
                        Some((_, '}')) => break,
                        Some((_, '{')) | None => return Err(RenderError::Unbalanced(at)),
                        Some((_, ch)) => name.push(ch),
                    }
                }
                out.push_str(&value(name.trim())?);
            }
            '}' => return Err(RenderError::Unbalanced(at)),
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned(text: &str) -> CannedReply {
        CannedReply {
            id: CannedReplyId::generate(),
            tenant_id: TenantId::generate(),
            name: "n".into(),
            text: text.into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn placeholders_render_and_refuse_gaps() {
        let c = canned("Hi {name}, order {order} ships {day}. {{not a field}} {name}!");
        assert_eq!(c.placeholders(), vec!["name", "order", "day"]);
        let mut values = BTreeMap::new();
        values.insert("name".to_owned(), "Ana".to_owned());
        values.insert("order".to_owned(), "A-1".to_owned());
        assert_eq!(c.render(&values), Err(RenderError::Missing("day".into())));
        values.insert("day".to_owned(), "today".to_owned());
        assert_eq!(
            c.render(&values).unwrap_or_default(),
            "Hi Ana, order A-1 ships today. {not a field} Ana!"
        );
        assert!(CannedReply::check("n", "broken {name").is_err());
        assert!(CannedReply::check("n", "stray } brace").is_err());
        assert!(CannedReply::check("n", "fine {x}").is_ok());
    }
}
