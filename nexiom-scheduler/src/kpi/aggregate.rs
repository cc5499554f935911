//! [`aggregate_kpis`]: one run of the KPI worker.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use nexiom_core::{Clock, KpiWindow, Tenant, TenantId};
use nexiom_storage::{Result, Store};
use tracing::{Instrument, info_span, warn};

use super::calendar::recent_windows;
use super::config::KpiConfig;

/// Tenants handled at once.
pub(super) const TENANTS_AT_ONCE: usize = 8;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiRunSummary {
    /// Tenants whose windows were recomputed.
    pub tenants_processed: u64,
    /// Rows upserted (windows × tenants).
    pub rows_upserted: u64,
    /// Tenants whose recomputation failed; the others were still processed.
    pub failures: Vec<TenantFailure>,
}

/// A tenant whose windows could not be recomputed in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantFailure {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Why, as the storage error reads.
    pub error: String,
}

/// One run of the KPI worker at `clock.now()`: for every tenant, the windows of
/// the last `config.recompute_span` in the tenant's time zone
/// ([`recent_windows`](super::recent_windows)) are recomputed and upserted.
///
/// A tenant whose settings switch `aggregate_kpis` off
/// ([`TenantSettings::workers`](nexiom_core::TenantSettings)) is skipped.
///
/// The tenants of one time zone share their windows and are recomputed
/// together ([`KpiStore::recompute_kpis_for`](nexiom_storage::KpiStore::recompute_kpis_for):
/// on Postgres one statement that reads each table once for all of them).
///
/// Idempotent: a second run over unchanged data writes the same metrics. A
/// zone whose recomputation fails reports each of its tenants in
/// [`KpiRunSummary::failures`] and never stops the other zones; only failing
/// to list the tenants fails the run.
pub async fn aggregate_kpis(
    store: &dyn Store,
    clock: &dyn Clock,
    config: &KpiConfig,
) -> Result<KpiRunSummary> {
    let now = clock.now();
    let mut summary = KpiRunSummary::default();
    // Tenants of one time zone share their windows: one statement each.
    let mut by_zone: BTreeMap<String, (chrono_tz::Tz, Vec<TenantId>)> = BTreeMap::new();
    // Each tenant's switch is a read of its settings: several at once.
    let tenants: Vec<_> = futures_util::stream::iter(store.list_tenants().await?)
        .map(|tenant| async move {
            let off =
                crate::tenant_config::switched_off(store, tenant.id, super::AGGREGATE_KPIS).await;
            (tenant, off)
        })
        .buffered(TENANTS_AT_ONCE)
        .collect()
        .await;
    for (tenant, off) in tenants {
        if off {
            continue;
        }
        by_zone
            .entry(tenant.time_zone.name().to_owned())
            .or_insert_with(|| (tenant.time_zone, Vec::new()))
            .1
            .push(tenant.id);
    }
    for (zone, (tz, tenants)) in by_zone {
        let windows: Vec<KpiWindow> = recent_windows(now, config.recompute_span, tz)
            .into_iter()
            .map(|w| w.window)
            .collect();
        let span = info_span!(
            "kpi_recompute",
            zone,
            tenants = tenants.len(),
            windows = windows.len()
        );
        match store
            .recompute_kpis_for(&tenants, &windows, now)
            .instrument(span)
            .await
        {
            Ok(rows) => {
                summary.tenants_processed += tenants.len() as u64;
                summary.rows_upserted += u64::try_from(rows.len()).unwrap_or(u64::MAX);
            }
            Err(err) => {
                warn!(zone, error = %err, "KPI recomputation failed");
                for tenant_id in tenants {
                    summary.failures.push(TenantFailure {
                        tenant_id,
                        error: err.to_string(),
                    });
                }
            }
        }
    }
    Ok(summary)
}

/// [`aggregate_kpis`] for the tenants of `only`, one tenant at a time (so
/// that one failing tenant does not fail the others of its zone), a few at
/// once.
pub(super) async fn aggregate_kpis_each(
    store: &dyn Store,
    clock: &dyn Clock,
    config: &KpiConfig,
    only: &BTreeSet<TenantId>,
) -> Result<KpiRunSummary> {
    let now = clock.now();
    let mut listed = store.list_tenants().await?;
    listed.retain(|t| only.contains(&t.id));
    let outcomes: Vec<(TenantId, Option<Result<usize>>)> = futures_util::stream::iter(listed)
        .map(|tenant| async move {
            if crate::tenant_config::switched_off(store, tenant.id, super::AGGREGATE_KPIS).await {
                return (tenant.id, None);
            }
            let outcome = aggregate_tenant_kpis(store, &tenant, now, config).await;
            (tenant.id, Some(outcome))
        })
        .buffered(TENANTS_AT_ONCE)
        .collect()
        .await;
    let mut summary = KpiRunSummary::default();
    for (tenant_id, outcome) in outcomes {
        match outcome {
            None => {}
            Some(Ok(rows)) => {
                summary.tenants_processed += 1;
                summary.rows_upserted += u64::try_from(rows).unwrap_or(u64::MAX);
            }
            Some(Err(err)) => {
                warn!(%tenant_id, error = %err, "KPI recomputation failed");
                summary.failures.push(TenantFailure {
                    tenant_id,
                    error: err.to_string(),
                });
            }
        }
    }
    Ok(summary)
}

/// Recomputes `tenant`'s windows of the last `config.recompute_span` before
/// `now` and returns how many rows were upserted.
pub async fn aggregate_tenant_kpis(
    store: &dyn Store,
    tenant: &Tenant,
    now: DateTime<Utc>,
    config: &KpiConfig,
) -> Result<usize> {
    let windows: Vec<KpiWindow> = recent_windows(now, config.recompute_span, tenant.time_zone)
        .into_iter()
        .map(|w| w.window)
        .collect();
    let span = info_span!(
        "kpi_recompute",
        tenant_id = %tenant.id,
        windows = windows.len(),
        from = ?windows.first().map(|w| w.start),
    );
    let _entered = span.enter();
    let rows = store.recompute_kpis(tenant.id, &windows, now).await?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone};
    use nexiom_core::*;
    use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store};

    use super::*;

    fn utc(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap()
    }

    /// A tenant in `tz` with one conversation holding an inbound message at each
    /// of `inbound`.
    async fn tenant_with_messages(
        s: &dyn Store,
        name: &str,
        tz: Tz,
        inbound: &[DateTime<Utc>],
    ) -> Tenant {
        let t0 = utc(1, 1, 0, 0);
        let tenant = s
            .create_tenant(NewTenant {
                time_zone: tz,
                ..NewTenant::new(name, t0)
            })
            .await
            .unwrap();
        let channel = s
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_account_id: format!("pn-{name}"),
                name: name.into(),
                credentials: Credentials::default(),
                created_at: t0,
            })
            .await
            .unwrap();
        let cc = s
            .insert_contact_channel(NewContactChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_handle: "336".into(),
                display_name: None,
                created_at: t0,
            })
            .await
            .unwrap()
            .record;
        let conv = s
            .insert_open_conversation(tenant.id, cc.contact_id, channel.id, t0)
            .await
            .unwrap()
            .record;
        for at in inbound {
            s.insert_message(NewMessage {
                tenant_id: tenant.id,
                conversation_id: conv.id,
                direction: MessageDirection::Inbound,
                text: "hi".into(),
                has_media: false,
                provider_message_id: None,
                in_reply_to: None,
                delivery_status: None,
                created_at: *at,
                stored_at: *at,
            })
            .await
            .unwrap();
        }
        tenant
    }

    #[tokio::test]
    async fn a_run_recomputes_the_last_48_hours_of_every_tenant_idempotently_on_memory() {
        a_run_recomputes_the_last_48_hours_of_every_tenant_idempotently(memory_test_store().await)
            .await;
    }

    #[tokio::test]
    #[cfg_attr(
        nexiom_no_postgres,
        ignore = "no PostgreSQL reachable (see README: Tests)"
    )]
    async fn a_run_recomputes_the_last_48_hours_of_every_tenant_idempotently_on_postgres() {
        a_run_recomputes_the_last_48_hours_of_every_tenant_idempotently(
            postgres_test_store().await,
        )
        .await;
    }

    async fn a_run_recomputes_the_last_48_hours_of_every_tenant_idempotently(
        test_store: Option<TestStore>,
    ) {
        let Some(test_store) = test_store else { return };
        {
            let store = test_store.store();
            let s = &*store;
            // Paris: 2026-03-29 has the 1-hour 02:00 window; New York does not.
            let paris = tenant_with_messages(
                s,
                "paris",
                chrono_tz::Europe::Paris,
                &[utc(3, 29, 0, 59), utc(3, 29, 1, 0), utc(3, 27, 0, 0)],
            )
            .await;
            let new_york =
                tenant_with_messages(s, "ny", chrono_tz::America::New_York, &[utc(3, 29, 1, 0)])
                    .await;
            let clock = ManualClock::new(utc(3, 30, 0, 30));
            let config = KpiConfig::default();

            let first = aggregate_kpis(s, &clock, &config).await.unwrap();
            assert_eq!(first.tenants_processed, 2);
            assert!(first.failures.is_empty());
            // Paris: from 2026-03-28 00:00 UTC (01:00 CET, in the 00:00 window
            // starting 27th 23:00 UTC) to 2026-03-30 00:30 UTC (02:30 CEST):
            // 12 windows of the 28th, 12 of the 29th, 2 of the 30th = 26.
            let paris_rows = s
                .list_kpis(paris.id, utc(3, 1, 0, 0), utc(4, 1, 0, 0))
                .await
                .unwrap();
            assert_eq!(paris_rows.len(), 26);
            assert_eq!(paris_rows.last().unwrap().window_start, utc(3, 27, 23, 0));
            let one_hour = paris_rows
                .iter()
                .find(|r| r.window_start == utc(3, 29, 1, 0))
                .unwrap();
            assert_eq!(one_hour.window_end, utc(3, 29, 2, 0));
            assert_eq!(one_hour.messages_count, 1);
            let before_gap = paris_rows
                .iter()
                .find(|r| r.window_end == utc(3, 29, 1, 0))
                .unwrap();
            assert_eq!(before_gap.messages_count, 1);
            assert_eq!(
                paris_rows.iter().map(|r| r.messages_count).sum::<i64>(),
                2,
                "the message of the 27th is older than 48 hours"
            );
            // New York (UTC-4 since the 8th): windows start at odd UTC hours.
            let ny_rows = s
                .list_kpis(new_york.id, utc(3, 1, 0, 0), utc(4, 1, 0, 0))
                .await
                .unwrap();
            assert!(
                ny_rows
                    .iter()
                    .all(|r| r.window_end - r.window_start == Duration::hours(2))
            );
            assert_eq!(ny_rows.iter().map(|r| r.messages_count).sum::<i64>(), 1);
            assert_eq!(
                first.rows_upserted,
                (paris_rows.len() + ny_rows.len()) as u64
            );

            // Again at the same instant: the same rows.
            let second = aggregate_kpis(s, &clock, &config).await.unwrap();
            assert_eq!(second, first);
            assert_eq!(
                s.list_kpis(paris.id, utc(3, 1, 0, 0), utc(4, 1, 0, 0))
                    .await
                    .unwrap(),
                paris_rows
            );

            // Half an hour later, windows older than 48 hours are left alone.
            clock.advance(Duration::minutes(30));
            aggregate_kpis(s, &clock, &config).await.unwrap();
            let rows = s
                .list_kpis(paris.id, utc(3, 1, 0, 0), utc(4, 1, 0, 0))
                .await
                .unwrap();
            let oldest = rows.last().unwrap();
            assert_eq!(oldest.window_start, utc(3, 27, 23, 0));
            assert_eq!(oldest.computed_at, utc(3, 30, 0, 30));
            assert_eq!(rows[0].computed_at, utc(3, 30, 1, 0));
            test_store.cleanup().await;
        }
    }
}
