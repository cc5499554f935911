//! What the partition tests share: connections into a test schema, the
//! monthly partitions of a table, and the schema as it was before a
//! migration.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use nexiom_storage::conformance::{postgres_test_url, test_keys};
use nexiom_storage::{PgStore, Retained, RetentionStore};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

/// A connection (as the test database's owner) into `schema`.
pub async fn admin(schema: &str) -> PgConnection {
    let url = postgres_test_url().await.expect("a database");
    let options = PgConnectOptions::from_str(&url)
        .expect("a valid URL")
        .options([("search_path", schema)]);
    PgConnection::connect_with(&options).await.expect("connect")
}

/// A store on a small pool into `schema`.
pub async fn store_in(schema: &str) -> PgStore {
    let url = postgres_test_url().await.expect("a database");
    PgStore::from_pool(
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(
                PgConnectOptions::from_str(&url)
                    .unwrap()
                    .options([("search_path", schema)]),
            )
            .await
            .unwrap(),
    )
    .with_keys(test_keys())
}

/// The monthly partitions of `table`, sorted (`<table>_yYYYYmMM`).
pub async fn months(conn: &mut PgConnection, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = $1 \
           AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
           AND c.relname LIKE $1 || '_y%' ORDER BY 1",
    )
    .bind(table)
    .fetch_all(conn)
    .await
    .unwrap()
}

/// Noon UTC on that day.
pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

/// The names of the 13 months from November 2025 to November 2026.
pub fn thirteen_months(table: &str) -> Vec<String> {
    (0..13)
        .map(|m| {
            let (y, mo) = if m < 2 { (2025, 11 + m) } else { (2026, m - 1) };
            format!("{table}_y{y}m{mo:02}")
        })
        .collect()
}

/// A fresh schema holding the migrations before the one whose description
/// contains `before`; the pool into it and a connection outside it.
pub async fn schema_before(before: &str) -> Option<(String, PgPool, PgConnection)> {
    let url = postgres_test_url().await?;
    let schema = format!("nx_test_{}", uuid::Uuid::now_v7().simple());
    let options = PgConnectOptions::from_str(&url).unwrap();
    let mut root = PgConnection::connect_with(&options).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut root)
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    let full = PgStore::migrator();
    let version = full
        .iter()
        .find(|m| m.description.contains(before))
        .expect("the migration")
        .version;
    let mut earlier = PgStore::migrator();
    earlier.migrations = Cow::Owned(
        full.iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
    );
    earlier.run(&pool).await.unwrap();
    Some((schema, pool, root))
}

/// Drops the schema `schema_before` made.
pub async fn drop_schema(pool: PgPool, mut root: PgConnection, schema: &str) {
    pool.close().await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut root)
        .await
        .unwrap();
}

/// Purges `kind` before `cutoff` until a call removes less than a batch of
/// 100; how many in all.
pub async fn purge(store: &PgStore, kind: Retained, cutoff: DateTime<Utc>) -> u64 {
    let mut removed = 0;
    loop {
        let n = store.purge_before(kind, cutoff, 100).await.unwrap();
        removed += n;
        if n < 100 {
            return removed;
        }
    }
}
