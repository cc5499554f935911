//! Routing one event at a time, after a batch failed, and setting aside the
//! events whose failure is their own.

use std::collections::{HashMap, HashSet};

use nexiom_core::{
    EventKind, NewDeadLetter, Platform, RoutingReport, WebhookEvent, WebhookEventId,
};
use nexiom_storage::StorageError;

use super::{InboundError, InboundPipeline};

/// How many events of a kind that no routed event vouches for the look-past
/// tries before it gives that kind up for the run.
const LOOK_PAST_TRIES: usize = 3;

/// How routing one event on its own ended.
enum Alone {
    /// Routed, and the event was attached to what it is about (a message
    /// event to its conversation): it vouches that its kind routes.
    Vouching,
    /// Marked routed without a write that shows its kind routes (a message
    /// without a sender, an event another worker routed…), or left unrouted
    /// by the store for a later call.
    Routed,
    /// Gone meanwhile (removed by retention).
    Gone,
    /// Failed twice, not for an outage.
    Failed(StorageError),
}

/// What one-by-one routing saw.
#[derive(Default)]
struct Tried {
    report: RoutingReport,
    ids: HashSet<WebhookEventId>,
    routed_kinds: HashSet<EventKind>,
    failed: Vec<(WebhookEvent, StorageError)>,
}

impl Tried {
    /// The kinds of the failed events that no routed event of the same kind
    /// vouches for (a failure naming a reference that is gone is the event's
    /// own whatever the others did).
    fn unvouched(&self) -> HashSet<EventKind> {
        self.failed
            .iter()
            .filter(|(e, error)| {
                !matches!(error, StorageError::UnknownReference { .. })
                    && !self.routed_kinds.contains(&e.kind)
            })
            .map(|(e, _)| e.kind)
            .collect()
    }
}

impl InboundPipeline {
    /// Routes the unrouted events one at a time (up to `limit`), after a
    /// batch failed. An outage ([`StorageError::is_unavailable`], a lock or
    /// statement timeout included) stops the run. An event that fails twice
    /// on its own is set aside (kept as a dead letter of its tenant, with
    /// the error, and marked routed to no conversation, so the events after
    /// it are not held) when the fault is the event's:
    ///
    /// - it names a reference that is gone (`UnknownReference`: its channel
    ///   deleted by hand, say);
    /// - or another event of the same kind (message, status, comment…) was
    ///   routed in the same run, and attached (a message event to its
    ///   conversation): what fails is this event, not the database. When
    ///   none of the events tried was, the run looks past them: it routes
    ///   up to `limit` more events of the queue, of every kind, but at most
    ///   3 of a kind nothing vouches for; one that passes vouches for its
    ///   kind.
    ///
    /// Any other failed event (every message failing on a broken trigger or
    /// a constraint a migration added, say, while the statuses still route)
    /// is left unrouted for a later run (`left_unrouted`), as is an event
    /// that cannot be set aside; nothing is dead-lettered for a fault of the
    /// database. So a head of the queue that fails for the database (more
    /// than twice `limit` events of one kind, none routable) holds what
    /// queues behind it until the fault is mended, and the call reports the
    /// error. When nothing was routed or set aside, the first error is
    /// returned.
    ///
    /// [`StorageError::is_unavailable`]: nexiom_storage::StorageError::is_unavailable
    pub(super) async fn route_one_by_one(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<RoutingReport, InboundError> {
        let mut tried = Tried::default();
        let events = self.store.list_unrouted_events(platform, limit).await?;
        for event in events {
            self.try_alone(event, &mut tried).await?;
        }
        if !tried.unvouched().is_empty() {
            // Look past the events tried: up to `limit` more, of every kind
            // (so a kind failing at the head does not hold the others), but
            // at most a few of a kind nothing vouches for.
            let failing = u32::try_from(tried.failed.len()).unwrap_or(u32::MAX);
            let further = self
                .store
                .list_unrouted_events(platform, limit.saturating_add(failing))
                .await?;
            let mut unvouched_tries: HashMap<EventKind, usize> = HashMap::new();
            for event in further {
                if tried.ids.contains(&event.id) {
                    continue;
                }
                if !tried.routed_kinds.contains(&event.kind) {
                    let tries = unvouched_tries.entry(event.kind).or_default();
                    if *tries >= LOOK_PAST_TRIES {
                        continue;
                    }
                    *tries += 1;
                }
                self.try_alone(event, &mut tried).await?;
            }
        }
        let unvouched = tried.unvouched();
        let Tried {
            mut report, failed, ..
        } = tried;
        let mut first_error: Option<InboundError> = None;
        for (event, error) in failed {
            if unvouched.contains(&event.kind)
                && !matches!(error, StorageError::UnknownReference { .. })
            {
                tracing::error!(event = %event.id, kind = %event.kind, %error,
                    "an event fails to route, as every event of its kind tried: \
                     the fault may be the database's; it stays unrouted");
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

    /// Routes `event` on its own and records the outcome in `tried`.
    async fn try_alone(&self, event: WebhookEvent, tried: &mut Tried) -> Result<(), InboundError> {
        tried.ids.insert(event.id);
        match self.route_alone(&event).await? {
            Alone::Vouching => {
                tried.report.processed += 1;
                tried.routed_kinds.insert(event.kind);
            }
            Alone::Routed => tried.report.processed += 1,
            Alone::Gone => {}
            Alone::Failed(error) => tried.failed.push((event, error)),
        }
        Ok(())
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
                Ok(routed) => {
                    let attached = routed.routed_at.is_some()
                        && (routed.kind != EventKind::Message || routed.conversation_id.is_some());
                    return Ok(if attached {
                        Alone::Vouching
                    } else {
                        Alone::Routed
                    });
                }
                // Gone meanwhile (removed by retention): nothing to route.
                Err(StorageError::NotFound { .. }) => return Ok(Alone::Gone),
                Err(error) if error.is_unavailable() => return Err(error.into()),
                Err(error) => Alone::Failed(error),
            };
        }
        Ok(outcome)
    }

    /// Keeps an event that cannot be routed as a dead letter, then marks it
    /// routed.
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
}
