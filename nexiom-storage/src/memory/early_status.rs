//! Delivery statuses that arrive before their message's provider id is
//! recorded (the Postgres side is migration 0040 and `routing_early`): a
//! status whose key no outbound message holds, and that no broadcast
//! delivery matched, is kept per `(channel, provider id)`, the highest one,
//! and applied (forward only) when an outbound message of the tenant gets
//! that key. Those first kept more than a day ago are dropped by the next
//! routing call (statuses of messages another tool sent on the same number).
//!
//! Every write here runs under the store's one lock, so a status and its
//! message's key never miss each other.

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{DeliveryStatus, MessageDirection, MessageId, TenantId, WebhookEvent};

use super::Inner;

/// How long an early status waits for its message.
const KEPT: Duration = Duration::hours(24);

/// A status kept for a message not recorded yet.
#[derive(Debug, Clone)]
pub(super) struct EarlyStatus {
    tenant: TenantId,
    status: DeliveryStatus,
    kept_at: DateTime<Utc>,
}

impl Inner {
    /// Keeps `event`'s status for the message its key will name.
    pub(super) fn keep_early_status(&mut self, event: &WebhookEvent, at: DateTime<Utc>) {
        let (Some(target), Some(status)) = (&event.target_id, event.delivery_status) else {
            return;
        };
        let kept = self
            .early_statuses
            .entry((event.channel_id, target.clone()))
            .or_insert(EarlyStatus {
                tenant: event.tenant_id,
                status,
                kept_at: at,
            });
        if kept.tenant == event.tenant_id && status.rank() > kept.status.rank() {
            kept.status = status;
        }
    }

    /// Applies the early status of message `id`'s key, if it is an outbound
    /// message of the same tenant.
    pub(super) fn apply_early_status(&mut self, id: MessageId) {
        let Some(message) = self.messages.get_mut(&id) else {
            return;
        };
        let Some(pid) = &message.provider_message_id else {
            return;
        };
        if message.direction != MessageDirection::Outbound {
            return;
        }
        let key = (message.channel_id, pid.clone());
        if self
            .early_statuses
            .get(&key)
            .is_none_or(|e| e.tenant != message.tenant_id)
        {
            return;
        }
        let Some(early) = self.early_statuses.remove(&key) else {
            return;
        };
        let current = message.delivery_status.unwrap_or(DeliveryStatus::Pending);
        if current.can_advance_to(early.status) {
            message.delivery_status = Some(early.status);
        }
    }

    /// Drops the early statuses first kept more than a day before `at`.
    pub(super) fn expire_early_statuses(&mut self, at: DateTime<Utc>) {
        if !self.early_statuses.is_empty() {
            self.early_statuses.retain(|_, e| e.kept_at >= at - KEPT);
        }
    }
}
