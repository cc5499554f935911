//! Test stores for the conformance suite and for other crates' tests.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn skip_or_fail(reason: &str) -> Option<TestStore> {
    if under_ci() {
        panic!("{reason}; under CI=true the Postgres tests must run, so this is a failure");
    }
    eprintln!("skipping a Postgres test: {reason} (set DATABASE_URL to run it)");
    None
}

/// A fresh [`PgStore`] in a schema of its own (so tests run in parallel),
/// migrated, connected to `DATABASE_URL`.
///
/// Without `DATABASE_URL`, prints a notice and returns `None` (the test is
/// skipped) — unless `CI=true`, where a missing or unreachable database panics.
pub async fn postgres_test_store() -> Option<TestStore> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return skip_or_fail("DATABASE_URL is not set");
    };
    let options = match PgConnectOptions::from_str(&url) {
        Ok(o) => o,
        Err(e) => return skip_or_fail(&format!("DATABASE_URL is not a valid Postgres URL: {e}")),
    };
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => return skip_or_fail(&format!("cannot connect to DATABASE_URL: {e}")),
    };
    let schema = format!("nx_test_{}", uuid::Uuid::now_v7().simple());
    if let Err(e) = sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
    {
        return skip_or_fail(&format!("cannot create a test schema: {e}"));
    }
    let store =
        match PgStore::connect_with(options.options([("search_path", schema.as_str())]), 8).await {
            Ok(s) => s,
            Err(e) => return skip_or_fail(&format!("cannot connect the test store: {e}")),
        };
    if let Err(e) = store.migrate().await {
        panic!("migrations failed in schema {schema}: {e}");
    }
    Some(TestStore {
        store: Arc::new(store),
        cleanup: Some((admin, schema)),
    })
}
