//! [`EventBatchStore`]: webhook events stored many at a time, in one write,
//! with one answer per event.

use async_trait::async_trait;
use nexiom_core::NewWebhookEvent;

use crate::error::{Result, StorageError};
use crate::traits::EventStore;

/// What [`EventBatchStore::insert_events`] did with one event.
#[derive(Debug)]
pub enum EventWrite {
    /// Stored for the first time.
    Created,
    /// `(platform, event_id)` was stored already for the event's tenant
    /// (a redelivery): nothing changed.
    Existing,
    /// Refused, as [`EventStore::insert_event`] refuses it
    /// ([`StorageError::is_refusal`]: `Invalid`, `UnknownReference` when
    /// the channel is not the tenant's on the event's platform, `Conflict`
    /// when another tenant holds the key). Nothing was written for it.
    Refused(StorageError),
}

impl EventWrite {
    /// Whether the event was stored for the first time.
    pub fn is_created(&self) -> bool {
        matches!(self, EventWrite::Created)
    }
}

/// Webhook events written in batches: what a receiver's group commit uses
/// to store the events of many concurrent requests in one statement.
#[async_trait]
pub trait EventBatchStore: EventStore {
    /// Stores each event unless its `(platform, event_id)` is stored already,
    /// with [`EventStore::insert_event`]'s rules, and answers each event at
    /// its position. One event's refusal never stops the others: it is
    /// answered [`EventWrite::Refused`] and its neighbours are stored.
    ///
    /// On PostgreSQL every new event of the batch goes in one multi-row
    /// insert (one commit); redeliveries are then told apart from another
    /// tenant's key in one more read. `Err` only when the store fails
    /// otherwise (unavailable): some events may be stored, and since each
    /// insert is insert-if-absent, calling again with the same batch is
    /// safe.
    ///
    /// The default runs [`EventStore::insert_event`] for each event in turn.
    async fn insert_events(&self, events: &[NewWebhookEvent]) -> Result<Vec<EventWrite>> {
        let mut out = Vec::with_capacity(events.len());
        for new in events {
            out.push(one(self.insert_event(new.clone()).await)?);
        }
        Ok(out)
    }
}

/// One [`EventStore::insert_event`] answer as an [`EventWrite`].
pub(crate) fn one(
    result: Result<nexiom_core::Inserted<nexiom_core::WebhookEvent>>,
) -> Result<EventWrite> {
    match result {
        Ok(inserted) if inserted.created => Ok(EventWrite::Created),
        Ok(_) => Ok(EventWrite::Existing),
        Err(e) if e.is_refusal() => Ok(EventWrite::Refused(e)),
        Err(e) => Err(e),
    }
}
