//! Conformance tests of the content job lifecycle: a mission's job follows its
//! post when the publishing worker settles the post for good.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::Store;

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

async fn mission(s: &dyn Store, w: &World) -> Mission {
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    s.create_mission(NewMission {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        name: "Spring".into(),
        status: MissionStatus::Active,
        objective_priority: ObjectivePriority::High,
        start_date: day(1),
        end_date: day(10),
        created_at: t0(),
    })
    .await
    .unwrap()
}

/// A `scheduled` job of `mission` with a queued post of its own at `at`.
async fn scheduled_job(
    s: &dyn Store,
    w: &World,
    mission: &Mission,
    text: &str,
    at: DateTime<Utc>,
) -> (ContentJob, ScheduledPost) {
    let job = s
        .create_content_job(NewContentJob {
            tenant_id: w.tenant.id,
            mission_id: Some(mission.id),
            channel_id: w.channel.id,
            phase: Phase::Intro,
            status: ContentJobStatus::Ready,
            content: Content::text(text),
            source_ref: None,
            created_at: t0(),
        })
        .await
        .unwrap();
    let post = s
        .insert_post(NewScheduledPost {
            mission_id: Some(mission.id),
            content_job_id: Some(job.id),
            ..NewScheduledPost::one_off(w.tenant.id, w.channel.id, Content::text(text), at, t0())
        })
        .await
        .unwrap()
        .record;
    let job = s
        .update_content_job(
            w.tenant.id,
            job.id,
            ContentJobStatus::Scheduled,
            Some(post.id),
            t0(),
        )
        .await
        .unwrap();
    (job, post)
}

fn published(post: &ScheduledPost, platform_id: &str, at: DateTime<Utc>) -> PostSettlement {
    PostSettlement {
        tenant_id: post.tenant_id,
        post_id: post.id,
        status: PostStatus::Published,
        retry_count: Some(1),
        error_message: None,
        next_attempt_at: None,
        published: Some(PublishedFields {
            platform_post_id: platform_id.into(),
            url: None,
            published_at: at,
            next_check_at: Some(at),
            stop_at: Some(at + Duration::days(7)),
        }),
        run: None,
    }
}

fn failed(post: &ScheduledPost, error: &str) -> PostSettlement {
    PostSettlement {
        tenant_id: post.tenant_id,
        post_id: post.id,
        status: PostStatus::Failed,
        retry_count: Some(3),
        error_message: Some(error.into()),
        next_attempt_at: None,
        published: None,
        run: None,
    }
}

/// Settling a post `published` or `failed` takes its `scheduled` job along in
/// the same write: `published` with the platform's post id and time, or
/// `failed` with the reason. A post queued again leaves its job `scheduled`; a
/// job cancelled meanwhile, or linked to another post, is left alone; a
/// settlement skipped because the lease moved on writes no job either. Setting
/// a settled job back to `ready` clears the outcome.
pub async fn content_jobs_follow_their_settled_posts(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let m = mission(s, &w).await;
    let now = t0();
    let (ok, ok_post) = scheduled_job(s, &w, &m, "ok", now - mins(5)).await;
    let (bad, bad_post) = scheduled_job(s, &w, &m, "bad", now - mins(4)).await;
    let (again, again_post) = scheduled_job(s, &w, &m, "again", now - mins(3)).await;
    let (gone, gone_post) = scheduled_job(s, &w, &m, "gone", now - mins(2)).await;
    let (moved, moved_post) = scheduled_job(s, &w, &m, "moved", now - mins(1)).await;
    let (late, late_post) = scheduled_job(s, &w, &m, "late", now).await;
    assert_eq!(ok.status, ContentJobStatus::Scheduled);
    assert_eq!(
        (
            ok.platform_post_id.clone(),
            ok.published_at,
            ok.error_message.clone()
        ),
        (None, None, None)
    );

    let claimed = s.claim_due_posts(now, 10, "w1", mins(5)).await.unwrap();
    assert_eq!(claimed.len(), 6);
    // Cancelled by a person while its post was being published.
    s.update_content_job(t, gone.id, ContentJobStatus::Cancelled, None, now)
        .await
        .unwrap();
    // Re-linked to another post meanwhile: the old post's outcome is not its own.
    let other = s
        .insert_post(NewScheduledPost::one_off(
            t,
            w.channel.id,
            Content::text("other"),
            now + mins(60),
            now,
        ))
        .await
        .unwrap()
        .record;
    s.update_content_job(
        t,
        moved.id,
        ContentJobStatus::Scheduled,
        Some(other.id),
        now,
    )
    .await
    .unwrap();
    // w1's leases lapse and w2 takes every post over: a settlement w1 writes
    // late is skipped, and so is its job.
    s.release_stale_leases(now + mins(6)).await.unwrap();
    let taken_over = s
        .claim_due_posts(now + mins(6), 10, "w2", mins(5))
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 6);
    let at = now + mins(7);
    let queued_again = PostSettlement {
        status: PostStatus::Queued,
        retry_count: Some(1),
        error_message: Some("rate limited".into()),
        next_attempt_at: Some(at + mins(2)),
        published: None,
        ..failed(&again_post, "")
    };
    let written = s
        .settle_posts(
            "w2",
            &[
                published(&ok_post, "fb-ok", at),
                failed(&bad_post, "permission denied: (#200) not allowed"),
                queued_again,
                published(&gone_post, "fb-gone", at),
                published(&moved_post, "fb-moved", at),
            ],
            at,
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 5);
    let skipped = s
        .settle_posts("w1", &[published(&late_post, "fb-late", at)], at)
        .await
        .unwrap();
    assert!(skipped.is_empty());

    let job = |id| async move { s.get_content_job(t, id).await.unwrap() };
    let ok_now = job(ok.id).await;
    assert_eq!(ok_now.status, ContentJobStatus::Published);
    assert_eq!(ok_now.scheduled_post_id, Some(ok_post.id));
    assert_eq!(ok_now.platform_post_id.as_deref(), Some("fb-ok"));
    assert_eq!(ok_now.published_at, Some(at));
    assert_eq!(ok_now.error_message, None);
    assert_eq!(ok_now.updated_at, at);

    let bad_now = job(bad.id).await;
    assert_eq!(bad_now.status, ContentJobStatus::Failed);
    assert_eq!(
        bad_now.error_message.as_deref(),
        Some("permission denied: (#200) not allowed")
    );
    assert_eq!(
        (bad_now.platform_post_id, bad_now.published_at),
        (None, None)
    );
    assert_eq!(bad_now.updated_at, at);

    assert_eq!(job(again.id).await, again);
    let gone_now = job(gone.id).await;
    assert_eq!(gone_now.status, ContentJobStatus::Cancelled);
    assert_eq!(gone_now.platform_post_id, None);
    let moved_now = job(moved.id).await;
    assert_eq!(moved_now.status, ContentJobStatus::Scheduled);
    assert_eq!(moved_now.scheduled_post_id, Some(other.id));
    assert_eq!(moved_now.platform_post_id, None);
    assert_eq!(job(late.id).await, late);

    // The rightful owner settles `late` for good: its job follows.
    let written = s
        .settle_posts("w2", &[failed(&late_post, "outcome_unknown: check")], at)
        .await
        .unwrap();
    assert_eq!(written, vec![late_post.id]);
    assert_eq!(job(late.id).await.status, ContentJobStatus::Failed);

    // A settled job handed back to `ready` loses the old outcome; the listing
    // reads the same fields as `get`.
    let ready = s
        .update_content_job(t, bad.id, ContentJobStatus::Ready, None, at)
        .await
        .unwrap();
    assert_eq!(ready.status, ContentJobStatus::Ready);
    assert_eq!(ready.error_message, None);
    let listed = s
        .list_content_jobs(
            t,
            ContentJobFilter {
                status: Some(ContentJobStatus::Published),
                ..ContentJobFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed, vec![ok_now]);
}
