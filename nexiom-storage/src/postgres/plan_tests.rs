//! Plans that must hold before the planner has statistics: messages are
//! partitioned by month, autovacuum never analyzes the partitioned table
//! itself, and a new month's partition fills before it is first analyzed. A
//! fresh schema is that state.

use sqlx::Row;
use uuid::Uuid;

use super::routing::status_target;
use super::tests::{drop_schema, open_conversation, store, t0, tenant_and_channel};

/// The plan of `sql` (with the schema on the search path), as text.
async fn plan(admin: &sqlx::PgPool, schema: &str, sql: &str) -> String {
    let mut tx = admin.begin().await.expect("begin");
    sqlx::query(&format!("SET LOCAL search_path = \"{schema}\""))
        .execute(&mut *tx)
        .await
        .expect("search path");
    let rows = sqlx::query(&format!("EXPLAIN {sql}"))
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh schema holding 4,000 inbound messages of one tenant, each
/// answered by an outbound one with a provider id (`wamid.out.<n>`): the
/// shape of a busy auto-reply queue, one statement each so nothing analyzes
/// between. Returns the store's admin pool, schema, tenant and channel.
async fn busy_tenant() -> Option<(sqlx::PgPool, String, Uuid, Uuid)> {
    let (store, admin, schema) = store().await?;
    let (tenant, channel) = tenant_and_channel(&store, "pn-plan").await;
    let conversation = open_conversation(&store, &tenant, &channel, "33600000000").await;
    for (direction, reply, pid, source) in [
        (
            "inbound",
            "NULL",
            "NULL",
            "generate_series(1, 4000) AS g(n)",
        ),
        (
            "outbound",
            "i.id",
            "'wamid.out.' || row_number() OVER ()",
            "messages i",
        ),
    ] {
        let sql = format!(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
                 has_media, provider_message_id, in_reply_to, created_at, stored_at) \
             SELECT gen_random_uuid(), $1, $2, $3, '{direction}', 'text', FALSE, {pid}, \
                 {reply}, $4::timestamptz + interval '1 second', $4::timestamptz \
             FROM {source}"
        );
        let mut tx = admin.begin().await.expect("begin");
        sqlx::query(&format!("SET LOCAL search_path = \"{schema}\""))
            .execute(&mut *tx)
            .await
            .expect("search path");
        sqlx::query(&sql)
            .bind(tenant.id.as_uuid())
            .bind(conversation.id.as_uuid())
            .bind(channel.id.as_uuid())
            .bind(t0())
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    Some((admin, schema, tenant.id.as_uuid(), channel.id.as_uuid()))
}

#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn an_existing_reply_is_found_by_its_index_before_any_statistics() {
    let Some((admin, schema, tenant, _)) = busy_tenant().await else {
        return;
    };
    let answered = Uuid::now_v7();
    // The lookups of the reply batches (contexts, settlements, withdrawn
    // claims): one reply by the tenant and the message it answers.
    let found = plan(
        &admin,
        &schema,
        &format!(
            "SELECT delivery_status FROM messages r WHERE r.tenant_id = '{tenant}' \
             AND r.direction = 'outbound' AND r.in_reply_to = '{answered}'"
        ),
    )
    .await;
    assert!(
        found.contains("in_reply_to_tenant_id_idx"),
        "the reply lookup should probe ix_messages_in_reply_to:\n{found}"
    );
    assert!(
        !found.contains("Filter: (in_reply_to"),
        "the reply lookup should not filter the tenant's replies:\n{found}"
    );
    drop_schema(admin, schema).await;
}

#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_delivery_status_finds_its_message_by_the_key_before_any_statistics() {
    let Some((admin, schema, tenant, channel)) = busy_tenant().await else {
        return;
    };
    // Routing's lookup of the message a status event names (`e`); the
    // statuses' update matches its messages with the same condition.
    let found = plan(
        &admin,
        &schema,
        &format!(
            "SELECT ({}) FROM (VALUES ('{tenant}'::uuid, '{channel}'::uuid, \
             'wamid.out.7'::text)) AS e(tenant_id, channel_id, target_id)",
            status_target()
        ),
    )
    .await;
    assert!(
        found.contains("provider_message_id_created_at_key"),
        "the status lookup should probe the message key:\n{found}"
    );
    assert!(
        !found.contains("Index Cond: (tenant_id"),
        "the status lookup should not walk the tenant's messages:\n{found}"
    );
    drop_schema(admin, schema).await;
}
