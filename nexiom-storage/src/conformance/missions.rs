//! Conformance tests of missions, content jobs and mission reports.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::NaiveDate;
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{assert_not_found, assert_unknown, mins, post, t0, world};
use crate::Store;

pub async fn missions_content_jobs_and_reports(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let mission = |name: &str, start: u32, end: u32, status| NewMission {
        tenant_id: t,
        channel_id: w.channel.id,
        name: name.into(),
        status,
        objective_priority: ObjectivePriority::High,
        start_date: day(start),
        end_date: day(end),
        created_at: t0(),
    };
    let spring = s
        .create_mission(mission("Spring", 1, 10, MissionStatus::Active))
        .await
        .unwrap();
    let easter = s
        .create_mission(mission("Easter", 5, 20, MissionStatus::Paused))
        .await
        .unwrap();
    let single = s
        .create_mission(mission("Flash", 3, 3, MissionStatus::Active))
        .await
        .unwrap();
    assert_eq!(s.get_mission(t, spring.id).await.unwrap(), spring);
    let ids = |v: Vec<Mission>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_missions(t, MissionFilter::default()).await.unwrap()),
        vec![spring.id, single.id, easter.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    status: Some(MissionStatus::Active),
                    active_on: Some(day(3)),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![spring.id, single.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    active_on: Some(day(11)),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![easter.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    limit: Some(1),
                    channel_id: Some(w.channel.id),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![spring.id]
    );
    let resumed = s
        .set_mission_status(t, easter.id, MissionStatus::Active)
        .await
        .unwrap();
    assert_eq!(resumed.status, MissionStatus::Active);

    let job = |mission: Option<MissionId>, phase, at| NewContentJob {
        tenant_id: t,
        mission_id: mission,
        channel_id: w.channel.id,
        phase,
        status: ContentJobStatus::Ready,
        content: Content::text("content"),
        source_ref: Some("prepared_facebook_post:42".into()),
        created_at: at,
    };
    let j1 = s
        .create_content_job(job(Some(spring.id), Phase::Intro, t0()))
        .await
        .unwrap();
    let j2 = s
        .create_content_job(job(Some(spring.id), Phase::Closing, t0() + mins(1)))
        .await
        .unwrap();
    let j3 = s
        .create_content_job(job(None, Phase::Intro, t0() + mins(2)))
        .await
        .unwrap();
    assert_eq!(j1.mission_id, Some(spring.id));
    assert_eq!(j1.source_ref.as_deref(), Some("prepared_facebook_post:42"));
    assert_eq!(s.get_content_job(t, j1.id).await.unwrap(), j1);
    let jids = |v: Vec<ContentJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    mission_id: Some(spring.id),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j1.id, j2.id]
    );
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    phase: Some(Phase::Intro),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j1.id, j3.id]
    );
    let p = s
        .insert_post(post(&w, "from job", t0()))
        .await
        .unwrap()
        .record;
    let scheduled = s
        .update_content_job(
            t,
            j1.id,
            ContentJobStatus::Scheduled,
            Some(p.id),
            t0() + mins(5),
        )
        .await
        .unwrap();
    assert_eq!(scheduled.status, ContentJobStatus::Scheduled);
    assert_eq!(scheduled.scheduled_post_id, Some(p.id));
    assert_eq!(scheduled.updated_at, t0() + mins(5));
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    status: Some(ContentJobStatus::Ready),
                    limit: Some(1),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j2.id]
    );
    let published = s
        .update_content_job(t, j1.id, ContentJobStatus::Published, None, t0() + mins(6))
        .await
        .unwrap();
    assert_eq!(
        published.scheduled_post_id,
        Some(p.id),
        "None keeps the post link"
    );
    assert_unknown(
        s.update_content_job(
            t,
            j2.id,
            ContentJobStatus::Scheduled,
            Some(PostId::generate()),
            t0(),
        )
        .await,
        "post",
    );

    assert_eq!(s.latest_report(t, spring.id).await.unwrap(), None);
    s.add_report(t, spring.id, json!({"reach": 10}), t0())
        .await
        .unwrap();
    let r2 = s
        .add_report(t, spring.id, json!({"reach": 25}), t0() + mins(1))
        .await
        .unwrap();
    assert_eq!(
        s.latest_report(t, spring.id).await.unwrap(),
        Some(r2.clone())
    );
    assert_eq!(r2.report["reach"], 25);

    // References must be the tenant's, and a job's mission must be on its channel.
    let other = world(s, "Globex", Platform::Facebook, "page-2").await;
    let mut foreign = job(Some(spring.id), Phase::Intro, t0());
    foreign.tenant_id = other.tenant.id;
    foreign.channel_id = other.channel.id;
    assert_unknown(s.create_content_job(foreign).await, "mission");
    let second_channel = s
        .create_channel(NewChannel {
            tenant_id: t,
            platform: Platform::Instagram,
            external_account_id: "ig-7".into(),
            name: "IG".into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let mut cross = job(Some(spring.id), Phase::Intro, t0());
    cross.channel_id = second_channel.id;
    assert_unknown(s.create_content_job(cross).await, "mission");
    let mut m = mission("Elsewhere", 1, 2, MissionStatus::Active);
    m.channel_id = other.channel.id;
    assert_unknown(s.create_mission(m).await, "channel");
    assert_not_found(s.get_mission(other.tenant.id, spring.id).await);
    assert_not_found(s.get_content_job(other.tenant.id, j1.id).await);
    assert_eq!(
        s.latest_report(other.tenant.id, spring.id).await.unwrap(),
        None
    );
    assert_unknown(
        s.add_report(other.tenant.id, spring.id, json!({}), t0())
            .await,
        "mission",
    );
}
