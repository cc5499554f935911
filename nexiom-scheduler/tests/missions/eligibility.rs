//! Which missions are in play and when: not outside their dates, not while
//! paused; nothing for a day that is over, and never a time in the past.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::SkipReason;
use nexiom_storage::Store;

use super::fixture::{fx, paris, scheduled_missions, skip_of, times};

pub async fn mission_outside_its_dates(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let ended = f.mission("Ended", ObjectivePriority::High, 5, 9).await;
    let future = f.mission("Future", ObjectivePriority::High, 11, 20).await;
    let current = f.mission("Current", ObjectivePriority::Low, 10, 10).await;
    let j_ended = f.job(&ended, Phase::Closing, 0).await;
    let j_future = f.job(&future, Phase::Intro, 1).await;
    f.job(&current, Phase::Intro, 2).await;
    let s = f.run(10, 3).await;
    assert_eq!(scheduled_missions(&s), vec![current.id]);
    assert_eq!(skip_of(&s, &ended), None);
    assert_eq!(skip_of(&s, &future), None);
    assert_eq!(f.job_status(&j_ended).await, ContentJobStatus::Ready);
    assert_eq!(f.job_status(&j_future).await, ContentJobStatus::Ready);
}

pub async fn paused_mission(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let paused = f.mission("Paused", ObjectivePriority::High, 10, 12).await;
    f.store
        .set_mission_status(f.tenant, paused.id, MissionStatus::Paused)
        .await
        .unwrap();
    let running = f.mission("Running", ObjectivePriority::Low, 10, 12).await;
    let jp = f.job(&paused, Phase::Intro, 0).await;
    f.job(&running, Phase::Intro, 1).await;
    let s = f.run(10, 3).await;
    assert_eq!(scheduled_missions(&s), vec![running.id]);
    assert_eq!(
        skip_of(&s, &paused),
        Some(SkipReason::NotActive {
            status: MissionStatus::Paused
        })
    );
    assert_eq!(f.job_status(&jp).await, ContentJobStatus::Ready);
}

pub async fn date_in_the_past_and_times_never_in_the_past(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let a = f.mission("A", ObjectivePriority::High, 1, 30).await;
    let b = f.mission("B", ObjectivePriority::Medium, 1, 30).await;
    let c = f.mission("C", ObjectivePriority::Low, 1, 30).await;
    for (i, m) in [&a, &b, &c].into_iter().enumerate() {
        for k in 0..3 {
            f.job(m, Phase::Intro, (i * 3 + k) as i64).await;
        }
    }
    // The 10th is over: nothing, and each candidate says why.
    f.clock.set(paris(11, 8, 0));
    let s = f.run(10, 3).await;
    assert!(s.scheduled.is_empty());
    assert_eq!(skip_of(&s, &a), Some(SkipReason::DateInPast));
    assert_eq!(skip_of(&s, &c), Some(SkipReason::DateInPast));
    assert_eq!(f.counted(10).await, 0);

    // The 11th at 14:30 local: 09:00 and 13:00 are past, so the three posts are
    // spread over what is left of the daytime hours, from 14:30:01 to 21:00.
    f.clock.set(paris(11, 14, 30));
    let s = f.run(11, 3).await;
    let expected_first = paris(11, 14, 30) + Duration::seconds(1);
    assert_eq!(
        times(&s),
        vec![expected_first, paris(11, 16, 40), paris(11, 18, 50)]
    );
    assert!(times(&s).iter().all(|t| *t > f.clock.now()));

    // 23:59:30 on the 12th: no daytime left, so the rest of the day is used.
    f.clock.set(paris(12, 23, 59) + Duration::seconds(30));
    let s = f.run(12, 1).await;
    assert_eq!(times(&s), vec![paris(12, 23, 59) + Duration::seconds(31)]);
}
