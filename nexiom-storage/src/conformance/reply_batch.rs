//! Conformance test of the reply queue's batched steps
//! (`ReplyBatchStore`): contexts, claims and settlements, each item guarded
//! by the lease its caller holds.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use super::reply_queue::{ai_on, comment, message, msg, secs, subjects};
use crate::{ReplyAnswer, ReplyClaim, ReplyClaimed, ReplySettlement, StorageError, Store};

/// Contexts name the recipient and what was stored; a claim stores each
/// reply once, only under the caller's lease and while AI control is ON; a
/// settlement records the platform's answer and applies the outcome only
/// under the lease (`Sent` in any state); an invalid batch writes nothing.
pub async fn reply_batches_claim_and_settle_under_the_lease(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let x = world(s, "Other", Platform::Facebook, "page-x").await;
    ai_on(s, &w).await;
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("p"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let m0 = message(s, &w, "m0", t0(), Triage::AutoReply).await;
    let m1 = message(s, &w, "m1", t0() + secs(1), Triage::AutoReply).await;
    let c2 = comment(s, &w, post.id, "c2", t0() + secs(2), Triage::AutoReply).await;
    let m3 = message(s, &w, "m3", t0() + secs(3), Triage::AutoReply).await;
    let lease = Duration::minutes(5);
    // Sub-microsecond digits, as a real clock gives.
    let now = t0() + secs(100) + Duration::nanoseconds(1_234_567);
    let held = now + lease;
    let stale = held - secs(1);
    let claimed = s.claim_pending_replies(now, None, 10, lease).await.unwrap();
    let c2s = DecisionSubject::Comment(c2.id);
    assert_eq!(subjects(&claimed), vec![msg(&m0), msg(&m1), c2s, msg(&m3)]);

    let contexts = s.reply_contexts(&claimed).await.unwrap();
    assert_eq!(contexts[0].recipient.as_deref(), Some("h-m0"));
    assert!(contexts[0].contact_id.is_some());
    assert_eq!(contexts[0].existing_reply, None);
    assert_eq!(contexts[2].recipient, None);
    assert_eq!(contexts[2].existing_reply, None);
    assert!(contexts.iter().all(|c| c.draft.is_none()));

    let claim = |subject, lease_until| ReplyClaim {
        tenant_id: w.tenant.id,
        subject,
        lease_until,
        text: "Thanks!".into(),
        at: now,
    };
    let answer = s
        .claim_replies(&[
            claim(msg(&m0), held),
            claim(c2s, held),
            claim(msg(&m3), stale),
            ReplyClaim {
                tenant_id: x.tenant.id,
                ..claim(msg(&m1), held)
            },
        ])
        .await
        .unwrap();
    let ReplyClaimed::Claimed(Some(reply0)) = answer[0] else {
        panic!("{answer:?}");
    };
    assert_eq!(
        answer[1..].to_vec(),
        vec![
            ReplyClaimed::Claimed(None),
            ReplyClaimed::LeaseLost,
            ReplyClaimed::LeaseLost
        ]
    );
    let out = s.get_message(w.tenant.id, reply0).await.unwrap();
    assert_eq!(out.direction, MessageDirection::Outbound);
    assert_eq!(out.in_reply_to, Some(m0.id));
    assert_eq!(out.conversation_id, m0.conversation_id);
    assert_eq!(out.delivery_status, Some(DeliveryStatus::Pending));
    assert_eq!(out.text, "Thanks!");
    let conv = s
        .get_conversation(w.tenant.id, m0.conversation_id)
        .await
        .unwrap();
    assert_eq!(
        conv.last_message_at.map(|t| t.timestamp_micros()),
        Some(now.timestamp_micros())
    );
    assert_eq!(
        s.find_comment_reply(w.tenant.id, c2.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Pending
    );
    // Claimed once; the contexts now see the stored replies.
    let again = s
        .claim_replies(&[claim(msg(&m0), held), claim(c2s, held)])
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![
            ReplyClaimed::Existing(Some(DeliveryStatus::Pending)),
            ReplyClaimed::Existing(Some(DeliveryStatus::Pending))
        ]
    );
    let contexts = s.reply_contexts(&claimed).await.unwrap();
    assert_eq!(contexts[0].existing_reply, Some(DeliveryStatus::Pending));
    assert_eq!(contexts[2].existing_reply, Some(DeliveryStatus::Pending));
    // AI control OFF: nothing stored.
    s.set_ai_control(w.tenant.id, false, None, t0())
        .await
        .unwrap();
    let off = s.claim_replies(&[claim(msg(&m1), held)]).await.unwrap();
    assert_eq!(off, vec![ReplyClaimed::AiOff]);
    assert_eq!(
        s.reply_contexts(&claimed[1..2]).await.unwrap()[0].existing_reply,
        None
    );
    ai_on(s, &w).await;
    // Auto-replies switched off on the item's channel after it was claimed:
    // nothing stored either (read in the claim, not from a cached copy).
    let mut settings = TenantSettings::default();
    settings.auto_reply_off_channels.insert(w.channel.id);
    s.put_tenant_settings(w.tenant.id, &settings, t0())
        .await
        .unwrap();
    let off = s.claim_replies(&[claim(msg(&m1), held)]).await.unwrap();
    assert_eq!(off, vec![ReplyClaimed::AiOff]);
    assert_eq!(
        s.reply_contexts(&claimed[1..2]).await.unwrap()[0].existing_reply,
        None
    );
    s.put_tenant_settings(w.tenant.id, &TenantSettings::default(), t0())
        .await
        .unwrap();
    // Invalid batches.
    let err = s
        .claim_replies(&[claim(msg(&m1), held), claim(msg(&m1), held)])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");

    let settle = |subject, lease_until, answer, outcome| ReplySettlement {
        tenant_id: w.tenant.id,
        subject,
        lease_until,
        answer,
        outcome,
    };
    let applied = s
        .settle_replies(
            &[
                settle(
                    msg(&m0),
                    held,
                    Some(ReplyAnswer {
                        status: DeliveryStatus::Sent,
                        provider_id: Some("out-0".into()),
                        error: None,
                    }),
                    ReplyOutcome::Sent,
                ),
                settle(
                    c2s,
                    held,
                    Some(ReplyAnswer {
                        status: DeliveryStatus::Failed,
                        provider_id: None,
                        error: Some("boom".into()),
                    }),
                    ReplyOutcome::GiveUp {
                        error: "boom".into(),
                    },
                ),
                settle(
                    msg(&m1),
                    stale,
                    None,
                    ReplyOutcome::Retry {
                        error: "later".into(),
                        next_at: now + secs(60),
                    },
                ),
                settle(msg(&m3), stale, None, ReplyOutcome::Sent),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![true, true, false, true]);
    let m0_after = s.get_message(w.tenant.id, m0.id).await.unwrap();
    assert_eq!(m0_after.reply.map(|r| r.state), Some(ReplyState::Sent));
    let out = s.get_message(w.tenant.id, reply0).await.unwrap();
    assert_eq!(out.provider_message_id.as_deref(), Some("out-0"));
    assert_eq!(out.delivery_status, Some(DeliveryStatus::Sent));
    let c2_after = s.get_comment(w.tenant.id, c2.id).await.unwrap();
    assert_eq!(c2_after.triage, Some(Triage::Escalate));
    let reply = c2_after.reply.unwrap();
    assert_eq!((reply.state, reply.attempts), (ReplyState::GivenUp, 1));
    assert_eq!(reply.error.as_deref(), Some("boom"));
    let c2_reply = s
        .find_comment_reply(w.tenant.id, c2.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2_reply.status, DeliveryStatus::Failed);
    assert_eq!(c2_reply.error.as_deref(), Some("boom"));
    let m1_after = s
        .get_message(w.tenant.id, m1.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(
        (m1_after.state, m1_after.attempts),
        (ReplyState::Sending, 0)
    );
    let m3_after = s
        .get_message(w.tenant.id, m3.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(m3_after.state, ReplyState::Sent);

    // Another tenant's name, or an item settled already: not applied.
    let applied = s
        .settle_replies(
            &[
                ReplySettlement {
                    tenant_id: x.tenant.id,
                    ..settle(
                        msg(&m1),
                        held,
                        None,
                        ReplyOutcome::Released { next_at: None },
                    )
                },
                settle(
                    msg(&m0),
                    held,
                    None,
                    ReplyOutcome::Released { next_at: None },
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![false, false]);
    let m1_after = s
        .get_message(w.tenant.id, m1.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(m1_after.state, ReplyState::Sending);
    let err = s
        .settle_replies(
            &[
                settle(msg(&m1), held, None, ReplyOutcome::Sent),
                settle(msg(&m1), held, None, ReplyOutcome::Sent),
            ],
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    // An answer naming a provider id another message of the channel holds
    // (a platform that gave one id to two sends): the status is recorded, the id
    // stays the first message's, the rest of the batch is applied.
    let answer = s.claim_replies(&[claim(msg(&m1), held)]).await.unwrap();
    let ReplyClaimed::Claimed(Some(reply1)) = answer[0] else {
        panic!("{answer:?}");
    };
    let sent = |pid: &str| {
        Some(ReplyAnswer {
            status: DeliveryStatus::Sent,
            provider_id: Some(pid.into()),
            error: None,
        })
    };
    let applied = s
        .settle_replies(
            &[settle(msg(&m1), held, sent("out-0"), ReplyOutcome::Sent)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![true]);
    let out1 = s.get_message(w.tenant.id, reply1).await.unwrap();
    assert_eq!(
        (out1.provider_message_id, out1.delivery_status),
        (None, Some(DeliveryStatus::Sent))
    );
    assert_eq!(
        s.find_message_by_provider_id(w.tenant.id, w.channel.id, "out-0")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(reply0)
    );
    assert!(s.settle_replies(&[], now).await.unwrap().is_empty());
    assert!(s.claim_replies(&[]).await.unwrap().is_empty());
}
