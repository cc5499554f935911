//! Conformance test of the extreme time bounds.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{conversation, message, published_post, t0, world};
use crate::Store;

/// The extreme instants of `chrono` work as range bounds on every backend
/// ("since the beginning", "until the end of time").
pub async fn extreme_time_bounds_are_accepted(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let (_, conv) = conversation(s, &w, "336").await;
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("m"),
        t0(),
    ))
    .await
    .unwrap();
    assert_eq!(
        s.list_messages_since(t, MessageDirection::Inbound, min, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let p = published_post(s, &w, "x").await;
    s.insert_comment(NewComment {
        tenant_id: t,
        post_id: p.id,
        platform_comment_id: "c".into(),
        parent_platform_comment_id: None,
        author_id: None,
        author_name: None,
        text: "hi".into(),
        created_at: t0(),
        stored_at: t0(),
        hidden: false,
    })
    .await
    .unwrap();
    assert_eq!(s.list_comments_since(t, min, 10).await.unwrap().len(), 1);
    let filter = PostFilter {
        from: Some(min),
        to: Some(max),
        ..PostFilter::default()
    };
    assert_eq!(s.list_posts(t, filter).await.unwrap().len(), 1);
    assert_eq!(
        s.count_posts(t, w.channel.id, min, max, PostStatus::ALL)
            .await
            .unwrap(),
        1
    );
    assert!(s.list_kpis(t, min, max).await.unwrap().is_empty());
    assert_eq!(s.delete_executions_before(min).await.unwrap(), 0);
    assert_eq!(s.release_stale_leases(max).await.unwrap(), 0);
}

/// Waits a caller gives (a dashboard's "waiting longer than" filter, the SLA
/// monitor's target) reaching past the range of time: nothing panics; a wait
/// too long for anything to have waited it lists nothing, a negative one
/// lists every waiting item. A breach is marked notified by its subject,
/// kind and id.
pub async fn waits_past_the_range_of_time_are_answered(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-wait").await;
    let t = w.tenant.id;
    let (_, conv) = conversation(s, &w, "337").await;
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("w"),
        t0(),
    ))
    .await
    .unwrap();
    let now = t0() + Duration::hours(1);
    let list = |wait: Duration| {
        s.list_inbox(InboxQuery {
            tenant_id: t,
            view: InboxView::WaitingLongerThan(wait),
            now,
            after: None,
            limit: 10,
        })
    };
    assert_eq!(list(Duration::minutes(30)).await.unwrap().items.len(), 1);
    for (wait, listed) in [
        (Duration::MAX, 0),
        (Duration::days(365 * 400_000), 0),
        (Duration::MIN, 1),
    ] {
        assert_eq!(list(wait).await.unwrap().items.len(), listed, "{wait}");
        let breaches = s.list_unnotified_breaches(t, wait, now, 10).await.unwrap();
        assert_eq!(breaches.len(), listed, "{wait}");
    }
    // Marked notified by its subject, kind included: the comment of the
    // same id is not this conversation.
    let breach = s
        .list_unnotified_breaches(t, Duration::minutes(30), now, 10)
        .await
        .unwrap()
        .remove(0);
    let since = breach.waiting_since.unwrap();
    let not_it = InboxSubject::Comment(CommentId::from_uuid(conv.id.as_uuid()));
    assert_eq!(
        s.mark_breaches_notified(t, &[(not_it, since)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.mark_breaches_notified(t, &[(breach.subject, since)])
            .await
            .unwrap(),
        1
    );
    assert!(
        s.list_unnotified_breaches(t, Duration::minutes(30), now, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
