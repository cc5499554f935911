//! Routing step: unrouted events into conversations, messages, statuses and
//! comments (the work itself is the store's, set-based on Postgres).

use std::collections::HashSet;

use nexiom_core::{
    ChannelId, NewDeadLetter, Platform, RoutingReport, TenantId, WebhookEvent, WebhookEventId,
};

use nexiom_storage::StorageError;

use super::{InboundError, InboundPipeline};

/// How routing one event on its own ended.
enum Alone {
    /// Routed.
    Routed,
    /// Gone meanwhile (removed by retention).
    Gone,
    /// Failed twice, not for an outage.
    Failed(StorageError),
}

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
        let report = match self.store.route_unrouted_events(platform, limit, now).await {
            Ok(report) => report,
            // An outage: the next run tries again.
            Err(error) if error.is_unavailable() => return Err(error.into()),
            // The batch is one transaction: an event it cannot route fails
            // it whole, every run, for every tenant. The events go one by
            // one instead, and one that fails on its own is set aside.
            Err(error) => {
                tracing::warn!(%error, "routing a batch failed; its events are routed one by one");
                self.route_one_by_one(platform, limit).await?
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

    /// Routes the unrouted events one at a time, after a batch failed. An
    /// event that fails twice on its own (for any reason but an outage:
    /// [`StorageError::is_unavailable`], which includes a lock or statement
    /// timeout) is set aside: kept as a dead letter of its tenant, with the
    /// error, and marked routed to no conversation, so the events after it
    /// are not held. But when every event fails, on more than one channel,
    /// the fault is not the events' (a broken trigger or constraint, say):
    /// nothing is set aside and the error is returned. An outage stops the
    /// run. An event that cannot be set aside stays unrouted
    /// (`left_unrouted`); when nothing could be routed or set aside, the
    /// error is returned.
    ///
    /// [`StorageError::is_unavailable`]: nexiom_storage::StorageError::is_unavailable
    async fn route_one_by_one(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
        let events = self.store.list_unrouted_events(platform, limit).await?;
        let mut report = RoutingReport::default();
        let mut failed = Vec::new();
        for event in events {
            match self.route_alone(&event).await? {
                Alone::Routed => report.processed += 1,
                Alone::Gone => {}
                Alone::Failed(error) => failed.push((event, error)),
            }
        }
        let channels: HashSet<ChannelId> = failed.iter().map(|(e, _)| e.channel_id).collect();
        if report.processed == 0 && channels.len() > 1 {
            let (_, error) = failed.swap_remove(0);
            tracing::error!(%error, events = failed.len() + 1,
                "every event fails to route, on several channels: nothing is set aside");
            return Err(error.into());
        }
        let mut unrecorded = None;
        for (event, error) in failed {
            match self.set_aside(&event, &error).await {
                Ok(()) => report.set_aside += 1,
                Err(InboundError::Storage(e)) if e.is_unavailable() => {
                    return Err(InboundError::Storage(e));
                }
                Err(e) => {
                    tracing::error!(event = %event.id, error = %e,
                        "an event routing refuses could not be set aside; it stays unrouted");
                    report.left_unrouted += 1;
                    unrecorded.get_or_insert(e);
                }
            }
        }
        match unrecorded {
            Some(error) if report.processed == 0 && report.set_aside == 0 => Err(error),
            _ => Ok(report),
        }
    }

    /// Routes one event on its own, trying twice.
    async fn route_alone(&self, event: &WebhookEvent) -> Result<Alone, InboundError> {
        let mut outcome = Alone::Routed;
        for _ in 0..2 {
            outcome = match self
                .store
                .route_event(event.tenant_id, event.id, self.clock.now())
                .await
            {
                Ok(_) => return Ok(Alone::Routed),
                // Gone meanwhile (removed by retention): nothing to route.
                Err(StorageError::NotFound { .. }) => return Ok(Alone::Gone),
                Err(error) if error.is_unavailable() => return Err(error.into()),
                Err(error) => Alone::Failed(error),
            };
        }
        Ok(outcome)
    }

    /// Keeps an event routing refuses as a dead letter, then marks it routed.
    async fn set_aside(
        &self,
        event: &WebhookEvent,
        error: &StorageError,
    ) -> Result<(), InboundError> {
        tracing::error!(tenant = %event.tenant_id, event = %event.id, %error,
            "an event cannot be routed; it is kept as a dead letter and set aside");
        let raw = serde_json::to_vec(&event.payload).unwrap_or_default();
        let mut letter = NewDeadLetter::new(
            event.platform.clone(),
            format!("routing:{}", event.id),
            &raw,
            &format!("routing failed: {error}"),
            event.received_at,
        );
        letter.tenant_id = Some(event.tenant_id);
        self.store.insert_dead_letter(letter).await?;
        self.store
            .mark_event_routed(event.tenant_id, event.id, None, self.clock.now())
            .await?;
        Ok(())
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
