//! Postgres-only KPI checks: two recomputations of one tenant at once.

use chrono::Duration;
use nexiom_core::*;

use super::tests::{drop_schema, open_conversation, store, t0, tenant_and_channel};
use crate::KpiStore;

/// A recomputation that starts while another one of the same tenant is in
/// flight waits for it, and reads what was committed meanwhile: here the
/// transaction in flight holds the tenant's KPI lock, as a recomputation
/// does, and a message not yet committed. Without the lock the second call
/// read a snapshot without the message, and a slower run started earlier
/// could overwrite a later run's rows with such older figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_recompute_waits_for_one_in_flight_and_reads_what_it_committed() {
    let Some((store, admin, schema)) = store().await else {
        return;
    };
    let (tenant, channel) = tenant_and_channel(&store, "pn-kpi").await;
    let conversation = open_conversation(&store, &tenant, &channel, "33600000021").await;
    let mut other = store.pool().begin().await.expect("begin");
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended( \
             'nexiom:kpi:' || (hashtext($1::text) & ($2 - 1))::text, 0))",
    )
    .bind(tenant.id.as_uuid())
    .bind(super::kpi::KPI_LOCKS)
    .execute(&mut *other)
    .await
    .expect("the other run's lock");
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
             has_media, provider_message_id, created_at, stored_at) \
         VALUES ($1, $2, $3, $4, 'inbound', 'Bonjour', false, 'wamid.kpi', $5, $5)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant.id.as_uuid())
    .bind(conversation.id.as_uuid())
    .bind(channel.id.as_uuid())
    .bind(t0() + Duration::minutes(10))
    .execute(&mut *other)
    .await
    .expect("a message not yet committed");
    let window = KpiWindow {
        start: t0(),
        end: t0() + Duration::hours(2),
    };
    let at = t0() + Duration::hours(3);
    let recompute = {
        let store = store.clone();
        tokio::spawn(async move { store.recompute_kpis(tenant.id, &[window], at).await })
    };
    // The recomputation waits on the lock; then the other run commits.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!recompute.is_finished(), "it waits for the run in flight");
    other.commit().await.expect("commit");
    let rows = recompute.await.expect("join").expect("recomputed");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].messages_count, 1, "it read the committed message");
    let stored = store
        .list_kpis(tenant.id, window.start, window.end)
        .await
        .expect("list");
    assert_eq!(stored, rows);
    drop_schema(admin, schema).await;
}
