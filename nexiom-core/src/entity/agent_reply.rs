//! Replies written by people (agents) through the library: to a conversation
//! (a direct message) or to a comment (a public reply, or a private one),
//! each recorded once per client-supplied idempotency key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{AgentReplyId, ChannelId, CommentId, ConversationId, MessageId, TenantId};
use crate::validate;

/// What an agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentReplyTarget {
    /// A direct message in the conversation (to its contact).
    Conversation {
        /// The conversation.
        conversation: ConversationId,
    },
    /// A public reply under the comment.
    PublicComment {
        /// The comment.
        comment: CommentId,
    },
    /// A private reply to the comment's author (Instagram, Facebook): one per
    /// comment, within 7 days of it.
    PrivateComment {
        /// The comment.
        comment: CommentId,
    },
}

impl AgentReplyTarget {
    /// `conversation`, `public_comment` or `private_comment`.
    pub const fn kind(&self) -> &'static str {
        match self {
            AgentReplyTarget::Conversation { .. } => "conversation",
            AgentReplyTarget::PublicComment { .. } => "public_comment",
            AgentReplyTarget::PrivateComment { .. } => "private_comment",
        }
    }
}

/// A WhatsApp template to send instead of free text (outside the 24-hour
/// window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTemplate {
    /// The approved template's name.
    pub name: String,
    /// Its language code (e.g. `fr_FR`).
    pub language: String,
    /// Its body parameters, in order.
    pub parameters: Vec<String>,
}

/// Where an agent reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentReplyState {
    /// Claimed; the platform call is under way (or its process stopped during
    /// it: the outcome is unknown and the reply is never sent again).
    Sending,
    /// The platform accepted it.
    Sent,
    /// The platform refused it (never re-sent under this key).
    Failed,
}

impl AgentReplyState {
    /// The lower-case string form.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentReplyState::Sending => "sending",
            AgentReplyState::Sent => "sent",
            AgentReplyState::Failed => "failed",
        }
    }

    /// Parses [`AgentReplyState::as_str`]'s form.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        match text {
            "sending" => Ok(AgentReplyState::Sending),
            "sent" => Ok(AgentReplyState::Sent),
            "failed" => Ok(AgentReplyState::Failed),
            other => Err(CoreError::UnknownValue {
                kind: "AgentReplyState",
                value: other.to_owned(),
                expected: "sending, sent, failed".into(),
            }),
        }
    }
}

/// A reply an agent sent (or is sending), unique by `(tenant,
/// idempotency_key)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReply {
    /// Id.
    pub id: AgentReplyId,
    /// Owner.
    pub tenant_id: TenantId,
    /// What it answers.
    pub target: AgentReplyTarget,
    /// The channel it goes out on.
    pub channel_id: ChannelId,
    /// The agent (an opaque id of the caller's user).
    pub agent_id: String,
    /// The text (for a template, its name and parameters).
    pub text: String,
    /// The template sent instead of the text, if any.
    pub template: Option<AgentTemplate>,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Where it stands.
    pub state: AgentReplyState,
    /// For a conversation reply sent: the outbound message recorded.
    pub message_id: Option<MessageId>,
    /// The platform's id of what was sent.
    pub provider_id: Option<String>,
    /// Why the platform refused it.
    pub error: Option<String>,
    /// Claimed at.
    pub created_at: DateTime<Utc>,
    /// Settled at.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Input to claim an [`AgentReply`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewAgentReply {
    /// Owner.
    pub tenant_id: TenantId,
    /// What it answers.
    pub target: AgentReplyTarget,
    /// The agent (a key).
    pub agent_id: String,
    /// The text (free text, non-empty).
    pub text: String,
    /// A WhatsApp template to send instead.
    pub template: Option<AgentTemplate>,
    /// The client's idempotency key (a key).
    pub idempotency_key: String,
    /// Claimed at.
    pub created_at: DateTime<Utc>,
}

impl NewAgentReply {
    /// Checks the agent, the text, the template and the key.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("agent_id", &self.agent_id)?;
        validate::key("idempotency_key", &self.idempotency_key)?;
        validate::text("text", &self.text)?;
        if self.text.trim().is_empty() && self.template.is_none() {
            return Err(CoreError::invalid("text", "must not be empty"));
        }
        if let Some(t) = &self.template {
            validate::key("template.name", &t.name)?;
            validate::key("template.language", &t.language)?;
            for p in &t.parameters {
                validate::text("template.parameters", p)?;
            }
        }
        Ok(())
    }
}

/// How an agent reply's platform call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReplyOutcome {
    /// Accepted, with the platform's id of what was sent.
    Sent {
        /// The platform's id.
        provider_id: Option<String>,
    },
    /// Refused by the platform.
    Failed {
        /// Why.
        error: String,
    },
}
