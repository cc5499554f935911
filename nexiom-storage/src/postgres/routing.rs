//! Routing on Postgres, set-based: one transaction per call, a fixed handful of
//! statements whatever the number of events.
//!
//! 1. take the events: `FOR UPDATE SKIP LOCKED` (the batch) or `FOR UPDATE`
//!    (one event), so concurrent callers work on disjoint events;
//! 2. insert the missing contact channels, and a contact for each new one;
//! 3. open the missing conversations;
//! 4. insert the messages (`ON CONFLICT DO NOTHING`) and move each
//!    conversation's `last_message_at` with `GREATEST`; when a conversation was
//!    closed between 3 and 4 (a message found no open conversation), 3 and 4
//!    run again;
//! 5. record the posts comment events name that no post of their channel has
//!    (posts made elsewhere) as external posts, once per `(tenant, channel,
//!    platform post id)`; then apply the delivery statuses (the highest rank
//!    per message, which is what applying them one by one monotonically
//!    gives), insert the comments, and mark the events routed with their
//!    conversation.
//!
//! Every insert runs in key order, so two transactions take row locks in the
//! same order; a deadlock or serialization failure (which concurrent updates of
//! one conversation can still produce) rolls everything back and the call is
//! retried whole.
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
use crate::error::Result;

/// How many times a routing call is retried after a deadlock or a
/// serialization failure.
const ROUTE_ATTEMPTS: usize = 5;

/// How many times steps 3 and 4 run when conversations keep closing under them.
const CONVERSATION_ATTEMPTS: usize = 3;

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

/// The SQL rank of a delivery status column or value (NULL counts as
/// `pending`), the order of `DeliveryStatus::rank`.
fn rank(expr: &str) -> String {
    format!(
        "(CASE COALESCE({expr}, 'pending') WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 \
         WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END)"
    )
}

/// Message events that still need their message (the message key is free).
const NEEDS_MESSAGE: &str = "e.id = ANY($1) AND e.kind = 'message' AND e.sender_id IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM messages m \
         WHERE m.channel_id = e.channel_id AND m.provider_message_id = e.event_id)";

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
            other => return other.map_err(db),
        }
    }
}

/// A deadlock (40P01) or serialization failure (40001): the transaction was
/// rolled back and may simply run again.
fn retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// `n` fresh time-ordered ids.
fn fresh_ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

/// One attempt, in `tx` (a scan or a tenant's transaction; committed on
/// success).
async fn route_once(
    mut tx: Transaction<'static, Postgres>,
    pick: Pick<'_>,
    at: DateTime<Utc>,
) -> std::result::Result<RoutingReport, sqlx::Error> {
    let ids: Vec<Uuid> = match pick {
        Pick::Unrouted { platform, limit } => {
            sqlx::query_scalar(
                "SELECT id FROM webhook_events \
                 WHERE routed_at IS NULL AND ($1::text IS NULL OR platform = $1) \
                 ORDER BY received_at, id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(platform.map(Platform::as_str))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?
        }
        Pick::One { tenant, id } => {
            sqlx::query_scalar(
                "SELECT id FROM webhook_events \
                 WHERE tenant_id = $1 AND id = $2 AND routed_at IS NULL \
                 FOR UPDATE",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .fetch_all(&mut *tx)
            .await?
        }
    };
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(RoutingReport::default());
    }
    insert_contacts(&mut tx, &ids, at).await?;
    let mut messages_created = 0;
    for _ in 0..CONVERSATION_ATTEMPTS {
        open_conversations(&mut tx, &ids, at).await?;
        let (created, orphaned) = insert_messages(&mut tx, &ids, at).await?;
        messages_created += created;
        if orphaned == 0 {
            break;
        }
    }
    super::routing_broadcast::route_broadcast_events(&mut tx, &ids, at).await?;
    let external_posts_created = insert_external_posts(&mut tx, &ids, at).await?;
    let (comments_created, processed) = finish(&mut tx, &ids, at).await?;
    tx.commit().await?;
    Ok(RoutingReport {
        processed,
        messages_created,
        comments_created,
        external_posts_created,
    })
}

/// Step 2: the senders' contact channels, and a contact for each new one (named
/// after the sender of the handle's first event).
async fn insert_contacts(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(), sqlx::Error> {
    let sql = format!(
        "WITH src AS ( \
             SELECT DISTINCT ON (e.tenant_id, e.platform, e.sender_id) \
                 e.tenant_id, e.platform, e.sender_id, e.sender_name \
             FROM webhook_events e \
             WHERE {NEEDS_MESSAGE} \
             ORDER BY e.tenant_id, e.platform, e.sender_id, e.received_at, e.id \
         ), numbered AS ( \
             SELECT src.*, row_number() OVER (ORDER BY tenant_id, platform, sender_id) AS rn \
             FROM src \
         ), cc AS ( \
             INSERT INTO contact_channels (id, tenant_id, contact_id, platform, \
                 external_handle, created_at) \
             SELECT ($2::uuid[])[rn], tenant_id, ($3::uuid[])[rn], platform, sender_id, $4 \
             FROM numbered ORDER BY tenant_id, platform, sender_id \
             ON CONFLICT (tenant_id, platform, external_handle) DO NOTHING \
             RETURNING tenant_id, contact_id, platform, external_handle \
         ), contact AS ( \
             INSERT INTO contacts (id, tenant_id, display_name, created_at) \
             SELECT cc.contact_id, cc.tenant_id, n.sender_name, $4 \
             FROM cc JOIN numbered n ON n.tenant_id = cc.tenant_id \
                 AND n.platform = cc.platform AND n.sender_id = cc.external_handle \
         ) \
         SELECT count(*) FROM cc"
    );
    let _: i64 = sqlx::query_scalar(&sql)
        .bind(ids)
        .bind(fresh_ids(ids.len()))
        .bind(fresh_ids(ids.len()))
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Step 3: an open conversation for every (contact, channel) that needs one.
async fn open_conversations(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(), sqlx::Error> {
    let sql = format!(
        "WITH src AS ( \
             SELECT DISTINCT e.tenant_id, cc.contact_id, e.channel_id \
             FROM webhook_events e \
             JOIN contact_channels cc ON cc.tenant_id = e.tenant_id \
                 AND cc.platform = e.platform AND cc.external_handle = e.sender_id \
             WHERE {NEEDS_MESSAGE} \
         ), numbered AS ( \
             SELECT src.*, row_number() OVER (ORDER BY contact_id, channel_id) AS rn FROM src \
         ) \
         INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, \
             last_message_at, created_at) \
         SELECT ($2::uuid[])[rn], tenant_id, contact_id, channel_id, 'open', NULL, $3 \
         FROM numbered ORDER BY contact_id, channel_id \
         ON CONFLICT (contact_id, channel_id) WHERE status = 'open' DO NOTHING"
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(fresh_ids(ids.len()))
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Step 4: the messages, and `last_message_at`. Returns how many messages were
/// created and how many found no open conversation (closed meanwhile).
async fn insert_messages(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(u64, u64), sqlx::Error> {
    let sql = format!(
        "WITH src AS ( \
             SELECT e.tenant_id, e.channel_id, e.event_id AS pid, e.text, e.has_media, \
                 e.occurred_at, conv.id AS conversation_id \
             FROM webhook_events e \
             JOIN contact_channels cc ON cc.tenant_id = e.tenant_id \
                 AND cc.platform = e.platform AND cc.external_handle = e.sender_id \
             LEFT JOIN conversations conv ON conv.contact_id = cc.contact_id \
                 AND conv.channel_id = e.channel_id AND conv.status = 'open' \
             WHERE {NEEDS_MESSAGE} \
         ), numbered AS ( \
             SELECT src.*, row_number() OVER (ORDER BY channel_id, pid) AS rn \
             FROM src WHERE conversation_id IS NOT NULL \
         ), ins AS ( \
             INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, \
                 text, has_media, provider_message_id, in_reply_to, triage, confidence, \
                 ai_decision_id, delivery_status, created_at, stored_at) \
             SELECT ($2::uuid[])[rn], tenant_id, conversation_id, channel_id, 'inbound', \
                 COALESCE(text, ''), has_media, pid, NULL, NULL, NULL, NULL, NULL, \
                 occurred_at, $3 \
             FROM numbered ORDER BY channel_id, pid \
             ON CONFLICT DO NOTHING \
             RETURNING conversation_id, created_at \
         ), bump AS ( \
             UPDATE conversations c \
             SET last_message_at = GREATEST(c.last_message_at, latest.at) \
             FROM (SELECT conversation_id, max(created_at) AS at FROM ins \
                   GROUP BY conversation_id) latest \
             WHERE c.id = latest.conversation_id \
         ) \
         SELECT (SELECT count(*) FROM ins), \
             (SELECT count(*) FROM src WHERE conversation_id IS NULL)"
    );
    let (created, orphaned): (i64, i64) = sqlx::query_as(&sql)
        .bind(ids)
        .bind(fresh_ids(ids.len()))
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok((
        u64::try_from(created).unwrap_or(0),
        u64::try_from(orphaned).unwrap_or(0),
    ))
}

/// Step 5a: an external post for every post a comment event names that no
/// post of its channel has (a post made elsewhere), `published` at the time of
/// the first such event routed, not polled. A concurrent router creating the
/// same post wins; this insert then waits for it and skips the post (the
/// unique key on `(tenant_id, channel_id, platform_post_id)`), and step 5
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

/// Step 5: statuses, comments, and the events marked routed. Returns how many
/// comments were created and how many events were marked.
async fn finish(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(u64, u64), sqlx::Error> {
    let event_rank = rank("e.delivery_status");
    let message_rank = rank("m.delivery_status");
    let sql = format!(
        "WITH st AS ( \
             SELECT e.tenant_id, e.channel_id, e.target_id, max({event_rank}) AS r \
             FROM webhook_events e \
             WHERE e.id = ANY($1) AND e.kind = 'status' AND e.target_id IS NOT NULL \
                 AND e.delivery_status IS NOT NULL \
             GROUP BY e.tenant_id, e.channel_id, e.target_id \
         ), upd AS ( \
             UPDATE messages m SET delivery_status = (CASE st.r WHEN 0 THEN 'pending' \
                 WHEN 1 THEN 'sent' WHEN 2 THEN 'delivered' WHEN 3 THEN 'read' \
                 ELSE 'failed' END) \
             FROM st \
             WHERE m.tenant_id = st.tenant_id AND m.channel_id = st.channel_id \
                 AND m.provider_message_id = st.target_id AND m.direction = 'outbound' \
                 AND {message_rank} < st.r \
         ), cm_src AS ( \
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
                 WHEN e.kind = 'message' AND e.sender_id IS NOT NULL THEN ( \
                     SELECT m.conversation_id FROM messages m \
                     WHERE m.channel_id = e.channel_id AND m.provider_message_id = e.event_id \
                         AND m.tenant_id = e.tenant_id) \
                 WHEN e.kind = 'status' AND e.delivery_status IS NOT NULL THEN ( \
                     SELECT m.conversation_id FROM messages m \
                     WHERE m.channel_id = e.channel_id AND m.provider_message_id = e.target_id \
                         AND m.tenant_id = e.tenant_id AND m.direction = 'outbound') \
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
