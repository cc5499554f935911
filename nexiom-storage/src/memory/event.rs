//! Webhook events, contacts and contact channels.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Contact, ContactChannel, ContactChannelId, ContactId, ConversationId, Inserted,
    NewContactChannel, NewWebhookEvent, Platform, RoutingReport, TenantId, WebhookEvent,
    WebhookEventId, validate,
};

use super::{Inner, MemoryStore, get_scoped, limit_len, require_opt_ref};
use crate::error::{Result, StorageError};
use crate::traits::EventStore;

impl Inner {
    fn insert_event(&mut self, new: NewWebhookEvent) -> Result<Inserted<WebhookEvent>> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        match self.channels.get(&new.channel_id) {
            Some(c) if c.tenant_id == new.tenant_id && c.platform == new.platform => {}
            _ => return Err(StorageError::unknown("channel", new.channel_id)),
        }
        let key = (new.platform.clone(), new.event_id.clone());
        if let Some(existing) = self
            .event_by_key
            .get(&key)
            .and_then(|id| self.events.get(id))
        {
            // Another tenant's event is never returned: its key is taken.
            if existing.tenant_id != new.tenant_id {
                return Err(StorageError::conflict(
                    "event",
                    format!("platform {} and event id {:?}", new.platform, new.event_id),
                ));
            }
            return Ok(Inserted::existing(existing.clone()));
        }
        let event = WebhookEvent {
            id: WebhookEventId::generate(),
            tenant_id: new.tenant_id,
            channel_id: new.channel_id,
            platform: new.platform,
            event_id: new.event_id,
            kind: new.kind,
            sender_id: new.sender_id,
            sender_name: new.sender_name,
            text: new.text,
            has_media: new.has_media,
            delivery_status: new.delivery_status,
            target_id: new.target_id,
            parent_id: new.parent_id,
            occurred_at: new.occurred_at,
            payload: new.payload,
            received_at: new.received_at,
            routed_at: None,
            conversation_id: None,
        };
        self.event_by_key.insert(key, event.id);
        self.unrouted_events.insert((event.received_at, event.id));
        self.events.insert(event.id, event.clone());
        Ok(Inserted::created(event))
    }

    fn find_event(
        &self,
        tenant: TenantId,
        platform: &Platform,
        event_id: &str,
    ) -> Result<Option<WebhookEvent>> {
        validate::key("event_id", event_id)?;
        Ok(self
            .event_by_key
            .get(&(platform.clone(), event_id.to_owned()))
            .and_then(|id| self.events.get(id))
            .filter(|e| e.tenant_id == tenant)
            .cloned())
    }

    pub(super) fn list_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Vec<WebhookEvent> {
        if limit == 0 {
            return Vec::new();
        }
        self.unrouted_events
            .iter()
            .filter_map(|(_, id)| self.events.get(id))
            .filter(|e| platform.is_none_or(|p| e.platform == *p))
            .take(limit_len(limit))
            .cloned()
            .collect()
    }

    /// Records `id` routed at `at` to `conversation` (the event is held).
    pub(super) fn set_routed(
        &mut self,
        id: WebhookEventId,
        at: DateTime<Utc>,
        conversation: Option<ConversationId>,
    ) -> Option<&WebhookEvent> {
        let event = self.events.get_mut(&id)?;
        self.unrouted_events.remove(&(event.received_at, id));
        event.routed_at = Some(at);
        event.conversation_id = conversation;
        Some(event)
    }

    fn mark_event_routed(
        &mut self,
        tenant: TenantId,
        id: WebhookEventId,
        conversation_id: Option<ConversationId>,
        routed_at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        let event = get_scoped(&self.events, tenant, &id, "event")?;
        if event.routed_at.is_some() {
            // The first routing wins; nothing is written, so nothing is checked.
            return Ok(event.clone());
        }
        require_opt_ref(
            &self.conversations,
            tenant,
            conversation_id.as_ref(),
            "conversation",
        )?;
        self.set_routed(id, routed_at, conversation_id)
            .cloned()
            .ok_or_else(|| StorageError::unknown("event", id))
    }

    pub(super) fn insert_contact_channel(
        &mut self,
        new: NewContactChannel,
    ) -> Result<Inserted<ContactChannel>> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        let key = (
            new.tenant_id,
            new.platform.clone(),
            new.external_handle.clone(),
        );
        if let Some(existing) = self
            .contact_channel_by_key
            .get(&key)
            .and_then(|id| self.contact_channels.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }
        let contact = Contact {
            id: ContactId::generate(),
            tenant_id: new.tenant_id,
            display_name: new.display_name,
            created_at: new.created_at,
        };
        let channel = ContactChannel {
            id: ContactChannelId::generate(),
            tenant_id: new.tenant_id,
            contact_id: contact.id,
            platform: new.platform,
            external_handle: new.external_handle,
            created_at: new.created_at,
        };
        self.contacts.insert(contact.id, contact);
        self.contact_channel_by_key.insert(key, channel.id);
        self.contact_channels.insert(channel.id, channel.clone());
        Ok(Inserted::created(channel))
    }

    pub(super) fn list_contact_channels(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Vec<ContactChannel> {
        let mut channels: Vec<ContactChannel> = self
            .contact_channels
            .values()
            .filter(|c| c.tenant_id == tenant && c.contact_id == contact)
            .cloned()
            .collect();
        channels.sort_by_key(|c| (c.created_at, c.id));
        channels
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_event(&self, new: NewWebhookEvent) -> Result<Inserted<WebhookEvent>> {
        self.lock().insert_event(new)
    }

    async fn get_event(&self, tenant: TenantId, id: WebhookEventId) -> Result<WebhookEvent> {
        get_scoped(&self.lock().events, tenant, &id, "event").cloned()
    }

    async fn find_event(
        &self,
        tenant: TenantId,
        platform: &Platform,
        event_id: &str,
    ) -> Result<Option<WebhookEvent>> {
        self.lock().find_event(tenant, platform, event_id)
    }

    async fn list_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>> {
        Ok(self.lock().list_unrouted_events(platform, limit))
    }

    async fn mark_event_routed(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        conversation_id: Option<ConversationId>,
        routed_at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        self.lock()
            .mark_event_routed(tenant, id, conversation_id, routed_at)
    }

    async fn route_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<RoutingReport> {
        self.lock().route_unrouted_events(platform, limit, at)
    }

    async fn route_event(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        self.lock().route_event(tenant, id, at)
    }

    async fn insert_contact_channel(
        &self,
        new: NewContactChannel,
    ) -> Result<Inserted<ContactChannel>> {
        self.lock().insert_contact_channel(new)
    }

    async fn get_contact(&self, tenant: TenantId, id: ContactId) -> Result<Contact> {
        get_scoped(&self.lock().contacts, tenant, &id, "contact").cloned()
    }

    async fn list_contact_channels(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Vec<ContactChannel>> {
        Ok(self.lock().list_contact_channels(tenant, contact))
    }
}

/// One event at a time under the store's lock (the default).
#[async_trait]
impl crate::EventBatchStore for MemoryStore {}
