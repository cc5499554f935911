//! Conformance tests of the reply queue (`ReplyQueueStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, mins, t0, world};
use crate::{StorageError, Store};

pub(super) fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// An inbound message of `w` at `at`, triaged `triage`.
pub(super) async fn message(
    s: &dyn Store,
    w: &World,
    key: &str,
    at: DateTime<Utc>,
    triage: Triage,
) -> Message {
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: w.channel.platform.clone(),
            external_handle: format!("h-{key}"),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = s
        .insert_open_conversation(w.tenant.id, cc.contact_id, w.channel.id, t0())
        .await
        .unwrap()
        .record;
    let m = s
        .insert_message(NewMessage {
            tenant_id: w.tenant.id,
            conversation_id: conv.id,
            direction: MessageDirection::Inbound,
            text: format!("text {key}"),
            has_media: false,
            provider_message_id: Some(format!("mid-{key}")),
            in_reply_to: None,
            delivery_status: None,
            created_at: at,
            stored_at: at,
        })
        .await
        .unwrap()
        .record;
    assert_eq!(m.reply, None, "a new message is not in the reply queue");
    s.set_message_triage(w.tenant.id, m.id, triage, 0.9, None)
        .await
        .unwrap()
}

/// A comment of `w` at `at`, triaged `triage`.
pub(super) async fn comment(
    s: &dyn Store,
    w: &World,
    post: PostId,
    key: &str,
    at: DateTime<Utc>,
    triage: Triage,
) -> Comment {
    let c = s
        .insert_comment(NewComment {
            tenant_id: w.tenant.id,
            post_id: post,
            platform_comment_id: format!("c-{key}"),
            parent_platform_comment_id: None,
            author_id: None,
            author_name: None,
            text: format!("comment {key}"),
            created_at: at,
            stored_at: at,
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    s.set_comment_triage(w.tenant.id, c.id, triage, 0.9, None)
        .await
        .unwrap()
}

pub(super) async fn ai_on(s: &dyn Store, w: &World) {
    s.set_ai_control(w.tenant.id, true, None, t0())
        .await
        .unwrap();
}

/// A post of `w`'s channel, due at `t0`, for comments to hang on.
pub(super) async fn a_post(s: &dyn Store, w: &World) -> ScheduledPost {
    let post = NewScheduledPost::one_off(w.tenant.id, w.channel.id, Content::text("p"), t0(), t0());
    s.insert_post(post).await.unwrap().record
}

pub(super) fn subjects(claimed: &[ClaimedReply]) -> Vec<DecisionSubject> {
    claimed.iter().map(ClaimedReply::subject).collect()
}

pub(super) fn msg(m: &Message) -> DecisionSubject {
    DecisionSubject::Message(m.id)
}

/// Claim order (oldest first, messages and comments together), the `since`
/// and `limit` bounds, AI control OFF tenants left alone, non-AUTO_REPLY
/// items never in the queue.
pub async fn reply_queue_claims_oldest_due_first(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-2").await;
    let off = world(s, "Initech", Platform::Facebook, "page-3").await;
    ai_on(s, &a).await;
    ai_on(s, &b).await;
    let post = a_post(s, &a).await;
    let m3 = message(s, &a, "m3", t0() + secs(3), Triage::AutoReply).await;
    let m1 = message(s, &b, "m1", t0() + secs(1), Triage::AutoReply).await;
    let c2 = comment(s, &a, post.id, "c2", t0() + secs(2), Triage::AutoReply).await;
    let old = message(s, &a, "old", t0() - secs(60), Triage::AutoReply).await;
    let ignored = message(s, &a, "ign", t0(), Triage::Ignore).await;
    let escalated = comment(s, &a, post.id, "esc", t0(), Triage::Escalate).await;
    let _off = message(s, &off, "off", t0(), Triage::AutoReply).await;
    assert_eq!(m1.reply, Some(ReplyStatus::pending()));
    assert_eq!(c2.reply, Some(ReplyStatus::pending()));
    assert_eq!(ignored.reply, None);
    assert_eq!(escalated.reply, None);

    let now = t0() + secs(10);
    let lease = Duration::minutes(5);
    assert!(
        s.claim_pending_replies(now, Some(t0()), 0, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let first = s
        .claim_pending_replies(now, Some(t0()), 2, lease)
        .await
        .unwrap();
    assert_eq!(
        subjects(&first),
        vec![msg(&m1), DecisionSubject::Comment(c2.id)]
    );
    for item in &first {
        let r = item.reply().unwrap();
        assert_eq!(r.state, ReplyState::Sending);
        assert_eq!(r.lease_until, Some(now + lease));
    }
    // The rest; `old` is before `since`, `off`'s tenant has AI control OFF.
    let rest = s
        .claim_pending_replies(now, Some(t0()), 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&rest), vec![msg(&m3)]);
    // Without `since`, the old one too.
    let all = s.claim_pending_replies(now, None, 10, lease).await.unwrap();
    assert_eq!(subjects(&all), vec![msg(&old)]);
    // AI control ON: that tenant's item becomes claimable.
    ai_on(s, &off).await;
    assert_eq!(
        s.claim_pending_replies(now, None, 10, lease)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.claim_pending_replies(now, None, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    // Re-triaging does not reset the state.
    let again = s
        .set_message_triage(a.tenant.id, m3.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    assert_eq!(again.reply.unwrap().state, ReplyState::Sending);
    match s
        .claim_pending_replies(DateTime::<Utc>::MAX_UTC, None, 1, lease)
        .await
    {
        Err(StorageError::Invalid(CoreError::Invalid { field, .. })) => assert_eq!(field, "lease"),
        other => panic!("expected Invalid(lease), got {other:?}"),
    }
}

/// A claim holds until its lease ends: a second claimer gets other items,
/// and an expired lease makes the item claimable again; concurrent claimers
/// never get one item twice.
pub async fn reply_queue_leases_keep_claims_apart(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    ai_on(s, &w).await;
    let mut items = Vec::new();
    for i in 0..40 {
        items.push(message(s, &w, &format!("m{i}"), t0() + secs(i), Triage::AutoReply).await);
    }
    let lease = Duration::minutes(5);
    let now = t0() + secs(100);
    let a = s.claim_pending_replies(now, None, 3, lease).await.unwrap();
    let b = s.claim_pending_replies(now, None, 3, lease).await.unwrap();
    assert_eq!(subjects(&a), items[..3].iter().map(msg).collect::<Vec<_>>());
    assert_eq!(
        subjects(&b),
        items[3..6].iter().map(msg).collect::<Vec<_>>()
    );
    // Just before the lease ends, still held; at its end, claimable again.
    let later = s
        .claim_pending_replies(now + lease - secs(1), None, 1, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&later), vec![msg(&items[6])]);
    let expired = s
        .claim_pending_replies(now + lease, None, 2, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&expired), vec![msg(&items[0]), msg(&items[1])]);

    // Concurrent claimers over the other 33: each item exactly once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_pending_replies(now, None, 4, lease)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(subjects(&batch));
            }
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    got.sort_by_key(|s| format!("{s:?}"));
    let mut want: Vec<DecisionSubject> = items[7..].iter().map(msg).collect();
    want.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(got, want);
}

/// Outcomes: sent items never come back, failures are recorded with their
/// backoff, a give-up escalates, a release counts no attempt, a late outcome
/// on a settled item changes nothing.
pub async fn reply_queue_records_outcomes_on_the_item(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    ai_on(s, &w).await;
    let post = a_post(s, &w).await;
    let good = message(s, &w, "good", t0(), Triage::AutoReply).await;
    let bad = comment(s, &w, post.id, "bad", t0() + secs(1), Triage::AutoReply).await;
    let off = message(s, &w, "off", t0() + secs(2), Triage::AutoReply).await;
    let never = message(s, &w, "never", t0() + secs(3), Triage::Ignore).await;
    let lease = Duration::minutes(5);
    let t = w.tenant.id;
    let bad_s = DecisionSubject::Comment(bad.id);

    // Outcomes need the item in the queue.
    match s.finish_reply(t, msg(&never), ReplyOutcome::Sent).await {
        Err(StorageError::Precondition { .. }) => {}
        other => panic!("expected Precondition, got {other:?}"),
    }
    let other = world(s, "Globex", Platform::Facebook, "page-2").await;
    match s
        .finish_reply(other.tenant.id, msg(&good), ReplyOutcome::Sent)
        .await
    {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }

    let claimed = s
        .claim_pending_replies(t0(), None, 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let sent = s
        .finish_reply(t, msg(&good), ReplyOutcome::Sent)
        .await
        .unwrap();
    assert_eq!(sent.state, ReplyState::Sent);
    assert_eq!(sent.lease_until, None);
    let retry_at = t0() + secs(60);
    let failed = s
        .finish_reply(
            t,
            bad_s,
            ReplyOutcome::Retry {
                error: "generator down".into(),
                next_at: retry_at,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        failed,
        ReplyStatus {
            state: ReplyState::Pending,
            attempts: 1,
            error: Some("generator down".into()),
            next_at: Some(retry_at),
            lease_until: None,
        }
    );
    let released = s
        .finish_reply(t, msg(&off), ReplyOutcome::Released { next_at: None })
        .await
        .unwrap();
    assert_eq!(
        released,
        ReplyStatus::pending(),
        "a release counts no attempt"
    );
    assert_eq!(
        s.get_message(t, off.id).await.unwrap().reply,
        Some(ReplyStatus::pending())
    );

    // The sent item never comes back; the failed one only after its backoff.
    let next = s
        .claim_pending_replies(t0() + secs(59), None, 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&next), vec![msg(&off)]);
    let next = s
        .claim_pending_replies(retry_at, None, 10, lease)
        .await
        .unwrap();
    assert_eq!(subjects(&next), vec![bad_s]);
    assert_eq!(next[0].reply().unwrap().attempts, 1);

    // Given up: attempts counted, triage ESCALATE, never claimed again.
    let gone = s
        .finish_reply(
            t,
            bad_s,
            ReplyOutcome::GiveUp {
                error: "gave up".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(gone.state, ReplyState::GivenUp);
    assert_eq!(gone.attempts, 2);
    let stored = s.get_comment(t, bad.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    assert_eq!(stored.reply, Some(gone.clone()));
    let far = t0() + Duration::days(30);
    assert!(
        s.claim_pending_replies(far, None, 10, lease)
            .await
            .unwrap()
            .len()
            == 1
    );
    assert!(
        s.claim_pending_replies(far, None, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // A late outcome from a worker whose lease lapsed changes nothing...
    let late = s
        .finish_reply(
            t,
            bad_s,
            ReplyOutcome::Retry {
                error: "late".into(),
                next_at: t0(),
            },
        )
        .await
        .unwrap();
    assert_eq!(late, gone);
    // ...except `Sent`: the reply exists.
    let late_sent = s.finish_reply(t, bad_s, ReplyOutcome::Sent).await.unwrap();
    assert_eq!(late_sent.state, ReplyState::Sent);
    assert_eq!(
        s.get_message(t, good.id)
            .await
            .unwrap()
            .reply
            .unwrap()
            .state,
        ReplyState::Sent
    );
}

/// A conversation's replies go out in order: while its older message waits
/// (its reply in flight with another worker, or its retry not due yet), a
/// newer message of the same conversation is not claimed; another
/// conversation's is. Once the older one is due again, both are claimed
/// together, oldest first.
pub async fn replies_of_one_conversation_are_claimed_in_order(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    ai_on(s, &w).await;
    let t = w.tenant.id;
    let first = message(s, &w, "first", t0(), Triage::AutoReply).await;
    let second = s
        .insert_message(NewMessage {
            tenant_id: t,
            conversation_id: first.conversation_id,
            direction: MessageDirection::Inbound,
            text: "and another thing".into(),
            has_media: false,
            provider_message_id: Some("mid-second".into()),
            in_reply_to: None,
            delivery_status: None,
            created_at: t0() + secs(1),
            stored_at: t0() + secs(1),
        })
        .await
        .unwrap()
        .record;
    s.set_message_triage(t, second.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    let elsewhere = message(s, &w, "elsewhere", t0() + secs(2), Triage::AutoReply).await;
    let now = t0() + secs(10);
    let since = Some(t0() - secs(3600));
    let ids = |claimed: Vec<ClaimedReply>| -> Vec<MessageId> {
        claimed
            .into_iter()
            .map(|c| match c {
                ClaimedReply::Message(m) => m.id,
                ClaimedReply::Comment(c) => panic!("no comment here: {c:?}"),
            })
            .collect()
    };
    // Another worker takes the first message only.
    let taken = s
        .claim_pending_replies(now, since, 1, mins(5))
        .await
        .unwrap();
    assert_eq!(ids(taken), vec![first.id]);
    // Its reply in flight: the second waits, the other conversation does not.
    let next = s
        .claim_pending_replies(now, since, 10, mins(5))
        .await
        .unwrap();
    assert_eq!(ids(next), vec![elsewhere.id]);
    // The first fails and is retried in a minute: the second still waits.
    s.finish_reply(
        t,
        msg(&first),
        ReplyOutcome::Retry {
            error: "HTTP 503".into(),
            next_at: now + mins(1),
        },
    )
    .await
    .unwrap();
    assert!(
        s.claim_pending_replies(now, since, 10, mins(5))
            .await
            .unwrap()
            .is_empty()
    );
    // Due again: both, oldest first.
    let both = s
        .claim_pending_replies(now + mins(1), since, 10, mins(5))
        .await
        .unwrap();
    assert_eq!(ids(both), vec![first.id, second.id]);
}

/// A reply claim is withdrawn only while nothing was sent: a pending outbound
/// message (no provider id) or a pending comment reply is deleted, so the item
/// can be claimed again, and its inbox item waits again as before the claim; a sent or failed reply, another tenant's item, or an
/// item without a claim is left alone.
pub async fn reply_claims_are_withdrawn_only_while_unsent(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let post = a_post(s, &w).await;
    let unsent = message(s, &w, "unsent", t0(), Triage::AutoReply).await;
    let sent = message(s, &w, "sent", t0(), Triage::AutoReply).await;
    let c = comment(s, &w, post.id, "c", t0(), Triage::AutoReply).await;
    let claim = |m: &Message| NewMessage {
        tenant_id: t,
        conversation_id: m.conversation_id,
        direction: MessageDirection::Outbound,
        text: "re".into(),
        has_media: false,
        provider_message_id: None,
        in_reply_to: Some(m.id),
        delivery_status: Some(DeliveryStatus::Pending),
        created_at: t0(),
        stored_at: t0(),
    };
    // Nothing claimed yet: nothing to withdraw.
    assert!(!s.withdraw_reply_claim(t, msg(&unsent)).await.unwrap());
    let waiting = InboxSubject::Conversation(unsent.conversation_id);
    let before = s.get_inbox_item(t, waiting).await.unwrap().waiting_since;
    assert!(before.is_some());

    s.insert_message(claim(&unsent)).await.unwrap();
    let other = world(s, "Globex", Platform::Facebook, "page-2").await;
    assert!(
        !s.withdraw_reply_claim(other.tenant.id, msg(&unsent))
            .await
            .unwrap(),
        "another tenant withdraws nothing"
    );
    assert!(s.withdraw_reply_claim(t, msg(&unsent)).await.unwrap());
    assert_eq!(
        s.get_inbox_item(t, waiting).await.unwrap().waiting_since,
        before,
        "the conversation waits again, as before the claim"
    );
    assert!(
        s.insert_message(claim(&unsent)).await.unwrap().created,
        "claimable again"
    );

    let reply = s.insert_message(claim(&sent)).await.unwrap().record;
    s.record_message_sent(t, reply.id, Some("wamid.out"), DeliveryStatus::Sent)
        .await
        .unwrap();
    assert!(!s.withdraw_reply_claim(t, msg(&sent)).await.unwrap());
    assert!(!s.insert_message(claim(&sent)).await.unwrap().created);

    let new_reply = || NewCommentReply {
        tenant_id: t,
        comment_id: c.id,
        text: "re".into(),
        created_at: t0(),
    };
    let cs = DecisionSubject::Comment(c.id);
    let item = InboxSubject::Comment(c.id);
    let before = s.get_inbox_item(t, item).await.unwrap().waiting_since;
    assert!(before.is_some());
    s.insert_comment_reply(new_reply()).await.unwrap();
    assert!(s.withdraw_reply_claim(t, cs).await.unwrap());
    assert_eq!(
        s.get_inbox_item(t, item).await.unwrap().waiting_since,
        before,
        "the comment waits again"
    );
    assert!(s.find_comment_reply(t, c.id).await.unwrap().is_none());
    s.insert_comment_reply(new_reply()).await.unwrap();
    s.finish_comment_reply(t, c.id, DeliveryStatus::Failed, None, Some("refused"), t0())
        .await
        .unwrap();
    assert!(
        !s.withdraw_reply_claim(t, cs).await.unwrap(),
        "a failed reply stays"
    );
    assert!(s.find_comment_reply(t, c.id).await.unwrap().is_some());
}

/// A channel whose auto-replies its tenant switched off keeps its pending
/// items where they are: they are not claimed (claiming and handing them
/// back would keep the oldest at the head of the queue, run after run, and
/// starve every other tenant's items); the tenant's other channels, and the
/// same channel id listed in another tenant's settings, are not affected.
/// Switched on again, the items are claimed.
pub async fn reply_queue_leaves_channels_with_auto_replies_off(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-off-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-off-2").await;
    ai_on(s, &a).await;
    ai_on(s, &b).await;
    let off_1 = message(s, &a, "off-1", t0() - secs(20), Triage::AutoReply).await;
    let off_2 = message(s, &a, "off-2", t0() - secs(10), Triage::AutoReply).await;
    let other = message(s, &b, "other", t0(), Triage::AutoReply).await;
    let mut settings = TenantSettings::default();
    settings.auto_reply_off_channels.insert(a.channel.id);
    s.put_tenant_settings(a.tenant.id, &settings, t0())
        .await
        .unwrap();
    // Another tenant naming a's channel in its own settings changes nothing
    // for a (nor for b's own channel).
    let mut unrelated = TenantSettings::default();
    unrelated.auto_reply_off_channels.insert(a.channel.id);
    s.put_tenant_settings(b.tenant.id, &unrelated, t0())
        .await
        .unwrap();

    let now = t0() + secs(10);
    let lease = Duration::minutes(5);
    let claimed = s.claim_pending_replies(now, None, 1, lease).await.unwrap();
    assert_eq!(
        subjects(&claimed),
        vec![msg(&other)],
        "the older items of the switched-off channel are not at the head of the queue"
    );
    assert!(
        s.claim_pending_replies(now, None, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let pending = s.get_message(a.tenant.id, off_1.id).await.unwrap();
    assert_eq!(pending.reply, Some(ReplyStatus::pending()));

    s.put_tenant_settings(a.tenant.id, &TenantSettings::default(), t0())
        .await
        .unwrap();
    let claimed = s.claim_pending_replies(now, None, 10, lease).await.unwrap();
    assert_eq!(subjects(&claimed), vec![msg(&off_1), msg(&off_2)]);
}
