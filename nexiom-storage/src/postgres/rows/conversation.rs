//! Rows of `conversations` and `messages`.

use chrono::{DateTime, Utc};
use nexiom_core::{Conversation, Message};
use uuid::Uuid;

use super::convert::{parse, parse_opt, reply_status};
use crate::error::Result;

/// `conversations`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ConversationRow {
    id: Uuid,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel_id: Uuid,
    status: String,
    last_message_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl ConversationRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Conversation> {
        Ok(Conversation {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            contact_id: self.contact_id.into(),
            channel_id: self.channel_id.into(),
            status: parse("conversation status", &self.status)?,
            last_message_at: self.last_message_at,
            created_at: self.created_at,
        })
    }
}

/// `messages`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct MessageRow {
    id: Uuid,
    tenant_id: Uuid,
    conversation_id: Uuid,
    channel_id: Uuid,
    direction: String,
    text: String,
    has_media: bool,
    provider_message_id: Option<String>,
    in_reply_to: Option<Uuid>,
    triage: Option<String>,
    confidence: Option<f64>,
    ai_decision_id: Option<Uuid>,
    delivery_status: Option<String>,
    created_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    reply_state: Option<String>,
    reply_attempts: i64,
    reply_error: Option<String>,
    reply_next_at: Option<DateTime<Utc>>,
    reply_lease_until: Option<DateTime<Utc>>,
}

impl MessageRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Message> {
        Ok(Message {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            conversation_id: self.conversation_id.into(),
            channel_id: self.channel_id.into(),
            direction: parse("message direction", &self.direction)?,
            text: self.text,
            has_media: self.has_media,
            provider_message_id: self.provider_message_id,
            in_reply_to: self.in_reply_to.map(Into::into),
            triage: parse_opt("triage", self.triage.as_deref())?,
            confidence: self.confidence,
            ai_decision_id: self.ai_decision_id.map(Into::into),
            delivery_status: parse_opt("delivery status", self.delivery_status.as_deref())?,
            created_at: self.created_at,
            stored_at: self.stored_at,
            reply: reply_status(
                self.reply_state.as_deref(),
                self.reply_attempts,
                self.reply_error,
                self.reply_next_at,
                self.reply_lease_until,
            )?,
        })
    }
}
