//! Conversations and messages.

use std::cmp::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ChannelId, ContactId, Conversation, ConversationId, ConversationStatus, DecisionId,
    DecisionSubject, DeliveryStatus, Inserted, Message, MessageDirection, MessageId, NewMessage,
    TenantId, Triage, validate,
};

use super::{
    Inner, MemoryStore, get_scoped, get_scoped_mut, limit_len, require_opt_ref, require_ref, scoped,
};
use crate::error::{Result, StorageError};
use crate::traits::ConversationStore;

impl Inner {
    pub(super) fn insert_open_conversation(
        &mut self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        at: DateTime<Utc>,
    ) -> Result<Inserted<Conversation>> {
        self.require_tenant(tenant)?;
        require_ref(&self.contacts, tenant, &contact, "contact")?;
        require_ref(&self.channels, tenant, &channel, "channel")?;
        if let Some(open) = self
            .open_conversation
            .get(&(contact, channel))
            .and_then(|id| self.conversations.get(id))
        {
            return Ok(Inserted::existing(open.clone()));
        }
        let conversation = Conversation {
            id: ConversationId::generate(),
            tenant_id: tenant,
            contact_id: contact,
            channel_id: channel,
            status: ConversationStatus::Open,
            last_message_at: None,
            created_at: at,
        };
        self.open_conversation
            .insert((contact, channel), conversation.id);
        self.conversations
            .insert(conversation.id, conversation.clone());
        Ok(Inserted::created(conversation))
    }

    fn list_conversations(
        &self,
        tenant: TenantId,
        status: Option<ConversationStatus>,
        limit: u32,
    ) -> Vec<Conversation> {
        if limit == 0 {
            return Vec::new();
        }
        let mut conversations: Vec<&Conversation> = self
            .conversations
            .values()
            .filter(|c| c.tenant_id == tenant && status.is_none_or(|s| c.status == s))
            .collect();
        // Latest `last_message_at` first, never-messaged last, then id.
        conversations.sort_by(|a, b| {
            let by_time = match (a.last_message_at, b.last_message_at) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            by_time.then(a.id.cmp(&b.id))
        });
        conversations
            .into_iter()
            .take(limit_len(limit))
            .cloned()
            .collect()
    }

    fn close_conversation(&mut self, tenant: TenantId, id: ConversationId) -> Result<Conversation> {
        let conversation = get_scoped_mut(&mut self.conversations, tenant, &id, "conversation")?;
        if conversation.status == ConversationStatus::Open {
            conversation.status = ConversationStatus::Closed;
            let key = (conversation.contact_id, conversation.channel_id);
            let conversation = conversation.clone();
            if self.open_conversation.get(&key) == Some(&id) {
                self.open_conversation.remove(&key);
            }
            return Ok(conversation);
        }
        Ok(conversation.clone())
    }

    pub(super) fn insert_message(&mut self, new: NewMessage) -> Result<Inserted<Message>> {
        new.validate()?;
        let tenant = new.tenant_id;
        self.require_tenant(tenant)?;
        let channel_id = scoped(&self.conversations, tenant, &new.conversation_id)
            .ok_or_else(|| StorageError::unknown("conversation", new.conversation_id))?
            .channel_id;
        require_opt_ref(&self.messages, tenant, new.in_reply_to.as_ref(), "message")?;

        let provider_key = new
            .provider_message_id
            .as_ref()
            .map(|pid| (channel_id, pid.clone()));
        if let Some(existing) = provider_key
            .as_ref()
            .and_then(|key| self.message_by_provider.get(key))
            .and_then(|id| self.messages.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }
        let reply_to = match (new.direction, new.in_reply_to) {
            (MessageDirection::Outbound, Some(inbound)) => Some(inbound),
            _ => None,
        };
        if let Some(existing) = reply_to
            .and_then(|inbound| self.reply_by_inbound.get(&inbound))
            .and_then(|id| self.messages.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }

        let message = Message {
            id: MessageId::generate(),
            tenant_id: tenant,
            conversation_id: new.conversation_id,
            channel_id,
            direction: new.direction,
            text: new.text,
            has_media: new.has_media,
            provider_message_id: new.provider_message_id,
            in_reply_to: new.in_reply_to,
            triage: None,
            confidence: None,
            ai_decision_id: None,
            delivery_status: new.delivery_status,
            created_at: new.created_at,
            stored_at: new.stored_at,
            reply: None,
        };
        if let Some(conversation) = self.conversations.get_mut(&new.conversation_id) {
            conversation.last_message_at = Some(
                conversation
                    .last_message_at
                    .map_or(message.created_at, |t| t.max(message.created_at)),
            );
        }
        if let Some(key) = provider_key {
            self.message_by_provider.insert(key, message.id);
        }
        if let Some(inbound) = reply_to {
            self.reply_by_inbound.insert(inbound, message.id);
        }
        self.messages.insert(message.id, message.clone());
        self.apply_early_status(message.id);
        let message = self.messages.get(&message.id).cloned().unwrap_or(message);
        Ok(Inserted::created(message))
    }

    fn find_message_by_provider_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Option<Message>> {
        validate::key("provider_message_id", provider_message_id)?;
        Ok(self
            .message_by_provider
            .get(&(channel, provider_message_id.to_owned()))
            .and_then(|id| scoped(&self.messages, tenant, id))
            .cloned())
    }

    fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Vec<Message> {
        self.messages_where(limit, |m| {
            m.tenant_id == tenant && m.conversation_id == conversation
        })
    }

    fn list_messages_since(
        &self,
        tenant: TenantId,
        direction: MessageDirection,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Vec<Message> {
        self.messages_where(limit, |m| {
            m.tenant_id == tenant && m.direction == direction && m.created_at >= since
        })
    }

    /// Up to `limit` messages matching `keep`, oldest `created_at` first.
    fn messages_where(&self, limit: u32, keep: impl Fn(&Message) -> bool) -> Vec<Message> {
        if limit == 0 {
            return Vec::new();
        }
        let mut messages: Vec<&Message> = self.messages.values().filter(|m| keep(m)).collect();
        messages.sort_by_key(|m| (m.created_at, m.id));
        messages
            .into_iter()
            .take(limit_len(limit))
            .cloned()
            .collect()
    }

    pub(super) fn update_delivery_status(
        &mut self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
        status: DeliveryStatus,
    ) -> Result<Option<Message>> {
        validate::key("provider_message_id", provider_message_id)?;
        let Some(id) = self
            .message_by_provider
            .get(&(channel, provider_message_id.to_owned()))
            .copied()
        else {
            return Ok(None);
        };
        let Some(message) = self.messages.get_mut(&id) else {
            return Ok(None);
        };
        if message.tenant_id != tenant || message.direction != MessageDirection::Outbound {
            return Ok(None);
        }
        let current = message.delivery_status.unwrap_or(DeliveryStatus::Pending);
        if current.can_advance_to(status) {
            message.delivery_status = Some(status);
        }
        Ok(Some(message.clone()))
    }

    pub(super) fn record_message_sent(
        &mut self,
        tenant: TenantId,
        id: MessageId,
        provider_message_id: Option<&str>,
        status: DeliveryStatus,
    ) -> Result<Message> {
        validate::opt_key("provider_message_id", provider_message_id)?;
        let message = get_scoped(&self.messages, tenant, &id, "message")?;
        let channel = message.channel_id;
        let new_key = match (&message.provider_message_id, provider_message_id) {
            (None, Some(pid)) => Some((channel, pid.to_owned())),
            _ => None,
        };
        if let Some(key) = &new_key
            && self
                .message_by_provider
                .get(key)
                .is_some_and(|other| *other != id)
        {
            return Err(StorageError::conflict(
                "message",
                format!("channel {channel} and provider message id {:?}", key.1),
            ));
        }
        let message = get_scoped_mut(&mut self.messages, tenant, &id, "message")?;
        let keyed = new_key.is_some();
        if let Some(key) = new_key {
            message.provider_message_id = Some(key.1.clone());
            self.message_by_provider.insert(key, id);
        }
        let message = get_scoped_mut(&mut self.messages, tenant, &id, "message")?;
        let current = message.delivery_status.unwrap_or(DeliveryStatus::Pending);
        if current.can_advance_to(status) || message.delivery_status.is_none() {
            message.delivery_status = Some(status);
        }
        if keyed {
            self.apply_early_status(id);
        }
        Ok(get_scoped(&self.messages, tenant, &id, "message")?.clone())
    }

    fn set_message_triage(
        &mut self,
        tenant: TenantId,
        id: MessageId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Message> {
        validate::unit_interval("confidence", confidence)?;
        if triage == Triage::Escalate
            && let Some(notification) =
                self.escalation(tenant, DecisionSubject::Message(id), decision)?
        {
            // The notification first: a refused one leaves the triage unwritten.
            self.notify(notification)?;
        }
        let message = get_scoped_mut(&mut self.messages, tenant, &id, "message")?;
        message.triage = Some(triage);
        message.confidence = Some(confidence);
        message.ai_decision_id = decision;
        if triage == Triage::AutoReply
            && message.direction == MessageDirection::Inbound
            && message.reply.is_none()
        {
            message.reply = Some(nexiom_core::ReplyStatus::pending());
        }
        Ok(message.clone())
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn insert_open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        at: DateTime<Utc>,
    ) -> Result<Inserted<Conversation>> {
        self.lock()
            .insert_open_conversation(tenant, contact, channel, at)
    }

    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> Result<Conversation> {
        get_scoped(&self.lock().conversations, tenant, &id, "conversation").cloned()
    }

    async fn list_conversations(
        &self,
        tenant: TenantId,
        status: Option<ConversationStatus>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        Ok(self.lock().list_conversations(tenant, status, limit))
    }

    async fn close_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation> {
        self.lock().close_conversation(tenant, id)
    }

    async fn insert_message(&self, new: NewMessage) -> Result<Inserted<Message>> {
        self.lock().insert_message(new)
    }

    async fn get_message(&self, tenant: TenantId, id: MessageId) -> Result<Message> {
        get_scoped(&self.lock().messages, tenant, &id, "message").cloned()
    }

    async fn find_message_by_provider_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Option<Message>> {
        self.lock()
            .find_message_by_provider_id(tenant, channel, provider_message_id)
    }

    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(self.lock().list_messages(tenant, conversation, limit))
    }

    async fn list_messages_since(
        &self,
        tenant: TenantId,
        direction: MessageDirection,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(self
            .lock()
            .list_messages_since(tenant, direction, since, limit))
    }

    async fn update_delivery_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
        status: DeliveryStatus,
    ) -> Result<Option<Message>> {
        self.lock()
            .update_delivery_status(tenant, channel, provider_message_id, status)
    }

    async fn list_untriaged_messages(&self, tenant: TenantId, limit: u32) -> Result<Vec<Message>> {
        Ok(self.lock().messages_where(limit, |m| {
            m.tenant_id == tenant && m.direction == MessageDirection::Inbound && m.triage.is_none()
        }))
    }

    async fn list_messages_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Ok(self.lock().messages_where(limit, |m| {
            m.tenant_id == tenant
                && m.direction == MessageDirection::Inbound
                && m.triage == Some(triage)
                && m.created_at >= since
        }))
    }

    async fn record_message_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        provider_message_id: Option<&str>,
        status: DeliveryStatus,
    ) -> Result<Message> {
        self.lock()
            .record_message_sent(tenant, id, provider_message_id, status)
    }

    async fn set_message_triage(
        &self,
        tenant: TenantId,
        id: MessageId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Message> {
        self.lock()
            .set_message_triage(tenant, id, triage, confidence, decision)
    }
}
