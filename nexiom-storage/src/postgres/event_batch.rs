//! [`EventBatchStore`] on Postgres: a batch of webhook events in one
//! multi-row insert.
//!
//! 1. Each event is validated on its own; a refused one is answered at once.
//! 2. The valid events, one per `(platform, event_id)` and in key order
//!    (`ORDER BY` their position, whatever plan the semi-join gets, so two
//!    concurrent batches take the key locks in the same order), go in one
//!    `INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING RETURNING`: one
//!    statement, one commit, on the scan pool (the receiver works for every
//!    tenant; its channel lookup is a cross-tenant read too).
//!    The statement inserts only rows whose `(tenant, channel, platform)` is
//!    a stored channel (a semi-join to the batch's few channels; migration
//!    0030 dropped the per-row foreign-key triggers that checked it again),
//!    and whose key is not stored yet: the table is partitioned by month of
//!    `occurred_at` (migration 0032), so its unique key holds the time too,
//!    and the `NOT EXISTS` keeps `(platform, event_id)` unique across months.
//! 3. The events the insert skipped are read in one statement: a channel
//!    that is not the tenant's on the event's platform is `UnknownReference`
//!    (checked first, as for one event); otherwise the key held by the
//!    event's tenant is a redelivery (`Existing`), by another tenant a
//!    `Conflict`.
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
                Ok(created) => {
                    let mut skipped = Vec::new();
                    for (&i, was_created) in batch.iter().zip(created) {
                        if was_created {
                            out[i] = Some(EventWrite::Created);
                        } else {
                            skipped.push(i);
                        }
                    }
                    if !skipped.is_empty() {
                        for (i, answer) in classify_skipped(self, events, &skipped).await? {
                            match answer {
                                Some(answer) => out[i] = Some(answer),
                                None => later.push(i),
                            }
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

/// Step 2: inserts the events at `batch` (in key order); whether each was
/// created, in the same order.
async fn insert_new(
    store: &PgStore,
    events: &[NewWebhookEvent],
    batch: &[usize],
) -> std::result::Result<Vec<bool>, sqlx::Error> {
    let mut c = Columns::default();
    for &i in batch {
        c.push(&events[i]);
    }
    let created: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
             sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id, \
             occurred_at, payload, received_at) \
         SELECT e.id, e.tenant_id, e.channel_id, e.platform, e.event_id, e.kind, \
             e.sender_id, e.sender_name, e.text, e.has_media, e.delivery_status, e.target_id, \
             e.parent_id, e.occurred_at, e.payload, e.received_at \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::text[], \
             $12::text[], $13::text[], $14::timestamptz[], $15::jsonb[], $16::timestamptz[]) \
             WITH ORDINALITY \
             AS e(id, tenant_id, channel_id, platform, event_id, kind, sender_id, sender_name, \
                 text, has_media, delivery_status, target_id, parent_id, occurred_at, payload, \
                 received_at, ord) \
         WHERE (e.tenant_id, e.channel_id, e.platform) IN ( \
             SELECT c.tenant_id, c.id, c.platform FROM channels c WHERE c.id = ANY($3)) \
             AND NOT EXISTS (SELECT 1 FROM webhook_events w \
                 WHERE w.platform = e.platform AND w.event_id = e.event_id) \
         ORDER BY e.ord \
         ON CONFLICT (platform, event_id, occurred_at) DO NOTHING \
         RETURNING id",
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
    let created: std::collections::HashSet<Uuid> = created.into_iter().collect();
    Ok(c.id.iter().map(|id| created.contains(id)).collect())
}

/// Step 3: the answers of the events whose key was taken (`None`: the key's
/// event cannot be read, step 4 answers it).
async fn classify_skipped(
    store: &PgStore,
    events: &[NewWebhookEvent],
    skipped: &[usize],
) -> Result<Vec<(usize, Option<EventWrite>)>> {
    let positions: Vec<i32> = (0..skipped.len())
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
        .collect();
    let platform: Vec<&str> = skipped
        .iter()
        .map(|&i| events[i].platform.as_str())
        .collect();
    let event_id: Vec<&str> = skipped
        .iter()
        .map(|&i| events[i].event_id.as_str())
        .collect();
    let tenant: Vec<Uuid> = skipped
        .iter()
        .map(|&i| events[i].tenant_id.as_uuid())
        .collect();
    let channel: Vec<Uuid> = skipped
        .iter()
        .map(|&i| events[i].channel_id.as_uuid())
        .collect();
    let rows: Vec<(i32, Option<Uuid>, bool)> = sqlx::query_as(
        "SELECT k.n, e.tenant_id, EXISTS (SELECT 1 FROM channels c \
             WHERE c.tenant_id = k.tenant_id AND c.id = k.channel_id AND c.platform = k.platform) \
         FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::uuid[], $5::uuid[]) \
             AS k(n, platform, event_id, tenant_id, channel_id) \
         LEFT JOIN LATERAL (SELECT w.tenant_id FROM webhook_events w \
             WHERE w.platform = k.platform AND w.event_id = k.event_id \
             ORDER BY w.received_at, w.id LIMIT 1) e ON true",
    )
    .bind(&positions)
    .bind(&platform)
    .bind(&event_id)
    .bind(&tenant)
    .bind(&channel)
    .fetch_all(store.scan_pool())
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .filter_map(|(n, holder, channel_ok)| {
            let i = *skipped.get(usize::try_from(n).ok()?)?;
            let e = &events[i];
            let answer = if !channel_ok {
                Some(EventWrite::Refused(StorageError::unknown(
                    "channel",
                    e.channel_id.as_uuid(),
                )))
            } else {
                match holder {
                    Some(t) if t == e.tenant_id.as_uuid() => Some(EventWrite::Existing),
                    Some(_) => Some(EventWrite::Refused(StorageError::conflict(
                        "event",
                        format!("platform {} and event id {:?}", e.platform, e.event_id),
                    ))),
                    None => None,
                }
            };
            Some((i, answer))
        })
        .collect())
}
