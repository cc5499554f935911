//! The mission reads: content jobs, the calendar by local day, the latest
//! intelligence report, and what another tenant or a bad range gets.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::MissionError;
use nexiom_storage::{StorageError, Store};

use super::fixture::{fx, june, paris, t0};

pub async fn mission_reads(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let m = f.mission("M", ObjectivePriority::High, 10, 12).await;
    let j1 = f.job(&m, Phase::Intro, 0).await;
    let j2 = f.job(&m, Phase::Nurture, 1).await;
    let j3 = f.job(&m, Phase::Closing, 2).await;
    let s = f.run(10, 3).await;
    assert_eq!(s.scheduled[0].content_job_id, j1.id);
    // A manual post of the mission at 00:30 Paris on the 12th (22:30 UTC on the
    // 11th): the calendar files it under the 12th, the tenant's local day.
    let late = f.post(Some(m.id), paris(12, 0, 30)).await;
    assert_eq!(
        late.publish_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 22, 30, 0).unwrap()
    );

    let ids = |v: Vec<ContentJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, None, 10)
            .await
            .unwrap()),
        vec![j1.id, j2.id, j3.id]
    );
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, Some(ContentJobStatus::Ready), 1)
            .await
            .unwrap()),
        vec![j2.id]
    );
    assert_eq!(
        ids(f
            .orch
            .list_content_jobs_for_mission(f.tenant, m.id, Some(ContentJobStatus::Scheduled), 10)
            .await
            .unwrap()),
        vec![j1.id]
    );

    let calendar = f
        .orch
        .list_mission_calendar(f.tenant, m.id, june(9), 4)
        .await
        .unwrap();
    let shape: Vec<(NaiveDate, usize)> = calendar.iter().map(|d| (d.date, d.posts.len())).collect();
    assert_eq!(
        shape,
        vec![(june(9), 0), (june(10), 1), (june(11), 0), (june(12), 1)]
    );
    assert_eq!(calendar[1].posts[0].content_job_id, Some(j1.id));
    assert_eq!(calendar[3].posts[0].id, late.id);

    assert_eq!(
        f.orch
            .get_mission_intelligence_summary(f.tenant, m.id)
            .await
            .unwrap(),
        None
    );
    f.store
        .add_report(f.tenant, m.id, serde_json::json!({"reach": 1}), t0())
        .await
        .unwrap();
    let latest = f
        .store
        .add_report(
            f.tenant,
            m.id,
            serde_json::json!({"reach": 2}),
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        f.orch
            .get_mission_intelligence_summary(f.tenant, m.id)
            .await
            .unwrap(),
        Some(latest)
    );

    // Another tenant's mission is not found; a bad range is refused.
    let other = f
        .store
        .create_tenant(NewTenant::new("Other", t0()))
        .await
        .unwrap();
    assert!(matches!(
        f.orch
            .get_mission_intelligence_summary(other.id, m.id)
            .await,
        Err(MissionError::Storage(StorageError::NotFound { .. }))
    ));
    assert!(matches!(
        f.orch
            .list_mission_calendar(f.tenant, m.id, june(9), 0)
            .await,
        Err(MissionError::Invalid { field: "days", .. })
    ));
    assert!(matches!(
        f.orch
            .orchestrate_global_publishing(other.id, f.channel, june(10), 3, Paris)
            .await,
        Err(MissionError::Storage(StorageError::NotFound { .. }))
    ));
}
