//! [`PgStore`]: the PostgreSQL backend.
//!
//! One file per aggregate implements its trait; [`rows`] holds the row structs
//! and their conversion to entities, [`error`] the mapping of sqlx errors.
//!
//! How the contract is kept on Postgres:
//!
//! - **Unique keys are constraints.** Every unique key of the domain is a
//!   unique constraint or partial unique index of the schema, and
//!   insert-if-absent is `INSERT … ON CONFLICT … DO NOTHING RETURNING *`
//!   followed, only when nothing was inserted, by a read of the stored row. Two
//!   concurrent callers therefore never create two rows, and neither fails.
//! - **Tenant isolation is in the schema.** Children refer to parents through
//!   `(tenant_id, parent_id)` foreign keys, so no row can point at another
//!   tenant's row; a violated key becomes `UnknownReference`.
//! - **One statement per operation where possible** (CTEs for the composite
//!   writes), so each operation is atomic without explicit transactions and
//!   costs one round trip on its common path.
//! - **Tenant isolation is also enforced by the server.** Migration 0009 puts
//!   every tenant table under row-level security (`FORCE ROW LEVEL SECURITY`,
//!   policies keyed on the transaction's `nexiom.tenant_id` setting). Every
//!   tenant-scoped operation runs in a transaction that sets its tenant first
//!   ([`PgStore::scoped`]); the cross-tenant scans of the workers (claims,
//!   stale-lease release, unrouted events, polling lists, a webhook's channel
//!   by account) run on [`PgStore::with_scan_pool`]'s pool, which must connect
//!   as a member of `nexiom_worker` when the main pool connects as
//!   `nexiom_app`. See ARCHITECTURE.md, "Row-level security".
//! - **Runtime-checked queries only** (`sqlx::query*` functions, no macros), so
//!   the crate builds without a database.

mod api_key;
mod comment;
mod conversation;
mod dead_letter;
mod error;
mod event;
mod kpi;
mod mission;
mod post;
mod post_batch;
mod reply_queue;
mod routing;
mod rows;
mod rule;
mod settings;
mod tenant;
mod topic;
mod worker;

#[cfg(test)]
mod tests;

use nexiom_core::TenantId;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{Result, StorageError};

/// A transaction whose row-level security policies see one tenant.
pub(crate) type Scoped = Transaction<'static, Postgres>;

/// The store on PostgreSQL (15 or later), through an sqlx connection pool.
///
/// Many processes may share one database: every operation is atomic, unique
/// keys are enforced by the schema, and due posts are claimed with
/// `FOR UPDATE SKIP LOCKED`. Tables are never schema-qualified, so the store
/// lives in whatever schema the connections' `search_path` names; run
/// [`PgStore::migrate`] once to create or upgrade the tables there.
///
/// ```no_run
/// use nexiom_storage::{PgStore, TenantStore};
///
/// # async fn demo() -> nexiom_storage::Result<()> {
/// let store = PgStore::connect("postgres://postgres@127.0.0.1:5432/nexiom").await?;
/// store.migrate().await?;
/// let tenants = store.list_tenants().await?;
/// # let _ = tenants;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgStore {
    /// Tenant-scoped operations.
    pool: PgPool,
    /// The cross-tenant scans (the same pool unless [`PgStore::with_scan_pool`]).
    scan_pool: PgPool,
}

impl PgStore {
    /// Connects to `url` with a pool of 10 connections.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(error::db)?;
        Ok(PgStore::from_pool(pool))
    }

    /// Connects with `options` (for example a `search_path`) and a pool of
    /// `max_connections`.
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(error::db)?;
        Ok(PgStore::from_pool(pool))
    }

    /// Wraps an existing pool (used for every operation).
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            scan_pool: pool.clone(),
            pool,
        }
    }

    /// Runs the cross-tenant scans on `pool` instead: claims of due posts and
    /// replies, stale-lease release, unrouted events and routing, polling lists,
    /// the tenant list, a webhook's channel by account, dead letters without a
    /// tenant. With row-level security, the main pool may connect as a member
    /// of `nexiom_app` (it then sees only the tenant each operation sets) and
    /// this one as a member of `nexiom_worker`.
    pub fn with_scan_pool(mut self, pool: PgPool) -> Self {
        self.scan_pool = pool;
        self
    }

    /// The pool of tenant-scoped operations.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool of the cross-tenant scans.
    pub fn scan_pool(&self) -> &PgPool {
        &self.scan_pool
    }

    /// Begins a transaction on the main pool in which the row-level security
    /// policies see `tenant` (`BEGIN` and `set_config` in one round trip). Every
    /// tenant-scoped operation runs in one; commit it to keep its writes.
    pub(crate) async fn scoped(&self, tenant: TenantId) -> Result<Scoped> {
        // A UUID's text form is hex and dashes: nothing to escape.
        self.pool
            .begin_with(format!(
                "BEGIN; SELECT set_config('nexiom.tenant_id', '{}', true)",
                tenant.as_uuid()
            ))
            .await
            .map_err(error::db)
    }

    /// The embedded migrations (`nexiom-storage/migrations`), for callers that
    /// run them with their own tooling.
    pub fn migrator() -> Migrator {
        sqlx::migrate!("./migrations")
    }

    /// Creates or upgrades the schema in the connections' `search_path`
    /// (idempotent; concurrent callers are serialized by sqlx's advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        Self::migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Backend {
                message: format!("postgres: migrations failed: {e}"),
                source: Some(Box::new(e)),
            })
    }
}

/// How many times an insert-if-absent re-runs when the row it collided with
/// changed before it could be read (an open conversation closed meanwhile).
const INSERT_ATTEMPTS: usize = 3;

/// A `u32` limit as the `BIGINT` Postgres' `LIMIT` takes.
/// A time bound of a range query, clamped to what `timestamptz` can hold
/// (4713 BC to 294276 AD). Every stored instant is inside that range, so clamping
/// a bound never changes which rows match, and `DateTime::<Utc>::MIN_UTC` as a
/// "since the beginning" bound works as it does in memory.
fn bound(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{TimeZone, Utc};
    let min = Utc.with_ymd_and_hms(-4712, 1, 1, 0, 0, 0).single();
    let max = Utc.with_ymd_and_hms(294_275, 12, 31, 0, 0, 0).single();
    match (min, max) {
        (Some(min), _) if t < min => min,
        (_, Some(max)) if t > max => max,
        _ => t,
    }
}

fn limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// An optional `u32` limit (`None`: no limit, which `LIMIT NULL` means).
fn opt_limit(limit: Option<u32>) -> Option<i64> {
    limit.map(i64::from)
}
