//! Routing on Postgres, delivery statuses (after the broadcast step), with
//! those that arrive before their message's provider id is recorded
//! (migration 0040): one statement at the end of every routing call, in one
//! snapshot, so a message whose id a sender commits at any moment of the
//! call is either seen (and its status applied) or not (and its status
//! kept):
//!
//! - the batch's statuses move their outbound messages forward (the highest
//!   per message, which is what applying them one by one gives);
//! - a status whose key no outbound message holds, and that no broadcast
//!   delivery matches (by message id or by the delivery id it echoes), is
//!   kept in `early_statuses`, the highest per key; the row trigger on
//!   `messages` applies it when an outbound message of the tenant gets that
//!   key;
//! - the early statuses first kept in the last [`SWEEP_MINUTES`] whose
//!   message is stored by now are applied (forward only) and removed: a
//!   writer and a router running at the same moment each miss the other's
//!   uncommitted row, and this is where such a status lands (every call runs
//!   this, a batch with nothing to route too, so a quiet routing worker still
//!   applies it at its next tick);
//! - those first kept more than [`KEPT_HOURS`] ago are removed (statuses of
//!   messages another tool sent on the same number: no message of this
//!   library will claim them), at most [`STALE_BATCH`] a call.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::routing::STATUS_MATCH;
use super::routing_broadcast::UUID_TEXT;

/// How far back each call looks for early statuses whose message arrived.
pub(super) const SWEEP_MINUTES: i64 = 10;

/// How long an early status waits for its message.
pub(super) const KEPT_HOURS: i64 = 24;

/// The most stale early statuses one call removes.
const STALE_BATCH: i64 = 1_000;

/// Applies the statuses of the events `ids` (those of other kinds are
/// skipped), keeps, applies and expires early statuses (see the module
/// docs); returns how many statuses were kept.
pub(super) async fn route_early_statuses(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<u64, sqlx::Error> {
    let sql = format!(
        "WITH st AS ( \
             SELECT e.tenant_id, e.channel_id, e.target_id, e.platform, \
                 CASE WHEN e.platform = 'whatsapp' \
                     AND e.payload->>'biz_opaque_callback_data' ~ $3 \
                     THEN (e.payload->>'biz_opaque_callback_data')::uuid END AS reference, \
                 max(nexiom_delivery_rank(e.delivery_status)) AS r \
             FROM webhook_events e \
             WHERE e.id = ANY($1) AND e.kind = 'status' AND e.target_id IS NOT NULL \
                 AND e.delivery_status IS NOT NULL \
             GROUP BY 1, 2, 3, 4, 5 \
         ), applied AS ( \
             UPDATE messages m SET delivery_status = (CASE e.r WHEN 0 THEN 'pending' \
                 WHEN 1 THEN 'sent' WHEN 2 THEN 'delivered' WHEN 3 THEN 'read' \
                 ELSE 'failed' END) \
             FROM (SELECT tenant_id, channel_id, target_id, max(r) AS r FROM st \
                   GROUP BY 1, 2, 3) e \
             WHERE {STATUS_MATCH} AND nexiom_delivery_rank(m.delivery_status) < e.r \
         ), orphan AS ( \
             SELECT e.tenant_id, e.channel_id, e.target_id, max(e.r) AS r FROM st e \
             WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE {STATUS_MATCH}) \
                 AND NOT EXISTS (SELECT 1 FROM broadcast_deliveries d \
                     WHERE d.tenant_id = e.tenant_id \
                         AND (d.provider_message_id = e.target_id OR d.id = e.reference)) \
             GROUP BY 1, 2, 3 \
         ), kept AS ( \
             INSERT INTO early_statuses AS k (tenant_id, channel_id, provider_message_id, \
                 delivery_status, kept_at) \
             SELECT tenant_id, channel_id, target_id, (CASE r WHEN 0 THEN 'pending' \
                 WHEN 1 THEN 'sent' WHEN 2 THEN 'delivered' WHEN 3 THEN 'read' \
                 ELSE 'failed' END), $2 \
             FROM orphan ORDER BY channel_id, target_id \
             ON CONFLICT (channel_id, provider_message_id) DO UPDATE SET \
                 delivery_status = CASE WHEN nexiom_delivery_rank(EXCLUDED.delivery_status) \
                     > nexiom_delivery_rank(k.delivery_status) \
                     THEN EXCLUDED.delivery_status ELSE k.delivery_status END \
             RETURNING 1 \
         ), arrived AS ( \
             DELETE FROM early_statuses s \
             WHERE s.kept_at >= $2 - make_interval(mins => $4) \
                 AND EXISTS (SELECT 1 FROM messages m WHERE m.channel_id = s.channel_id \
                     AND m.provider_message_id = s.provider_message_id \
                     AND (m.tenant_id = s.tenant_id) IS TRUE AND m.direction = 'outbound') \
             RETURNING s.tenant_id, s.channel_id, s.provider_message_id, s.delivery_status \
         ), swept AS ( \
             UPDATE messages m SET delivery_status = a.delivery_status \
             FROM arrived a \
             WHERE m.channel_id = a.channel_id AND m.provider_message_id = a.provider_message_id \
                 AND (m.tenant_id = a.tenant_id) IS TRUE AND m.direction = 'outbound' \
                 AND nexiom_delivery_rank(m.delivery_status) \
                     < nexiom_delivery_rank(a.delivery_status) \
         ), stale AS ( \
             DELETE FROM early_statuses WHERE ctid = ANY(ARRAY( \
                 SELECT ctid FROM early_statuses \
                 WHERE kept_at < $2 - make_interval(hours => $5) LIMIT $6)) \
         ) \
         SELECT count(*) FROM kept"
    );
    let kept: i64 = sqlx::query_scalar(&sql)
        .bind(ids)
        .bind(at)
        .bind(UUID_TEXT)
        .bind(i32::try_from(SWEEP_MINUTES).unwrap_or(i32::MAX))
        .bind(i32::try_from(KEPT_HOURS).unwrap_or(i32::MAX))
        .bind(STALE_BATCH)
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(kept).unwrap_or(0))
}
