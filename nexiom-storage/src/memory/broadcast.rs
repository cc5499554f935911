//! WhatsApp broadcasts in memory: contacts' opt-in, audiences, a post's
//! audience and its deliveries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, AudienceId, BroadcastAudience, BroadcastContact, BroadcastContactId, BroadcastCounts,
    BroadcastDelivery, BroadcastDeliveryId, BroadcastDeliveryState, BroadcastTemplate, ChannelId,
    ClaimedDelivery, CoreError, DeliveryOutcome, DeliveryStatus, NewAudience, NewScheduledPost,
    OptChange, PostBroadcast, PostId, ScheduledPost, TenantId, normalize_recipient,
};

use super::{Inner, MemoryStore, get_scoped, require_ref};
use crate::broadcast::BroadcastStore;
use crate::error::{Result, StorageError};

/// The broadcast rows, with their unique-key indexes.
#[derive(Default)]
pub(super) struct Broadcasts {
    pub(super) contacts: BTreeMap<BroadcastContactId, BroadcastContact>,
    /// `(channel, recipient)` → contact.
    pub(super) contact_by_key: HashMap<(ChannelId, String), BroadcastContactId>,
    pub(super) audiences: BTreeMap<AudienceId, Audience>,
    /// `(channel, name)` → audience.
    pub(super) audience_by_name: HashMap<(ChannelId, String), AudienceId>,
    pub(super) members: BTreeSet<(AudienceId, BroadcastContactId)>,
    pub(super) posts: HashMap<PostId, PostBroadcast>,
    pub(super) deliveries: BTreeMap<BroadcastDeliveryId, BroadcastDelivery>,
    /// `(post, recipient)` → delivery, in recipient order per post.
    pub(super) delivery_by_key: BTreeMap<(PostId, String), BroadcastDeliveryId>,
}

impl Broadcasts {
    pub(super) fn contact(&self, channel: ChannelId, recipient: &str) -> Option<&BroadcastContact> {
        self.contact_by_key
            .get(&(channel, normalize_recipient(recipient)))
            .and_then(|id| self.contacts.get(id))
    }

    pub(super) fn opted_out(&self, channel: ChannelId, recipient: &str) -> bool {
        self.contact(channel, recipient)
            .is_some_and(|c| c.opted_out_at.is_some())
    }

    pub(super) fn deliveries_of(&self, post: PostId) -> impl Iterator<Item = &BroadcastDelivery> {
        self.delivery_by_key
            .range((post, String::new())..)
            .take_while(move |((p, _), _)| *p == post)
            .filter_map(|(_, id)| self.deliveries.get(id))
    }

    pub(super) fn counts(&self, post: PostId) -> BroadcastCounts {
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
                BroadcastDeliveryState::Sent => {
                    counts.sent += 1;
                    if d.delivery_status == Some(nexiom_core::DeliveryStatus::Failed) {
                        counts.undelivered += 1;
                    }
                }
                BroadcastDeliveryState::Failed => counts.failed += 1,
            }
        }
        counts
    }
}

impl Inner {
    pub(super) fn apply_opt_change(&mut self, change: OptChange) -> Result<BroadcastContact> {
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

    pub(super) fn list_audience_members(
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

    pub(super) fn insert_broadcast_post(
        &mut self,
        new: NewScheduledPost,
        audience: BroadcastAudience,
        template: Option<BroadcastTemplate>,
    ) -> Result<(ScheduledPost, PostBroadcast)> {
        if new.series_id.is_some() {
            return Err(CoreError::invalid(
                "series_id",
                "an occurrence uses its series' audience; create the series instead",
            )
            .into());
        }
        new.validate()?;
        let mut spec = PostBroadcast {
            tenant_id: new.tenant_id,
            post_id: PostId::generate(),
            audience,
            template,
        };
        spec.validate()?;
        self.require_tenant(new.tenant_id)?;
        require_ref(&self.channels, new.tenant_id, &new.channel_id, "channel")?;
        if let BroadcastAudience::Stored { audience_id } = &spec.audience {
            let same_channel =
                self.broadcasts.audiences.get(audience_id).is_some_and(|a| {
                    a.tenant_id == new.tenant_id && a.channel_id == new.channel_id
                });
            if !same_channel {
                return Err(StorageError::unknown("audience", audience_id));
            }
        }
        let post = self.insert_post(new)?.record;
        spec.post_id = post.id;
        self.broadcasts.posts.insert(post.id, spec.clone());
        Ok((post, spec))
    }

    /// The broadcast of `post`, or of its series template.
    pub(super) fn broadcast_of(&self, post: PostId) -> Option<&PostBroadcast> {
        self.broadcasts.posts.get(&post).or_else(|| {
            let series = self.posts.get(&post)?.series_id?;
            self.broadcasts.posts.get(&series)
        })
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

    async fn insert_broadcast_post(
        &self,
        new: NewScheduledPost,
        audience: BroadcastAudience,
        template: Option<BroadcastTemplate>,
    ) -> Result<(ScheduledPost, PostBroadcast)> {
        self.lock().insert_broadcast_post(new, audience, template)
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

    async fn close_cancelled_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        self.lock().close_cancelled_deliveries(tenant, post, at)
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
