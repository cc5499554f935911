//! WhatsApp broadcasts in memory: contacts' opt-in, audiences, a post's
//! audience and its deliveries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, AudienceId, BroadcastAudience, BroadcastContact, BroadcastContactId, BroadcastCounts,
    BroadcastDelivery, BroadcastDeliveryId, BroadcastDeliveryState, ChannelId, ClaimedDelivery,
    CoreError, DeliveryOutcome, DeliveryStatus, MessageDirection, NewAudience, OptChange, Platform,
    PostBroadcast, PostId, PostStatus, TenantId, WebhookEvent, normalize_recipient,
};

use super::{Inner, MemoryStore, get_scoped, require_ref};
use crate::broadcast::{BroadcastStore, DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT};
use crate::error::{Result, StorageError};

/// The broadcast rows, with their unique-key indexes.
#[derive(Default)]
pub(super) struct Broadcasts {
    contacts: BTreeMap<BroadcastContactId, BroadcastContact>,
    /// `(channel, recipient)` → contact.
    contact_by_key: HashMap<(ChannelId, String), BroadcastContactId>,
    audiences: BTreeMap<AudienceId, Audience>,
    /// `(channel, name)` → audience.
    audience_by_name: HashMap<(ChannelId, String), AudienceId>,
    members: BTreeSet<(AudienceId, BroadcastContactId)>,
    posts: HashMap<PostId, PostBroadcast>,
    deliveries: BTreeMap<BroadcastDeliveryId, BroadcastDelivery>,
    /// `(post, recipient)` → delivery, in recipient order per post.
    delivery_by_key: BTreeMap<(PostId, String), BroadcastDeliveryId>,
}

impl Broadcasts {
    fn contact(&self, channel: ChannelId, recipient: &str) -> Option<&BroadcastContact> {
        self.contact_by_key
            .get(&(channel, normalize_recipient(recipient)))
            .and_then(|id| self.contacts.get(id))
    }

    fn opted_out(&self, channel: ChannelId, recipient: &str) -> bool {
        self.contact(channel, recipient)
            .is_some_and(|c| c.opted_out_at.is_some())
    }

    fn deliveries_of(&self, post: PostId) -> impl Iterator<Item = &BroadcastDelivery> {
        self.delivery_by_key
            .range((post, String::new())..)
            .take_while(move |((p, _), _)| *p == post)
            .filter_map(|(_, id)| self.deliveries.get(id))
    }

    fn counts(&self, post: PostId) -> BroadcastCounts {
        let mut counts = BroadcastCounts::default();
        for d in self.deliveries_of(post) {
            match d.state {
                BroadcastDeliveryState::Pending => {
                    counts.pending += 1;
                    if let Some(at) = d.next_attempt_at {
                        counts.next_attempt_at =
                            Some(counts.next_attempt_at.map_or(at, |n| n.min(at)));
                    }
                }
                BroadcastDeliveryState::Sending => counts.sending += 1,
                BroadcastDeliveryState::Sent => counts.sent += 1,
                BroadcastDeliveryState::Failed => counts.failed += 1,
            }
        }
        counts
    }
}

impl Inner {
    /// The post, when it is `publishing` under `owner`'s lease unexpired at `now`.
    fn claimed_post(
        &self,
        tenant: TenantId,
        post: PostId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Option<ChannelId> {
        self.posts
            .get(&post)
            .filter(|p| {
                p.tenant_id == tenant
                    && p.status == PostStatus::Publishing
                    && p.lease_owner.as_deref() == Some(owner)
                    && p.lease_expires_at.is_some_and(|t| t > now)
            })
            .map(|p| p.channel_id)
    }

    /// When `recipient` last wrote to `channel`.
    fn last_inbound(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recipient: &str,
    ) -> Option<DateTime<Utc>> {
        let handle = (tenant, Platform::WhatsApp, normalize_recipient(recipient));
        let contact = self
            .contact_channels
            .get(self.contact_channel_by_key.get(&handle)?)?
            .contact_id;
        self.messages
            .values()
            .filter(|m| {
                m.tenant_id == tenant
                    && m.channel_id == channel
                    && m.direction == MessageDirection::Inbound
                    && self
                        .conversations
                        .get(&m.conversation_id)
                        .is_some_and(|c| c.contact_id == contact)
            })
            .map(|m| m.created_at)
            .max()
    }

    fn apply_opt_change(&mut self, change: OptChange) -> Result<BroadcastContact> {
        change.validate()?;
        require_ref(
            &self.channels,
            change.tenant_id,
            &change.channel_id,
            "channel",
        )?;
        let recipient = normalize_recipient(&change.recipient);
        let b = &mut self.broadcasts;
        let key = (change.channel_id, recipient.clone());
        let id = *b.contact_by_key.entry(key).or_insert_with(|| {
            let contact = BroadcastContact {
                id: BroadcastContactId::generate(),
                tenant_id: change.tenant_id,
                channel_id: change.channel_id,
                recipient,
                opted_in_at: None,
                opt_in_source: None,
                opted_out_at: None,
                opt_out_reason: None,
                updated_at: DateTime::<Utc>::MIN_UTC,
            };
            let id = contact.id;
            b.contacts.insert(id, contact);
            id
        });
        let contact = b
            .contacts
            .get_mut(&id)
            .ok_or_else(|| StorageError::not_found("broadcast contact", id))?;
        if change.at >= contact.updated_at {
            if change.opted_in {
                contact.opted_in_at = Some(change.at);
                contact.opt_in_source = Some(change.source);
                contact.opted_out_at = None;
                contact.opt_out_reason = None;
            } else {
                contact.opted_out_at = Some(change.at);
                contact.opt_out_reason = Some(change.source);
            }
            contact.updated_at = change.at;
        }
        Ok(contact.clone())
    }

    fn create_audience(&mut self, new: NewAudience) -> Result<Audience> {
        new.validate()?;
        require_ref(&self.channels, new.tenant_id, &new.channel_id, "channel")?;
        let key = (new.channel_id, new.name.clone());
        if self.broadcasts.audience_by_name.contains_key(&key) {
            return Err(StorageError::conflict("audience", new.name));
        }
        let audience = Audience {
            id: AudienceId::generate(),
            tenant_id: new.tenant_id,
            channel_id: new.channel_id,
            name: new.name,
            created_at: new.created_at,
        };
        self.broadcasts.audience_by_name.insert(key, audience.id);
        self.broadcasts
            .audiences
            .insert(audience.id, audience.clone());
        Ok(audience)
    }

    fn audience(&self, tenant: TenantId, id: AudienceId) -> Result<&Audience> {
        self.broadcasts
            .audiences
            .get(&id)
            .filter(|a| a.tenant_id == tenant)
            .ok_or_else(|| StorageError::not_found("audience", id))
    }

    fn add_audience_members(
        &mut self,
        tenant: TenantId,
        audience: AudienceId,
        recipients: &[String],
    ) -> Result<u64> {
        let channel = self.audience(tenant, audience)?.channel_id;
        let mut ids = Vec::with_capacity(recipients.len());
        for r in recipients {
            nexiom_core::validate_recipient("recipients", r)?;
            match self.broadcasts.contact(channel, r) {
                Some(c) if c.is_opted_in() => ids.push(c.id),
                _ => {
                    return Err(CoreError::invalid(
                        "recipients",
                        format!("{r} is not a contact of the channel who opted in"),
                    )
                    .into());
                }
            }
        }
        let mut added = 0;
        for id in ids {
            added += u64::from(self.broadcasts.members.insert((audience, id)));
        }
        Ok(added)
    }

    fn list_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
    ) -> Result<Vec<BroadcastContact>> {
        self.audience(tenant, audience)?;
        let mut members: Vec<BroadcastContact> = self
            .broadcasts
            .members
            .range((audience, BroadcastContactId::from_uuid(uuid::Uuid::nil()))..)
            .take_while(|(a, _)| *a == audience)
            .filter_map(|(_, c)| self.broadcasts.contacts.get(c).cloned())
            .collect();
        members.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        Ok(members)
    }

    fn set_post_broadcast(&mut self, broadcast: PostBroadcast) -> Result<PostBroadcast> {
        broadcast.validate()?;
        let tenant = broadcast.tenant_id;
        let post = self
            .posts
            .get(&broadcast.post_id)
            .filter(|p| p.tenant_id == tenant)
            .ok_or_else(|| StorageError::unknown("post", broadcast.post_id))?;
        if let BroadcastAudience::Stored { audience_id } = &broadcast.audience {
            let same_channel = self
                .broadcasts
                .audiences
                .get(audience_id)
                .is_some_and(|a| a.tenant_id == tenant && a.channel_id == post.channel_id);
            if !same_channel {
                return Err(StorageError::unknown("audience", audience_id));
            }
        }
        self.broadcasts
            .posts
            .insert(broadcast.post_id, broadcast.clone());
        Ok(broadcast)
    }

    fn prepare_deliveries(
        &mut self,
        tenant: TenantId,
        post: PostId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Option<BroadcastCounts> {
        let channel = self.claimed_post(tenant, post, owner, now)?;
        let spec = self.broadcasts.posts.get(&post)?.clone();
        let recipients: Vec<String> = match &spec.audience {
            BroadcastAudience::Recipients { recipients } => {
                recipients.iter().map(|r| normalize_recipient(r)).collect()
            }
            BroadcastAudience::Stored { audience_id } => self
                .list_audience_members(tenant, *audience_id)
                .unwrap_or_default()
                .into_iter()
                .filter(BroadcastContact::is_opted_in)
                .map(|c| c.recipient)
                .collect(),
        };
        let b = &mut self.broadcasts;
        for id in b
            .delivery_by_key
            .range((post, String::new())..)
            .take_while(|((p, _), _)| *p == post)
            .map(|(_, id)| *id)
            .collect::<Vec<_>>()
        {
            if let Some(d) = b.deliveries.get_mut(&id)
                && d.state == BroadcastDeliveryState::Sending
            {
                d.state = BroadcastDeliveryState::Failed;
                d.error = Some(DELIVERY_OUTCOME_UNKNOWN.to_owned());
                d.updated_at = now;
            }
        }
        for recipient in recipients {
            let key = (post, recipient.clone());
            if b.delivery_by_key.contains_key(&key) {
                continue;
            }
            let opted_out = b.opted_out(channel, &recipient);
            let delivery = BroadcastDelivery {
                id: BroadcastDeliveryId::generate(),
                tenant_id: tenant,
                post_id: post,
                recipient,
                state: if opted_out {
                    BroadcastDeliveryState::Failed
                } else {
                    BroadcastDeliveryState::Pending
                },
                attempts: 0,
                next_attempt_at: None,
                error: opted_out.then(|| OPTED_OUT.to_owned()),
                provider_message_id: None,
                delivery_status: None,
                created_at: now,
                updated_at: now,
            };
            b.delivery_by_key.insert(key, delivery.id);
            b.deliveries.insert(delivery.id, delivery);
        }
        Some(b.counts(post))
    }

    fn claim_next_delivery(
        &mut self,
        tenant: TenantId,
        post: PostId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Option<ClaimedDelivery> {
        let channel = self.claimed_post(tenant, post, owner, now)?;
        loop {
            let next = self
                .broadcasts
                .deliveries_of(post)
                .filter(|d| {
                    d.state == BroadcastDeliveryState::Pending
                        && d.next_attempt_at.is_none_or(|t| t <= now)
                })
                .min_by(|a, b| (a.created_at, &a.recipient).cmp(&(b.created_at, &b.recipient)))
                .map(|d| (d.id, d.recipient.clone()))?;
            let (id, recipient) = next;
            let opted_out = self.broadcasts.opted_out(channel, &recipient);
            let last_inbound_at = self.last_inbound(tenant, channel, &recipient);
            let d = self.broadcasts.deliveries.get_mut(&id)?;
            d.updated_at = now;
            if opted_out {
                d.state = BroadcastDeliveryState::Failed;
                d.error = Some(OPTED_OUT.to_owned());
                continue;
            }
            d.state = BroadcastDeliveryState::Sending;
            d.attempts += 1;
            return Some(ClaimedDelivery {
                delivery: d.clone(),
                last_inbound_at,
            });
        }
    }

    fn finish_delivery(
        &mut self,
        tenant: TenantId,
        delivery: BroadcastDeliveryId,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        outcome.validate()?;
        let sent = matches!(outcome, DeliveryOutcome::Sent { .. });
        // A message that went out is recorded even over an "unknown" failure.
        let Some(d) = self.broadcasts.deliveries.get_mut(&delivery).filter(|d| {
            d.tenant_id == tenant
                && (d.state == BroadcastDeliveryState::Sending
                    || (sent
                        && d.state == BroadcastDeliveryState::Failed
                        && d.error.as_deref() == Some(DELIVERY_OUTCOME_UNKNOWN)))
        }) else {
            return Ok(false);
        };
        match outcome {
            DeliveryOutcome::Sent {
                provider_message_id,
            } => {
                d.state = BroadcastDeliveryState::Sent;
                d.provider_message_id = Some(provider_message_id);
                d.error = None;
                d.next_attempt_at = None;
                if d.delivery_status.is_none() {
                    d.delivery_status = Some(DeliveryStatus::Sent);
                }
            }
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => {
                d.state = BroadcastDeliveryState::Pending;
                d.error = Some(error);
                d.next_attempt_at = Some(next_attempt_at);
            }
            DeliveryOutcome::Failed { error } => {
                d.state = BroadcastDeliveryState::Failed;
                d.error = Some(error);
                d.next_attempt_at = None;
            }
        }
        d.updated_at = at;
        Ok(true)
    }

    fn apply_delivery_status(
        &mut self,
        tenant: TenantId,
        provider_message_id: &str,
        reference: Option<BroadcastDeliveryId>,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> Option<BroadcastDelivery> {
        let b = &mut self.broadcasts;
        let d = b
            .deliveries
            .values_mut()
            .filter(|d| d.tenant_id == tenant)
            .find(|d| {
                d.provider_message_id.as_deref() == Some(provider_message_id)
                    || Some(d.id) == reference
            })?;
        let went_out = matches!(
            status,
            DeliveryStatus::Sent | DeliveryStatus::Delivered | DeliveryStatus::Read
        );
        let in_doubt = d.state == BroadcastDeliveryState::Sending
            || (d.state == BroadcastDeliveryState::Failed
                && d.error.as_deref() == Some(DELIVERY_OUTCOME_UNKNOWN));
        if went_out && in_doubt {
            d.state = BroadcastDeliveryState::Sent;
            d.provider_message_id = Some(provider_message_id.to_owned());
            d.error = None;
        }
        if d.delivery_status
            .is_none_or(|current| current.can_advance_to(status))
        {
            d.delivery_status = Some(status);
        }
        d.updated_at = at;
        Some(d.clone())
    }
}

/// The delivery id a WhatsApp status echoes (`biz_opaque_callback_data`),
/// when it is one.
fn echoed_reference(payload: &serde_json::Value) -> Option<BroadcastDeliveryId> {
    payload
        .get("biz_opaque_callback_data")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(BroadcastDeliveryId::from_uuid)
}

impl Inner {
    /// Routing: a WhatsApp status event updates the broadcast delivery it
    /// names (by message id, or by the delivery id it echoes).
    pub(super) fn route_broadcast_status(&mut self, event: &WebhookEvent, at: DateTime<Utc>) {
        let (Some(target), Some(status)) = (&event.target_id, event.delivery_status) else {
            return;
        };
        if event.platform != Platform::WhatsApp {
            return;
        }
        let reference = echoed_reference(&event.payload);
        self.apply_delivery_status(event.tenant_id, target, reference, status, at);
    }

    /// Routing: a preference event (`stop` / `resume` of marketing messages)
    /// updates the sender's opt-in on the event's channel; anything else, or a
    /// sender that is not a phone number, is left as it is.
    pub(super) fn route_preference(&mut self, event: &WebhookEvent) -> Result<()> {
        let (Some(sender), Some(value)) = (&event.sender_id, event.text.as_deref()) else {
            return Ok(());
        };
        let opted_in = match value {
            "resume" => true,
            "stop" => false,
            _ => return Ok(()),
        };
        if nexiom_core::validate_recipient("sender", sender).is_err() {
            return Ok(());
        }
        self.apply_opt_change(OptChange {
            tenant_id: event.tenant_id,
            channel_id: event.channel_id,
            recipient: sender.clone(),
            opted_in,
            source: format!("whatsapp: {value}"),
            at: event.occurred_at,
        })?;
        Ok(())
    }
}

#[async_trait]
impl BroadcastStore for MemoryStore {
    async fn apply_opt_change(&self, change: OptChange) -> Result<BroadcastContact> {
        self.lock().apply_opt_change(change)
    }

    async fn get_broadcast_contact(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recipient: &str,
    ) -> Result<Option<BroadcastContact>> {
        let inner = self.lock();
        Ok(inner
            .broadcasts
            .contact(channel, recipient)
            .filter(|c| c.tenant_id == tenant)
            .cloned())
    }

    async fn create_audience(&self, new: NewAudience) -> Result<Audience> {
        self.lock().create_audience(new)
    }

    async fn add_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
        recipients: &[String],
        _at: DateTime<Utc>,
    ) -> Result<u64> {
        self.lock()
            .add_audience_members(tenant, audience, recipients)
    }

    async fn list_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
    ) -> Result<Vec<BroadcastContact>> {
        self.lock().list_audience_members(tenant, audience)
    }

    async fn set_post_broadcast(&self, broadcast: PostBroadcast) -> Result<PostBroadcast> {
        self.lock().set_post_broadcast(broadcast)
    }

    async fn get_post_broadcast(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<PostBroadcast>> {
        let inner = self.lock();
        Ok(inner
            .broadcasts
            .posts
            .get(&post)
            .filter(|b| b.tenant_id == tenant)
            .cloned())
    }

    async fn prepare_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BroadcastCounts>> {
        nexiom_core::validate::key("lease_owner", lease_owner)?;
        Ok(self
            .lock()
            .prepare_deliveries(tenant, post, lease_owner, now))
    }

    async fn claim_next_delivery(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedDelivery>> {
        nexiom_core::validate::key("lease_owner", lease_owner)?;
        Ok(self
            .lock()
            .claim_next_delivery(tenant, post, lease_owner, now))
    }

    async fn finish_delivery(
        &self,
        tenant: TenantId,
        delivery: BroadcastDeliveryId,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.lock().finish_delivery(tenant, delivery, outcome, at)
    }

    async fn list_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Vec<BroadcastDelivery>> {
        let inner = self.lock();
        get_scoped(&inner.posts, tenant, &post, "post")?;
        Ok(inner.broadcasts.deliveries_of(post).cloned().collect())
    }

    async fn broadcast_counts(&self, tenant: TenantId, post: PostId) -> Result<BroadcastCounts> {
        let inner = self.lock();
        get_scoped(&inner.posts, tenant, &post, "post")?;
        Ok(inner.broadcasts.counts(post))
    }

    async fn apply_delivery_status(
        &self,
        tenant: TenantId,
        provider_message_id: &str,
        reference: Option<BroadcastDeliveryId>,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> Result<Option<BroadcastDelivery>> {
        nexiom_core::validate::key("provider_message_id", provider_message_id)?;
        Ok(self
            .lock()
            .apply_delivery_status(tenant, provider_message_id, reference, status, at))
    }
}
