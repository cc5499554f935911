//! The first-response SLA: items waiting past their tenant's target are
//! listed ([`SlaMonitor::breaches`]) and notified once per wait
//! (`sla_breached`, through the outbox) by [`SlaWorker`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    Clock, InboxCursor, InboxItem, InboxPage, InboxQuery, InboxView, NewNotification,
    NotificationKind, TenantId,
};
use nexiom_storage::{StorageError, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::error::Result;
use crate::worker::{Cadence, WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`SlaWorker`].
pub const SLA_BREACHES: &str = "sla_breaches";

/// Items read per page when notifying.
const PAGE: u32 = 200;

/// What one [`SlaMonitor::notify_breaches`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaReport {
    /// Tenants with a target.
    pub tenants: u64,
    /// Breaching items looked at.
    pub breaches: u64,
    /// Notifications enqueued (the others were notified before).
    pub notified: u64,
}

/// Watches the tenants' first-response targets.
pub struct SlaMonitor {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Per tenant: the target and the waiting bound of the last pass, so a
    /// pass reads only the items that crossed the target since.
    seen: Mutex<HashMap<TenantId, (Duration, DateTime<Utc>)>>,
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
        occurred_at: since + target,
    }
}

impl SlaMonitor {
    /// A monitor over `store`, reading the time from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        SlaMonitor {
            store,
            clock,
            seen: Mutex::new(HashMap::new()),
        }
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
    /// that waits longer than it; an item is notified once per wait
    /// whatever the number of passes (the notification's key). A pass reads
    /// only the items whose wait crossed the target since the previous pass
    /// of this monitor (all of them on its first pass).
    pub async fn notify_breaches(&self) -> Result<SlaReport> {
        let now = self.clock.now();
        let mut report = SlaReport::default();
        for (tenant, target) in self.store.list_first_response_targets().await? {
            report.tenants += 1;
            let bound = now - target;
            let previous = self
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&tenant)
                .copied();
            let mut after = match previous {
                Some((seen_target, seen_bound)) if seen_target == target => Some(InboxCursor {
                    since: seen_bound,
                    id: Uuid::max(),
                }),
                _ => None,
            };
            loop {
                let page = self
                    .store
                    .list_inbox(InboxQuery {
                        tenant_id: tenant,
                        view: InboxView::WaitingLongerThan(target),
                        now,
                        after,
                        limit: PAGE,
                    })
                    .await?;
                for item in &page.items {
                    report.breaches += 1;
                    let enqueued = self
                        .store
                        .enqueue_notification(breach_notification(item, target, now))
                        .await;
                    match enqueued {
                        Ok(inserted) => report.notified += u64::from(inserted.created),
                        Err(StorageError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(tenant, (target, bound));
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
