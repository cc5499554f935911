//! The KPI aggregation worker step and the KPI reads.
//!
//! [`aggregate_kpis`] is what the KPI worker runs every 30 minutes (by
//! default): for every tenant it recomputes the 2-hour windows of the last 48
//! hours in the tenant's time zone and upserts them on `(tenant,
//! window_start)` through [`KpiStore::recompute_kpis`](nexiom_storage::KpiStore::recompute_kpis)
//! (set-based SQL on Postgres), so running it twice changes nothing.
//! The worker runs [`aggregate_kpis_incremental`] by default: only the
//! windows whose facts changed since its previous run.
//! [`recent_kpis`] reads the last 48 hours of windows side by side with the same
//! windows 7 days earlier.

mod aggregate;
mod calendar;
mod config;
mod incremental;
mod report;
mod worker;

pub use aggregate::{KpiRunSummary, TenantFailure, aggregate_kpis, aggregate_tenant_kpis};
pub use calendar::{LocalKpiWindow, recent_windows};
pub use config::KpiConfig;
pub use incremental::aggregate_kpis_incremental;
pub use report::{KpiComparison, recent_kpis};
pub use worker::{AGGREGATE_KPIS, KpiWorker};
