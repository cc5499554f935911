//! Delivering the outbox: [`NotificationDispatcher`] claims due deliveries,
//! sends each through the [`Notifier`] of its endpoint's kind and records the
//! attempt (delivered, retried with backoff, or dead after the last attempt);
//! [`DeliverNotificationsWorker`] runs it on the worker runtime.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use nexiom_core::{
    ClaimedNotification, Clock, DeliveryAttempt, EndpointKind, NotificationDelivery,
    NotificationDeliveryId, NotificationDeliveryState,
};
use nexiom_storage::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::RwLock;

use super::notifier::{Notifier, NotifyError, SlackNotifier, WebhookNotifier};
use crate::error::Result;
use crate::held_lease::HeldLease;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`DeliverNotificationsWorker`].
pub const DELIVER_NOTIFICATIONS: &str = "deliver_notifications";

/// How failed attempts are retried: exponential backoff from `base`, doubled
/// after each failure up to `max`, and `dead` after `max_attempts` attempts.
/// The default keeps trying for about a day (30 s, 1, 2, 4, 8, 16 and 32
/// minutes, then hourly), so a receiver down overnight still gets its
/// escalations; a delivery that dies is logged as an error and counted in
/// `nexiom_notification_deliveries_total{result="dead"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all before a delivery is dead (at least 1; default 30).
    pub max_attempts: u32,
    /// The wait after the first failure (default 30 s).
    pub base: Duration,
    /// The longest wait (default 1 h).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 30,
            base: Duration::seconds(30),
            max: Duration::hours(1),
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` attempts (the failed one included)
    /// failed at `now`; `None` once they reach `max_attempts`.
    pub fn retry_at(&self, attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts.max(1) {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let wait = self
            .base
            .checked_mul(1 << doublings)
            .map_or(self.max, |w| w.min(self.max));
        Some(
            now.checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

/// What one [`NotificationDispatcher::deliver_due`] batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Deliveries claimed.
    pub claimed: u64,
    /// Accepted by their endpoint.
    pub delivered: u64,
    /// Failed, to be tried again.
    pub retried: u64,
    /// Failed for the last time: dead.
    pub dead: u64,
    /// Whose claim expired before the answer was recorded (another claim
    /// took them over; they may be sent again).
    pub lost: u64,
    /// Whose answer the store failed to record (logged; the claim expires
    /// and the delivery is attempted again). One such delivery never stops
    /// the others of its batch.
    #[serde(default)]
    pub unrecorded: u64,
}

/// Sends the outbox's due deliveries.
#[derive(Clone)]
pub struct NotificationDispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    webhook: Arc<dyn Notifier>,
    slack: Arc<dyn Notifier>,
    /// Whether `webhook` / `slack` are still the built-in notifiers (so
    /// [`allow_local_network`](Self::allow_local_network) may swap them).
    builtin_webhook: bool,
    builtin_slack: bool,
    policy: RetryPolicy,
    lease: Duration,
    concurrency: usize,
    send_timeout: std::time::Duration,
}

impl std::fmt::Debug for NotificationDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationDispatcher")
            .field("policy", &self.policy)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl NotificationDispatcher {
    /// A dispatcher with the built-in notifiers ([`WebhookNotifier`],
    /// [`SlackNotifier`]), the default [`RetryPolicy`] and a 2-minute claim.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        NotificationDispatcher {
            store,
            clock,
            webhook: Arc::new(WebhookNotifier::new()),
            slack: Arc::new(SlackNotifier::new()),
            builtin_webhook: true,
            builtin_slack: true,
            policy: RetryPolicy::default(),
            lease: Duration::minutes(2),
            concurrency: 8,
            send_timeout: std::time::Duration::from_secs(30),
        }
    }

    /// The same dispatcher with built-in notifiers that deliver to the
    /// local network too: this machine, private ranges, link-local
    /// addresses (see [`is_local_network`](super::is_local_network)). By
    /// default they refuse to, since a tenant writes the endpoint's URL
    /// (a delivery refused so is retried, then dead, with the reason
    /// recorded). It applies to the built-in notifiers only: a notifier
    /// given with [`with_notifier`](Self::with_notifier), before or after
    /// it, is kept as it is (its own policy decides where it may send).
    pub fn allow_local_network(mut self) -> Self {
        if self.builtin_webhook {
            self.webhook = Arc::new(WebhookNotifier::new().allowing_local_network());
        }
        if self.builtin_slack {
            self.slack = Arc::new(SlackNotifier::new().allowing_local_network());
        }
        self
    }

    /// The same dispatcher sending the endpoints of `kind` through `notifier`.
    pub fn with_notifier(mut self, kind: EndpointKind, notifier: Arc<dyn Notifier>) -> Self {
        match kind {
            EndpointKind::Webhook => {
                self.webhook = notifier;
                self.builtin_webhook = false;
            }
            EndpointKind::Slack => {
                self.slack = notifier;
                self.builtin_slack = false;
            }
        }
        self
    }

    /// The same dispatcher with at most `n` attempts in flight (default 8).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The same dispatcher holding its claims for `lease` (default 2
    /// minutes, from 1 second to 1 day). The claims of a batch are renewed every
    /// third of it while its sends are in flight, so the lease bounds how
    /// long another worker waits for the deliveries of a dispatcher that
    /// stopped, not how long a send may take.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::seconds(1), Duration::days(1));
        self
    }

    /// The longest one attempt may take before it counts as failed
    /// (default 30 s; the built-in notifiers give up after 10 s on their
    /// own, an application's notifier may not). It bounds every notifier,
    /// so a `WebhookNotifier::with_timeout` longer than it is cut at it.
    pub fn with_send_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.send_timeout = timeout.max(std::time::Duration::from_millis(1));
        self
    }

    /// The same dispatcher with another retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Claims up to `limit` due deliveries of every tenant and attempts each
    /// once, up to 8 at a time. While the batch runs, its claims are renewed
    /// every third of the lease
    /// ([`OutboxStore::renew_notification_leases`](nexiom_storage::OutboxStore::renew_notification_leases)),
    /// so a slow endpoint's delivery is not claimed and sent again by another
    /// worker; a delivery whose claim lapsed all the same (the store could
    /// not be reached to renew it) is left to the next claim (counted
    /// `lost`). Delivery is at least once: a process stopped between the send
    /// and its record lets the claim expire, and the delivery is sent again
    /// with the same idempotency key.
    pub async fn deliver_due(&self, limit: u32) -> Result<DeliveryReport> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_notification_deliveries(now, limit, self.lease)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len() as u64,
            ..DeliveryReport::default()
        };
        // Every delivery of one claim carries the same `lease_until` (as
        // stored: the database keeps microseconds).
        let Some(held_until) = claimed.first().and_then(|c| c.delivery.lease_until) else {
            return Ok(report);
        };
        // The deliveries whose attempt has not ended: the heartbeat renews
        // these only (not one recorded, or given up as lost).
        let unsettled: Mutex<HashSet<NotificationDeliveryId>> =
            Mutex::new(claimed.iter().map(|c| c.delivery.id).collect());
        let lease = RwLock::new(HeldLease::new(held_until));
        // Up to `concurrency` attempts in flight, so one slow endpoint does
        // not hold the others back; the heartbeat runs until they are done.
        let work = futures_util::stream::iter(claimed)
            .map(|item| async {
                let id = item.delivery.id;
                let outcome = self.attempt(item, &lease).await;
                unsettled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                outcome
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect::<Vec<Result<Option<NotificationDeliveryState>>>>();
        let outcomes = tokio::select! {
            biased;
            outcomes = work => outcomes,
            () = self.heartbeat(&unsettled, &lease) => unreachable!("the heartbeat never ends"),
        };
        let mut unavailable = None;
        for outcome in outcomes {
            match outcome {
                Ok(Some(NotificationDeliveryState::Delivered)) => report.delivered += 1,
                Ok(Some(NotificationDeliveryState::Pending)) => report.retried += 1,
                Ok(Some(NotificationDeliveryState::Dead)) => report.dead += 1,
                Ok(None) => report.lost += 1,
                // The store is unavailable: the batch's other answers were
                // likely not recorded either; the run fails, as a failing
                // claim does (the claims expire and are taken again).
                Err(error) if error.is_transient() => {
                    unavailable.get_or_insert(error);
                }
                Err(error) => {
                    // One delivery the store refuses to record does not stop
                    // its batch; its claim expires and it is tried again.
                    tracing::error!(%error, "a notification delivery's answer was not recorded");
                    report.unrecorded += 1;
                }
            }
        }
        match unavailable {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Renews the claims of the `unsettled` deliveries every third of the
    /// lease, forever (the caller stops it when the batch is done). `lease`
    /// is the `lease_until` the batch holds its deliveries under (and the
    /// values a renewal whose answer was lost may have written: see
    /// [`HeldLease`]); the batch's records read it.
    async fn heartbeat(
        &self,
        unsettled: &Mutex<HashSet<NotificationDeliveryId>>,
        lease: &RwLock<HeldLease>,
    ) {
        let period = (self.lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let Some(expires) = self.clock.now().checked_add_signed(self.lease) else {
                continue;
            };
            // Held while the renewal is written: no record reads a lease
            // that is being replaced.
            let mut held = lease.write().await;
            let ids: Vec<NotificationDeliveryId> = unsettled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .collect();
            if ids.is_empty() {
                continue;
            }
            let renewed = held
                .renew(expires, |guard| {
                    self.store.renew_notification_leases(&ids, guard, expires)
                })
                .await;
            if let Err(error) = renewed {
                tracing::warn!(%error, deliveries = ids.len(), "renewing the notification claims failed");
            }
        }
    }

    /// One attempt of a claimed delivery, recorded under the batch's current
    /// `lease`; the delivery's state after it, or `None` when its claim was
    /// lost meanwhile.
    async fn attempt(
        &self,
        item: ClaimedNotification,
        lease: &RwLock<HeldLease>,
    ) -> Result<Option<NotificationDeliveryState>> {
        if self.clock.now() >= lease.read().await.current() {
            // The claim expired before its turn (it could not be renewed):
            // another claim may send it.
            return Ok(None);
        }
        let notifier = match item.endpoint.kind {
            EndpointKind::Webhook => &self.webhook,
            EndpointKind::Slack => &self.slack,
        };
        // A notifier that never answers (one of the application's own)
        // would hold the batch, and the heartbeat would keep its claims.
        let sent = tokio::time::timeout(
            self.send_timeout,
            notifier.send(&item.endpoint, &item.notification, self.clock.now()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(NotifyError::Transport(format!(
                "no answer within {:?}",
                self.send_timeout
            )))
        });
        let attempt = match &sent {
            Ok(()) => DeliveryAttempt::Delivered,
            Err(error) => {
                let attempts = item.delivery.attempts.saturating_add(1);
                DeliveryAttempt::Failed {
                    error: recordable(&error.to_string()),
                    retry_at: self.policy.retry_at(attempts, self.clock.now()),
                }
            }
        };
        // The lease is read, and kept, while the record is written, so the
        // heartbeat does not move it in between. After a renewal whose
        // answer was lost, the delivery may carry another value the batch
        // wrote: each is tried before the claim counts as lost.
        let held = lease.read().await;
        for guard in held.candidates() {
            let recorded = self
                .store
                .finish_notification_delivery(
                    item.delivery.tenant_id,
                    item.delivery.id,
                    guard,
                    attempt.clone(),
                    self.clock.now(),
                )
                .await?;
            if let Some(recorded) = recorded {
                self.told(&item, &recorded, sent.err());
                return Ok(Some(recorded.state));
            }
        }
        Ok(None)
    }

    /// Logs and counts an attempt once its outcome is recorded (an attempt
    /// whose record was lost comes back, and is counted then).
    fn told(
        &self,
        item: &ClaimedNotification,
        recorded: &NotificationDelivery,
        error: Option<NotifyError>,
    ) {
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        match recorded.state {
            NotificationDeliveryState::Delivered => {
                crate::telemetry::notification_delivery("delivered");
            }
            NotificationDeliveryState::Dead => {
                crate::telemetry::notification_delivery("dead");
                tracing::error!(
                    tenant = %item.delivery.tenant_id,
                    delivery = %item.delivery.id,
                    notification = %item.notification.id,
                    kind = %item.notification.kind,
                    endpoint = %item.endpoint.name,
                    attempts = recorded.attempts,
                    %error,
                    "notification delivery dead: its last attempt failed and no one was told"
                );
            }
            _ => {
                crate::telemetry::notification_delivery("retried");
                tracing::warn!(
                    tenant = %item.delivery.tenant_id,
                    delivery = %item.delivery.id,
                    endpoint = %item.endpoint.name,
                    attempts = recorded.attempts,
                    %error,
                    "notification delivery failed; tried again later"
                );
            }
        }
    }
}

/// [`NotificationDispatcher::deliver_due`] on the worker runtime, every 15
/// seconds by default: batches of `batch_size` until one comes back empty,
/// at most `max_batches`, stopping between batches on shutdown.
#[derive(Debug, Clone)]
pub struct DeliverNotificationsWorker {
    dispatcher: NotificationDispatcher,
    cadence: Cadence,
}

impl DeliverNotificationsWorker {
    /// The worker over `dispatcher`.
    pub fn new(dispatcher: NotificationDispatcher) -> Self {
        DeliverNotificationsWorker {
            dispatcher,
            cadence: Cadence::Every(Duration::seconds(15)),
        }
    }

    /// The same worker on another cadence.
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }
}

#[async_trait]
impl Worker for DeliverNotificationsWorker {
    fn name(&self) -> &str {
        DELIVER_NOTIFICATIONS
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        let mut total = DeliveryReport::default();
        for _ in 0..ctx.batch.max_batches.max(1) {
            let batch = self.dispatcher.deliver_due(ctx.batch.batch_size).await?;
            total.claimed += batch.claimed;
            total.delivered += batch.delivered;
            total.retried += batch.retried;
            total.dead += batch.dead;
            total.lost += batch.lost;
            total.unrecorded += batch.unrecorded;
            // A short batch does not mean the queue is empty (a claim takes
            // at most 10 deliveries of one endpoint): only an empty one does.
            if batch.claimed == 0 || ctx.shutdown.is_triggered() {
                break;
            }
        }
        Ok(WorkReport {
            items_processed: i64::try_from(total.claimed).unwrap_or(i64::MAX),
            items_failed: i64::try_from(total.retried + total.dead + total.unrecorded)
                .unwrap_or(i64::MAX),
            results: json!(total),
        })
    }
}

/// The most characters of an attempt's error that are recorded.
const ERROR_CHARS: usize = 500;

/// An attempt's error as the store keeps it: control characters (a NUL in
/// an endpoint's answer, which the store refuses) as spaces, at most
/// [`ERROR_CHARS`] characters. Whatever a notifier returns is recordable.
fn recordable(error: &str) -> String {
    error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_recorded_without_control_characters_and_bounded() {
        assert_eq!(
            recordable("HTTP 500: bad\0body\nline"),
            "HTTP 500: bad body line"
        );
        assert_eq!(recordable(&"x".repeat(2_000)).chars().count(), ERROR_CHARS);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::seconds(30),
            max: Duration::minutes(2),
        };
        let waits: Vec<Option<i64>> = (1..=5)
            .map(|n| policy.retry_at(n, now).map(|t| (t - now).num_seconds()))
            .collect();
        assert_eq!(waits, vec![Some(30), Some(60), Some(120), Some(120), None]);
    }
}
