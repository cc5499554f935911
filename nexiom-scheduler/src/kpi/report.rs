//! [`recent_kpis`]: the last 48 hours of windows beside the same windows a
//! week earlier.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexiom_core::{Kpi2h, KpiWindow, TenantId};
use nexiom_storage::{Result, Store};

use super::calendar::{LocalKpiWindow, recent_windows};
use super::config::KpiConfig;

/// One recent window and the same local window `comparison_days` earlier.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiComparison {
    /// The recent window.
    pub window: LocalKpiWindow,
    /// Its stored row, if it was ever computed.
    pub current: Option<Kpi2h>,
    /// The same local window `comparison_days` earlier (same local date offset
    /// and index, so a daylight-saving change in between does not shift it).
    pub earlier_window: LocalKpiWindow,
    /// Its stored row, if any.
    pub earlier: Option<Kpi2h>,
}

/// The tenant's windows of the last `config.recompute_span` before `now`,
/// oldest first, each with its stored row and the row of the same window
/// `config.comparison_days` earlier. Two range reads.
pub async fn recent_kpis(
    store: &dyn Store,
    tenant: TenantId,
    now: DateTime<Utc>,
    config: &KpiConfig,
) -> Result<Vec<KpiComparison>> {
    let tz = store.get_tenant(tenant).await?.time_zone;
    let pairs: Vec<(LocalKpiWindow, LocalKpiWindow)> =
        recent_windows(now, config.recompute_span, tz)
            .into_iter()
            .filter_map(|w| Some((w, w.days_earlier(config.comparison_days, tz)?)))
            .collect();
    let mut current = rows_by_start(store, tenant, pairs.iter().map(|p| p.0.window)).await?;
    let mut earlier = rows_by_start(store, tenant, pairs.iter().map(|p| p.1.window)).await?;
    Ok(pairs
        .into_iter()
        .map(|(w, e)| KpiComparison {
            current: current.remove(&w.window.start),
            earlier: earlier.remove(&e.window.start),
            window: w,
            earlier_window: e,
        })
        .collect())
}

/// The tenant's stored rows from the first window's start to the last one's
/// end (one read), by `window_start`.
async fn rows_by_start(
    store: &dyn Store,
    tenant: TenantId,
    windows: impl Iterator<Item = KpiWindow>,
) -> Result<HashMap<DateTime<Utc>, Kpi2h>> {
    let windows: Vec<KpiWindow> = windows.collect();
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Ok(HashMap::new());
    };
    let rows = store.list_kpis(tenant, first.start, last.end).await?;
    Ok(rows.into_iter().map(|r| (r.window_start, r)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone};
    use nexiom_core::*;
    use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store};

    use super::*;

    fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
    }

    fn row(tenant: TenantId, start: DateTime<Utc>, end: DateTime<Utc>, messages: i64) -> Kpi2h {
        Kpi2h {
            tenant_id: tenant,
            window_start: start,
            window_end: end,
            messages_count: messages,
            comments_count: 0,
            frt_p50_seconds: None,
            auto_reply_rate: None,
            escalate_count: 0,
            ignored_count: 0,
            posts_active: 0,
            computed_at: start,
        }
    }

    #[tokio::test]
    async fn reads_pair_each_window_with_the_same_local_window_a_week_earlier_on_memory() {
        reads_pair_each_window_with_the_same_local_window_a_week_earlier(memory_test_store().await)
            .await;
    }

    #[tokio::test]
    #[cfg_attr(
        nexiom_no_postgres,
        ignore = "no PostgreSQL reachable (see README: Tests)"
    )]
    async fn reads_pair_each_window_with_the_same_local_window_a_week_earlier_on_postgres() {
        reads_pair_each_window_with_the_same_local_window_a_week_earlier(
            postgres_test_store().await,
        )
        .await;
    }

    async fn reads_pair_each_window_with_the_same_local_window_a_week_earlier(
        test_store: Option<TestStore>,
    ) {
        let Some(test_store) = test_store else { return };
        {
            let store = test_store.store();
            let s = &*store;
            let tenant = s
                .create_tenant(NewTenant::new("Acme", utc(1, 1, 0)))
                .await
                .unwrap();
            // Now: 2026-04-05 02:30 UTC (04:30 CEST). The 02:00 window of the
            // 5th (00:00–02:00 UTC) pairs with the 1-hour one of 2026-03-29
            // (01:00–02:00 UTC), not with 00:00 UTC a week earlier.
            let now = utc(4, 5, 2) + Duration::minutes(30);
            s.upsert_kpi(row(tenant.id, utc(4, 5, 0), utc(4, 5, 2), 4))
                .await
                .unwrap();
            s.upsert_kpi(row(tenant.id, utc(3, 29, 1), utc(3, 29, 2), 9))
                .await
                .unwrap();
            s.upsert_kpi(row(tenant.id, utc(3, 28, 23), utc(3, 29, 1), 5))
                .await
                .unwrap();
            let config = KpiConfig::default();
            let report = recent_kpis(s, tenant.id, now, &config).await.unwrap();
            assert_eq!(report.len(), 25);
            assert!(
                report
                    .windows(2)
                    .all(|p| p[0].window.window.start < p[1].window.window.start)
            );
            let two_am = report
                .iter()
                .find(|c| c.window.window.start == utc(4, 5, 0))
                .unwrap();
            assert_eq!(two_am.current.as_ref().unwrap().messages_count, 4);
            assert_eq!(two_am.earlier_window.window.start, utc(3, 29, 1));
            assert_eq!(two_am.earlier.as_ref().unwrap().messages_count, 9);
            let midnight = report
                .iter()
                .find(|c| c.window.window.start == utc(4, 4, 22))
                .unwrap();
            assert_eq!(midnight.current, None);
            assert_eq!(midnight.earlier.as_ref().unwrap().messages_count, 5);
            assert_eq!(
                report.iter().filter(|c| c.current.is_some()).count(),
                1,
                "rows outside the span are not read"
            );
            assert!(matches!(
                recent_kpis(s, TenantId::generate(), now, &config).await,
                Err(nexiom_storage::StorageError::NotFound { .. })
            ));
            test_store.cleanup().await;
        }
    }
}
