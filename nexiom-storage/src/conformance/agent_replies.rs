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

fn new_reply(w: &World, target: AgentReplyTarget, key: &str) -> NewAgentReply {
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

async fn conversation(s: &dyn Store, w: &World) -> (Conversation, Vec<Message>) {
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
