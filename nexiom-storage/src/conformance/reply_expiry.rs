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
    // so are items whose reply was stored before their worker stopped: the
    // stored reply settles each, as a claim would (before, they stayed
    // `sending` for ever, paging no one, since the claim only reads the
    // window): not yet answered by the platform, given up as of unknown
    // outcome (escalated, never sent again); taken by the platform, `sent`.
    let unknown = message(
        s,
        &a,
        "unknown",
        since - Duration::hours(2),
        Triage::AutoReply,
    )
    .await;
    let answered = message(
        s,
        &a,
        "answered",
        since - Duration::hours(2),
        Triage::AutoReply,
    )
    .await;
    let post2 = a_post(s, &a).await;
    let unknown_comment = comment(
        s,
        &a,
        post2.id,
        "unknown-c",
        since - Duration::hours(2),
        Triage::AutoReply,
    )
    .await;
    let held = s
        .claim_pending_replies(since - Duration::hours(2), None, 10, Duration::hours(4))
        .await
        .unwrap();
    let expected = [
        msg(&unknown),
        msg(&answered),
        DecisionSubject::Comment(unknown_comment.id),
    ];
    // The window's item is claimable too: put back.
    for item in &held {
        if !expected.contains(&item.subject()) {
            s.finish_reply(
                a.tenant.id,
                item.subject(),
                ReplyOutcome::Released { next_at: None },
            )
            .await
            .unwrap();
        }
    }
    let held: Vec<&ClaimedReply> = held
        .iter()
        .filter(|item| expected.contains(&item.subject()))
        .collect();
    assert_eq!(held.len(), expected.len(), "{held:?}");
    let claims: Vec<crate::ReplyClaim> = held
        .iter()
        .map(|item| crate::ReplyClaim {
            tenant_id: a.tenant.id,
            subject: item.subject(),
            lease_until: item.reply().and_then(|r| r.lease_until).unwrap(),
            text: "Thanks!".into(),
            at: since - Duration::hours(2),
        })
        .collect();
    let stored = s.claim_replies(&claims).await.unwrap();
    let mut answered_reply = None;
    for (claim, result) in claims.iter().zip(&stored) {
        match result {
            crate::ReplyClaimed::Claimed(id) => {
                if claim.subject == msg(&answered) {
                    answered_reply = *id;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    s.record_message_sent(
        a.tenant.id,
        answered_reply.expect("the reply message"),
        Some("wamid.answered"),
        DeliveryStatus::Sent,
    )
    .await
    .unwrap();
    let later = since + Duration::hours(3);
    let mut given_up = s.expire_pending_replies(later, since, 10).await.unwrap();
    let mut expected = vec![
        msg(&in_flight),
        msg(&unknown),
        msg(&answered),
        DecisionSubject::Comment(unknown_comment.id),
    ];
    given_up.sort_by_key(|s| format!("{s:?}"));
    expected.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(given_up, expected);
    let left = s.get_message(a.tenant.id, unknown.id).await.unwrap();
    assert_eq!(left.triage, Some(Triage::Escalate));
    let reply = left.reply.unwrap();
    assert_eq!(reply.state, ReplyState::GivenUp);
    assert!(
        reply
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("outcome unknown"),
        "{:?}",
        reply.error
    );
    let left = s
        .get_comment(a.tenant.id, unknown_comment.id)
        .await
        .unwrap();
    assert_eq!(left.triage, Some(Triage::Escalate));
    assert_eq!(left.reply.map(|r| r.state), Some(ReplyState::GivenUp));
    let left = s.get_message(a.tenant.id, answered.id).await.unwrap();
    assert_eq!(
        left.triage,
        Some(Triage::AutoReply),
        "answered: not escalated"
    );
    let reply = left.reply.unwrap();
    assert_eq!(reply.state, ReplyState::Sent);
    assert_eq!(
        (reply.next_at, reply.lease_until, reply.error),
        (None, None, None)
    );
    assert!(
        s.expire_pending_replies(later, since, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing left"
    );
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
