//! Planning a range of days: a dry run writes nothing and matches the commit.

use std::sync::Arc;

use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::{MissionError, OrchestrationSummary, PlanMode, SkipReason};
use nexiom_storage::Store;

use super::fixture::{fx, june, paris, skip_of};

pub async fn dry_run_writes_nothing_and_matches_the_commit(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Two missions over 5 days with fewer jobs than days: consumption carries.
    let a = f.mission("A", ObjectivePriority::High, 10, 14).await;
    let b = f.mission("B", ObjectivePriority::Low, 11, 13).await;
    for k in 0..3 {
        f.job(&a, Phase::Intro, k).await;
    }
    f.job(&a, Phase::Closing, 3).await;
    f.job(&b, Phase::Nurture, 4).await;
    f.job(&b, Phase::Nurture, 5).await;
    // An existing post of A on the 12th.
    f.post(Some(a.id), paris(12, 10, 0)).await;

    let dry = f
        .orch
        .plan_range(f.tenant, f.channel, june(10), 5, 2, Paris, PlanMode::DryRun)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.days.len(), 5);
    let plan: Vec<Vec<(MissionId, Phase, bool)>> = dry
        .days
        .iter()
        .map(|d| {
            d.scheduled
                .iter()
                .map(|i| (i.mission_id, i.phase, i.phase_fallback))
                .collect()
        })
        .collect();
    // Expected phases: A (10th-14th, L=5) I I N N C; B (11th-13th, L=3) I N C.
    // 10th: A intro. 11th: A intro; B wants intro, has only nurture (fallback).
    // 12th: A already posted; B nurture, its last job. 13th: A wants nurture,
    // has intro and closing left: the earlier phase wins the tie (fallback); B has
    // nothing left. 14th: A closing.
    assert_eq!(
        plan,
        vec![
            vec![(a.id, Phase::Intro, false)],
            vec![(a.id, Phase::Intro, false), (b.id, Phase::Nurture, true)],
            vec![(b.id, Phase::Nurture, false)],
            vec![(a.id, Phase::Intro, true)],
            vec![(a.id, Phase::Closing, false)],
        ]
    );
    assert_eq!(dry.total_scheduled(), 6);
    assert_eq!(skip_of(&dry.days[3], &b), Some(SkipReason::NoReadyJob));
    assert!(
        dry.days
            .iter()
            .flat_map(|d| &d.scheduled)
            .all(|i| i.post_id.is_none())
    );
    // Nothing written.
    for day in 10..15 {
        assert_eq!(f.counted(day).await, u64::from(day == 12));
    }
    let ready = f
        .orch
        .list_content_jobs_for_mission(f.tenant, a.id, Some(ContentJobStatus::Ready), 100)
        .await
        .unwrap();
    assert_eq!(ready.len(), 4);

    let committed = f
        .orch
        .plan_range(f.tenant, f.channel, june(10), 5, 2, Paris, PlanMode::Commit)
        .await
        .unwrap();
    assert!(!committed.dry_run);
    let strip = |days: &[OrchestrationSummary]| {
        days.iter()
            .map(|d| {
                let mut d = d.clone();
                d.dry_run = false;
                d.scheduled.iter_mut().for_each(|i| i.post_id = None);
                d
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&dry.days), strip(&committed.days));
    assert_eq!(f.counted(11).await, 2);

    assert!(matches!(
        f.orch
            .plan_range(f.tenant, f.channel, june(10), 0, 2, Paris, PlanMode::DryRun)
            .await,
        Err(MissionError::Invalid { field: "days", .. })
    ));
}
