//! Conformance tests of the 2-hour KPI rows (`KpiStore::upsert_kpi`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{assert_invalid, assert_unknown, t0, world};
use crate::Store;

pub async fn kpi_rows_upsert_on_window_start(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let row = |start: DateTime<Utc>, messages: i64| Kpi2h {
        tenant_id: w.tenant.id,
        window_start: start,
        window_end: start + Duration::hours(2),
        messages_count: messages,
        comments_count: 2,
        frt_p50_seconds: Some(90),
        auto_reply_rate: Some(0.333),
        escalate_count: 1,
        ignored_count: 0,
        posts_active: 1,
        computed_at: t0(),
    };
    let w0 = s.upsert_kpi(row(t0(), 5)).await.unwrap();
    let w1 = s
        .upsert_kpi(row(t0() + Duration::hours(2), 7))
        .await
        .unwrap();
    let mut replaced = row(t0(), 6);
    replaced.frt_p50_seconds = None;
    replaced.auto_reply_rate = None;
    let w0b = s.upsert_kpi(replaced.clone()).await.unwrap();
    assert_eq!(w0b, replaced);
    assert_eq!(
        s.list_kpis(w.tenant.id, t0(), t0() + Duration::hours(4))
            .await
            .unwrap(),
        vec![w1.clone(), w0b]
    );
    assert_eq!(
        s.list_kpis(
            w.tenant.id,
            t0() + Duration::hours(2),
            t0() + Duration::hours(4)
        )
        .await
        .unwrap(),
        vec![w1]
    );
    assert!(
        s.list_kpis(w.tenant.id, t0(), t0())
            .await
            .unwrap()
            .is_empty()
    );
    assert_ne!(w0.messages_count, 6);
    let mut bad = row(t0(), 1);
    bad.auto_reply_rate = Some(2.0);
    assert_invalid(s.upsert_kpi(bad).await, "auto_reply_rate");
    let mut unknown = row(t0(), 1);
    unknown.tenant_id = TenantId::generate();
    assert_unknown(s.upsert_kpi(unknown).await, "tenant");
}
