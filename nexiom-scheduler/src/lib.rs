//! Scheduling for Nexiom: the publish queue with leases and retries, comment
//! polling, KPI windows, the mission orchestrator and the worker runtime.
//!
//! It starts with the calendar arithmetic the cadences share: the 2-hour KPI
//! windows of a local day, with the daylight-saving rules of the design (a
//! boundary in a spring-forward gap moves to the first instant after the gap; an
//! ambiguous one takes the earlier instant).
//!
//! On top of them, the KPI worker step: [`aggregate_kpis`] recomputes every
//! tenant's windows of the last 48 hours (configurable in [`KpiConfig`]) and
//! upserts them on `(tenant, window_start)`; [`recent_kpis`] reads them beside
//! the same local windows 7 days earlier.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use nexiom_scheduler::kpi_windows;
//!
//! // 2026-03-29 in Paris: clocks jump from 02:00 to 03:00.
//! let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
//! let windows = kpi_windows(day, chrono_tz::Europe::Paris);
//! assert_eq!(windows.len(), 12);
//! let two_am = &windows[1];
//! assert_eq!(two_am.start, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
//! assert_eq!(two_am.end - two_am.start, chrono::Duration::hours(1));
//! ```
//!
//! The inbound pipeline (routing, triage, auto-replies, dry runs of rule sets,
//! the settings overview) is in [`inbound`].
#![forbid(unsafe_code)]

mod kpi;
mod missions;
mod windows;
pub mod inbound;

pub use kpi::{
    KpiComparison, KpiConfig, KpiRunSummary, LocalKpiWindow, TenantFailure, aggregate_kpis,
    aggregate_tenant_kpis, recent_kpis, recent_windows,
};
pub use missions::*;
pub use windows::{KpiWindow, kpi_windows, local_instant, window_containing};
