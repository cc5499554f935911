//! [`KpiConfig`]: the KPI worker's settings.

use chrono::Duration;

/// How the KPI worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiConfig {
    /// How often the worker runs (default 30 minutes).
    pub interval: Duration,
    /// How far back each run recomputes: every window that ends after
    /// `now - recompute_span` and has started by `now` (default 48 hours).
    /// Reads cover the same span.
    pub recompute_span: Duration,
    /// How many local days back the comparison windows lie (default 7).
    pub comparison_days: u32,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            interval: Duration::minutes(30),
            recompute_span: Duration::hours(48),
            comparison_days: 7,
        }
    }
}
