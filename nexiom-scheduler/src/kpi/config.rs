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
    /// How late (after its own time) an item may be stored and still be
    /// counted by an incremental run (default 1 hour): an incremental run
    /// reads the changes since its previous run minus this. Later arrivals
    /// (and replies withdrawn before they were sent) are counted by the next
    /// full recompute.
    pub lateness: Duration,
    /// How often the incremental worker recomputes the whole span instead
    /// (default 6 hours; its first run in a process is a full one).
    pub full_every: Duration,
    /// Whether the worker recomputes only the windows that changed
    /// ([`aggregate_kpis_incremental`](crate::aggregate_kpis_incremental),
    /// the default) or the whole span every run
    /// ([`aggregate_kpis`](crate::aggregate_kpis)).
    pub incremental: bool,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            interval: Duration::minutes(30),
            recompute_span: Duration::hours(48),
            comparison_days: 7,
            lateness: Duration::hours(1),
            full_every: Duration::hours(6),
            incremental: true,
        }
    }
}
