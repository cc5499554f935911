//! The deliveries of a broadcast in memory: made, claimed one at a time and
//! finished under the post's claim, and moved by webhooks (statuses and
//! marketing preferences) when events are routed.

use chrono::{DateTime, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastContact, BroadcastCounts, BroadcastDelivery, BroadcastDeliveryId,
    BroadcastDeliveryState, ChannelId, ClaimedDelivery, ContentJobStatus, DeliveryOutcome,
    DeliveryStatus, MessageDirection, OptChange, Platform, PostId, PostStatus, TenantId,
    WebhookEvent, broadcast_platform_post_id, normalize_recipient,
};

use super::Inner;
use crate::broadcast::{DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT};
use crate::error::Result;
use crate::outbox::OUTCOME_UNKNOWN_PREFIX;

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

    /// See [`BroadcastStore::close_cancelled_deliveries`](crate::BroadcastStore::close_cancelled_deliveries).
    pub(super) fn close_cancelled_deliveries(
        &mut self,
        tenant: TenantId,
        post: PostId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let status = match self.posts.get(&post) {
            Some(p) if p.tenant_id == tenant => p.status,
            _ => return Err(crate::error::StorageError::not_found("post", post)),
        };
        if status != PostStatus::Cancelled {
            return Ok(0);
        }
        let b = &mut self.broadcasts;
        let ids: Vec<BroadcastDeliveryId> = b.deliveries_of(post).map(|d| d.id).collect();
        let mut closed = 0;
        for id in ids {
            let Some(d) = b.deliveries.get_mut(&id) else {
                continue;
            };
            let error = match d.state {
                BroadcastDeliveryState::Pending => crate::broadcast::BROADCAST_CANCELLED,
                BroadcastDeliveryState::Sending => DELIVERY_OUTCOME_UNKNOWN,
                _ => continue,
            };
            d.state = BroadcastDeliveryState::Failed;
            d.error = Some(error.to_owned());
            d.next_attempt_at = None;
            d.updated_at = at;
            closed += 1;
        }
        Ok(closed)
    }

    pub(super) fn prepare_deliveries(
        &mut self,
        tenant: TenantId,
        post: PostId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Option<BroadcastCounts> {
        let channel = self.claimed_post(tenant, post, owner, now)?;
        let spec = self.broadcast_of(post)?.clone();
        // The audience is read once, at the post's first claim (see the
        // PostgreSQL backend).
        let made = self
            .broadcasts
            .delivery_by_key
            .range((post, String::new())..)
            .next()
            .is_some_and(|((p, _), _)| *p == post);
        let recipients: Vec<String> = match &spec.audience {
            _ if made => Vec::new(),
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

    pub(super) fn claim_next_delivery(
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

    pub(super) fn finish_delivery(
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
                        && in_doubt(d.error.as_deref())))
        }) else {
            return Ok(false);
        };
        let post = d.post_id;
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
        if sent {
            self.resettle_broadcast(post, at);
        }
        Ok(true)
    }

    pub(super) fn apply_delivery_status(
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
            || (d.state == BroadcastDeliveryState::Failed && in_doubt(d.error.as_deref()));
        let turned_out_sent = went_out && in_doubt;
        if turned_out_sent {
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
        let d = d.clone();
        if turned_out_sent {
            self.resettle_broadcast(d.post_id, at);
        }
        Some(d)
    }

    /// A delivery of `post` has just turned out sent after all: a post
    /// already settled for good takes its deliveries' account again
    /// (`failed` for nobody received it becomes `published`, with its
    /// content job; a published one's summary is brought up to date). A
    /// post still being published is left to its pass.
    pub(super) fn resettle_broadcast(&mut self, post: PostId, at: DateTime<Utc>) {
        let counts = self.broadcasts.counts(post);
        if !counts.is_settled() || counts.sent == 0 {
            return;
        }
        let Some(p) = self.posts.get_mut(&post) else {
            return;
        };
        let platform_post_id = broadcast_platform_post_id(post);
        match p.status {
            PostStatus::Failed => {
                p.status = PostStatus::Published;
                p.platform_post_id = Some(platform_post_id.clone());
                p.published_at = Some(at);
                p.stop_at = Some(at);
                p.next_check_at = None;
                p.next_attempt_at = None;
            }
            PostStatus::Published if p.platform_post_id.as_deref() == Some(&platform_post_id) => {}
            _ => return,
        }
        p.error_message = (counts.failed > 0).then(|| counts.summary());
        p.updated_at = at;
        let (tenant, job, published_at) = (p.tenant_id, p.content_job_id, p.published_at);
        if let Some(job) = job.and_then(|j| self.content_jobs.get_mut(&j)).filter(|j| {
            j.tenant_id == tenant
                && j.status == ContentJobStatus::Failed
                && j.scheduled_post_id == Some(post)
        }) {
            job.status = ContentJobStatus::Published;
            job.platform_post_id = Some(platform_post_id);
            job.published_at = published_at;
            job.error_message = None;
            job.updated_at = at;
        }
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
    /// Whether a delivery matched.
    pub(super) fn route_broadcast_status(
        &mut self,
        event: &WebhookEvent,
        at: DateTime<Utc>,
    ) -> bool {
        let (Some(target), Some(status)) = (&event.target_id, event.delivery_status) else {
            return false;
        };
        if event.platform != Platform::WhatsApp {
            return false;
        }
        let reference = echoed_reference(&event.payload);
        self.apply_delivery_status(event.tenant_id, target, reference, status, at)
            .is_some()
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

/// Whether a failed delivery's `error` leaves its outcome in doubt (a worker
/// stopped during the send, or no answer came after it): a status saying
/// the message went out makes it `sent`.
fn in_doubt(error: Option<&str>) -> bool {
    error.is_some_and(|e| e.starts_with(OUTCOME_UNKNOWN_PREFIX))
}
