//! Which missions and jobs are chosen: by priority, ties broken by the
//! exact phase, the end date and the job's age; the phase expected on each
//! day of a mission, and the nearest phase when none of it is ready.

use std::sync::Arc;

use nexiom_core::*;
use nexiom_scheduler::SkipReason;
use nexiom_storage::Store;

use super::fixture::{fx, paris, scheduled_missions, skip_of, times};

pub async fn priority_ordering(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Created low first, so creation order cannot explain the result.
    let low = f.mission("Low", ObjectivePriority::Low, 10, 10).await;
    let high = f.mission("High", ObjectivePriority::High, 10, 10).await;
    let medium = f.mission("Medium", ObjectivePriority::Medium, 10, 10).await;
    f.job(&low, Phase::Intro, 0).await;
    f.job(&high, Phase::Intro, 5).await;
    f.job(&medium, Phase::Intro, 3).await;
    let s = f.run(10, 2).await;
    assert_eq!(scheduled_missions(&s), vec![high.id, medium.id]);
    // Cap 2: 09:00 and 15:00.
    assert_eq!(times(&s), vec![paris(10, 9, 0), paris(10, 15, 0)]);
    assert_eq!(skip_of(&s, &low), Some(SkipReason::DailyCapReached));
    assert!(s.scheduled.iter().all(|i| !i.phase_fallback));
    assert_eq!(s.scheduled[0].objective_priority, ObjectivePriority::High);
}

pub async fn ties_broken_by_exact_phase_end_date_then_job_age(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Same priority; all start on the 10th (day 0: intro expected).
    let late_end = f
        .mission("LateEnd", ObjectivePriority::Medium, 10, 15)
        .await;
    let newer = f.mission("Newer", ObjectivePriority::Medium, 10, 12).await;
    let older = f.mission("Older", ObjectivePriority::Medium, 10, 12).await;
    let fallback = f
        .mission("Fallback", ObjectivePriority::Medium, 10, 10)
        .await;
    f.job(&late_end, Phase::Intro, 0).await;
    f.job(&newer, Phase::Intro, 7).await;
    f.job(&older, Phase::Intro, 4).await;
    f.job(&fallback, Phase::Nurture, 1).await;
    let s = f.run(10, 4).await;
    assert_eq!(
        scheduled_missions(&s),
        vec![older.id, newer.id, late_end.id, fallback.id]
    );
    assert_eq!(
        times(&s),
        vec![
            paris(10, 9, 0),
            paris(10, 12, 0),
            paris(10, 15, 0),
            paris(10, 18, 0)
        ]
    );
    let last = s.scheduled[3];
    assert!(last.phase_fallback);
    assert_eq!(
        (last.phase, last.expected_phase),
        (Phase::Nurture, Phase::Intro)
    );
}

pub async fn phase_boundaries_for_missions_of_1_2_3_7_and_10_days(store: Arc<dyn Store>) {
    use Phase::{Closing as C, Intro as I, Nurture as N};
    let f = fx(store).await;
    let expected: [(u32, Vec<Phase>); 5] = [
        (1, vec![I]),
        (2, vec![I, N]),
        (3, vec![I, N, C]),
        (7, vec![I, I, I, N, N, C, C]),
        (10, vec![I, I, I, I, N, N, N, C, C, C]),
    ];
    let mut missions = Vec::new();
    for (length, _) in &expected {
        let m = f
            .mission(
                &format!("L{length}"),
                ObjectivePriority::High,
                10,
                10 + length - 1,
            )
            .await;
        // Enough ready jobs of every phase for every day.
        for (i, phase) in [I, N, C].into_iter().enumerate() {
            for k in 0..*length {
                f.job(&m, phase, i64::from(k) * 3 + i as i64).await;
            }
        }
        missions.push(m);
    }
    for day in 0..10u32 {
        let s = f.run(10 + day, 10).await;
        for ((length, phases), m) in expected.iter().zip(&missions) {
            let item = s.scheduled.iter().find(|i| i.mission_id == m.id);
            if day < *length {
                let item = item.unwrap_or_else(|| panic!("L{length} day {day}: {s:?}"));
                assert_eq!(item.phase, phases[day as usize], "L{length} day {day}");
                assert_eq!(item.expected_phase, phases[day as usize]);
                assert!(!item.phase_fallback);
            } else {
                assert!(item.is_none(), "L{length} is over on day {day}");
                assert_eq!(skip_of(&s, m), None, "outside its dates: not in play");
            }
        }
    }
}

pub async fn fallback_to_the_nearest_phase(store: Arc<dyn Store>) {
    let f = fx(store).await;
    // Three-day missions from the 9th: on the 10th (day 1) nurture is expected.
    let tie = f.mission("Tie", ObjectivePriority::High, 9, 11).await;
    let tie_closing = f.job(&tie, Phase::Closing, 0).await;
    let tie_intro = f.job(&tie, Phase::Intro, 1).await;
    // From the 8th: day 2, closing expected; only an intro job (distance 2).
    let far = f.mission("Far", ObjectivePriority::High, 8, 10).await;
    let far_intro = f.job(&far, Phase::Intro, 2).await;
    // From the 10th: day 0, intro expected; nurture and closing ready.
    let early = f.mission("Early", ObjectivePriority::High, 10, 12).await;
    f.job(&early, Phase::Closing, 3).await;
    let early_nurture = f.job(&early, Phase::Nurture, 4).await;
    let empty = f.mission("Empty", ObjectivePriority::High, 10, 12).await;

    let s = f.run(10, 5).await;
    let item = |m: &Mission| *s.scheduled.iter().find(|i| i.mission_id == m.id).unwrap();
    let t = item(&tie);
    assert_eq!(
        (
            t.content_job_id,
            t.phase,
            t.expected_phase,
            t.phase_fallback
        ),
        (tie_intro.id, Phase::Intro, Phase::Nurture, true),
        "a tie between intro and closing takes the earlier phase"
    );
    assert_ne!(t.content_job_id, tie_closing.id);
    let fa = item(&far);
    assert_eq!(
        (
            fa.content_job_id,
            fa.phase,
            fa.expected_phase,
            fa.phase_fallback
        ),
        (far_intro.id, Phase::Intro, Phase::Closing, true)
    );
    let e = item(&early);
    assert_eq!(
        (e.content_job_id, e.phase),
        (early_nurture.id, Phase::Nurture)
    );
    assert_eq!(skip_of(&s, &empty), Some(SkipReason::NoReadyJob));
}
