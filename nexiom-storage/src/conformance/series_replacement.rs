//! Conformance tests of replacing a series template by another
//! (`PostStore::replace_series`): all of it or nothing.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use nexiom_core::*;

use super::fixtures::{assert_unknown, t0, world};
use crate::{StorageError, Store};

fn weekly(tenant: TenantId, channel: ChannelId, text: &str, day: &str) -> NewScheduledPost {
    let mut new = NewScheduledPost::one_off(tenant, channel, Content::text(text), t0(), t0());
    new.recurrence = Some(Recurrence {
        rrule: format!("FREQ=WEEKLY;BYDAY={day}"),
        dtstart: NaiveDate::from_ymd_opt(2026, 3, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        time_zone: chrono_tz::Europe::Paris,
    });
    new
}

async fn statuses(s: &dyn Store, tenant: TenantId, ids: &[PostId]) -> Vec<PostStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.push(s.get_post(tenant, *id).await.unwrap().status);
    }
    out
}

#[track_caller]
fn assert_precondition<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    assert!(
        matches!(r, Err(StorageError::Precondition { .. })),
        "expected Precondition, got {r:?}"
    );
}

/// A refused replacement writes nothing; an accepted one cancels the old
/// template and its queued occurrences (one being published stays so) and
/// creates the new template; a series is replaced once, by one of two
/// concurrent callers.
pub async fn a_series_is_replaced_all_at_once_or_not_at_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    let t = w.tenant.id;
    let c = w.channel.id;
    let old = s
        .insert_post(weekly(t, c, "weekly", "MO"))
        .await
        .unwrap()
        .record;
    let occurrence = |days: i64| {
        let mut o = NewScheduledPost::one_off(
            t,
            c,
            Content::text("weekly"),
            t0() + Duration::days(days),
            t0(),
        );
        o.series_id = Some(old.id);
        o.occurrence_at = Some(o.publish_at);
        o
    };
    let queued = s.insert_post(occurrence(1)).await.unwrap().record;
    let publishing = s.insert_post(occurrence(8)).await.unwrap().record;
    let patch = PostPatch {
        status: Some(PostStatus::Publishing),
        ..PostPatch::default()
    };
    s.update_post(t, publishing.id, patch, t0()).await.unwrap();
    let all = [old.id, queued.id, publishing.id];
    let untouched = vec![
        PostStatus::Queued,
        PostStatus::Queued,
        PostStatus::Publishing,
    ];
    let count = || async { s.list_posts(t, PostFilter::default()).await.unwrap().len() };

    // Refused: nothing written, the old series as it was.
    let mut unknown_mission = weekly(t, c, "new", "TU");
    unknown_mission.mission_id = Some(MissionId::generate());
    let at = t0() + Duration::minutes(5);
    assert_unknown(
        s.replace_series(old.id, unknown_mission, None, at).await,
        "mission",
    );
    let mut an_occurrence = weekly(t, c, "new", "TU");
    an_occurrence.series_id = Some(old.id);
    an_occurrence.occurrence_at = Some(t0());
    let mut an_instant = weekly(t, c, "new", "TU");
    an_instant.occurrence_at = Some(t0());
    let not_a_series = NewScheduledPost::one_off(t, c, Content::text("new"), t0(), t0());
    for refused in [an_occurrence, an_instant, not_a_series] {
        assert!(matches!(
            s.replace_series(old.id, refused, None, at).await,
            Err(StorageError::Invalid(_))
        ));
    }
    let foreign = weekly(other.tenant.id, other.channel.id, "new", "TU");
    assert!(matches!(
        s.replace_series(old.id, foreign, None, at).await,
        Err(StorageError::NotFound { .. })
    ));
    let one_off = s
        .insert_post(NewScheduledPost::one_off(
            t,
            c,
            Content::text("once"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    assert_precondition(
        s.replace_series(one_off.id, weekly(t, c, "new", "TU"), None, at)
            .await,
    );
    assert!(matches!(
        s.replace_series(PostId::generate(), weekly(t, c, "new", "TU"), None, at)
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(statuses(s, t, &all).await, untouched);
    assert_eq!(s.get_post(t, old.id).await.unwrap(), old);
    assert_eq!(count().await, 4);

    // Two callers at once: one replaces it, the other finds it replaced.
    let (a, b) = tokio::join!(
        s.replace_series(old.id, weekly(t, c, "tuesdays", "TU"), None, at),
        s.replace_series(old.id, weekly(t, c, "wednesdays", "WE"), None, at),
    );
    let (created, refused) = match (a, b) {
        (Ok(created), refused) | (refused, Ok(created)) => (created, refused),
        other => panic!("expected one replacement, got {other:?}"),
    };
    assert_precondition(refused);
    assert_eq!(count().await, 5);
    assert_eq!(created.status, PostStatus::Queued);
    assert!(created.recurrence.is_some());
    assert_eq!(s.get_post(t, created.id).await.unwrap(), created);
    assert_eq!(
        statuses(s, t, &all).await,
        vec![
            PostStatus::Cancelled,
            PostStatus::Cancelled,
            PostStatus::Publishing,
        ]
    );
    let cancelled = s.get_post(t, old.id).await.unwrap();
    assert_eq!(cancelled.updated_at, at);
    assert_eq!(cancelled.lease_owner, None);
    // Marked stopped, naming its replacement: an occurrence being published
    // that comes back to `queued` is not published.
    assert!(cancelled.is_stopped_series(), "{cancelled:?}");
    let replaced = cancelled.error_message.unwrap_or_default();
    assert!(replaced.contains(&created.id.to_string()), "{replaced}");
    // Replaced once: the new series can be replaced in turn.
    let again = s
        .replace_series(created.id, weekly(t, c, "fridays", "FR"), None, at)
        .await
        .unwrap();
    assert_eq!(
        statuses(s, t, &[created.id, again.id]).await,
        vec![PostStatus::Cancelled, PostStatus::Queued]
    );
}

/// A broadcast series is replaced with its audience and template, and an
/// audience of another channel refuses the whole replacement.
pub async fn a_broadcast_series_is_replaced_with_its_audience(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    let second = s
        .create_channel(NewChannel {
            tenant_id: t,
            platform: Platform::WhatsApp,
            external_account_id: "phone-2".into(),
            name: "second".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("token-2")),
                refresh_token: None,
                expires_at: None,
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    let elsewhere = s
        .create_audience(NewAudience {
            tenant_id: t,
            channel_id: second.id,
            name: "Elsewhere".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let template = BroadcastTemplate {
        name: "promo".into(),
        language: "fr_FR".into(),
        parameters: vec![],
    };
    let recipients = BroadcastAudience::Recipients {
        recipients: vec!["+15550001".into()],
    };
    let (old, _) = s
        .insert_broadcast_post(
            weekly(t, w.channel.id, "weekly", "MO"),
            recipients.clone(),
            Some(template.clone()),
        )
        .await
        .unwrap();
    let at = t0() + Duration::minutes(5);

    let wrong = BroadcastAudience::Stored {
        audience_id: elsewhere.id,
    };
    assert_unknown(
        s.replace_series(
            old.id,
            weekly(t, w.channel.id, "new", "TU"),
            Some((wrong, None)),
            at,
        )
        .await,
        "audience",
    );
    assert_eq!(s.get_post(t, old.id).await.unwrap(), old);
    assert_eq!(
        s.list_posts(t, PostFilter::default()).await.unwrap().len(),
        1
    );

    let created = s
        .replace_series(
            old.id,
            weekly(t, w.channel.id, "new", "TU"),
            Some((recipients.clone(), Some(template.clone()))),
            at,
        )
        .await
        .unwrap();
    let spec = s.get_post_broadcast(t, created.id).await.unwrap().unwrap();
    assert_eq!(spec.post_id, created.id);
    assert_eq!(spec.audience, recipients);
    assert_eq!(spec.template, Some(template));
    assert_eq!(
        s.get_post(t, old.id).await.unwrap().status,
        PostStatus::Cancelled
    );
    // An invalid audience is refused as such, before the old series is read
    // (here cancelled), on both backends alike.
    let empty = BroadcastAudience::Recipients { recipients: vec![] };
    assert!(matches!(
        s.replace_series(
            old.id,
            weekly(t, w.channel.id, "new", "WE"),
            Some((empty, None)),
            at
        )
        .await,
        Err(StorageError::Invalid(_))
    ));
}
