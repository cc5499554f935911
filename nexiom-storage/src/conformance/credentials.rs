//! Conformance tests of the token lifecycle's storage (`CredentialStore`):
//! one refresh lease per channel, the refused refresh that pauses a channel's
//! work, and the reconnection that resumes it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, published_post, t0, world};
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

fn creds(token: &str, expires_at: Option<chrono::DateTime<Utc>>) -> Credentials {
    Credentials {
        access_token: Some(SecretString::new(token)),
        refresh_token: Some(SecretString::new(format!("refresh-{token}"))),
        expires_at,
    }
}

async fn expiring(s: &dyn Store, w: &World, token: &str, at: chrono::DateTime<Utc>) {
    s.update_channel_credentials(w.tenant.id, w.channel.id, creds(token, Some(at)))
        .await
        .unwrap();
}

/// A second lease on a channel waits for the first; the second reads what
/// the first stored. A dropped lease changes nothing. Unknown and foreign
/// channels are `NotFound`.
pub async fn credential_leases_are_one_at_a_time(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::LinkedIn, "urn:li:organization:71").await;
    let other = world(s, "Beta", Platform::LinkedIn, "urn:li:organization:72").await;
    expiring(s, &w, "old", t0() + mins(2)).await;

    let first = s.lock_credentials(w.tenant.id, w.channel.id).await.unwrap();
    assert_eq!(
        first
            .channel()
            .credentials
            .access_token
            .as_ref()
            .unwrap()
            .expose(),
        "old"
    );
    let waiting = {
        let store = Arc::clone(&store);
        let (tenant, channel) = (w.tenant.id, w.channel.id);
        tokio::spawn(async move {
            let lease = store.lock_credentials(tenant, channel).await.unwrap();
            lease
                .channel()
                .credentials
                .access_token
                .as_ref()
                .unwrap()
                .expose()
                .to_owned()
        })
    };
    // The second holder cannot get the lease while the first has it.
    let mut waiting = waiting;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "a second lease was granted while the first was held"
    );
    let stored = first
        .store(creds("new", Some(t0() + Duration::hours(2))))
        .await
        .unwrap();
    assert_eq!(stored.credentials.access_token.unwrap().expose(), "new");
    assert_eq!(waiting.await.unwrap(), "new");

    // Dropped: released, nothing written.
    let dropped = s.lock_credentials(w.tenant.id, w.channel.id).await.unwrap();
    drop(dropped);
    let again = s.lock_credentials(w.tenant.id, w.channel.id).await.unwrap();
    assert_eq!(
        again
            .channel()
            .credentials
            .access_token
            .as_ref()
            .unwrap()
            .expose(),
        "new"
    );
    drop(again);

    for missing in [
        s.lock_credentials(w.tenant.id, other.channel.id)
            .await
            .err(),
        s.lock_credentials(w.tenant.id, ChannelId::generate())
            .await
            .err(),
    ] {
        assert!(
            matches!(missing, Some(StorageError::NotFound { .. })),
            "{missing:?}"
        );
    }
    // Invalid credentials are refused, nothing written.
    let lease = s.lock_credentials(w.tenant.id, w.channel.id).await.unwrap();
    let bad = Credentials {
        access_token: Some(SecretString::new("a\0b")),
        ..Credentials::default()
    };
    assert!(matches!(
        lease.store(bad).await,
        Err(StorageError::Invalid { .. })
    ));
    let channel = s.get_channel(w.tenant.id, w.channel.id).await.unwrap();
    assert_eq!(channel.credentials.access_token.unwrap().expose(), "new");
}

/// Expiring channels are listed across tenants, soonest first, active only.
/// A refused refresh sets the channel `needs_reauth` with its reason and
/// time: its due posts stay `queued` but are not claimed, its polls are not
/// claimed, it is no longer listed as expiring. Reconnecting stores the new
/// tokens, sets it `active` and resumes its work.
pub async fn refused_refresh_pauses_the_channel_until_reconnected(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::LinkedIn, "urn:li:organization:81").await;
    let b = world(s, "Beta", Platform::Facebook, "page-82").await;
    let quiet = world(s, "Gamma", Platform::WhatsApp, "pn-83").await;
    expiring(s, &a, "a-old", t0() + mins(20)).await;
    expiring(s, &b, "b-old", t0() + mins(10)).await;
    let listed = s.list_expiring_channels(t0() + mins(30), 10).await.unwrap();
    assert_eq!(
        listed,
        vec![(b.tenant.id, b.channel.id), (a.tenant.id, a.channel.id)]
    );
    assert_eq!(
        s.list_expiring_channels(t0() + mins(15), 10).await.unwrap(),
        vec![(b.tenant.id, b.channel.id)]
    );
    assert_eq!(
        s.list_expiring_channels(t0() + mins(30), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let _ = quiet;

    // Work of the channel: a due post and a due poll.
    let polled = published_post(s, &a, "already out").await;
    let due = s
        .insert_post(NewScheduledPost::one_off(
            a.tenant.id,
            a.channel.id,
            Content::text("due"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;

    let lease = s.lock_credentials(a.tenant.id, a.channel.id).await.unwrap();
    let paused = lease
        .refuse(
            "invalid_grant: the refresh token was revoked",
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(paused.status, ChannelStatus::NeedsReauth);
    assert_eq!(
        paused.status_reason.as_deref(),
        Some("invalid_grant: the refresh token was revoked")
    );
    assert_eq!(paused.status_changed_at, Some(t0() + mins(1)));
    let read = s.get_channel(a.tenant.id, a.channel.id).await.unwrap();
    assert_eq!(read, paused);
    // The application is told in the same write.
    let told = s
        .list_notifications(a.tenant.id, Some(NotificationKind::ChannelNeedsReauth), 10)
        .await
        .unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].payload["channel_id"],
        serde_json::json!(a.channel.id)
    );
    assert_eq!(
        told[0].payload["reason"],
        serde_json::json!("invalid_grant: the refresh token was revoked")
    );
    assert_eq!(
        s.list_expiring_channels(t0() + mins(30), 10).await.unwrap(),
        vec![(b.tenant.id, b.channel.id)]
    );

    let later = t0() + mins(5);
    assert!(
        s.claim_due_posts(later, 10, "w1", mins(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get_post(a.tenant.id, due.id).await.unwrap().status,
        PostStatus::Queued
    );
    assert!(s.claim_polls(later, 10, mins(5)).await.unwrap().is_empty());
    assert!(
        s.list_posts_due_for_polling(later, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Reconnected by a person: work resumes.
    let back = s
        .reconnect_channel(
            a.tenant.id,
            a.channel.id,
            creds("a-new", Some(t0() + Duration::days(60))),
            t0() + mins(6),
        )
        .await
        .unwrap();
    assert_eq!(back.status, ChannelStatus::Active);
    assert_eq!(back.status_reason, None);
    assert_eq!(back.status_changed_at, Some(t0() + mins(6)));
    assert_eq!(back.credentials.access_token.unwrap().expose(), "a-new");
    let claimed = s.claim_due_posts(later, 10, "w1", mins(5)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![due.id]
    );
    let polls = s.claim_polls(later, 10, mins(5)).await.unwrap();
    assert_eq!(
        polls.iter().map(|c| c.post.id).collect::<Vec<_>>(),
        vec![polled.id]
    );
    assert!(matches!(
        s.reconnect_channel(b.tenant.id, a.channel.id, creds("x", None), t0())
            .await,
        Err(StorageError::NotFound { .. })
    ));
}

/// The replies waiting on a paused channel (messages and comments) are not
/// claimed; the other channels' are. Reconnected, they are claimed again.
pub async fn replies_of_a_paused_channel_wait(store: Arc<dyn Store>) {
    use super::reply_queue::{ai_on, comment, message, subjects};
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::Facebook, "page-91").await;
    let b = world(s, "Beta", Platform::Facebook, "page-92").await;
    ai_on(s, &a).await;
    ai_on(s, &b).await;
    let post = published_post(s, &a, "out").await;
    let m = message(s, &a, "pm", t0(), Triage::AutoReply).await;
    let c = comment(s, &a, post.id, "pc", t0(), Triage::AutoReply).await;
    let other = message(s, &b, "om", t0(), Triage::AutoReply).await;

    let lease = s.lock_credentials(a.tenant.id, a.channel.id).await.unwrap();
    lease.refuse("revoked", t0()).await.unwrap();
    let now = t0() + mins(1);
    let claimed = s
        .claim_pending_replies(now, None, 10, mins(5))
        .await
        .unwrap();
    assert_eq!(subjects(&claimed), vec![DecisionSubject::Message(other.id)]);

    s.reconnect_channel(a.tenant.id, a.channel.id, creds("back", None), now)
        .await
        .unwrap();
    let mut claimed = subjects(
        &s.claim_pending_replies(now, None, 10, mins(5))
            .await
            .unwrap(),
    );
    claimed.sort_by_key(|d| format!("{d:?}"));
    let mut want = vec![
        DecisionSubject::Message(m.id),
        DecisionSubject::Comment(c.id),
    ];
    want.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(claimed, want);
}
