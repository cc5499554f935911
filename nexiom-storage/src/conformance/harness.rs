//! Test stores for the conformance suite and for other crates' tests.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::secrets::{KeyId, KeyProvider, SealingKey, StaticKeys};
use crate::{MemoryStore, PgStore, Store};

/// A store made for one test, plus what to clean up afterwards.
pub struct TestStore {
    store: Arc<dyn Store>,
    cleanup: Option<(sqlx::PgPool, String)>,
}

impl TestStore {
    /// The store, as the rest of the family holds it.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The PostgreSQL schema this store lives in, for a Postgres test store.
    pub fn schema(&self) -> Option<&str> {
        self.cleanup.as_ref().map(|(_, schema)| schema.as_str())
    }

    /// Drops what the test created (the Postgres schema). Call it at the end of a
    /// passing test; a failing test leaves its schema behind for inspection.
    pub async fn cleanup(self) {
        if let Some((admin, schema)) = self.cleanup {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// A fresh, empty [`MemoryStore`]. Never skips.
pub async fn memory_test_store() -> Option<TestStore> {
    Some(TestStore {
        store: Arc::new(MemoryStore::new()),
        cleanup: None,
    })
}

/// Where the Postgres tests run when `DATABASE_URL` is not set: the local
/// server's `postgres` database, used to create [`LOCAL_TEST_DATABASE`].
pub const LOCAL_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The database created on the local server for tests when `DATABASE_URL` is
/// not set.
pub const LOCAL_TEST_DATABASE: &str = "nexiom_test";

/// The Postgres URL the tests use: `DATABASE_URL` when set, else the
/// [`LOCAL_TEST_DATABASE`] on the local server (created when missing).
///
/// # Panics
/// When no database can be reached although this build expects one (see
/// [`postgres_test_store`]).
pub async fn postgres_test_url() -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect(LOCAL_SERVER_URL)
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            return unavailable(&format!(
                "DATABASE_URL is not set and no server answers at {LOCAL_SERVER_URL}: {e}"
            ));
        }
    };
    let exists: Result<bool, _> =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(LOCAL_TEST_DATABASE)
            .fetch_one(&admin)
            .await;
    if let Ok(false) = exists
        && let Err(e) = sqlx::query(&format!("CREATE DATABASE \"{LOCAL_TEST_DATABASE}\""))
            .execute(&admin)
            .await
    {
        // Tests start in parallel: another one may have created it meanwhile.
        let raced = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == "42P04" || code == "23505");
        if !raced {
            admin.close().await;
            return unavailable(&format!(
                "cannot create database {LOCAL_TEST_DATABASE}: {e}"
            ));
        }
    }
    admin.close().await;
    Some(format!(
        "postgres://postgres@127.0.0.1:5432/{LOCAL_TEST_DATABASE}"
    ))
}

/// No database to test on. When the build found none either (cfg
/// `nexiom_no_postgres`, set by this crate's build script outside `CI=true`),
/// the Postgres tests are marked ignored and a direct caller gets `None`;
/// otherwise the build promised a database and its absence is a failure, never
/// a silent pass.
fn unavailable(reason: &str) -> Option<String> {
    if cfg!(nexiom_no_postgres) {
        eprintln!("no PostgreSQL to test on: {reason}");
        return None;
    }
    panic!(
        "{reason}. PostgreSQL was expected (DATABASE_URL set, CI=true, or a server on \
         127.0.0.1:5432 when the tests were built); start it, or unset DATABASE_URL and \
         `touch nexiom-storage/build.rs` to mark the Postgres tests ignored"
    );
}

/// A fresh [`PgStore`] in a schema of its own (so tests run in parallel),
/// migrated, on the database of [`postgres_test_url`].
///
/// `None` only in a build without PostgreSQL (cfg `nexiom_no_postgres`), where
/// the Postgres tests are marked `#[ignore]` so `cargo test` reports them as
/// ignored. In every other build an unreachable database panics: a Postgres test
/// either runs or fails, it is never counted as passed without running.
pub async fn postgres_test_store() -> Option<TestStore> {
    postgres_store_as(None).await
}

/// Like [`postgres_test_store`], with row-level security in force: the
/// tenant-scoped operations run as role `nexiom_app` (each sees only the
/// tenant it sets) and the cross-tenant scans as role `nexiom_worker`, on a
/// second pool ([`PgStore::with_scan_pool`]). The suite's superuser would
/// otherwise bypass every policy.
pub async fn postgres_app_role_store() -> Option<TestStore> {
    postgres_store_as(Some(("nexiom_app", "nexiom_worker"))).await
}

/// Like [`postgres_test_store`], every operation running as role
/// `nexiom_worker` (row-level security in force, its policy admitting every
/// tenant).
pub async fn postgres_worker_role_store() -> Option<TestStore> {
    postgres_store_as(Some(("nexiom_worker", "nexiom_worker"))).await
}

/// The test process's sealing key (random, made once per process), so every
/// test store and every extra `PgStore` a test opens on the same schema
/// (`PgStore::connect_with(..).with_keys(test_keys())`) seal and open tokens
/// alike, as processes sharing `NEXIOM_SECRET_KEYS` do in production.
pub fn test_keys() -> Arc<dyn KeyProvider> {
    static KEYS: std::sync::OnceLock<Arc<StaticKeys>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let id = KeyId::new("test").unwrap_or_else(|e| panic!("{e}"));
        Arc::new(StaticKeys::new(id, SealingKey::generate()))
    });
    Arc::clone(keys) as Arc<dyn KeyProvider>
}

/// A pool on `options` whose connections run `SET ROLE role`.
async fn pool_as(options: PgConnectOptions, role: &'static str, size: u32) -> sqlx::PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, format!("SET ROLE {role}").as_str()).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await;
    match pool {
        Ok(pool) => pool,
        Err(e) => panic!("cannot connect as role {role}: {e}"),
    }
}

/// A migrated store in a fresh schema; with `roles` = (tenant-scoped role,
/// scan role), its pools connect as those roles after the migration.
async fn postgres_store_as(roles: Option<(&'static str, &'static str)>) -> Option<TestStore> {
    let url = postgres_test_url().await?;
    let options = match PgConnectOptions::from_str(&url) {
        Ok(o) => o,
        Err(e) => panic!("DATABASE_URL is not a valid Postgres URL: {e}"),
    };
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            let _ = unavailable(&format!("cannot connect to {url}: {e}"));
            return None;
        }
    };
    let schema = format!("nx_test_{}", uuid::Uuid::now_v7().simple());
    if let Err(e) = sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
    {
        panic!("cannot create a test schema: {e}");
    }
    let schema_options = options.options([("search_path", schema.as_str())]);
    let store = match PgStore::connect_with(schema_options.clone(), 8).await {
        Ok(s) => s.with_keys(test_keys()),
        Err(e) => panic!("cannot connect the test store: {e}"),
    };
    if let Err(e) = store.migrate().await {
        panic!("migrations failed in schema {schema}: {e}");
    }
    let store = match roles {
        None => store,
        Some((scoped, scans)) => {
            store.pool().close().await;
            let pool = pool_as(schema_options.clone(), scoped, 6).await;
            let scan_pool = pool_as(schema_options, scans, 4).await;
            PgStore::from_pool(pool)
                .with_scan_pool(scan_pool)
                .with_keys(test_keys())
        }
    };
    Some(TestStore {
        store: Arc::new(store),
        cleanup: Some((admin, schema)),
    })
}
