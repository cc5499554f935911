//! Conformance tests of the reply queue's expiry
//! (`ReplyQueueStore::expire_pending_replies`): the items too old for the
//! claim are given up and escalated, never left waiting.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use super::reply_queue::{a_post, ai_on, comment, message, msg, secs, subjects};
use crate::Store;

/// Items received before the window that the claim would otherwise take
/// are given up (escalated, notified, attempts kept, oldest first, at most
/// `limit`); items in the window, in flight, of a paused channel or of a
/// tenant whose AI control is OFF are left alone; the claim then takes the
/// window's items.
pub async fn replies_too_old_for_the_claim_are_escalated(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-exp-1").await;
    let paused = world(s, "Globex", Platform::Facebook, "page-exp-2").await;
    let off = world(s, "Initech", Platform::Facebook, "page-exp-3").await;
    ai_on(s, &a).await;
    ai_on(s, &paused).await;
    let since = t0();
    let now = t0() + Duration::minutes(30);
    let lease = Duration::minutes(5);

    let oldest = message(
        s,
        &a,
        "old-1",
        since - Duration::hours(5),
        Triage::AutoReply,
    )
    .await;
    let post = a_post(s, &a).await;
    let old_comment = comment(
        s,
        &a,
        post.id,
        "old-2",
        since - Duration::hours(4),
        Triage::AutoReply,
    )
    .await;
    let third = message(
        s,
        &a,
        "old-3",
        since - Duration::hours(3),
        Triage::AutoReply,
    )
    .await;
    let recent = message(s, &a, "recent", since + secs(5), Triage::AutoReply).await;
    // In flight with another worker: its lease holds.
    let in_flight = message(
        s,
        &a,
        "flight",
        since - Duration::hours(2),
        Triage::AutoReply,
    )
    .await;
    let held = s
        .claim_pending_replies(since - Duration::hours(2), None, 10, Duration::hours(4))
        .await
        .unwrap();
    assert!(subjects(&held).contains(&msg(&in_flight)), "{held:?}");
    // Everything but `in_flight` back in the queue.
    for item in &held {
        if item.subject() != msg(&in_flight) {
            let (tenant, subject) = (a.tenant.id, item.subject());
            s.finish_reply(tenant, subject, ReplyOutcome::Released { next_at: None })
                .await
                .unwrap();
        }
    }
    let of_paused = message(
        s,
        &paused,
        "paused",
        since - Duration::hours(5),
        Triage::AutoReply,
    )
    .await;
    s.set_channel_status(
        paused.tenant.id,
        paused.channel.id,
        ChannelStatus::NeedsReauth,
    )
    .await
    .unwrap();
    let of_off = message(
        s,
        &off,
        "off",
        since - Duration::hours(5),
        Triage::AutoReply,
    )
    .await;

    let given_up = s.expire_pending_replies(now, since, 2).await.unwrap();
    assert_eq!(
        given_up,
        vec![msg(&oldest), DecisionSubject::Comment(old_comment.id)],
        "the oldest first, at most the limit"
    );
    let given_up = s.expire_pending_replies(now, since, 10).await.unwrap();
    assert_eq!(given_up, vec![msg(&third)]);
    assert!(
        s.expire_pending_replies(now, since, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let stored = s.get_message(a.tenant.id, oldest.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    let reply = stored.reply.unwrap();
    assert_eq!(reply.state, ReplyState::GivenUp);
    assert_eq!(reply.attempts, 0, "no attempt was made");
    assert_eq!((reply.next_at, reply.lease_until), (None, None));
    assert!(
        reply
            .error
            .as_deref()
            .unwrap_or("")
            .contains("before the auto-reply window"),
        "{:?}",
        reply.error
    );
    let stored = s.get_comment(a.tenant.id, old_comment.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    assert_eq!(stored.reply.map(|r| r.state), Some(ReplyState::GivenUp));
    let notified = s
        .list_notifications(a.tenant.id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap();
    assert_eq!(notified.len(), 3, "each one reaches a person: {notified:?}");

    // Left alone: in the window, in flight, paused, AI control OFF.
    for (tenant, m) in [
        (a.tenant.id, &recent),
        (paused.tenant.id, &of_paused),
        (off.tenant.id, &of_off),
    ] {
        let stored = s.get_message(tenant, m.id).await.unwrap();
        assert_eq!(stored.reply, Some(ReplyStatus::pending()), "{}", m.text);
        assert_eq!(stored.triage, Some(Triage::AutoReply));
    }
    let flight = s.get_message(a.tenant.id, in_flight.id).await.unwrap();
    assert_eq!(flight.reply.map(|r| r.state), Some(ReplyState::Sending));

    // Its worker gone (the lease ended), the item in flight is too old too;
    // not one whose reply was stored before its worker stopped (it may have
    // been sent: the claim, which finds that reply, settles it).
    let sent = message(s, &a, "sent", since - Duration::hours(2), Triage::AutoReply).await;
    let held = s
        .claim_pending_replies(since - Duration::hours(2), None, 1, Duration::hours(4))
        .await
        .unwrap();
    assert_eq!(subjects(&held), vec![msg(&sent)]);
    let claim = crate::ReplyClaim {
        tenant_id: a.tenant.id,
        subject: msg(&sent),
        lease_until: held[0].reply().and_then(|r| r.lease_until).unwrap(),
        text: "Thanks!".into(),
        at: since - Duration::hours(2),
    };
    let stored = s.claim_replies(&[claim]).await.unwrap();
    assert!(
        matches!(stored[0], crate::ReplyClaimed::Claimed(_)),
        "{stored:?}"
    );
    let later = since + Duration::hours(3);
    let given_up = s.expire_pending_replies(later, since, 10).await.unwrap();
    assert_eq!(given_up, vec![msg(&in_flight)]);
    let left = s.get_message(a.tenant.id, sent.id).await.unwrap();
    assert_eq!(left.reply.map(|r| r.state), Some(ReplyState::Sending));
    // The window's item is claimed as ever.
    let claimed = s
        .claim_pending_replies(later, Some(since), 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&claimed), vec![msg(&recent)]);
}

/// A comment hidden on the platform after it was triaged AUTO_REPLY is not
/// claimed while hidden; shown again within the window, it is. Too old, it
/// leaves the queue `superseded`, paging no one (what the brand hid is not
/// an escalation).
pub async fn hidden_comments_wait_in_the_reply_queue(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Instagram, "ig-hidden").await;
    ai_on(s, &a).await;
    let since = t0();
    let now = t0() + Duration::minutes(30);
    let lease = Duration::minutes(5);
    let post = a_post(s, &a).await;
    let fresh = comment(
        s,
        &a,
        post.id,
        "h-fresh",
        since + secs(5),
        Triage::AutoReply,
    )
    .await;
    let old = comment(
        s,
        &a,
        post.id,
        "h-old",
        since - Duration::hours(2),
        Triage::AutoReply,
    )
    .await;
    for c in [&fresh, &old] {
        s.set_comment_hidden(a.tenant.id, c.id, true).await.unwrap();
    }
    assert!(
        s.claim_pending_replies(now, Some(since), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_pending_replies(now, None, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.expire_pending_replies(now, since, 10).await.unwrap(),
        vec![DecisionSubject::Comment(old.id)]
    );
    let stored = s.get_comment(a.tenant.id, old.id).await.unwrap();
    assert_eq!(stored.reply.map(|r| r.state), Some(ReplyState::Superseded));
    assert_eq!(stored.triage, Some(Triage::AutoReply), "not escalated");
    let notified = s
        .list_notifications(a.tenant.id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap();
    assert!(notified.is_empty(), "{notified:?}");

    s.set_comment_hidden(a.tenant.id, fresh.id, false)
        .await
        .unwrap();
    let claimed = s
        .claim_pending_replies(now, Some(since), 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&claimed), vec![DecisionSubject::Comment(fresh.id)]);
}
