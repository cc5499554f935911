//! The day's cap and what counts against it: existing posts, a mission that
//! posted that day already, a rerun of the same day, two runs at once.

use std::collections::HashSet;
use std::sync::Arc;

use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::SkipReason;
use nexiom_storage::Store;

use super::fixture::{fx, june, paris, scheduled_missions, skip_of, t0, times};

pub async fn cap_reached_by_existing_posts(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let high = f.mission("High", ObjectivePriority::High, 10, 10).await;
    let medium = f.mission("Medium", ObjectivePriority::Medium, 10, 10).await;
    let low = f.mission("Low", ObjectivePriority::Low, 10, 10).await;
    for m in [&high, &medium, &low] {
        f.job(m, Phase::Intro, 0).await;
    }
    // Two counted posts (09:00 queued, 12:00 published) and a cancelled one.
    f.post(None, paris(10, 9, 0)).await;
    let published = f.post(None, paris(10, 12, 0)).await;
    f.store
        .update_post(
            f.tenant,
            published.id,
            PostPatch {
                status: Some(PostStatus::Published),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let cancelled = f.post(None, paris(10, 14, 0)).await;
    f.store
        .update_post(
            f.tenant,
            cancelled.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();

    // Cap 3, 2 counted: one left, for the high mission, at the first free slot
    // (09:00 is taken, so 13:00).
    let s = f.run(10, 3).await;
    assert_eq!(s.cap, 3);
    assert_eq!(s.already_scheduled, 2);
    assert_eq!(scheduled_missions(&s), vec![high.id]);
    assert_eq!(times(&s), vec![paris(10, 13, 0)]);
    assert_eq!(skip_of(&s, &medium), Some(SkipReason::DailyCapReached));
    assert_eq!(skip_of(&s, &low), Some(SkipReason::DailyCapReached));
    assert_eq!(f.counted(10).await, 3);

    // Cap 2 with 3 counted: nothing at all.
    let s = f.run(10, 2).await;
    assert_eq!(s.already_scheduled, 3);
    assert!(s.scheduled.is_empty());
    assert_eq!(skip_of(&s, &medium), Some(SkipReason::DailyCapReached));
    assert_eq!(f.counted(10).await, 3);
}

pub async fn mission_already_posted_that_day(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let a = f.mission("A", ObjectivePriority::High, 10, 12).await;
    let b = f.mission("B", ObjectivePriority::Low, 10, 12).await;
    let c = f.mission("C", ObjectivePriority::Low, 10, 12).await;
    let ja = f.job(&a, Phase::Intro, 0).await;
    let jb = f.job(&b, Phase::Intro, 1).await;
    let jc = f.job(&c, Phase::Intro, 2).await;
    // A has a queued post on the 10th; C had one, but it was cancelled.
    let a_post = f.post(Some(a.id), paris(10, 20, 0)).await;
    let c_post = f.post(Some(c.id), paris(10, 20, 30)).await;
    f.store
        .update_post(
            f.tenant,
            c_post.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();

    let s = f.run(10, 5).await;
    assert_eq!(
        skip_of(&s, &a),
        Some(SkipReason::AlreadyPostedToday { post_id: a_post.id })
    );
    // B and C tie on priority, exact phase and end date: the older job first.
    assert_eq!(scheduled_missions(&s), vec![b.id, c.id]);
    assert_eq!(times(&s), vec![paris(10, 9, 0), paris(10, 11, 24)]);
    assert_eq!(f.job_status(&ja).await, ContentJobStatus::Ready);
    assert_eq!(f.job_status(&jc).await, ContentJobStatus::Scheduled);

    // The post carries the mission and job links and the job's content.
    let post_id = s.scheduled[0].post_id.unwrap();
    let post = f.store.get_post(f.tenant, post_id).await.unwrap();
    assert_eq!(post.mission_id, Some(b.id));
    assert_eq!(post.content_job_id, Some(jb.id));
    assert_eq!(post.content, jb.content);
    assert_eq!(post.status, PostStatus::Queued);
    let job = f.store.get_content_job(f.tenant, jb.id).await.unwrap();
    assert_eq!(job.scheduled_post_id, Some(post_id));
    assert_eq!(
        job.mission_id,
        Some(b.id),
        "the prepared content keeps its mission"
    );
}

pub async fn rerun_schedules_nothing(store: Arc<dyn Store>) {
    let f = fx(store).await;
    let mut missions = Vec::new();
    for (i, p) in [
        ObjectivePriority::High,
        ObjectivePriority::High,
        ObjectivePriority::Medium,
        ObjectivePriority::Low,
        ObjectivePriority::Low,
    ]
    .into_iter()
    .enumerate()
    {
        let m = f.mission(&format!("M{i}"), p, 10, 10).await;
        f.job(&m, Phase::Intro, i as i64).await;
        f.job(&m, Phase::Intro, 10 + i as i64).await;
        missions.push(m);
    }
    let first = f.run(10, 3).await;
    assert_eq!(
        scheduled_missions(&first),
        vec![missions[0].id, missions[1].id, missions[2].id]
    );
    let second = f.run(10, 3).await;
    assert!(second.scheduled.is_empty());
    assert_eq!(second.already_scheduled, 3);
    for (m, item) in missions.iter().zip(&first.scheduled) {
        assert_eq!(
            skip_of(&second, m),
            Some(SkipReason::AlreadyPostedToday {
                post_id: item.post_id.unwrap()
            })
        );
    }
    assert_eq!(
        skip_of(&second, &missions[3]),
        Some(SkipReason::DailyCapReached)
    );
    // Even with a higher cap, the missions already posted stay out.
    let third = f.run(10, 10).await;
    assert_eq!(
        scheduled_missions(&third),
        vec![missions[3].id, missions[4].id]
    );
    assert_eq!(f.counted(10).await, 5);
    // The summary is JSON.
    let json = serde_json::to_value(&first).unwrap();
    assert_eq!(json["cap"], 3);
    assert_eq!(json["scheduled"].as_array().unwrap().len(), 3);
    assert_eq!(json["time_zone"], "Europe/Paris");
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["skipped"][0]["reason"]["code"], "already_posted_today");
}

pub async fn two_concurrent_runs_with_cap_3_schedule_exactly_3(store: Arc<dyn Store>) {
    let f = fx(store).await;
    for i in 0..6 {
        let m = f
            .mission(&format!("M{i}"), ObjectivePriority::High, 10, 10)
            .await;
        f.job(&m, Phase::Intro, i).await;
    }
    let orch = Arc::new(f.orch.clone());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let orch = Arc::clone(&orch);
        let (tenant, channel) = (f.tenant, f.channel);
        tasks.push(tokio::spawn(async move {
            orch.orchestrate_global_publishing(tenant, channel, june(10), 3, Paris)
                .await
                .unwrap()
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap().scheduled.len();
    }
    assert_eq!(total, 3);
    assert_eq!(f.counted(10).await, 3);
    let posts = f
        .store
        .list_posts(
            f.tenant,
            PostFilter {
                channel_id: Some(f.channel),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    let missions: HashSet<_> = posts.iter().map(|p| p.mission_id).collect();
    let instants: HashSet<_> = posts.iter().map(|p| p.publish_at).collect();
    assert_eq!((missions.len(), instants.len()), (3, 3));
}
