//! Conformance tests of broadcast posts created with their audience, and of
//! series occurrences that use their series template's audience.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use crate::{StorageError, Store};

/// A post created with its audience has both or, refused, neither; an
/// occurrence of a broadcast series sends to the series' audience.
pub async fn broadcast_posts_are_created_with_their_audience(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "phone-1").await;
    let t = w.tenant.id;
    for r in ["15550001", "15550002"] {
        s.apply_opt_change(OptChange {
            tenant_id: t,
            channel_id: w.channel.id,
            recipient: r.into(),
            opted_in: true,
            source: "form".into(),
            at: t0(),
        })
        .await
        .unwrap();
    }
    let audience = s
        .create_audience(NewAudience {
            tenant_id: t,
            channel_id: w.channel.id,
            name: "All".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    s.add_audience_members(
        t,
        audience.id,
        &["15550001".into(), "15550002".into()],
        t0(),
    )
    .await
    .unwrap();
    let one_off =
        |text: &str| NewScheduledPost::one_off(t, w.channel.id, Content::text(text), t0(), t0());
    let template = BroadcastTemplate {
        name: "promo".into(),
        language: "fr_FR".into(),
        parameters: vec![],
    };
    let (post, spec) = s
        .insert_broadcast_post(
            one_off("hello"),
            BroadcastAudience::Recipients {
                recipients: vec!["+15550001".into()],
            },
            Some(template.clone()),
        )
        .await
        .unwrap();
    assert_eq!(post.status, PostStatus::Queued);
    assert_eq!(spec.post_id, post.id);
    assert_eq!(spec.template, Some(template));
    assert_eq!(s.get_post(t, post.id).await.unwrap(), post);
    assert_eq!(s.get_post_broadcast(t, post.id).await.unwrap(), Some(spec));

    // Refused: nothing written.
    let before = s.list_posts(t, PostFilter::default()).await.unwrap().len();
    let stored = || BroadcastAudience::Stored {
        audience_id: audience.id,
    };
    let occurrence = NewScheduledPost {
        series_id: Some(post.id),
        occurrence_at: Some(t0()),
        ..one_off("occurrence")
    };
    let err = s
        .insert_broadcast_post(occurrence, stored(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    let empty = BroadcastAudience::Recipients { recipients: vec![] };
    let err = s
        .insert_broadcast_post(one_off("x"), empty, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    let other = world(s, "Other", Platform::WhatsApp, "phone-x").await;
    let err = s
        .insert_broadcast_post(
            NewScheduledPost::one_off(t, other.channel.id, Content::text("x"), t0(), t0()),
            stored(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownReference { .. }),
        "{err:?}"
    );
    let err = s
        .insert_broadcast_post(
            NewScheduledPost::one_off(
                other.tenant.id,
                other.channel.id,
                Content::text("x"),
                t0(),
                t0(),
            ),
            stored(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownReference { .. }),
        "{err:?}"
    );
    assert_eq!(
        s.list_posts(t, PostFilter::default()).await.unwrap().len(),
        before
    );
    assert!(
        s.list_posts(other.tenant.id, PostFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // A series template with a stored audience; its occurrence has none of
    // its own and sends to the series' audience.
    let series = NewScheduledPost {
        recurrence: Some(Recurrence {
            rrule: "FREQ=DAILY".into(),
            dtstart: t0().naive_utc(),
            time_zone: chrono_tz::UTC,
        }),
        publish_at: t0() + Duration::days(1),
        ..one_off("daily")
    };
    let (template_post, _) = s
        .insert_broadcast_post(series, stored(), None)
        .await
        .unwrap();
    let occurrence = s
        .insert_post(NewScheduledPost {
            series_id: Some(template_post.id),
            occurrence_at: Some(t0() - Duration::minutes(1)),
            publish_at: t0() - Duration::minutes(1),
            ..one_off("daily")
        })
        .await
        .unwrap()
        .record;
    assert_eq!(s.get_post_broadcast(t, occurrence.id).await.unwrap(), None);
    let claimed = s
        .claim_due_posts(t0() - Duration::minutes(1), 1, "w1", Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![occurrence.id]
    );
    let counts = s
        .prepare_deliveries(t, occurrence.id, "w1", t0() - Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.pending, counts.total()), (2, 2));
}
