//! [`aggregate_kpis_incremental`]: the KPI run whose cost follows what
//! arrived since the previous run, not the 48-hour span.

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use std::collections::BTreeSet;

use nexiom_core::{Clock, Kpi2h, KpiWindow, Tenant, TenantId};
use nexiom_storage::{Result, Store};
use tracing::{Instrument, info_span, warn};

use super::aggregate::{KpiRunSummary, TENANTS_AT_ONCE, TenantFailure};
use super::calendar::recent_windows;
use super::config::KpiConfig;

/// A quarter hour: the grain of [`KpiStore::kpi_activity`](nexiom_storage::KpiStore::kpi_activity).
const QUARTER: Duration = Duration::minutes(15);

/// Like [`aggregate_kpis`](super::aggregate_kpis), but per tenant only the
/// windows of the span whose facts changed since the tenant's previous run:
///
/// - the previous run's time is the newest `computed_at` of the tenant's rows
///   in the span (every run rewrites at least the window holding `now`); a
///   tenant with no row there gets the whole span;
/// - what changed is read with
///   [`KpiStore::kpi_activity`](nexiom_storage::KpiStore::kpi_activity) from
///   that time minus [`KpiConfig::lateness`] (items that arrive later than
///   that after their own time are left to the next full recompute);
/// - recomputed: the windows holding a changed instant, the windows of the
///   span without a row yet, and the window holding `now`, in one
///   [`recompute_kpis`](nexiom_storage::KpiStore::recompute_kpis) call (its
///   reads cover the rows inside those windows and the conversations they
///   belong to, not the span).
///
/// Eight tenants are handled at a time. The rows are those a full recompute gives for every change within the
/// lateness (checked by the tests on both backends).
pub async fn aggregate_kpis_incremental(
    store: &dyn Store,
    clock: &dyn Clock,
    config: &KpiConfig,
) -> Result<KpiRunSummary> {
    aggregate_kpis_incremental_except(store, clock, config, &BTreeSet::new()).await
}

/// [`aggregate_kpis_incremental`] for every tenant but those of `except`.
pub(super) async fn aggregate_kpis_incremental_except(
    store: &dyn Store,
    clock: &dyn Clock,
    config: &KpiConfig,
    except: &BTreeSet<TenantId>,
) -> Result<KpiRunSummary> {
    let now = clock.now();
    let mut listed = store.list_tenants().await?;
    listed.retain(|t| !except.contains(&t.id));
    let mut summary = KpiRunSummary::default();
    // A few tenants at a time: each is a few short statements, mostly
    // round trips.
    let outcomes: Vec<(Tenant, Option<Result<usize>>)> = futures_util::stream::iter(listed)
        .map(|tenant| async move {
            if crate::tenant_config::switched_off(store, tenant.id, super::AGGREGATE_KPIS).await {
                return (tenant, None);
            }
            let outcome = incremental_tenant(store, &tenant, now, config).await;
            (tenant, Some(outcome))
        })
        .buffered(TENANTS_AT_ONCE)
        .collect()
        .await;
    for (tenant, outcome) in outcomes {
        let Some(outcome) = outcome else { continue };
        match outcome {
            Ok(rows) => {
                summary.tenants_processed += 1;
                summary.rows_upserted += u64::try_from(rows).unwrap_or(u64::MAX);
            }
            Err(err) => {
                warn!(tenant_id = %tenant.id, error = %err, "incremental KPI run failed");
                summary.failures.push(TenantFailure {
                    tenant_id: tenant.id,
                    error: err.to_string(),
                });
            }
        }
    }
    Ok(summary)
}

async fn incremental_tenant(
    store: &dyn Store,
    tenant: &Tenant,
    now: DateTime<Utc>,
    config: &KpiConfig,
) -> Result<usize> {
    let windows: Vec<KpiWindow> = recent_windows(now, config.recompute_span, tenant.time_zone)
        .into_iter()
        .map(|w| w.window)
        .collect();
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Ok(0);
    };
    let stored = store.list_kpis(tenant.id, first.start, last.end).await?;
    // A row computed "in the future" (another host's clock ahead, a
    // recompute called with a later time) says nothing of when this worker
    // last ran: left out, it cannot hide what arrives until then.
    let previous = stored
        .iter()
        .map(|r| r.computed_at)
        .filter(|at| *at <= now)
        .max();
    let dirty: Vec<KpiWindow> = match previous {
        None => windows.clone(),
        Some(previous) => {
            let since = previous
                .checked_sub_signed(config.lateness)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let changed = store.kpi_activity(tenant.id, since).await?;
            select_windows(&windows, &stored, &changed, now)
        }
    };
    let span = info_span!(
        "kpi_incremental",
        tenant_id = %tenant.id,
        windows = dirty.len(),
        of = windows.len(),
    );
    Ok(store
        .recompute_kpis(tenant.id, &dirty, now)
        .instrument(span)
        .await?
        .len())
}

/// The windows to recompute, in order: those holding a changed quarter hour,
/// those without a stored row, and the one holding `now`.
fn select_windows(
    windows: &[KpiWindow],
    stored: &[Kpi2h],
    changed: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<KpiWindow> {
    windows
        .iter()
        .filter(|w| {
            w.contains(now)
                || !stored.iter().any(|r| r.window_start == w.start)
                // A quarter [q, q + 15 min) overlapping the window.
                || changed.iter().any(|q| *q < w.end && w.start < *q + QUARTER)
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 10, h, m, 0).unwrap()
    }

    fn w(h: u32) -> KpiWindow {
        KpiWindow {
            start: at(h, 0),
            end: at(h + 2, 0),
        }
    }

    #[test]
    fn windows_with_changes_without_rows_or_holding_now() {
        let windows = [w(0), w(2), w(4), w(6), w(8)];
        let row = |start: DateTime<Utc>| Kpi2h {
            tenant_id: nexiom_core::TenantId::generate(),
            window_start: start,
            window_end: start + Duration::hours(2),
            messages_count: 0,
            comments_count: 0,
            frt_p50_seconds: None,
            auto_reply_rate: None,
            escalate_count: 0,
            ignored_count: 0,
            posts_active: 0,
            computed_at: at(0, 0),
        };
        let stored: Vec<Kpi2h> = [at(0, 0), at(2, 0), at(4, 0), at(8, 0)]
            .into_iter()
            .map(row)
            .collect();
        // 01:45 lies in the first window only; now in the last.
        let picked = select_windows(&windows, &stored, &[at(1, 45)], at(9, 0));
        assert_eq!(picked, vec![w(0), w(6), w(8)]);
    }
}
