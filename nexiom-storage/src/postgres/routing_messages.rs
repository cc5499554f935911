//! Routing on Postgres, the one pass: a single statement takes the batch
//! (locks the events and reads them once, into a materialized CTE) and
//! carries it through every step of message routing; every later step joins
//! to that CTE, never back to `webhook_events`:
//!
//! 1. `batch`: the events, locked (`FOR UPDATE SKIP LOCKED` for a batch,
//!    `FOR UPDATE` for one event or a second pass over events already held),
//!    with their `ctid` (stable while the lock is held) and `tableoid` (the
//!    table is partitioned by month: a `ctid` names a row of one partition);
//! 2. `msg`: each message event with what already exists, by plain index
//!    lookups: its message (a redelivery: nothing to write), its sender's
//!    contact channel, and that contact's open conversation on the channel;
//! 3. only the keys that were not found are inserted: contact channels and
//!    their contacts, then conversations (`ON CONFLICT DO NOTHING` in key
//!    order: a concurrent router may create the same ones);
//! 4. the messages, with a plain `INSERT` (each event is held by this
//!    transaction and its message key was just looked up, so only a message
//!    stored meanwhile by another writer can conflict: the unique violation
//!    rolls the call back and it runs again, seeing that message);
//! 5. `last_message_at`: set on the conversations opened here, moved forward
//!    (only when it moves) on the existing ones, in key order;
//! 6. the events marked routed, by `(tableoid, ctid)`, with their conversation.
//!
//! An event whose contact channel or conversation a concurrent router created
//! after this statement's snapshot is left out (the insert skipped the key)
//! and returned; the caller runs the statement again on those events, in a
//! new snapshot that sees the rows.
//!
//! Events of the kinds handled by later steps (statuses, comments,
//! preferences) are locked and returned unmarked.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The event columns routing reads.
const COLUMNS: &str = "e.tableoid AS toid, e.ctid AS tid, e.id, e.tenant_id, e.channel_id, e.platform, e.event_id, \
     e.kind, e.sender_id, e.sender_name, e.text, e.has_media, e.occurred_at, e.received_at";

/// The most events one call takes: the statement carries that many fresh ids
/// of each kind (a larger `limit` routes this many; callers loop anyway).
pub(super) const MAX_EVENTS: u32 = 10_000;

/// Which events the pass takes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    /// Up to `limit` (at most [`MAX_EVENTS`]) unrouted events, oldest
    /// first, skipping locked ones.
    Unrouted {
        platform: Option<&'a str>,
        limit: u32,
    },
    /// One unrouted event of a tenant (waits for a concurrent router).
    One { tenant: Uuid, id: Uuid },
    /// Events this transaction holds already (a second pass).
    Held(&'a [Uuid]),
}

/// What one pass did.
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// Events marked routed.
    pub marked: u64,
    /// Messages inserted.
    pub messages: u64,
    /// Events of the later steps' kinds, taken but not marked.
    pub rest: Vec<Uuid>,
    /// How many of `rest` are moderations (the moderation step runs only
    /// when there are some).
    pub moderations: u64,
    /// Message events left for another pass (a key created concurrently).
    pub unresolved: Vec<Uuid>,
}

/// The statement, after its `batch` CTE. Parameters: `$1`..`$4` fresh ids
/// (contact channels, contacts, conversations, messages), `$5` the time.
const PASS: &str = "\
), found AS ( \
    SELECT b.toid, b.tid, b.id, b.tenant_id, b.channel_id, b.platform, b.event_id, b.sender_id, \
        b.sender_name, b.text, b.has_media, b.occurred_at, b.received_at, \
        m.conversation_id AS stored_conv, cc.contact_id AS known_contact, \
        conv.id AS open_conv, \
        dense_rank() OVER (ORDER BY b.tenant_id, b.platform, b.sender_id) AS hrn \
    FROM batch b \
    LEFT JOIN messages m ON m.channel_id = b.channel_id \
        AND m.provider_message_id = b.event_id AND m.tenant_id = b.tenant_id \
    LEFT JOIN contact_channels cc ON m.id IS NULL AND cc.tenant_id = b.tenant_id \
        AND cc.platform = b.platform AND cc.external_handle = b.sender_id \
    LEFT JOIN conversations conv ON conv.contact_id = cc.contact_id \
        AND conv.channel_id = b.channel_id AND conv.status = 'open' \
        AND conv.tenant_id = b.tenant_id \
    WHERE b.kind = 'message' AND b.sender_id IS NOT NULL \
), msg AS MATERIALIZED ( \
    SELECT f.*, dense_rank() OVER ( \
        ORDER BY COALESCE(f.known_contact, ($2::uuid[])[f.hrn]), f.channel_id) AS crn \
    FROM found f \
), new_handles AS ( \
    SELECT DISTINCT ON (hrn) hrn, tenant_id, platform, sender_id, sender_name \
    FROM msg WHERE stored_conv IS NULL AND known_contact IS NULL \
    ORDER BY hrn, received_at, id \
), cc_ins AS ( \
    INSERT INTO contact_channels (id, tenant_id, contact_id, platform, external_handle, \
        created_at) \
    SELECT ($1::uuid[])[hrn], tenant_id, ($2::uuid[])[hrn], platform, sender_id, $5 \
    FROM new_handles ORDER BY tenant_id, platform, sender_id \
    ON CONFLICT (tenant_id, platform, external_handle) DO NOTHING \
    RETURNING contact_id \
), contact_ins AS ( \
    INSERT INTO contacts (id, tenant_id, display_name, created_at) \
    SELECT ($2::uuid[])[hrn], tenant_id, sender_name, $5 FROM new_handles \
    WHERE (($2::uuid[])[hrn] IN (SELECT contact_id FROM cc_ins)) IS TRUE \
), new_convs AS ( \
    SELECT crn, tenant_id, COALESCE(known_contact, ($2::uuid[])[hrn]) AS contact, \
        channel_id, max(occurred_at) AS last_at \
    FROM msg \
    WHERE stored_conv IS NULL AND open_conv IS NULL AND (known_contact IS NOT NULL \
        OR (($2::uuid[])[hrn] IN (SELECT contact_id FROM cc_ins)) IS TRUE) \
    GROUP BY crn, tenant_id, COALESCE(known_contact, ($2::uuid[])[hrn]), channel_id \
), conv_ins AS ( \
    INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, \
        last_message_at, created_at) \
    SELECT ($3::uuid[])[crn], tenant_id, contact, channel_id, 'open', last_at, $5 \
    FROM new_convs ORDER BY contact, channel_id \
    ON CONFLICT (contact_id, channel_id) WHERE status = 'open' DO NOTHING \
    RETURNING id \
), targets AS MATERIALIZED ( \
    SELECT toid, tid, id, tenant_id, channel_id, event_id, text, has_media, occurred_at, \
        CASE WHEN open_conv IS NOT NULL THEN open_conv \
            WHEN ($3::uuid[])[crn] IN (SELECT id FROM conv_ins) THEN ($3::uuid[])[crn] \
        END AS conv, \
        row_number() OVER () AS rn \
    FROM msg WHERE stored_conv IS NULL \
), msg_ins AS ( \
    INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
        has_media, provider_message_id, in_reply_to, triage, confidence, ai_decision_id, \
        delivery_status, created_at, stored_at) \
    SELECT ($4::uuid[])[rn], tenant_id, conv, channel_id, 'inbound', COALESCE(text, ''), \
        has_media, event_id, NULL, NULL, NULL, NULL, NULL, occurred_at, $5 \
    FROM targets WHERE conv IS NOT NULL \
), bump AS ( \
    UPDATE conversations c SET last_message_at = l.at \
    FROM (SELECT conv, max(occurred_at) AS at FROM targets WHERE conv IS NOT NULL \
          GROUP BY conv ORDER BY conv) l \
    WHERE c.id = l.conv AND (c.last_message_at IS NULL OR c.last_message_at < l.at) \
), mark AS ( \
    UPDATE webhook_events e SET routed_at = $5, conversation_id = d.conv \
    FROM (SELECT toid, tid, stored_conv AS conv FROM msg WHERE stored_conv IS NOT NULL \
          UNION ALL \
          SELECT toid, tid, conv FROM targets WHERE conv IS NOT NULL \
          UNION ALL \
          SELECT toid, tid, NULL FROM batch \
          WHERE kind = 'other' OR (kind = 'message' AND sender_id IS NULL)) d \
    WHERE e.ctid = d.tid AND e.tableoid = d.toid \
    RETURNING 1 \
) \
SELECT (SELECT count(*) FROM mark), \
    (SELECT count(*) FROM targets WHERE conv IS NOT NULL), \
    ARRAY(SELECT id FROM batch \
          WHERE kind IN ('status', 'comment', 'comment_reply', 'preference', 'moderation') \
          ORDER BY received_at, id), \
    ARRAY(SELECT id FROM targets WHERE conv IS NULL), \
    (SELECT count(*) FROM batch WHERE kind = 'moderation')";

/// `n` fresh time-ordered ids.
fn fresh_ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

/// Runs one pass over the events `source` names.
pub(super) async fn pass(
    conn: &mut PgConnection,
    source: Source<'_>,
    at: DateTime<Utc>,
) -> std::result::Result<Pass, sqlx::Error> {
    let (batch, size) = match source {
        Source::Unrouted { limit, .. } => (
            format!(
                "SELECT {COLUMNS} FROM webhook_events e \
                 WHERE e.routed_at IS NULL AND ($6::text IS NULL OR e.platform = $6) \
                 ORDER BY e.received_at, e.id LIMIT $7 \
                 FOR UPDATE SKIP LOCKED"
            ),
            usize::try_from(limit).unwrap_or(usize::MAX),
        ),
        Source::One { .. } => (
            format!(
                "SELECT {COLUMNS} FROM webhook_events e \
                 WHERE e.tenant_id = $6 AND e.id = $7 AND e.routed_at IS NULL \
                 FOR UPDATE"
            ),
            1,
        ),
        Source::Held(ids) => (
            format!(
                "SELECT {COLUMNS} FROM webhook_events e \
                 WHERE e.id = ANY($6) AND e.routed_at IS NULL \
                 FOR UPDATE"
            ),
            ids.len(),
        ),
    };
    let sql = format!("WITH batch AS MATERIALIZED ({batch} {PASS}");
    let query = sqlx::query_as::<_, (i64, i64, Vec<Uuid>, Vec<Uuid>, i64)>(&sql)
        .bind(fresh_ids(size))
        .bind(fresh_ids(size))
        .bind(fresh_ids(size))
        .bind(fresh_ids(size))
        .bind(at);
    let query = match source {
        Source::Unrouted { platform, limit } => query.bind(platform).bind(i64::from(limit)),
        Source::One { tenant, id } => query.bind(tenant).bind(id),
        Source::Held(ids) => query.bind(ids),
    };
    let (marked, messages, rest, unresolved, moderations) = query.fetch_one(conn).await?;
    Ok(Pass {
        marked: u64::try_from(marked).unwrap_or(0),
        messages: u64::try_from(messages).unwrap_or(0),
        rest,
        moderations: u64::try_from(moderations).unwrap_or(0),
        unresolved,
    })
}
