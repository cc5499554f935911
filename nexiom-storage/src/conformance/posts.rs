//! Conformance tests of scheduled posts: occurrences and patches, post runs,
//! and the polling queue.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::*;

use super::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, assert_unknown, mins, post, published_post,
    t0, world,
};
use crate::{StorageError, Store};

pub async fn posts_occurrences_and_patches(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::LinkedIn, "urn:li:organization:1").await;
    let t = w.tenant.id;
    let later = s
        .insert_post(post(&w, "later", t0() + mins(60)))
        .await
        .unwrap();
    assert!(later.created);
    let p = later.record;
    assert_eq!(p.status, PostStatus::Queued);
    assert_eq!(p.retry_count, 0);
    assert_eq!(s.get_post(t, p.id).await.unwrap(), p);
    let earlier = s
        .insert_post(post(&w, "earlier", t0()))
        .await
        .unwrap()
        .record;

    // A series template and its occurrences, unique by (series, instant).
    let mut template = post(&w, "weekly", t0() + mins(30));
    template.recurrence = Some(Recurrence {
        rrule: "FREQ=WEEKLY;BYDAY=MO".into(),
        dtstart: NaiveDate::from_ymd_opt(2026, 3, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        time_zone: chrono_tz::Europe::Paris,
    });
    let series = s.insert_post(template).await.unwrap().record;
    assert_eq!(
        series.recurrence.as_ref().unwrap().rrule,
        "FREQ=WEEKLY;BYDAY=MO"
    );
    let occurrence = |at: DateTime<Utc>| {
        let mut o = post(&w, "weekly", at);
        o.series_id = Some(series.id);
        o.occurrence_at = Some(at);
        o
    };
    let o1 = s
        .insert_post(occurrence(t0() + Duration::days(1)))
        .await
        .unwrap();
    assert!(o1.created);
    let o1again = s
        .insert_post(occurrence(t0() + Duration::days(1)))
        .await
        .unwrap();
    assert!(!o1again.created);
    assert_eq!(o1again.record, o1.record);
    let o2 = s
        .insert_post(occurrence(t0() + Duration::days(8)))
        .await
        .unwrap();
    assert!(o2.created);
    let mut orphan = occurrence(t0());
    orphan.series_id = Some(PostId::generate());
    assert_unknown(s.insert_post(orphan).await, "post");

    let all: Vec<_> = s
        .list_posts(t, PostFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        all,
        vec![earlier.id, series.id, p.id, o1.record.id, o2.record.id]
    );
    let of_series: Vec<_> = s
        .list_posts(
            t,
            PostFilter {
                series_id: Some(series.id),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(of_series, vec![o1.record.id, o2.record.id]);
    let window: Vec<_> = s
        .list_posts(
            t,
            PostFilter {
                from: Some(t0() + mins(30)),
                to: Some(t0() + Duration::days(1)),
                limit: Some(5),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(window, vec![series.id, p.id]);
    assert_eq!(
        s.list_posts(
            t,
            PostFilter {
                limit: Some(2),
                ..PostFilter::default()
            }
        )
        .await
        .unwrap()
        .len(),
        2
    );
    let queued = [
        PostStatus::Queued,
        PostStatus::Publishing,
        PostStatus::Published,
    ];
    assert_eq!(
        s.count_posts(t, w.channel.id, t0(), t0() + mins(61), &queued)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_posts(t, w.channel.id, t0(), t0() + mins(60), &queued)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            t0(),
            t0() + mins(61),
            &[PostStatus::Failed]
        )
        .await
        .unwrap(),
        0
    );

    // Patches: set and clear, guards.
    let patched = s
        .update_post(
            t,
            p.id,
            PostPatch {
                error_message: Some(Some("HTTP 500".into())),
                retry_count: Some(1),
                next_attempt_at: Some(Some(t0() + mins(61))),
                content: Some(Content::text("edited")),
                publish_at: Some(t0() + mins(90)),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(patched.error_message.as_deref(), Some("HTTP 500"));
    assert_eq!(patched.retry_count, 1);
    assert_eq!(patched.content.text, "edited");
    assert_eq!(patched.publish_at, t0() + mins(90));
    assert_eq!(patched.updated_at, t0() + mins(1));
    assert_eq!(s.get_post(t, p.id).await.unwrap(), patched);
    let cleared = s
        .update_post(
            t,
            p.id,
            PostPatch {
                error_message: Some(None),
                next_attempt_at: Some(None),
                expect_status: Some(PostStatus::Queued),
                ..PostPatch::default()
            },
            t0() + mins(2),
        )
        .await
        .unwrap();
    assert_eq!(cleared.error_message, None);
    assert_eq!(cleared.next_attempt_at, None);
    assert_eq!(cleared.retry_count, 1);
    let guarded = s
        .update_post(
            t,
            p.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                expect_status: Some(PostStatus::Publishing),
                ..PostPatch::default()
            },
            t0() + mins(3),
        )
        .await;
    assert!(
        matches!(guarded, Err(StorageError::Precondition { .. })),
        "{guarded:?}"
    );
    let lease_guarded = s
        .update_post(
            t,
            p.id,
            PostPatch {
                status: Some(PostStatus::Published),
                expect_lease_owner: Some("worker-1".into()),
                ..PostPatch::default()
            },
            t0() + mins(3),
        )
        .await;
    assert!(
        matches!(lease_guarded, Err(StorageError::Precondition { .. })),
        "{lease_guarded:?}"
    );
    assert_eq!(
        s.get_post(t, p.id).await.unwrap(),
        cleared,
        "a failed guard writes nothing"
    );

    let other = world(s, "Globex", Platform::LinkedIn, "urn:li:organization:2").await;
    assert_not_found(s.get_post(other.tenant.id, p.id).await);
    assert_not_found(
        s.update_post(other.tenant.id, p.id, PostPatch::default(), t0())
            .await,
    );
    assert_eq!(
        s.count_posts(
            other.tenant.id,
            w.channel.id,
            t0(),
            t0() + Duration::days(30),
            &queued
        )
        .await
        .unwrap(),
        0
    );
}

pub async fn post_runs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let p = s.insert_post(post(&w, "x", t0())).await.unwrap().record;
    let run1 = s
        .insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(run1.status, PostRunStatus::Running);
    assert_eq!(run1.finished_at, None);
    assert_conflict(
        s.insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await,
    );
    assert_invalid(
        s.insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 0,
            started_at: t0(),
        })
        .await,
        "attempt",
    );
    let failed = s
        .finish_post_run(
            w.tenant.id,
            run1.id,
            PostRunStatus::Failed,
            Some("HTTP 503".into()),
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, PostRunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("HTTP 503"));
    assert_eq!(failed.finished_at, Some(t0() + mins(1)));
    let run2 = s
        .insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 2,
            started_at: t0() + mins(2),
        })
        .await
        .unwrap();
    let ok = s
        .finish_post_run(
            w.tenant.id,
            run2.id,
            PostRunStatus::Success,
            None,
            t0() + mins(3),
        )
        .await
        .unwrap();
    assert_eq!(
        s.list_post_runs(w.tenant.id, p.id).await.unwrap(),
        vec![failed, ok]
    );
    let other = world(s, "Globex", Platform::Instagram, "ig-2").await;
    assert!(
        s.list_post_runs(other.tenant.id, p.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.finish_post_run(other.tenant.id, run2.id, PostRunStatus::Failed, None, t0())
            .await,
    );
    assert_unknown(
        s.insert_post_run(NewPostRun {
            tenant_id: other.tenant.id,
            post_id: p.id,
            attempt: 3,
            started_at: t0(),
        })
        .await,
        "post",
    );
}

pub async fn polling_queue(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let a = published_post(s, &w, "a").await;
    let b = published_post(s, &w, "b").await;
    // b is next polled later; a queued post is never polled.
    s.update_post(
        w.tenant.id,
        b.id,
        PostPatch {
            next_check_at: Some(Some(t0() + mins(5))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    s.insert_post(post(&w, "queued", t0())).await.unwrap();
    let ids = |v: Vec<ScheduledPost>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_posts_due_for_polling(t0(), 10).await.unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 10)
            .await
            .unwrap()),
        vec![a.id, b.id]
    );
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 1)
            .await
            .unwrap()),
        vec![a.id]
    );
    // A post stays due after stop_at until a check read its window to the
    // end (`last_check_at` at or after stop_at), so the last check, at
    // stop_at or later, is claimed as any other.
    let stop = t0() + Duration::days(7);
    let due_after = |at| async move { ids(s.list_posts_due_for_polling(at, 10).await.unwrap()) };
    assert_eq!(due_after(stop + Duration::days(1)).await, vec![a.id, b.id]);
    let checked = |at| PostPatch {
        last_check_at: Some(Some(at)),
        ..PostPatch::default()
    };
    let check_b = |at| s.update_post(w.tenant.id, b.id, checked(at), t0());
    check_b(stop - Duration::seconds(1)).await.unwrap();
    assert_eq!(due_after(stop).await, vec![a.id, b.id]);
    check_b(stop).await.unwrap();
    assert_eq!(due_after(stop + Duration::days(1)).await, vec![a.id]);
    check_b(t0()).await.unwrap();
    // Cleared next_check_at: never again.
    s.update_post(
        w.tenant.id,
        a.id,
        PostPatch {
            next_check_at: Some(None),
            last_check_at: Some(Some(t0() + mins(5))),
            ..PostPatch::default()
        },
        t0() + mins(5),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 10)
            .await
            .unwrap()),
        vec![b.id]
    );
}
