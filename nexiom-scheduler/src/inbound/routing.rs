//! Routing step: unrouted events into conversations, messages, statuses and
//! comments (the work itself is the store's, set-based on Postgres). A batch
//! the store cannot route whole goes one event at a time
//! (`routing_alone`).

use std::sync::atomic::Ordering;

use nexiom_core::{Platform, RoutingReport, TenantId, WebhookEvent, WebhookEventId};

use super::{InboundError, InboundPipeline};

/// How many times one routing call halves a batch that timed out before it
/// gives up with the timeout (the next call starts from the smaller size).
const MAX_HALVINGS: u32 = 3;

impl InboundPipeline {
    /// Routes up to `limit` unrouted events of every tenant (optionally of one
    /// platform), oldest first, as `EventStore::route_unrouted_events`
    /// documents; returns what was done (`processed` is the `routed` count of
    /// a pipeline run). A `limit` of 0 routes nothing.
    ///
    /// A batch that meets a lock, statement or transaction timeout
    /// ([`StorageError::is_timeout`]) is tried again at half its size, at
    /// most 3 times a call (then the call fails with the timeout), so a
    /// batch too big for the database's limits never holds routing. The
    /// pipeline (and its clones) remembers a smaller size after a timeout,
    /// and grows it again by a quarter after each full batch of that size
    /// that passes. A batch that fails for another reason is routed one event at
    /// a time (`route_one_by_one`): an event whose failure is its own is set
    /// aside, one that may be the database's fault stays unrouted.
    ///
    /// [`StorageError::is_timeout`]: nexiom_storage::StorageError::is_timeout
    #[tracing::instrument(name = "route_unrouted_events", skip(self))]
    pub async fn route_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
        if limit == 0 {
            return Ok(RoutingReport::default());
        }
        let now = self.clock.now();
        // Routing lag: the oldest unrouted event's age (one indexed read).
        let lag = self
            .store
            .list_unrouted_events(platform, 1)
            .await?
            .first()
            .map_or(0.0, |e| {
                (now - e.received_at).num_milliseconds().max(0) as f64 / 1e3
            });
        let learned = self.routing_size.load(Ordering::Relaxed).max(1);
        let mut size = limit.min(learned);
        let mut halvings = 0;
        let report = loop {
            let at = self.clock.now();
            match self.store.route_unrouted_events(platform, size, at).await {
                Ok(report) => {
                    // Only a full batch at the remembered size shows that
                    // size passes.
                    if size == learned && learned != u32::MAX && report.processed >= u64::from(size)
                    {
                        // The remembered size passed: a quarter more next
                        // time (unless another clone moved it meanwhile).
                        let grown = size.saturating_add(size / 4).max(size.saturating_add(1));
                        let _ = self.routing_size.compare_exchange(
                            learned,
                            grown,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    break report;
                }
                // Too much for one statement: half as much.
                Err(error) if error.is_timeout() && size > 1 && halvings < MAX_HALVINGS => {
                    size /= 2;
                    halvings += 1;
                    tracing::warn!(%error, size, "a routing batch timed out; trying a smaller one");
                    self.routing_size.fetch_min(size, Ordering::Relaxed);
                }
                // An outage: the next run tries again.
                Err(error) if error.is_unavailable() => return Err(error.into()),
                // The batch is one transaction: an event it cannot route
                // fails it whole, every run, for every tenant. The events go
                // one by one instead.
                Err(error) => {
                    tracing::warn!(%error, "routing a batch failed; its events are routed one by one");
                    break self.route_one_by_one(platform, limit).await?;
                }
            }
        };
        crate::telemetry::routed(report.processed, lag);
        tracing::debug!(
            processed = report.processed,
            messages = report.messages_created,
            comments = report.comments_created,
            "routed events"
        );
        Ok(report)
    }

    /// Routes one event now (for a receiver that routes as it ingests); an
    /// event routed already is returned unchanged.
    #[tracing::instrument(name = "route_event", skip(self), fields(%tenant, event = %id))]
    pub async fn route_event(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
    ) -> Result<WebhookEvent, InboundError> {
        Ok(self.store.route_event(tenant, id, self.clock.now()).await?)
    }
}
