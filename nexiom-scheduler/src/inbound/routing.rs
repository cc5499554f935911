//! Routing step: unrouted events into conversations, messages, statuses and
//! comments (the work itself is the store's, set-based on Postgres).

use nexiom_core::{Platform, RoutingReport, TenantId, WebhookEvent, WebhookEventId};

use super::{InboundError, InboundPipeline};

impl InboundPipeline {
    /// Routes up to `limit` unrouted events of every tenant (optionally of one
    /// platform), oldest first, as `EventStore::route_unrouted_events`
    /// documents; returns what was done (`processed` is the `routed` count of
    /// a pipeline run).
    #[tracing::instrument(name = "route_unrouted_events", skip(self))]
    pub async fn route_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
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
        let report = self
            .store
            .route_unrouted_events(platform, limit, now)
            .await?;
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
