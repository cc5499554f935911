//! Rows of `webhook_events`, `contacts` and `contact_channels`.

use chrono::{DateTime, Utc};
use nexiom_core::{Contact, ContactChannel, WebhookEvent};
use uuid::Uuid;

use super::convert::{parse, parse_opt};
use crate::error::Result;

/// `webhook_events`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct EventRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    platform: String,
    event_id: String,
    kind: String,
    sender_id: Option<String>,
    sender_name: Option<String>,
    text: Option<String>,
    has_media: bool,
    delivery_status: Option<String>,
    target_id: Option<String>,
    parent_id: Option<String>,
    occurred_at: DateTime<Utc>,
    payload: serde_json::Value,
    received_at: DateTime<Utc>,
    routed_at: Option<DateTime<Utc>>,
    conversation_id: Option<Uuid>,
}

impl EventRow {
    pub(in crate::postgres) fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub(in crate::postgres) fn into_entity(self) -> Result<WebhookEvent> {
        Ok(WebhookEvent {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            platform: parse("platform", &self.platform)?,
            event_id: self.event_id,
            kind: parse("event kind", &self.kind)?,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
            text: self.text,
            has_media: self.has_media,
            delivery_status: parse_opt("delivery status", self.delivery_status.as_deref())?,
            target_id: self.target_id,
            parent_id: self.parent_id,
            occurred_at: self.occurred_at,
            payload: self.payload,
            received_at: self.received_at,
            routed_at: self.routed_at,
            conversation_id: self.conversation_id.map(Into::into),
        })
    }
}

/// `contacts`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ContactRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: Option<String>,
    created_at: DateTime<Utc>,
}

impl ContactRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Contact> {
        Ok(Contact {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            display_name: self.display_name,
            created_at: self.created_at,
        })
    }
}

/// `contact_channels`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ContactChannelRow {
    id: Uuid,
    tenant_id: Uuid,
    contact_id: Uuid,
    platform: String,
    external_handle: String,
    created_at: DateTime<Utc>,
}

impl ContactChannelRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<ContactChannel> {
        Ok(ContactChannel {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            contact_id: self.contact_id.into(),
            platform: parse("platform", &self.platform)?,
            external_handle: self.external_handle,
            created_at: self.created_at,
        })
    }
}
