//! The first-response SLA: items waiting past their tenant's target are
//! listed ([`SlaMonitor::breaches`]) and notified once per wait
//! (`sla_breached`, through the outbox) by [`SlaWorker`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    Clock, InboxCursor, InboxItem, InboxPage, InboxQuery, InboxView, NewNotification,
    NotificationKind, TenantId,
};
use nexiom_storage::{StorageError, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Result;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`SlaWorker`].
pub const SLA_BREACHES: &str = "sla_breaches";

/// Items read per page when notifying.
const PAGE: u32 = 200;

/// The most pages one pass reads per tenant (the rest at the next pass).
const MAX_PAGES: usize = 50;

/// What one [`SlaMonitor::notify_breaches`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaReport {
    /// Tenants with a target.
    pub tenants: u64,
    /// Breaching items not notified before, looked at.
    pub breaches: u64,
    /// Notifications enqueued (the others were notified before).
    pub notified: u64,
}

/// Watches the tenants' first-response targets.
pub struct SlaMonitor {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SlaMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaMonitor").finish_non_exhaustive()
    }
}

/// The `sla_breached` notification of an item (once per wait: the key holds
/// the item and the instant its wait began).
pub fn breach_notification(
    item: &InboxItem,
    target: Duration,
    now: DateTime<Utc>,
) -> NewNotification {
    let since = item.waiting_since.unwrap_or(item.last_activity_at);
    NewNotification {
        tenant_id: item.tenant_id,
        kind: NotificationKind::SlaBreached,
        key: format!(
            "sla_breached:{}:{}:{}",
            item.subject.kind(),
            item.subject.id(),
            since.timestamp_millis()
        ),
        payload: json!({
            "subject": item.subject.kind(),
            "id": item.subject.id(),
            "channel_id": item.channel_id,
            "assignee": item.assignee,
            "waiting_since": since,
            "target_minutes": target.num_minutes(),
            "waited_minutes": (now - since).num_minutes(),
        }),
        occurred_at: since.checked_add_signed(target).unwrap_or(now),
    }
}

impl SlaMonitor {
    /// A monitor over `store`, reading the time from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        SlaMonitor { store, clock }
    }

    /// A page of the tenant's active items waiting longer than its target
    /// at the clock's time, longest wait first (empty without a target).
    pub async fn breaches(
        &self,
        tenant: TenantId,
        after: Option<InboxCursor>,
        limit: u32,
    ) -> Result<InboxPage> {
        let Some(target) = self.store.first_response_target(tenant).await? else {
            return Ok(InboxPage {
                items: Vec::new(),
                next: None,
            });
        };
        Ok(self
            .store
            .list_inbox(InboxQuery {
                tenant_id: tenant,
                view: InboxView::WaitingLongerThan(target),
                now: self.clock.now(),
                after,
                limit,
            })
            .await?)
    }

    /// Enqueues `sla_breached` for every item of every tenant with a target
    /// that waits longer than it, once per wait: the items whose current
    /// wait is not marked notified are read, their notifications enqueued
    /// (the key holds the item and the instant its wait began, so a retry
    /// after a crash between the two steps enqueues nothing twice), then
    /// their waits are marked on the items
    /// ([`InboxStore::mark_breaches_notified`](nexiom_storage::InboxStore::mark_breaches_notified)).
    /// So an item that shows up late with an old wait (a message routed
    /// late, a comment found by polling, a conversation reopened) is
    /// notified at the next pass, and a breach is never notified twice,
    /// whatever the process or the notifications' retention.
    pub async fn notify_breaches(&self) -> Result<SlaReport> {
        let now = self.clock.now();
        let mut report = SlaReport::default();
        for (tenant, target) in self.store.list_first_response_targets().await? {
            report.tenants += 1;
            for _ in 0..MAX_PAGES {
                let items = self
                    .store
                    .list_unnotified_breaches(tenant, target, now, PAGE)
                    .await?;
                let mut waits = Vec::with_capacity(items.len());
                for item in &items {
                    report.breaches += 1;
                    let enqueued = self
                        .store
                        .enqueue_notification(breach_notification(item, target, now))
                        .await;
                    match enqueued {
                        Ok(inserted) => report.notified += u64::from(inserted.created),
                        // The item went meanwhile: nothing to notify.
                        Err(StorageError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    waits.extend(item.waiting_since.map(|since| (item.subject, since)));
                }
                self.store.mark_breaches_notified(tenant, &waits).await?;
                if items.len() < PAGE as usize {
                    break;
                }
            }
        }
        Ok(report)
    }
}

/// [`SlaMonitor::notify_breaches`] on the worker runtime, every minute by
/// default.
#[derive(Debug)]
pub struct SlaWorker {
    monitor: SlaMonitor,
    cadence: Cadence,
}

impl SlaWorker {
    /// The worker over `monitor`.
    pub fn new(monitor: SlaMonitor) -> Self {
        SlaWorker {
            monitor,
            cadence: Cadence::Every(Duration::minutes(1)),
        }
    }

    /// The same worker on another cadence.
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }
}

#[async_trait]
impl Worker for SlaWorker {
    fn name(&self) -> &str {
        SLA_BREACHES
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, _ctx: &WorkerContext) -> Result<WorkReport> {
        let report = self.monitor.notify_breaches().await?;
        Ok(WorkReport {
            items_processed: i64::try_from(report.breaches).unwrap_or(i64::MAX),
            items_failed: 0,
            results: json!(report),
        })
    }
}
