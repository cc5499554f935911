//! Routing on Postgres, the WhatsApp broadcast part (one more step of the
//! routing transaction, before the events are marked routed):
//!
//! - status events update the broadcast delivery they name, by message id or
//!   by the delivery id the message carried (`biz_opaque_callback_data`):
//!   the highest status of the batch per delivery, forward only, and a
//!   delivery in doubt becomes `sent` when any status of the batch says it
//!   went out (`sent`, `delivered`, `read`; a `failed` beside them does not
//!   undo that, as applying them one by one does not); a post already
//!   settled whose delivery turned out sent takes its deliveries' account
//!   again (see `resettle_broadcasts`);
//! - preference events (`stop` / `resume` of marketing messages) update the
//!   sender's opt-in on the event's channel, one by one in the batch's order
//!   (they are rare), each unless the contact has a later change.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::broadcast::APPLY_OPT_CHANGE;
use super::broadcast_delivery::resettle_broadcasts;
use crate::outbox::OUTCOME_UNKNOWN_PREFIX;

/// A UUID's text form (what a delivery id echoed by the platform looks like).
pub(super) const UUID_TEXT: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A phone number or wa_id, as `validate_recipient` accepts it.
const RECIPIENT_TEXT: &str = "^\\+?[0-9]{1,20}$";

/// Applies the batch's WhatsApp statuses and preferences (see the module docs).
pub(super) async fn route_broadcast_events(
    conn: &mut PgConnection,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(), sqlx::Error> {
    let rank = |expr: &str| {
        format!(
            "(CASE COALESCE({expr}, 'pending') WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 \
             WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END)"
        )
    };
    let statuses = format!(
        "WITH st AS ( \
             SELECT e.tenant_id, e.target_id AS wamid, \
                 CASE WHEN e.payload->>'biz_opaque_callback_data' ~ $4 \
                     THEN (e.payload->>'biz_opaque_callback_data')::uuid END AS reference, \
                 max({event_rank}) AS r, \
                 bool_or({event_rank} BETWEEN 1 AND 3) AS out \
             FROM webhook_events e \
             WHERE e.id = ANY($1) AND e.kind = 'status' AND e.platform = 'whatsapp' \
                 AND e.target_id IS NOT NULL AND e.delivery_status IS NOT NULL \
             GROUP BY 1, 2, 3 \
         ), hit AS ( \
             SELECT d.id, (array_agg(st.wamid ORDER BY st.out DESC, st.r DESC))[1] AS wamid, \
                 max(st.r) AS r, \
                 bool_or(st.out) AND (d.state = 'sending' \
                     OR (d.state = 'failed' AND starts_with(d.error, $3))) AS went_out \
             FROM st JOIN broadcast_deliveries d ON d.tenant_id = st.tenant_id \
                 AND (d.provider_message_id = st.wamid OR d.id = st.reference) \
             GROUP BY d.id, d.state, d.error \
         ) \
         UPDATE broadcast_deliveries d SET \
             state = CASE WHEN hit.went_out THEN 'sent' ELSE d.state END, \
             error = CASE WHEN hit.went_out THEN NULL ELSE d.error END, \
             provider_message_id = CASE WHEN hit.went_out THEN hit.wamid \
                 ELSE d.provider_message_id END, \
             delivery_status = CASE \
                 WHEN d.delivery_status IS NULL \
                     OR (d.delivery_status <> 'failed' AND hit.r > {delivery_rank}) \
                 THEN (CASE hit.r WHEN 0 THEN 'pending' WHEN 1 THEN 'sent' \
                     WHEN 2 THEN 'delivered' WHEN 3 THEN 'read' ELSE 'failed' END) \
                 ELSE d.delivery_status END, \
             updated_at = $2 \
         FROM hit WHERE d.id = hit.id \
         RETURNING d.post_id, hit.went_out",
        event_rank = rank("e.delivery_status"),
        delivery_rank = rank("d.delivery_status"),
    );
    let updated: Vec<(Uuid, bool)> = sqlx::query_as(&statuses)
        .bind(ids)
        .bind(at)
        .bind(OUTCOME_UNKNOWN_PREFIX)
        .bind(UUID_TEXT)
        .fetch_all(&mut *conn)
        .await?;
    // Deliveries that turned out sent: their posts, if settled, take the
    // account again.
    let mut posts: Vec<Uuid> = updated
        .into_iter()
        .filter_map(|(post, went_out)| went_out.then_some(post))
        .collect();
    posts.sort_unstable();
    posts.dedup();
    if !posts.is_empty() {
        resettle_broadcasts(&mut *conn, &posts, at).await?;
    }
    // Preferences are rare: applied one by one in the batch's order (the
    // order memory routes them in), each under the "latest change wins" rule.
    let preferences: Vec<(Uuid, Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tenant_id, channel_id, ltrim(sender_id, '+'), text, occurred_at \
         FROM webhook_events \
         WHERE id = ANY($1) AND kind = 'preference' AND text IN ('stop', 'resume') \
             AND sender_id ~ $2 \
         ORDER BY received_at, id",
    )
    .bind(ids)
    .bind(RECIPIENT_TEXT)
    .fetch_all(&mut *conn)
    .await?;
    for (tenant, channel, recipient, value, occurred_at) in preferences {
        sqlx::query(APPLY_OPT_CHANGE)
            .bind(Uuid::now_v7())
            .bind(tenant)
            .bind(channel)
            .bind(recipient)
            .bind(value == "resume")
            .bind(format!("whatsapp: {value}"))
            .bind(occurred_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
