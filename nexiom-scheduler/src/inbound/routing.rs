//! Routing step: unrouted events into conversations, messages, statuses and
//! comments (the work itself is the store's, set-based on Postgres).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use nexiom_core::{NewDeadLetter, Platform, RoutingReport, TenantId, WebhookEvent, WebhookEventId};

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
    ///
    /// A batch that meets a lock or statement timeout
    /// ([`StorageError::is_timeout`]) is tried again at half its size, down
    /// to one event, so a batch too big for the database's limits never
    /// holds routing; the size that passed is remembered (and grows again
    /// by a quarter after each batch that passes). A batch that fails for
    /// another reason is routed one event at a time (see below).
    ///
    /// [`StorageError::is_timeout`]: nexiom_storage::StorageError::is_timeout
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
        let mut size = limit.min(self.routing_size.load(Ordering::Relaxed)).max(1);
        let report = loop {
            match self.store.route_unrouted_events(platform, size, now).await {
                Ok(report) => {
                    let grown = size.saturating_add(size / 4).max(size.saturating_add(1));
                    self.routing_size.store(grown, Ordering::Relaxed);
                    break report;
                }
                // Too much for one statement: half as much.
                Err(error) if error.is_timeout() && size > 1 => {
                    size /= 2;
                    tracing::warn!(%error, size, "a routing batch timed out; trying a smaller one");
                    self.routing_size.store(size, Ordering::Relaxed);
                }
                // An outage: the next run tries again.
                Err(error) if error.is_unavailable() => return Err(error.into()),
                // The batch is one transaction: an event it cannot route
                // fails it whole, every run, for every tenant. The events go
                // one by one instead.
                Err(error) => {
                    tracing::warn!(%error, "routing a batch failed; its events are routed one by one");
                    break self.route_one_by_one(platform, size).await?;
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

    /// Routes the unrouted events one at a time, after a batch failed. An
    /// event that fails twice on its own, not for an outage
    /// ([`StorageError::is_unavailable`], which includes a lock or statement
    /// timeout: the run stops), is set aside (kept as a dead letter of its
    /// tenant, with the error, and marked routed to no conversation, so the
    /// events after it are not held) when the fault is the event's:
    ///
    /// - the store refuses it ([`StorageError::is_refusal`]: a reference
    ///   that is gone, a value a check refuses): it would be refused again;
    /// - or it failed otherwise while an event of the same kind (message,
    ///   status, comment…) was routed in this run, so what fails is this
    ///   event, not the database.
    ///
    /// Any other failed event (every message failing on a broken trigger,
    /// say, on one channel or many) is left unrouted (`left_unrouted`) for a
    /// later run, as is an event that cannot be set aside. When nothing was
    /// routed or set aside, the first error is returned.
    ///
    /// [`StorageError::is_unavailable`]: nexiom_storage::StorageError::is_unavailable
    /// [`StorageError::is_refusal`]: nexiom_storage::StorageError::is_refusal
    async fn route_one_by_one(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
        let events = self.store.list_unrouted_events(platform, limit).await?;
        let mut report = RoutingReport::default();
        let mut failed = Vec::new();
        let mut routed_kinds = HashSet::new();
        for event in events {
            match self.route_alone(&event).await? {
                Alone::Routed => {
                    report.processed += 1;
                    routed_kinds.insert(event.kind);
                }
                Alone::Gone => {}
                Alone::Failed(error) => failed.push((event, error)),
            }
        }
        let mut first_error: Option<InboundError> = None;
        for (event, error) in failed {
            if !error.is_refusal() && !routed_kinds.contains(&event.kind) {
                tracing::error!(event = %event.id, kind = %event.kind, %error,
                    "an event fails to route, as every event of its kind in this run: \
                     the fault may not be the event's; it stays unrouted");
                report.left_unrouted += 1;
                first_error.get_or_insert(error.into());
                continue;
            }
            match self.set_aside(&event, &error).await {
                Ok(()) => report.set_aside += 1,
                Err(InboundError::Storage(e)) if e.is_unavailable() => {
                    return Err(InboundError::Storage(e));
                }
                Err(e) => {
                    tracing::error!(event = %event.id, error = %e,
                        "an event that cannot be routed could not be set aside; it stays unrouted");
                    report.left_unrouted += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
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
