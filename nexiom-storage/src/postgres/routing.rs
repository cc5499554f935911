//! Routing on Postgres, set-based: one transaction per call, a fixed handful of
//! statements whatever the number of events.
//!
//! 1. the one pass ([`super::routing_messages`]): one statement takes the
//!    events (at most 10,000 per call; `FOR UPDATE SKIP LOCKED` for a batch,
//!    `FOR UPDATE` for one
//!    event, so concurrent callers work on disjoint events) and routes the
//!    message events through contacts, conversations, messages and
//!    `last_message_at`, and marks them routed; the message events whose
//!    contact channel or conversation a concurrent router created meanwhile
//!    go through the pass again, in a new snapshot;
//! 2. only when the batch holds statuses, comments, preferences or
//!    moderations: the WhatsApp broadcast statuses and preferences
//!    ([`super::routing_broadcast`]; a settled broadcast post whose delivery
//!    turned out sent takes the account again), the posts comment events
//!    name that no post of their channel has (posts made elsewhere) recorded
//!    as external posts, once per `(tenant, channel, platform post id)`;
//!    then the comments, and those events marked routed; then, when the
//!    batch holds some, the moderations (comments hidden, shown again or
//!    removed on the platform) applied to the comments stored;
//! 3. every call: the delivery statuses (the highest rank per message, which
//!    is what applying them one by one monotonically gives), those whose
//!    message is not recorded yet kept for it, and the early statuses whose
//!    message arrived meanwhile applied ([`super::routing_early`]).
//!
//! Every insert that concurrent routers may share a key with runs in key
//! order, so two transactions take row locks in the same order; a deadlock,
//! a serialization failure (which concurrent updates of one conversation can
//! still produce) or a message stored meanwhile by another writer rolls
//! everything back and the call is retried whole.
//!
//! A batch of unrouted events is cross-tenant worker work and runs on the scan
//! pool; one event of a tenant runs in a transaction scoped to that tenant.

use chrono::{DateTime, Utc};
use nexiom_core::{Content, Platform, RoutingReport, TenantId, WebhookEventId};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::PgStore;
use super::error::db;
use super::routing_messages::{MAX_EVENTS, Source, pass};
use crate::error::Result;

/// How many times a routing call is retried after a deadlock, a
/// serialization failure or a message stored meanwhile by another writer.
const ROUTE_ATTEMPTS: usize = 5;

/// How many passes the message events whose contact channel or conversation
/// was created concurrently get within one call; those still left stay
/// unrouted, for a later call.
const PASS_ATTEMPTS: usize = 3;

/// Which events a call routes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pick<'a> {
    /// Up to `limit` unrouted events, oldest first, skipping locked ones.
    Unrouted {
        platform: Option<&'a Platform>,
        limit: u32,
    },
    /// One event of a tenant (waits for a concurrent router, then skips it).
    One {
        tenant: TenantId,
        id: WebhookEventId,
    },
}

/// The outbound messages (`m`) a delivery status event or group (`e`)
/// names, matched by the message key (channel and provider id). The tenant
/// is checked as a filter (`IS TRUE`), not as an index condition: before a
/// month's partition is analyzed, the planner otherwise walks the tenant's
/// outbound messages (about 0.5 ms per status at 4,000 of them) instead of
/// probing the key (`plan_tests`).
pub(super) const STATUS_MATCH: &str = "m.channel_id = e.channel_id AND m.provider_message_id = e.target_id \
     AND (m.tenant_id = e.tenant_id) IS TRUE AND m.direction = 'outbound'";

/// The conversation of the outbound message a status event `e` names. A
/// provider id is unique per channel and time only (messages are partitioned
/// by month), so the latest message holding it answers.
pub(super) fn status_target() -> String {
    format!(
        "SELECT m.conversation_id FROM messages m WHERE {STATUS_MATCH} \
         ORDER BY m.created_at DESC LIMIT 1"
    )
}

/// Routes the events `pick` names; retried whole on deadlocks.
pub(super) async fn route(
    store: &PgStore,
    pick: Pick<'_>,
    at: DateTime<Utc>,
) -> Result<RoutingReport> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tx = match pick {
            // A cross-tenant scan.
            Pick::Unrouted { .. } => store.scan_pool.begin().await.map_err(db)?,
            Pick::One { tenant, .. } => store.scoped(tenant).await?,
        };
        match route_once(tx, pick, at).await {
            Err(err) if attempt < ROUTE_ATTEMPTS && retryable(&err) => {
                tracing::debug!(attempt, error = %err, "routing retried");
            }
            other => return other.map_err(refused_or_db),
        }
    }
}

/// The error of a routing call: an integrity violation (SQLSTATE class 23:
/// a reference that is gone, such as a channel deleted by hand, or a row a
/// check refuses) is a refusal of the events, which will be refused again
/// (`UnknownReference` naming the entity of the constraint, or `Invalid`);
/// anything else maps as [`db`] does (a statement or lock timeout is
/// `Unavailable`, and [`is_timeout`](crate::StorageError::is_timeout)).
fn refused_or_db(err: sqlx::Error) -> crate::error::StorageError {
    use crate::error::StorageError;
    let Some(e) = err.as_database_error() else {
        return db(err);
    };
    let constraint = e.constraint().unwrap_or("").to_owned();
    match e.code().as_deref() {
        Some("23503") => {
            let entity = super::error::fk_entity(&constraint).unwrap_or("reference");
            StorageError::unknown(entity, format!("(constraint {constraint})"))
        }
        Some(code) if code.starts_with("23") && code != "23505" => {
            StorageError::Invalid(nexiom_core::CoreError::invalid(
                "event",
                format!("refused by the database while routing: {}", e.message()),
            ))
        }
        _ => db(err),
    }
}

/// A deadlock (40P01), a serialization failure (40001), or a message key
/// taken by another writer after the pass looked it up (23505 on
/// `uq_messages_provider`, which Postgres reports under the name of the
/// month's partition index, `messages_y…_channel_id_provider_message_id_…`):
/// the transaction was rolled back and may simply run again (the next attempt
/// finds the message stored).
fn retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| match e.code().as_deref() {
            Some("40P01" | "40001") => true,
            Some("23505") => e.constraint().is_some_and(is_message_key),
            _ => false,
        })
}

/// Whether `constraint` is the message key, on the partitioned table or on
/// one of its partitions.
fn is_message_key(constraint: &str) -> bool {
    constraint == "uq_messages_provider"
        || (constraint.starts_with("messages_") && constraint.contains("_provider_message_id"))
}

/// `n` fresh time-ordered ids.
fn fresh_ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

/// One attempt, in `tx` (a scan or a tenant's transaction): committed on
/// success, rolled back before returning on failure. A failed transaction
/// holds its row locks until it is rolled back, and a dropped one is rolled
/// back by a task the pool starts when the connection comes back: a retry
/// racing that task (here, or the caller's smaller batch after a timeout)
/// would skip the still-locked events and find nothing to route.
async fn route_once(
    mut tx: Transaction<'static, Postgres>,
    pick: Pick<'_>,
    at: DateTime<Utc>,
) -> std::result::Result<RoutingReport, sqlx::Error> {
    match route_in(&mut tx, pick, at).await {
        Ok(report) => {
            tx.commit().await?;
            Ok(report)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rolling back a failed routing call failed");
            }
            Err(err)
        }
    }
}

/// The work of one attempt, in `tx`, not committed.
async fn route_in(
    tx: &mut Transaction<'static, Postgres>,
    pick: Pick<'_>,
    at: DateTime<Utc>,
) -> std::result::Result<RoutingReport, sqlx::Error> {
    let source = match pick {
        Pick::Unrouted { platform, limit } => Source::Unrouted {
            platform: platform.map(Platform::as_str),
            limit: limit.min(MAX_EVENTS),
        },
        Pick::One { tenant, id } => Source::One {
            tenant: tenant.as_uuid(),
            id: id.as_uuid(),
        },
    };
    let first = pass(tx, source, at).await?;
    let mut report = RoutingReport {
        processed: first.marked,
        messages_created: first.messages,
        ..RoutingReport::default()
    };
    let mut unresolved = first.unresolved;
    for _ in 1..PASS_ATTEMPTS {
        if unresolved.is_empty() {
            break;
        }
        let again = pass(tx, Source::Held(&unresolved), at).await?;
        report.processed += again.marked;
        report.messages_created += again.messages;
        unresolved = again.unresolved;
    }
    let ids = first.rest;
    if !ids.is_empty() {
        super::routing_broadcast::route_broadcast_events(tx, &ids, at).await?;
        report.external_posts_created = insert_external_posts(tx, &ids, at).await?;
        let (comments_created, processed) = finish(tx, &ids, at).await?;
        report.comments_created = comments_created;
        report.processed += processed;
        if first.moderations > 0 {
            moderate(tx, &ids).await?;
        }
    }
    // Every call, a batch with no status too: the early statuses whose
    // message arrived meanwhile are applied, the stale ones dropped.
    super::routing_early::route_early_statuses(tx, &ids, at).await?;
    Ok(report)
}

/// Step 2a: an external post for every post a comment event names that no
/// post of its channel has (a post made elsewhere), `published` at the time of
/// the first such event routed, not polled. A concurrent router creating the
/// same post wins; this insert then waits for it and skips the post (the
/// unique key on `(tenant_id, channel_id, platform_post_id)`), and step 2b
/// (a later statement) sees it. Returns how many were created.
async fn insert_external_posts(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<u64, sqlx::Error> {
    let created: i64 = sqlx::query_scalar(
        "WITH src AS ( \
             SELECT DISTINCT ON (e.tenant_id, e.channel_id, e.target_id) \
                 e.tenant_id, e.channel_id, e.target_id, e.occurred_at \
             FROM webhook_events e \
             WHERE e.id = ANY($1) AND e.kind IN ('comment', 'comment_reply') \
                 AND e.target_id IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM scheduled_posts p \
                     WHERE p.tenant_id = e.tenant_id AND p.channel_id = e.channel_id \
                         AND p.platform_post_id = e.target_id) \
             ORDER BY e.tenant_id, e.channel_id, e.target_id, e.received_at, e.id \
         ), numbered AS ( \
             SELECT src.*, row_number() OVER (ORDER BY tenant_id, channel_id, target_id) AS rn \
             FROM src \
         ), ins AS ( \
             INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, \
                 status, origin, platform_post_id, retry_count, created_at, updated_at) \
             SELECT ($2::uuid[])[rn], tenant_id, channel_id, $4, occurred_at, 'published', \
                 'external', target_id, 0, $3, $3 \
             FROM numbered ORDER BY tenant_id, channel_id, target_id \
             ON CONFLICT (tenant_id, channel_id, platform_post_id) WHERE origin = 'external' \
                 DO NOTHING \
             RETURNING 1 \
         ) \
         SELECT count(*) FROM ins",
    )
    .bind(ids)
    .bind(fresh_ids(ids.len()))
    .bind(at)
    .bind(Json(Content::default()))
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(created).unwrap_or(0))
}

/// Step 2b: comments, and those events marked routed. Returns how many
/// comments were created and how many events were marked.
async fn finish(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(u64, u64), sqlx::Error> {
    let target = status_target();
    let sql = format!(
        "WITH cm_src AS ( \
             SELECT DISTINCT ON (e.id) e.tenant_id, p.id AS post_id, e.channel_id, \
                 e.event_id, e.parent_id, e.sender_id, e.sender_name, e.text, e.occurred_at \
             FROM webhook_events e \
             JOIN scheduled_posts p ON p.tenant_id = e.tenant_id \
                 AND p.channel_id = e.channel_id AND p.platform_post_id = e.target_id \
             WHERE e.id = ANY($1) AND e.kind IN ('comment', 'comment_reply') \
             ORDER BY e.id, p.created_at, p.id \
         ), cm_numbered AS ( \
             SELECT cm_src.*, row_number() OVER (ORDER BY post_id, event_id) AS rn FROM cm_src \
         ), cm AS ( \
             INSERT INTO comments (id, tenant_id, post_id, channel_id, platform_comment_id, \
                 parent_platform_comment_id, author_id, author_name, text, created_at, \
                 stored_at, triage, confidence, ai_decision_id, hidden) \
             SELECT ($2::uuid[])[rn], tenant_id, post_id, channel_id, event_id, parent_id, \
                 sender_id, sender_name, COALESCE(text, ''), occurred_at, $3, \
                 NULL, NULL, NULL, FALSE \
             FROM cm_numbered ORDER BY post_id, event_id \
             ON CONFLICT (post_id, platform_comment_id) DO NOTHING \
             RETURNING 1 \
         ), mark AS ( \
             UPDATE webhook_events e SET routed_at = $3, conversation_id = CASE \
                 WHEN e.kind = 'status' AND e.delivery_status IS NOT NULL THEN ( \
                     {target}) \
                 END \
             WHERE e.id = ANY($1) AND e.routed_at IS NULL \
             RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM cm), (SELECT count(*) FROM mark)"
    );
    let (comments, marked): (i64, i64) = sqlx::query_as(&sql)
        .bind(ids)
        .bind(fresh_ids(ids.len()))
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok((
        u64::try_from(comments).unwrap_or(0),
        u64::try_from(marked).unwrap_or(0),
    ))
}

/// Step 2c: comments hidden, shown again or removed on the platform (after
/// step 2b, so a comment and its moderation in one batch both count): the
/// stored comment, on any post of the channel with that platform id, takes
/// the latest moderation by the time it happened (`hide` and `remove` hide
/// it, `unhide` shows it), unless it has recorded a later one
/// (`moderated_at`: a router committing an older batch later, a
/// redelivery); a comment not stored is left alone. The comments are locked
/// in id order.
async fn moderate(conn: &mut PgConnection, ids: &[Uuid]) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "WITH m AS ( \
             SELECT DISTINCT ON (p.id, e.parent_id) p.id AS post_id, e.tenant_id, \
                 e.parent_id AS comment, e.text <> 'unhide' AS hidden, e.occurred_at AS at \
             FROM webhook_events e \
             JOIN scheduled_posts p ON p.tenant_id = e.tenant_id \
                 AND p.channel_id = e.channel_id AND p.platform_post_id = e.target_id \
             WHERE e.id = ANY($1) AND e.kind = 'moderation' \
                 AND e.text IN ('hide', 'unhide', 'remove') AND e.parent_id IS NOT NULL \
             ORDER BY p.id, e.parent_id, e.occurred_at DESC, e.received_at DESC, e.id DESC \
         ), target AS ( \
             SELECT c.id, m.hidden, m.at \
             FROM comments c JOIN m ON c.tenant_id = m.tenant_id AND c.post_id = m.post_id \
                 AND c.platform_comment_id = m.comment \
             ORDER BY c.id \
             FOR NO KEY UPDATE OF c \
         ) \
         UPDATE comments c SET hidden = t.hidden, moderated_at = t.at \
         FROM target t \
         WHERE c.id = t.id AND (c.moderated_at IS NULL OR c.moderated_at <= t.at)",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}
