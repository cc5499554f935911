//! [`EventBatchStore`] on Postgres: a batch of webhook events in one
//! multi-row insert.
//!
//! 1. Each event is validated on its own; a refused one is answered at once.
//! 2. The valid events, one per `(platform, event_id)` and in key order
//!    (`ORDER BY` their position, whatever plan the semi-join gets, so two
//!    concurrent batches take the key locks in the same order), go in one
//!    `INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING`, on the scan
//!    pool (the receiver works for every tenant; its channel lookup is a
//!    cross-tenant read too). It inserts only rows whose
//!    `(tenant, channel, platform)` is a stored channel (a semi-join to the
//!    batch's few channels; migration 0030 dropped the per-row foreign-key
//!    triggers that checked it again), and whose key is not stored yet: the
//!    table is partitioned by month of `occurred_at` (migration 0032), so its
//!    unique key holds the time too, and the `NOT EXISTS` keeps
//!    `(platform, event_id)` unique across months.
//! 3. In the same call, when the insert skipped events, a second statement
//!    (a new snapshot, which sees a key a concurrent batch committed while
//!    the insert waited for it) reads who holds their keys and checks their
//!    channels: a channel that is not the tenant's on the event's platform
//!    is `UnknownReference` (checked first, as for one event); otherwise the
//!    key held by the event's tenant is a redelivery (`Existing`), by another
//!    tenant a `Conflict`.
//!
//!    Both statements are the function `nexiom_insert_events` (migration
//!    0038): one round trip and one commit per batch, and the small batches
//!    of group commit run plans kept for the session instead of being
//!    planned at every commit.
//! 4. Rare cases go through [`EventStore::insert_event`], which answers
//!    them exactly: the second event of a key inside the batch, a key that
//!    conflicted but cannot be read any more, and every event of a batch
//!    the database refused as a whole (an integrity or data error).

use std::collections::HashMap;

use async_trait::async_trait;
use nexiom_core::NewWebhookEvent;
use uuid::Uuid;

use super::PgStore;
use super::error::db;
use crate::error::{Result, StorageError};
use crate::event_batch::{EventBatchStore, EventWrite, one};
use crate::traits::EventStore;

/// The columns of the batch, one array per column (borrowed from the
/// events: nothing is copied before it is encoded).
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    tenant_id: Vec<Uuid>,
    channel_id: Vec<Uuid>,
    platform: Vec<&'a str>,
    event_id: Vec<&'a str>,
    kind: Vec<&'static str>,
    sender_id: Vec<Option<&'a str>>,
    sender_name: Vec<Option<&'a str>>,
    text: Vec<Option<&'a str>>,
    has_media: Vec<bool>,
    delivery_status: Vec<Option<&'static str>>,
    target_id: Vec<Option<&'a str>>,
    parent_id: Vec<Option<&'a str>>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    payload: Vec<&'a serde_json::Value>,
    received_at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, e: &'a NewWebhookEvent) {
        self.id.push(Uuid::now_v7());
        self.tenant_id.push(e.tenant_id.as_uuid());
        self.channel_id.push(e.channel_id.as_uuid());
        self.platform.push(e.platform.as_str());
        self.event_id.push(&e.event_id);
        self.kind.push(e.kind.as_str());
        self.sender_id.push(e.sender_id.as_deref());
        self.sender_name.push(e.sender_name.as_deref());
        self.text.push(e.text.as_deref());
        self.has_media.push(e.has_media);
        self.delivery_status
            .push(e.delivery_status.map(|s| s.as_str()));
        self.target_id.push(e.target_id.as_deref());
        self.parent_id.push(e.parent_id.as_deref());
        self.occurred_at.push(e.occurred_at);
        self.payload.push(&e.payload);
        self.received_at.push(e.received_at);
    }
}

#[async_trait]
impl EventBatchStore for PgStore {
    async fn insert_events(&self, events: &[NewWebhookEvent]) -> Result<Vec<EventWrite>> {
        let mut out: Vec<Option<EventWrite>> = (0..events.len()).map(|_| None).collect();
        // Step 1: validation, and one event per key (the rest wait for step 4).
        let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::new();
        let mut batch: Vec<usize> = Vec::with_capacity(events.len());
        let mut later: Vec<usize> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if let Err(err) = e.validate() {
                out[i] = Some(EventWrite::Refused(err.into()));
                continue;
            }
            match first_of_key.entry((e.platform.as_str(), e.event_id.as_str())) {
                std::collections::hash_map::Entry::Occupied(_) => later.push(i),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                    batch.push(i);
                }
            }
        }
        batch.sort_by(|&a, &b| {
            (events[a].platform.as_str(), events[a].event_id.as_str())
                .cmp(&(events[b].platform.as_str(), events[b].event_id.as_str()))
        });

        if !batch.is_empty() {
            match insert_new(self, events, &batch).await {
                Ok(skipped) => {
                    for &i in &batch {
                        out[i] = Some(EventWrite::Created);
                    }
                    for (i, holder, channel_ok) in skipped {
                        out[i] = answer_skipped(&events[i], holder, channel_ok);
                        if out[i].is_none() {
                            later.push(i);
                        }
                    }
                }
                // Step 4: refused as a whole; each event answers for itself.
                Err(err) if refused_whole(&err) => {
                    tracing::debug!(error = %err, events = batch.len(), "event batch refused whole: inserting one by one");
                    later.extend(batch.iter().copied());
                }
                Err(err) => return Err(db(err)),
            }
        }
        later.sort_unstable();
        for i in later {
            out[i] = Some(one(self.insert_event(events[i].clone()).await)?);
        }
        out.into_iter()
            .map(|answer| {
                answer.ok_or_else(|| {
                    StorageError::backend("postgres: an event of the batch was not answered")
                })
            })
            .collect()
    }
}

/// An error of the whole statement caused by the input (an integrity
/// constraint, a value the column refuses), not by the database.
fn refused_whole(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code.starts_with("23") || code.starts_with("22"))
}

/// Steps 2 and 3 in one call of `nexiom_insert_events` (migration 0038):
/// inserts the events at `batch` (in key order) and returns those it
/// skipped: their index in `events`, the tenant holding their key (`None`:
/// the key's event cannot be read) and whether their channel is the
/// tenant's on their platform. A batch of up to 64 events runs plans kept
/// for the session; a larger one is planned with its own values.
async fn insert_new(
    store: &PgStore,
    events: &[NewWebhookEvent],
    batch: &[usize],
) -> std::result::Result<Vec<(usize, Option<Uuid>, bool)>, sqlx::Error> {
    let mut c = Columns::default();
    for &i in batch {
        c.push(&events[i]);
    }
    let skipped: Vec<(i32, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT pos, holder, channel_ok FROM nexiom_insert_events($1::uuid[], $2::uuid[], \
             $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::text[], $10::bool[], $11::text[], $12::text[], $13::text[], \
             $14::timestamptz[], $15::jsonb[], $16::timestamptz[])",
    )
    .bind(&c.id)
    .bind(&c.tenant_id)
    .bind(&c.channel_id)
    .bind(&c.platform)
    .bind(&c.event_id)
    .bind(&c.kind)
    .bind(&c.sender_id)
    .bind(&c.sender_name)
    .bind(&c.text)
    .bind(&c.has_media)
    .bind(&c.delivery_status)
    .bind(&c.target_id)
    .bind(&c.parent_id)
    .bind(&c.occurred_at)
    .bind(&c.payload)
    .bind(&c.received_at)
    .fetch_all(store.scan_pool())
    .await?;
    Ok(skipped
        .into_iter()
        .filter_map(|(pos, holder, channel_ok)| {
            // Positions count from 1, in the order of `batch`.
            let i = *batch.get(usize::try_from(pos).ok()?.checked_sub(1)?)?;
            Some((i, holder, channel_ok))
        })
        .collect())
}

/// The answer of an event the insert skipped: a channel that is not the
/// tenant's on the event's platform is `UnknownReference` (checked first, as
/// for one event); otherwise the key held by the event's tenant is a
/// redelivery (`Existing`), by another tenant a `Conflict`; `None` when the
/// key's event cannot be read (step 4 answers it).
fn answer_skipped(
    e: &NewWebhookEvent,
    holder: Option<Uuid>,
    channel_ok: bool,
) -> Option<EventWrite> {
    if !channel_ok {
        return Some(EventWrite::Refused(StorageError::unknown(
            "channel",
            e.channel_id.as_uuid(),
        )));
    }
    match holder {
        Some(t) if t == e.tenant_id.as_uuid() => Some(EventWrite::Existing),
        Some(_) => Some(EventWrite::Refused(StorageError::conflict(
            "event",
            format!("platform {} and event id {:?}", e.platform, e.event_id),
        ))),
        None => None,
    }
}
