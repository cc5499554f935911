//! No partition is read directly by the application roles: a deployment
//! whose default privileges gave them the partitions (here granted by hand
//! before migration 0039), and the execution logs' months that migration
//! 0022 made readable, have those grants revoked by it.

use nexiom_storage::PgStore;

use super::support::{drop_schema, schema_before};

/// The partitions of the schema that `nexiom_app`, `nexiom_worker` or
/// PUBLIC may read.
async fn readable(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relispartition AND c.relkind IN ('r', 'p') \
           AND (has_table_privilege('nexiom_app', c.oid, 'SELECT') \
                OR has_table_privilege('nexiom_worker', c.oid, 'SELECT') \
                OR has_table_privilege('public', c.oid, 'SELECT')) \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn no_partition_is_readable_by_the_application_roles() {
    let Some((schema, pool, root)) = schema_before("maintenance locks").await else {
        return;
    };
    // What `ALTER DEFAULT PRIVILEGES … GRANT SELECT ON TABLES TO nexiom_app`
    // gave the default partitions, and PUBLIC an older month.
    for grant in [
        "GRANT SELECT ON messages_default TO nexiom_app",
        "GRANT SELECT ON webhook_events_default TO nexiom_app, nexiom_worker",
        "GRANT SELECT ON task_executions_default TO PUBLIC",
    ] {
        sqlx::query(grant).execute(&pool).await.unwrap();
    }
    let before = readable(&pool).await;
    for granted in [
        "messages_default",
        "task_executions_default",
        "webhook_events_default",
    ] {
        assert!(before.iter().any(|t| t == granted), "{before:?}");
    }
    // Migration 0022 made the execution logs' months without a revoke:
    // readable too.
    assert!(
        before.iter().any(|t| t.starts_with("task_executions_y")),
        "{before:?}"
    );
    PgStore::from_pool(pool.clone()).migrate().await.unwrap();
    assert_eq!(readable(&pool).await, Vec::<String>::new());
    drop_schema(pool, root, &schema).await;
}
