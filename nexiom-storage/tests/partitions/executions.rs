//! Execution logs (migration 0022).

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{ExecutionOutcome, RunStatus};
use nexiom_storage::conformance::postgres_test_store;
use nexiom_storage::{OpsStore, PgStore, WorkerStore};

use super::support::{admin, at, drop_schema, months, schema_before, store_in, thirteen_months};

async fn log(store: &PgStore, started: DateTime<Utc>) {
    let run = store.start_execution("retention", started).await.unwrap();
    store
        .finish_execution(
            run.id,
            ExecutionOutcome {
                status: RunStatus::Completed,
                finished_at: started + Duration::seconds(1),
                items_processed: 1,
                items_failed: 0,
                results: serde_json::Value::Null,
                error: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn retention_drops_whole_months_and_keeps_the_window() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let mut conn = admin(&schema).await;
    let store = store_in(&schema).await;
    // Rows of 2020 land in the default partition; creating 2020-03 later
    // moves them into it (the webhook events' and messages' 2020-03 too).
    log(&store, at(2020, 3, 10)).await;
    log(&store, at(2020, 4, 10)).await;
    assert_eq!(
        store.prepare_partitions(at(2020, 3, 1), 0).await.unwrap(),
        3
    );
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM task_executions_default")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(in_default, 1, "the March row moved into its new partition");

    // 13 monthly partitions, November 2025 to November 2026, 3 rows each.
    store.prepare_partitions(at(2025, 11, 1), 12).await.unwrap();
    let mut month = at(2025, 11, 1);
    for _ in 0..13 {
        for day in [1, 10, 28] {
            log(&store, month + Duration::days(day - 1)).await;
        }
        month = month.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    let before = months(&mut conn, "task_executions").await;
    for name in thirteen_months("task_executions") {
        assert!(before.contains(&name), "{name} in {before:?}");
    }

    // Keep 6 months from 1 December 2026: the cutoff is 1 June 2026.
    let cutoff = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let kept_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_executions WHERE started_at >= $1")
            .bind(cutoff)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let deleted = store.delete_executions_before(cutoff).await.unwrap();
    let after = months(&mut conn, "task_executions").await;
    let dropped: Vec<&String> = before.iter().filter(|m| !after.contains(m)).collect();
    let dropped_2025_26 = dropped
        .iter()
        .filter(|m| m.as_str() >= "task_executions_y2025m11")
        .count();
    assert_eq!(dropped_2025_26, 7, "November 2025 to May 2026: {dropped:?}");
    assert!(
        dropped
            .iter()
            .all(|m| m.as_str() < "task_executions_y2026m06")
    );
    assert_eq!(
        deleted,
        7 * 3 + 2,
        "7 months of 3 rows, and the two 2020 rows"
    );
    let (total, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(started_at) FROM task_executions")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(total, kept_before, "every row inside the window is kept");
    assert!(oldest.unwrap() >= cutoff);
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn the_migration_keeps_every_row_of_an_unpartitioned_table() {
    let Some((schema, pool, root)) = schema_before("partition task executions").await else {
        return;
    };
    sqlx::query(
        "INSERT INTO task_executions (id, worker_name, status, started_at, finished_at, \
             duration_ms, items_processed, items_failed, results, error) \
         SELECT gen_random_uuid(), 'w' || (i % 7), 'completed', \
                now() - (i * interval '6 minutes'), now(), 1, i, 0, '{}'::jsonb, NULL \
         FROM generate_series(1, 100000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (rows, sum_items): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(items_processed)::bigint FROM task_executions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 100_000);

    // Every later migration, the partitioning included.
    PgStore::from_pool(pool.clone()).migrate().await.unwrap();
    let (after, sum_after, in_default): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(items_processed)::bigint, \
                (SELECT count(*) FROM task_executions_default) FROM task_executions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((after, sum_after), (rows, sum_items), "every row kept");
    assert_eq!(in_default, 0, "every row in its month");
    let partitioned: bool = sqlx::query_scalar(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = 'task_executions'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(partitioned);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        months(&mut conn, "task_executions").await.len() >= 9,
        "about 7 months of rows, and 3 ahead"
    );
    drop(conn);
    drop_schema(pool, root, &schema).await;
}
