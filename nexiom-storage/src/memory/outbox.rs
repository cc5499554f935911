//! The outbox in memory: endpoints, notifications and deliveries, written
//! under the store's lock together with the change that causes them.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedNotification, DecisionId, DecisionSubject, DeliveryAttempt, EndpointId, Inserted,
    NewNotification, NewNotificationEndpoint, Notification, NotificationDelivery,
    NotificationDeliveryId, NotificationDeliveryState, NotificationEndpoint, NotificationId,
    NotificationKind, SecretString, TenantId, Triage, validate, validate_endpoint_target,
};

use super::{Inner, MemoryStore, get_scoped, limit_len};
use crate::error::{Result, StorageError};
use crate::outbox::{MAX_CLAIM_PER_ENDPOINT, OutboxStore};

/// The outbox's rows.
#[derive(Default)]
pub(super) struct Outbox {
    endpoints: BTreeMap<EndpointId, NotificationEndpoint>,
    notifications: BTreeMap<NotificationId, Notification>,
    /// `(tenant, key)` → notification.
    by_key: HashMap<(TenantId, String), NotificationId>,
    deliveries: BTreeMap<NotificationDeliveryId, NotificationDelivery>,
    /// Test hook: every notification write fails (see
    /// [`MemoryStore::fail_notifications`]).
    fail_writes: bool,
}

impl Inner {
    /// Removes up to `batch` settled notifications that occurred before
    /// `cutoff`, with their deliveries (see `Retained::Notifications`).
    pub(super) fn purge_notifications(&mut self, cutoff: DateTime<Utc>, batch: usize) -> usize {
        let outbox = &mut self.outbox;
        let pending: std::collections::HashSet<NotificationId> = outbox
            .deliveries
            .values()
            .filter(|d| d.state == NotificationDeliveryState::Pending)
            .map(|d| d.notification_id)
            .collect();
        let old: Vec<(NotificationId, TenantId, String)> = outbox
            .notifications
            .values()
            .filter(|n| n.occurred_at < cutoff && !pending.contains(&n.id))
            .take(batch)
            .map(|n| (n.id, n.tenant_id, n.key.clone()))
            .collect();
        for (id, tenant, key) in &old {
            outbox.notifications.remove(id);
            outbox.by_key.remove(&(*tenant, key.clone()));
        }
        let gone: std::collections::HashSet<NotificationId> =
            old.iter().map(|(id, _, _)| *id).collect();
        outbox
            .deliveries
            .retain(|_, d| !gone.contains(&d.notification_id));
        old.len()
    }

    /// Enqueues `new` (see [`OutboxStore::enqueue_notification`]). Checks
    /// everything before writing, so a refusal writes nothing; callers that
    /// make a change with its notification call it before they change
    /// anything.
    pub(super) fn notify(&mut self, new: NewNotification) -> Result<Inserted<Notification>> {
        self.check_notify(&new)?;
        let outbox = &mut self.outbox;
        if let Some(id) = outbox.by_key.get(&(new.tenant_id, new.key.clone()))
            && let Some(stored) = outbox.notifications.get(id)
        {
            return Ok(Inserted::existing(stored.clone()));
        }
        let notification = Notification {
            id: NotificationId::generate(),
            tenant_id: new.tenant_id,
            kind: new.kind,
            key: new.key,
            payload: new.payload,
            occurred_at: new.occurred_at,
        };
        let endpoints: Vec<EndpointId> = outbox
            .endpoints
            .values()
            .filter(|e| {
                e.tenant_id == notification.tenant_id
                    && e.enabled
                    && e.kinds.contains(&notification.kind)
            })
            .map(|e| e.id)
            .collect();
        for endpoint in endpoints {
            let delivery = NotificationDelivery {
                id: NotificationDeliveryId::generate(),
                tenant_id: notification.tenant_id,
                notification_id: notification.id,
                endpoint_id: endpoint,
                state: NotificationDeliveryState::Pending,
                attempts: 0,
                next_attempt_at: None,
                lease_until: None,
                last_error: None,
                delivered_at: None,
            };
            outbox.deliveries.insert(delivery.id, delivery);
        }
        outbox.by_key.insert(
            (notification.tenant_id, notification.key.clone()),
            notification.id,
        );
        outbox
            .notifications
            .insert(notification.id, notification.clone());
        Ok(Inserted::created(notification))
    }

    /// Whether [`Inner::notify`] would accept `new` (it then cannot fail).
    pub(super) fn check_notify(&self, new: &NewNotification) -> Result<()> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        if self.outbox.fail_writes {
            return Err(StorageError::backend(
                "notification write refused (test hook fail_notifications)",
            ));
        }
        Ok(())
    }

    /// The notification that escalating `subject` (with `decision`) writes,
    /// or `None` when it is escalated already or a person answered it first
    /// (reply state `superseded`). `NotFound` for an item that is not the
    /// tenant's.
    pub(super) fn escalation(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        decision: Option<DecisionId>,
    ) -> Result<Option<NewNotification>> {
        let decided = |created: DateTime<Utc>| {
            decision
                .and_then(|d| self.decisions.get(&d))
                .filter(|d| d.tenant_id == tenant)
                .map_or(created, |d| d.created_at)
        };
        let (name, id, payload, at) = match subject {
            DecisionSubject::Message(id) => {
                let m = get_scoped(&self.messages, tenant, &id, "message")?;
                if m.triage == Some(Triage::Escalate) || superseded(m.reply.as_ref()) {
                    return Ok(None);
                }
                let payload = serde_json::json!({
                    "subject": "message",
                    "message_id": m.id,
                    "conversation_id": m.conversation_id,
                    "channel_id": m.channel_id,
                    "text": m.text,
                    "decision_id": decision,
                });
                ("message", id.as_uuid(), payload, decided(m.created_at))
            }
            DecisionSubject::Comment(id) => {
                let c = get_scoped(&self.comments, tenant, &id, "comment")?;
                if c.triage == Some(Triage::Escalate) || superseded(c.reply.as_ref()) {
                    return Ok(None);
                }
                let payload = serde_json::json!({
                    "subject": "comment",
                    "comment_id": c.id,
                    "post_id": c.post_id,
                    "channel_id": c.channel_id,
                    "text": c.text,
                    "decision_id": decision,
                });
                ("comment", id.as_uuid(), payload, decided(c.created_at))
            }
        };
        Ok(Some(crate::outbox::escalated(
            tenant, name, id, payload, at,
        )))
    }

    fn create_endpoint(&mut self, new: NewNotificationEndpoint) -> Result<NotificationEndpoint> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        let taken = self
            .outbox
            .endpoints
            .values()
            .any(|e| e.tenant_id == new.tenant_id && e.name == new.name);
        if taken {
            return Err(StorageError::conflict(
                "notification endpoint",
                format!("name {:?}", new.name),
            ));
        }
        let endpoint = NotificationEndpoint {
            id: EndpointId::generate(),
            tenant_id: new.tenant_id,
            kinds: new.sorted_kinds(),
            name: new.name,
            kind: new.kind,
            url: new.url,
            secret: new.secret,
            enabled: true,
            created_at: new.created_at,
            unreadable: None,
        };
        self.outbox.endpoints.insert(endpoint.id, endpoint.clone());
        Ok(endpoint)
    }

    fn claim_notifications(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Vec<ClaimedNotification> {
        let until = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let outbox = &mut self.outbox;
        let mut claimed = Vec::new();
        let mut per_endpoint: HashMap<EndpointId, u32> = HashMap::new();
        for delivery in outbox.deliveries.values_mut() {
            if claimed.len() >= limit_len(limit) {
                break;
            }
            if per_endpoint
                .get(&delivery.endpoint_id)
                .is_some_and(|n| *n >= MAX_CLAIM_PER_ENDPOINT)
            {
                continue;
            }
            let due = delivery.state == NotificationDeliveryState::Pending
                && delivery.next_attempt_at.is_none_or(|at| at <= now)
                && delivery.lease_until.is_none_or(|at| at <= now);
            let endpoint = outbox
                .endpoints
                .get(&delivery.endpoint_id)
                .filter(|e| e.enabled);
            let notification = outbox.notifications.get(&delivery.notification_id);
            let (true, Some(endpoint), Some(notification)) = (due, endpoint, notification) else {
                continue;
            };
            delivery.lease_until = Some(until);
            *per_endpoint.entry(delivery.endpoint_id).or_default() += 1;
            claimed.push(ClaimedNotification {
                delivery: delivery.clone(),
                notification: notification.clone(),
                endpoint: endpoint.clone(),
            });
        }
        claimed
    }

    fn finish_notification(
        &mut self,
        tenant: TenantId,
        id: NotificationDeliveryId,
        lease_until: DateTime<Utc>,
        attempt: DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> Result<Option<NotificationDelivery>> {
        if let DeliveryAttempt::Failed { error, .. } = &attempt {
            validate::text("error", error)?;
        }
        let delivery = match self.outbox.deliveries.get_mut(&id) {
            Some(d) if d.tenant_id == tenant => d,
            _ => return Err(StorageError::not_found("notification delivery", id)),
        };
        if delivery.state != NotificationDeliveryState::Pending
            || delivery.lease_until != Some(lease_until)
        {
            return Ok(None);
        }
        delivery.lease_until = None;
        delivery.attempts = delivery.attempts.saturating_add(1);
        match attempt {
            DeliveryAttempt::Delivered => {
                delivery.state = NotificationDeliveryState::Delivered;
                delivery.delivered_at = Some(at);
                delivery.next_attempt_at = None;
            }
            DeliveryAttempt::Failed { error, retry_at } => {
                delivery.last_error = Some(error);
                delivery.next_attempt_at = retry_at;
                if retry_at.is_none() {
                    delivery.state = NotificationDeliveryState::Dead;
                }
            }
        }
        Ok(Some(delivery.clone()))
    }
}

impl MemoryStore {
    /// Test hook: while `on`, every notification write fails, and so does
    /// the change it goes with (an escalation, a failed post): the
    /// conformance check that neither is ever written without the other.
    #[cfg(feature = "testing")]
    pub fn fail_notifications(&self, on: bool) {
        self.lock().outbox.fail_writes = on;
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn create_notification_endpoint(
        &self,
        new: NewNotificationEndpoint,
    ) -> Result<NotificationEndpoint> {
        self.lock().create_endpoint(new)
    }

    async fn list_notification_endpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<NotificationEndpoint>> {
        let inner = self.lock();
        let mut endpoints: Vec<NotificationEndpoint> = inner
            .outbox
            .endpoints
            .values()
            .filter(|e| e.tenant_id == tenant)
            .cloned()
            .collect();
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(endpoints)
    }

    async fn set_notification_endpoint_enabled(
        &self,
        tenant: TenantId,
        id: EndpointId,
        enabled: bool,
    ) -> Result<NotificationEndpoint> {
        let mut inner = self.lock();
        match inner.outbox.endpoints.get_mut(&id) {
            Some(e) if e.tenant_id == tenant => {
                e.enabled = enabled;
                Ok(e.clone())
            }
            _ => Err(StorageError::not_found("notification endpoint", id)),
        }
    }

    async fn set_notification_endpoint_target(
        &self,
        tenant: TenantId,
        id: EndpointId,
        url: String,
        secret: Option<SecretString>,
    ) -> Result<NotificationEndpoint> {
        let mut inner = self.lock();
        match inner.outbox.endpoints.get_mut(&id) {
            Some(e) if e.tenant_id == tenant => {
                validate_endpoint_target(e.kind, &url, secret.as_ref())?;
                e.url = url;
                e.secret = secret;
                Ok(e.clone())
            }
            _ => Err(StorageError::not_found("notification endpoint", id)),
        }
    }

    async fn enqueue_notification(&self, new: NewNotification) -> Result<Inserted<Notification>> {
        self.lock().notify(new)
    }

    async fn notify_subscribers(
        &self,
        kind: NotificationKind,
        key: &str,
        payload: serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut inner = self.lock();
        let mut tenants: Vec<TenantId> = inner
            .outbox
            .endpoints
            .values()
            .filter(|e| e.enabled && e.kinds.contains(&kind))
            .map(|e| e.tenant_id)
            .collect();
        tenants.sort();
        tenants.dedup();
        let notifications: Vec<NewNotification> = tenants
            .into_iter()
            .map(|tenant_id| NewNotification {
                tenant_id,
                kind,
                key: key.to_owned(),
                payload: payload.clone(),
                occurred_at,
            })
            .collect();
        // All or nothing: every one is checked before the first is written.
        for n in &notifications {
            inner.check_notify(n)?;
        }
        let mut created = 0;
        for n in notifications {
            created += u64::from(inner.notify(n)?.created);
        }
        Ok(created)
    }

    async fn list_notifications(
        &self,
        tenant: TenantId,
        kind: Option<NotificationKind>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let inner = self.lock();
        let mut list: Vec<Notification> = inner
            .outbox
            .notifications
            .values()
            .filter(|n| n.tenant_id == tenant && kind.is_none_or(|k| n.kind == k))
            .cloned()
            .collect();
        list.sort_by_key(|n| (n.occurred_at, n.id));
        list.truncate(limit_len(limit));
        Ok(list)
    }

    async fn list_notification_deliveries(
        &self,
        tenant: TenantId,
        notification: NotificationId,
    ) -> Result<Vec<NotificationDelivery>> {
        let inner = self.lock();
        match inner.outbox.notifications.get(&notification) {
            Some(n) if n.tenant_id == tenant => {}
            _ => return Err(StorageError::not_found("notification", notification)),
        }
        Ok(inner
            .outbox
            .deliveries
            .values()
            .filter(|d| d.notification_id == notification)
            .cloned()
            .collect())
    }

    async fn claim_notification_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedNotification>> {
        Ok(self.lock().claim_notifications(now, limit, lease))
    }

    async fn finish_notification_delivery(
        &self,
        tenant: TenantId,
        id: NotificationDeliveryId,
        lease_until: DateTime<Utc>,
        attempt: DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> Result<Option<NotificationDelivery>> {
        self.lock()
            .finish_notification(tenant, id, lease_until, attempt, at)
    }

    async fn renew_notification_leases(
        &self,
        ids: &[NotificationDeliveryId],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut state = self.lock();
        let mut renewed = 0;
        for id in ids {
            if let Some(delivery) = state.outbox.deliveries.get_mut(id)
                && delivery.state == NotificationDeliveryState::Pending
                && delivery.lease_until == Some(held_until)
            {
                delivery.lease_until = Some(expires_at);
                renewed += 1;
            }
        }
        Ok(renewed)
    }
}

/// Whether a person answered the item first (reply state `superseded`).
fn superseded(reply: Option<&nexiom_core::ReplyStatus>) -> bool {
    reply.is_some_and(|r| r.state == nexiom_core::ReplyState::Superseded)
}
