//! 2-hour KPI rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// 2-hour KPI rows.
#[async_trait]
pub trait KpiStore: Send + Sync {
    /// Inserts the row or replaces the one stored under `(tenant, window_start)`.
    async fn upsert_kpi(&self, row: Kpi2h) -> Result<Kpi2h>;
    /// Computes the tenant's rows for `windows` from its stored messages,
    /// comments and decisions, by the rules of [`nexiom_core::compute_kpis`]
    /// (which the result must equal, bit for bit), and upserts each on
    /// `(tenant, window_start)` stamped `computed_at`, in one atomic step.
    /// Returns the rows in the order of `windows`.
    ///
    /// Every window of the list gets a row, zeros and `None`s when nothing
    /// happened in it. Running it again over unchanged data writes the same
    /// values (only `computed_at` follows the call). `Invalid("windows")` unless
    /// the windows pass [`KpiWindow::validate_list`] (sorted, non-overlapping,
    /// each ending after it starts); `UnknownReference("tenant")` for an unknown
    /// tenant, even with no windows.
    ///
    /// On Postgres this is set-based SQL (one statement; `percentile_cont` for
    /// the median): no row is loaded into the process.
    ///
    /// Two calls covering one tenant run one after the other (on Postgres a
    /// transaction-level lock per tenant, one of 64 shared by a hash of the
    /// tenant's id, taken before the statement reads;
    /// in memory the store's lock), so the rows left stored are computed
    /// from data at least as recent as any earlier call saw: a slow call
    /// never overwrites a faster, later one's rows with older figures.
    async fn recompute_kpis(
        &self,
        tenant: TenantId,
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
    /// [`KpiStore::recompute_kpis`] for several tenants sharing the same
    /// windows (tenants of one time zone), in one atomic step: on Postgres one
    /// statement over all of them (a cross-tenant scan), which reads each
    /// table once instead of once per tenant. Returns the rows by tenant (in
    /// the order of `tenants`), then by window. `UnknownReference("tenant")`
    /// when one is unknown (nothing written).
    async fn recompute_kpis_for(
        &self,
        tenants: &[TenantId],
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
    /// When the tenant's KPI facts changed since `since`, as the starts of
    /// the quarter hours (UTC, `:00`, `:15`, `:30`, `:45`; every time zone's
    /// 2-hour windows are made of whole quarter hours) that hold the
    /// `created_at` of: a message or comment created at or after `since`; an
    /// item whose decision was made at or after `since`; the message that
    /// follows, in its conversation, a message created at or after `since`
    /// (its reply-time rule reads the one before it); and the inbound
    /// messages a reply created at or after `since` answers (those after the
    /// conversation's previous reply). Sorted, distinct. Recomputing every
    /// window that holds one of them (and no other) brings the KPI rows up to
    /// date for everything created at or after `since`.
    /// `UnknownReference("tenant")` for an unknown tenant.
    async fn kpi_activity(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>>;
    /// The tenant's rows with `from <= window_start < to`, newest first.
    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
}
