//! Routing step: unrouted events into conversations, messages, statuses and
//! comments (the work itself is the store's, set-based on Postgres).

use nexiom_core::{NewDeadLetter, Platform, RoutingReport, TenantId, WebhookEvent, WebhookEventId};

use nexiom_storage::StorageError;

use super::{InboundError, InboundPipeline};

/// How routing one event on its own ended.
enum Alone {
    /// Routed (or gone).
    Routed,
    /// Refused by the store: it will be refused again.
    Refused(StorageError),
    /// Failed otherwise (a timeout…): it may pass later.
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
            // one instead; an event the store refuses is set aside, one
            // that fails otherwise waits for a later run.
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
    /// event the store refuses twice on its own (a reference that is gone,
    /// a value a check refuses: [`StorageError::is_refusal`]) is set aside:
    /// kept as a dead letter of its tenant, with the error, and marked routed
    /// to no conversation, so the events after it are not held. An event
    /// that fails otherwise (a statement or lock timeout…) is left unrouted
    /// for a later run and the others go on; when no event could be routed
    /// or set aside, that error is returned. An outage stops the run.
    ///
    /// [`StorageError::is_refusal`]: nexiom_storage::StorageError::is_refusal
    async fn route_one_by_one(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
        let events = self.store.list_unrouted_events(platform, limit).await?;
        let mut report = RoutingReport::default();
        let mut left = None;
        for event in events {
            match self.route_alone(&event).await? {
                Alone::Routed => report.processed += 1,
                Alone::Refused(error) => match self.set_aside(&event, &error).await {
                    Ok(()) => report.set_aside += 1,
                    Err(InboundError::Storage(e)) if e.is_unavailable() => {
                        return Err(InboundError::Storage(e));
                    }
                    Err(e) => {
                        tracing::error!(event = %event.id, error = %e,
                            "an event routing refuses could not be set aside; it stays unrouted");
                        report.left_unrouted += 1;
                    }
                },
                Alone::Failed(error) => {
                    tracing::warn!(event = %event.id, %error,
                        "an event could not be routed; it stays unrouted for a later run");
                    report.left_unrouted += 1;
                    left.get_or_insert(error);
                }
            }
        }
        match left {
            Some(error) if report.processed == 0 && report.set_aside == 0 => Err(error.into()),
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
                // Routed, or gone meanwhile (removed by retention): nothing
                // is left to route either way.
                Ok(_) | Err(StorageError::NotFound { .. }) => return Ok(Alone::Routed),
                Err(error) if error.is_unavailable() => return Err(error.into()),
                Err(error) if error.is_refusal() => Alone::Refused(error),
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
