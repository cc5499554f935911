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
//!   writes), inside the transaction that sets the tenant: a tenant-scoped
//!   operation costs three round trips on its common path (`BEGIN` with the
//!   tenant, the statement, `COMMIT`), a batch of cross-tenant work one per
//!   statement.
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

mod agent_reply;
mod api_key;
mod broadcast;
mod broadcast_delivery;
mod broadcast_rows;
mod comment;
mod conversation;
mod credentials;
mod dead_letter;
mod error;
mod event;
mod event_batch;
mod external_post;
mod inbox;
mod inbox_list;
mod kpi;
mod kpi_sql;
mod message_keys;
mod mission;
mod ops;
mod outbox;
mod outbox_endpoints;
mod poll_batch;
mod post;
mod post_batch;
mod post_claim;
mod post_replace;
mod reply_batch;
mod reply_claim;
mod reply_queue;
mod reply_settle;
mod retention;
mod routing;
mod routing_broadcast;
mod routing_early;
mod routing_messages;
mod rows;
mod rule;
mod secrets;
mod settings;
mod tenant;
mod tenant_settings;
mod topic;
mod worker;

#[cfg(test)]
mod kpi_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod tests;

use nexiom_core::TenantId;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{Result, StorageError};
use crate::secrets::{EnvKeyProvider, KeyProvider, Sealer};

pub use secrets::{RotationReport, UnreadableSecret};

/// A transaction whose row-level security policies see one tenant.
pub(crate) type Scoped = Transaction<'static, Postgres>;

/// Whether `table` (a constant table name) holds the tenant's row `id`, read
/// in the tenant's transaction.
pub(super) async fn row_exists(
    tx: &mut Scoped,
    table: &'static str,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<bool> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2)"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_one(&mut **tx)
    .await
    .map_err(error::db)
}

/// `NotFound(entity)` unless `table` holds the tenant's row `id`.
pub(super) async fn require_row(
    tx: &mut Scoped,
    table: &'static str,
    entity: &'static str,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<()> {
    if row_exists(tx, table, tenant, id).await? {
        Ok(())
    } else {
        Err(StorageError::not_found(entity, id))
    }
}

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
    /// Seals tokens and setting values before they are written.
    sealer: Option<Sealer>,
}

impl PgStore {
    /// Connects to `url` with a pool of 10 connections. When the environment
    /// variable `NEXIOM_SECRET_KEYS` is set, its keys seal secrets (see
    /// [`EnvKeyProvider`]); otherwise give keys with [`PgStore::with_keys`]
    /// before storing a token.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(error::db)?;
        PgStore::from_pool(pool).with_env_keys()
    }

    /// Connects with `options` (for example a `search_path`) and a pool of
    /// `max_connections`; keys as [`PgStore::connect`].
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(error::db)?;
        PgStore::from_pool(pool).with_env_keys()
    }

    /// Wraps an existing pool (used for every operation), with no keys.
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            scan_pool: pool.clone(),
            pool,
            sealer: None,
        }
    }

    /// Seals access tokens, refresh tokens and setting values with `keys`
    /// before they are written, and opens them when read. Without keys, a
    /// write that carries a secret is refused ([`StorageError::Secret`]):
    /// plain text never reaches the database.
    pub fn with_keys(mut self, keys: std::sync::Arc<dyn KeyProvider>) -> Self {
        self.sealer = Some(Sealer::new(keys));
        self
    }

    /// [`PgStore::with_keys`] with [`EnvKeyProvider`] when its variable is set.
    fn with_env_keys(self) -> Result<Self> {
        if std::env::var_os(EnvKeyProvider::VARIABLE).is_none() {
            return Ok(self);
        }
        let keys = EnvKeyProvider::from_env()?;
        Ok(self.with_keys(std::sync::Arc::new(keys)))
    }

    /// Runs the cross-tenant work on `pool` instead: claims of due posts and
    /// replies, lease heartbeats, batched run starts and settlements (keyed by
    /// lease owner), stale-lease release, the settlement of abandoned agent
    /// replies, unrouted events and batch routing,
    /// polling lists, polling claims and their batched write-backs (keyed by
    /// claim), the reply queue's batched contexts, claims and settlements
    /// (keyed by item and lease), the tenant list, a webhook's channel by account, dead
    /// letters without a tenant, the read of a row holding a cross-tenant
    /// unique key (an event id, a dead letter's key), key rotation, the check
    /// that a topic id is not another tenant's, embedding batches that mix
    /// tenants. With row-level security, the main pool may connect as a member
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
        self.scoped_with(tenant, "").await
    }

    /// [`PgStore::scoped`] with transaction modes (`SET TRANSACTION` may not
    /// follow the query that sets the tenant, so they go in the `BEGIN`).
    pub(crate) async fn scoped_with(
        &self,
        tenant: TenantId,
        modes: &'static str,
    ) -> Result<Scoped> {
        // A UUID's text form is hex and dashes: nothing to escape.
        self.pool
            .begin_with(format!(
                "BEGIN {modes}; SELECT set_config('nexiom.tenant_id', '{}', true)",
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
    /// With keys, it then seals any secret still stored as plain text
    /// ([`PgStore::seal_plaintext_secrets`]).
    pub async fn migrate(&self) -> Result<()> {
        Self::migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Backend {
                message: format!("postgres: migrations failed: {e}"),
                source: Some(Box::new(e)),
            })?;
        if self.sealer.is_some() {
            self.seal_plaintext_secrets(secrets::DEFAULT_BATCH).await?;
        }
        Ok(())
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
