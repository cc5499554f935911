//! Conformance tests of agent replies (`AgentReplyStore`): the policy
//! context of a target, one claim per idempotency key (also under
//! concurrency), one private reply per comment, and the outcome recorded
//! with the outbound message.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::{AgentReplyClaim, StorageError, Store};

pub(super) fn new_reply(w: &World, target: AgentReplyTarget, key: &str) -> NewAgentReply {
    NewAgentReply {
        tenant_id: w.tenant.id,
        target,
        agent_id: "agent-7".into(),
        text: format!("answer {key}"),
        template: None,
        idempotency_key: key.into(),
        created_at: t0(),
    }
}

pub(super) async fn conversation(s: &dyn Store, w: &World) -> (Conversation, Vec<Message>) {
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: w.channel.platform.clone(),
            external_handle: "psid-9".into(),
            display_name: Some("Ana".into()),
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
    let mut messages = Vec::new();
    for (i, (direction, minutes)) in [
        (MessageDirection::Inbound, 0),
        (MessageDirection::Inbound, 30),
        (MessageDirection::Outbound, 40),
    ]
    .into_iter()
    .enumerate()
    {
        let at = t0() + Duration::minutes(minutes);
        messages.push(
            s.insert_message(NewMessage {
                tenant_id: w.tenant.id,
                conversation_id: conv.id,
                direction,
                text: format!("m{i}"),
                has_media: false,
                provider_message_id: Some(format!("mid-{i}")),
                in_reply_to: None,
                delivery_status: None,
                created_at: at,
                stored_at: at,
            })
            .await
            .unwrap()
            .record,
        );
    }
    (conv, messages)
}

/// The context of a conversation (handle, latest inbound) and of a comment;
/// claims once per key; one private reply per comment; the outcome recorded
/// once, a sent conversation reply as an outbound message.
pub async fn agent_replies_are_claimed_once_and_recorded(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    let (conv, messages) = conversation(s, &w).await;
    let target = AgentReplyTarget::Conversation {
        conversation: conv.id,
    };
    let ctx = s.agent_reply_context(w.tenant.id, target).await.unwrap();
    assert_eq!(ctx.channel.id, w.channel.id);
    assert_eq!(ctx.recipient.as_deref(), Some("psid-9"));
    assert_eq!(ctx.last_inbound_at, Some(messages[1].created_at));
    assert_eq!(ctx.last_inbound_provider_id.as_deref(), Some("mid-1"));
    assert!(matches!(
        s.agent_reply_context(other.tenant.id, target).await,
        Err(StorageError::NotFound { .. })
    ));

    let claimed = match s
        .claim_agent_reply(new_reply(&w, target, "k1"))
        .await
        .unwrap()
    {
        AgentReplyClaim::Claimed(r) => r,
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!(claimed.state, AgentReplyState::Sending);
    assert_eq!(claimed.channel_id, w.channel.id);
    let mut twin = new_reply(&w, target, "k1");
    twin.text = "something else".into();
    assert_eq!(
        s.claim_agent_reply(twin).await.unwrap(),
        AgentReplyClaim::Existing(claimed.clone())
    );
    assert!(matches!(
        s.claim_agent_reply(new_reply(&other, target, "k9")).await,
        Err(StorageError::NotFound { .. })
    ));
    let mut bad = new_reply(&w, target, "k2");
    bad.agent_id = String::new();
    assert!(matches!(
        s.claim_agent_reply(bad).await,
        Err(StorageError::Invalid { .. })
    ));

    let at = t0() + Duration::hours(1);
    let sent = s
        .finish_agent_reply(
            w.tenant.id,
            claimed.id,
            AgentReplyOutcome::Sent {
                provider_id: Some("m_out_1".into()),
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(sent.state, AgentReplyState::Sent);
    assert_eq!(sent.provider_id.as_deref(), Some("m_out_1"));
    assert_eq!(sent.finished_at, Some(at));
    let message = s
        .get_message(w.tenant.id, sent.message_id.unwrap())
        .await
        .unwrap();
    assert_eq!(message.direction, MessageDirection::Outbound);
    assert_eq!(message.text, "answer k1");
    assert_eq!(message.created_at, at);
    assert_eq!(message.provider_message_id.as_deref(), Some("m_out_1"));
    assert_eq!(message.delivery_status, Some(DeliveryStatus::Sent));
    let conv_now = s.get_conversation(w.tenant.id, conv.id).await.unwrap();
    assert_eq!(conv_now.last_message_at, Some(at));
    let again = s
        .finish_agent_reply(
            w.tenant.id,
            claimed.id,
            AgentReplyOutcome::Failed {
                error: "late".into(),
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(again, sent, "a settled reply is not written again");
    assert_eq!(
        s.find_agent_reply(w.tenant.id, "k1").await.unwrap(),
        Some(sent)
    );
    assert_eq!(
        s.find_agent_reply(other.tenant.id, "k1").await.unwrap(),
        None
    );

    // Comments: public replies need no window; one private reply per comment.
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
    let comment = s
        .insert_comment(NewComment {
            tenant_id: w.tenant.id,
            post_id: post.id,
            platform_comment_id: "c-1".into(),
            parent_platform_comment_id: None,
            author_id: Some("u1".into()),
            author_name: None,
            text: "price?".into(),
            created_at: t0(),
            stored_at: t0(),
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    let private = AgentReplyTarget::PrivateComment {
        comment: comment.id,
    };
    let ctx = s.agent_reply_context(w.tenant.id, private).await.unwrap();
    assert_eq!(ctx.comment_platform_id.as_deref(), Some("c-1"));
    assert_eq!(ctx.comment_created_at, Some(t0()));
    assert!(!ctx.private_reply_claimed);
    let p1 = match s
        .claim_agent_reply(new_reply(&w, private, "p1"))
        .await
        .unwrap()
    {
        AgentReplyClaim::Claimed(r) => r,
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!(
        s.claim_agent_reply(new_reply(&w, private, "p2"))
            .await
            .unwrap(),
        AgentReplyClaim::PrivateReplyTaken
    );
    assert!(
        s.agent_reply_context(w.tenant.id, private)
            .await
            .unwrap()
            .private_reply_claimed
    );
    let public = AgentReplyTarget::PublicComment {
        comment: comment.id,
    };
    let pub1 = match s
        .claim_agent_reply(new_reply(&w, public, "pub1"))
        .await
        .unwrap()
    {
        AgentReplyClaim::Claimed(r) => r,
        other => panic!("expected a claim, got {other:?}"),
    };
    // A claim whose call never reached the platform is withdrawn: its key
    // is free again. Only the tenant's, only while `sending`.
    let stranger = world(s, "Other", Platform::Facebook, "page-x").await;
    assert!(matches!(
        s.withdraw_agent_reply(stranger.tenant.id, pub1.id).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(s.withdraw_agent_reply(w.tenant.id, pub1.id).await.unwrap());
    assert_eq!(s.find_agent_reply(w.tenant.id, "pub1").await.unwrap(), None);
    assert!(matches!(
        s.claim_agent_reply(new_reply(&w, public, "pub1"))
            .await
            .unwrap(),
        AgentReplyClaim::Claimed(_)
    ));
    let failed = s
        .finish_agent_reply(
            w.tenant.id,
            p1.id,
            AgentReplyOutcome::Failed {
                error: "(#10) outside window".into(),
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(failed.state, AgentReplyState::Failed);
    assert_eq!(failed.message_id, None);
    assert_eq!(failed.error.as_deref(), Some("(#10) outside window"));
    assert!(!s.withdraw_agent_reply(w.tenant.id, p1.id).await.unwrap());
    assert_eq!(
        s.find_agent_reply(w.tenant.id, "p1").await.unwrap(),
        Some(failed)
    );
}

/// Eight tasks claiming one key at once: exactly one claim.
pub async fn concurrent_agent_reply_claims_claim_once(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let (conv, _) = conversation(s, &w).await;
    let target = AgentReplyTarget::Conversation {
        conversation: conv.id,
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let new = new_reply(&w, target, "same-key");
        tasks.push(tokio::spawn(
            async move { store.claim_agent_reply(new).await },
        ));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            AgentReplyClaim::Claimed(_) => claimed += 1,
            AgentReplyClaim::Existing(r) => assert_eq!(r.idempotency_key, "same-key"),
            AgentReplyClaim::PrivateReplyTaken => panic!("not a private reply"),
        }
    }
    assert_eq!(claimed, 1);
}

/// An inbound message of `conversation` (its key and times to be set).
fn new_inbound(conversation: ConversationId, w: &World) -> NewMessage {
    NewMessage {
        tenant_id: w.tenant.id,
        conversation_id: conversation,
        direction: MessageDirection::Inbound,
        text: "one more thing".into(),
        has_media: false,
        provider_message_id: None,
        in_reply_to: None,
        delivery_status: None,
        created_at: t0(),
        stored_at: t0(),
    }
}

/// Claims `target` under `key` and records it `outcome`, both at `at`.
async fn answer(
    s: &dyn Store,
    w: &World,
    target: AgentReplyTarget,
    key: &str,
    outcome: AgentReplyOutcome,
    at: chrono::DateTime<chrono::Utc>,
) {
    let new = NewAgentReply {
        created_at: at,
        ..new_reply(w, target, key)
    };
    let AgentReplyClaim::Claimed(r) = s.claim_agent_reply(new).await.unwrap() else {
        panic!("expected a claim of {key}");
    };
    s.finish_agent_reply(w.tenant.id, r.id, outcome, at)
        .await
        .unwrap();
}

/// A person's sent reply supersedes the automatic replies still waiting in
/// its conversation (inbound messages up to the reply, pending or not yet
/// triaged) or on its comment; an automatic reply in flight, a later
/// message, another conversation and a failed agent reply change nothing.
pub async fn a_sent_agent_reply_supersedes_the_automatic_ones(store: Arc<dyn Store>) {
    use super::reply_queue::{ai_on, comment, message, msg, subjects};
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    ai_on(s, &w).await;
    let post = super::reply_queue::a_post(s, &w).await;
    let (conv, messages) = conversation(s, &w).await;
    s.set_message_triage(w.tenant.id, messages[0].id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    let later = s
        .insert_message(NewMessage {
            provider_message_id: Some("mid-later".into()),
            created_at: t0() + Duration::hours(3),
            stored_at: t0() + Duration::hours(3),
            ..new_inbound(conv.id, &w)
        })
        .await
        .unwrap()
        .record;
    let elsewhere = message(s, &w, "x", t0(), Triage::AutoReply).await;
    let waiting = comment(s, &w, post.id, "w", t0(), Triage::AutoReply).await;
    let inflight = comment(
        s,
        &w,
        post.id,
        "f",
        t0() - Duration::hours(1),
        Triage::AutoReply,
    )
    .await;
    let busy = message(s, &w, "busy", t0() - Duration::hours(2), Triage::AutoReply).await;
    let lease = Duration::minutes(5);
    let claimed = s.claim_pending_replies(t0(), None, 2, lease).await.unwrap();
    assert_eq!(
        subjects(&claimed),
        vec![msg(&busy), DecisionSubject::Comment(inflight.id)]
    );

    let at = t0() + Duration::hours(1);
    let sent = || AgentReplyOutcome::Sent { provider_id: None };
    let conversation = AgentReplyTarget::Conversation {
        conversation: conv.id,
    };
    answer(s, &w, conversation, "a1", sent(), at).await;
    let public = AgentReplyTarget::PublicComment {
        comment: waiting.id,
    };
    answer(s, &w, public, "a2", sent(), at).await;
    let private = AgentReplyTarget::PrivateComment {
        comment: inflight.id,
    };
    answer(s, &w, private, "a3", sent(), at).await;
    let busy_conversation = AgentReplyTarget::Conversation {
        conversation: busy.conversation_id,
    };
    answer(s, &w, busy_conversation, "a5", sent(), at).await;
    let failed = AgentReplyOutcome::Failed {
        error: "(#10) outside window".into(),
    };
    let other = AgentReplyTarget::Conversation {
        conversation: elsewhere.conversation_id,
    };
    answer(s, &w, other, "a4", failed, at).await;

    let state = |reply: Option<ReplyStatus>| reply.map(|r| r.state);
    let get = |id| s.get_message(w.tenant.id, id);
    assert_eq!(
        state(get(messages[0].id).await.unwrap().reply),
        Some(ReplyState::Superseded),
        "the pending automatic reply"
    );
    assert_eq!(
        state(get(messages[1].id).await.unwrap().reply),
        Some(ReplyState::Superseded),
        "the untriaged message before the answer"
    );
    assert_eq!(get(later.id).await.unwrap().reply, None, "a later message");
    assert_eq!(
        get(elsewhere.id).await.unwrap().reply,
        Some(ReplyStatus::pending())
    );
    let comment_state =
        |id| async move { state(s.get_comment(w.tenant.id, id).await.unwrap().reply) };
    assert_eq!(
        comment_state(waiting.id).await,
        Some(ReplyState::Superseded)
    );
    assert_eq!(
        comment_state(inflight.id).await,
        Some(ReplyState::Sending),
        "a reply in flight is left to its claim"
    );
    assert_eq!(
        state(get(busy.id).await.unwrap().reply),
        Some(ReplyState::Sending)
    );
    // Triage afterwards does not queue it again.
    let triaged = s
        .set_message_triage(w.tenant.id, messages[1].id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    assert_eq!(state(triaged.reply), Some(ReplyState::Superseded));
    // The replies in flight: their reply claims find the answer, make them
    // superseded and store nothing. A message stored after the person's
    // reply was claimed is answered, even when the platform dates it a
    // moment before (a new question; the store's clock decides, not the
    // platform's); so is the other conversation's.
    let late = s
        .insert_message(NewMessage {
            provider_message_id: Some("mid-late-webhook".into()),
            created_at: at - Duration::minutes(10),
            stored_at: at + Duration::minutes(5),
            ..new_inbound(conv.id, &w)
        })
        .await
        .unwrap()
        .record;
    s.set_message_triage(w.tenant.id, late.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    let now = t0() + Duration::minutes(2);
    let due = s.claim_pending_replies(now, None, 10, lease).await.unwrap();
    assert_eq!(subjects(&due), vec![msg(&elsewhere), msg(&late)]);
    let claim = |item: &ClaimedReply| crate::ReplyClaim {
        tenant_id: w.tenant.id,
        subject: item.subject(),
        lease_until: item.reply().unwrap().lease_until.unwrap(),
        text: "Thanks!".into(),
        at: now,
    };
    let claims = [
        claim(&due[0]),
        claim(&due[1]),
        claim(&claimed[0]),
        claim(&claimed[1]),
    ];
    let answers = s.claim_replies(&claims).await.unwrap();
    assert!(matches!(answers[0], crate::ReplyClaimed::Claimed(_)));
    assert!(matches!(answers[1], crate::ReplyClaimed::Claimed(_)));
    assert_eq!(answers[2..], [crate::ReplyClaimed::Superseded; 2]);
    let busy_now = get(busy.id).await.unwrap().reply.unwrap();
    assert_eq!(
        (busy_now.state, busy_now.lease_until),
        (ReplyState::Superseded, None)
    );
    let settled = s
        .get_comment(w.tenant.id, inflight.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(
        (settled.state, settled.lease_until),
        (ReplyState::Superseded, None)
    );
    assert!(
        s.find_comment_reply(w.tenant.id, inflight.id)
            .await
            .unwrap()
            .is_none()
    );
}

/// An item a person answered before its triage (reply state `superseded`)
/// notifies no one when it is escalated afterwards; the triage is still
/// recorded, and an item nobody answered still notifies.
pub async fn an_answered_item_escalates_no_one(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let post = super::reply_queue::a_post(s, &w).await;
    let (conv, messages) = conversation(s, &w).await;
    let untriaged = s
        .insert_comment(NewComment {
            tenant_id: w.tenant.id,
            post_id: post.id,
            platform_comment_id: "c-answered".into(),
            parent_platform_comment_id: None,
            author_id: None,
            author_name: None,
            text: "is it in stock?".into(),
            created_at: t0(),
            stored_at: t0(),
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    let at = t0() + Duration::hours(1);
    let sent = || AgentReplyOutcome::Sent { provider_id: None };
    let target = AgentReplyTarget::Conversation {
        conversation: conv.id,
    };
    answer(s, &w, target, "p1", sent(), at).await;
    let target = AgentReplyTarget::PublicComment {
        comment: untriaged.id,
    };
    answer(s, &w, target, "p2", sent(), at).await;

    let message = s
        .set_message_triage(w.tenant.id, messages[0].id, Triage::Escalate, 0.0, None)
        .await
        .unwrap();
    let comment = s
        .set_comment_triage(w.tenant.id, untriaged.id, Triage::Escalate, 0.0, None)
        .await
        .unwrap();
    assert_eq!(message.triage, Some(Triage::Escalate));
    assert_eq!(comment.triage, Some(Triage::Escalate));
    let escalations =
        || s.list_notifications(w.tenant.id, Some(NotificationKind::ItemEscalated), 10);
    assert_eq!(
        escalations().await.unwrap(),
        vec![],
        "a person answered both"
    );

    let unanswered = super::reply_queue::message(s, &w, "u", t0(), Triage::Escalate).await;
    let notified = escalations().await.unwrap();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        notified[0].key,
        format!("item_escalated:message:{}", unanswered.id)
    );
}
