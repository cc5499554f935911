//! The statistics of the partitioned tables as a whole (migration 0037),
//! which autovacuum never gathers.

use chrono::Duration;
use nexiom_core::{MessageDirection, Platform};
use nexiom_storage::conformance::{
    conversation, new_message as message, postgres_test_store, world,
};
use nexiom_storage::{ConversationStore, OpsStore};
use sqlx::PgConnection;

use super::support::{admin, at, store_in};

/// How many inherited statistics rows `table` has.
async fn inherited(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stats \
         WHERE schemaname = current_schema() AND tablename = $1 AND inherited",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn refreshing_statistics_analyzes_each_partitioned_table_as_a_whole() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let mut conn = admin(&schema).await;
    let store = store_in(&schema).await;
    let w = world(&store, "Acme", Platform::WhatsApp, "pn-statistics").await;
    let (_, conv) = conversation(&store, &w, "33600000011").await;
    store.prepare_partitions(at(2026, 1, 1), 2).await.unwrap();
    // Messages in two months, so the table as a whole spans two partitions.
    for i in 0..40 {
        let t = at(2026, 1, 20) + Duration::days(i);
        store
            .insert_message(message(
                w.tenant.id,
                conv.id,
                MessageDirection::Inbound,
                Some(&format!("wamid.stat.{i}")),
                t,
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        inherited(&mut conn, "messages").await,
        0,
        "nothing gathered the table's own statistics yet"
    );

    assert_eq!(store.refresh_statistics().await.unwrap(), 3);
    assert!(inherited(&mut conn, "messages").await > 0);
    let analyzed: Option<i64> = sqlx::query_scalar(
        "SELECT reltuples::int8 FROM pg_class \
         WHERE relname = 'messages_y2026m02' \
           AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    assert!(
        analyzed.is_some_and(|n| n > 0),
        "its partitions are analyzed too: {analyzed:?}"
    );

    // The worker role may run it (it runs with the schema owner's rights),
    // on the partitioned tables only.
    sqlx::query("SET ROLE nexiom_worker")
        .execute(&mut conn)
        .await
        .unwrap();
    let done: bool = sqlx::query_scalar("SELECT nexiom_analyze_partitioned('webhook_events')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(done);
    let refused = sqlx::query_scalar::<_, bool>("SELECT nexiom_analyze_partitioned('tenants')")
        .fetch_one(&mut conn)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not a partitioned table"),
        "{refused}"
    );
    sqlx::query("RESET ROLE").execute(&mut conn).await.unwrap();
    test.cleanup().await;
}
