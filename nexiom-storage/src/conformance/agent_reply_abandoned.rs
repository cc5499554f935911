//! Conformance tests of agent replies left `sending` by a stopped sender
//! (`AgentReplyStore::settle_abandoned_agent_replies`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::agent_replies::{conversation, new_reply};
use super::fixtures::{t0, world};
use crate::{ABANDONED_AGENT_REPLY_ERROR, AgentReplyClaim, Store};

async fn claim(s: &dyn Store, new: NewAgentReply) -> AgentReply {
    match s.claim_agent_reply(new).await.unwrap() {
        AgentReplyClaim::Claimed(reply) => reply,
        other => panic!("expected a claim, got {other:?}"),
    }
}

/// Replies left `sending` since before the bound are failed as of unknown
/// outcome, oldest first, across tenants, up to the limit; newer ones, and
/// replies already finished, stay; a late answer changes nothing.
pub async fn abandoned_agent_replies_are_settled(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let acme = world(s, "Acme", Platform::Facebook, "page-1").await;
    let beta = world(s, "Beta", Platform::Facebook, "page-2").await;
    let (acme_conv, _) = conversation(s, &acme).await;
    let (beta_conv, _) = conversation(s, &beta).await;
    let on = |conversation| AgentReplyTarget::Conversation { conversation };
    let at = |minutes| t0() + Duration::minutes(minutes);

    let mut old = new_reply(&acme, on(acme_conv.id), "old");
    old.created_at = at(0);
    let old = claim(s, old).await;
    let mut other = new_reply(&beta, on(beta_conv.id), "other-tenant");
    other.created_at = at(1);
    let other = claim(s, other).await;
    let mut finished = new_reply(&acme, on(acme_conv.id), "finished");
    finished.created_at = at(2);
    let finished = claim(s, finished).await;
    let error = "the platform refused it".to_owned();
    s.finish_agent_reply(
        acme.tenant.id,
        finished.id,
        AgentReplyOutcome::Failed { error },
        at(3),
    )
    .await
    .unwrap();
    let mut recent = new_reply(&acme, on(acme_conv.id), "recent");
    recent.created_at = at(20);
    let recent = claim(s, recent).await;

    // Nothing with a zero limit.
    assert!(
        s.settle_abandoned_agent_replies(at(15), at(30), 0)
            .await
            .unwrap()
            .is_empty()
    );
    // The limit takes the oldest first.
    let first = s
        .settle_abandoned_agent_replies(at(15), at(30), 1)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), vec![old.id]);
    let rest = s
        .settle_abandoned_agent_replies(at(15), at(31), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![other.id],
        "the other tenant's reply, not the finished one nor the recent one"
    );
    let settled = &first[0];
    assert_eq!(settled.state, AgentReplyState::Failed);
    assert_eq!(settled.error.as_deref(), Some(ABANDONED_AGENT_REPLY_ERROR));
    assert!(ABANDONED_AGENT_REPLY_ERROR.starts_with(crate::OUTCOME_UNKNOWN_PREFIX));
    assert_eq!(settled.finished_at, Some(at(30)));
    assert_eq!(rest[0].tenant_id, beta.tenant.id);
    assert_eq!(rest[0].finished_at, Some(at(31)));

    // As stored, under its key.
    let stored = s
        .find_agent_reply(acme.tenant.id, "old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&stored, settled);
    let stored = s
        .find_agent_reply(acme.tenant.id, "finished")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.error.as_deref(), Some("the platform refused it"));
    let stored = s
        .find_agent_reply(acme.tenant.id, "recent")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, AgentReplyState::Sending);
    assert_eq!(stored.id, recent.id);

    // A late answer for a settled reply changes nothing: no outbound
    // message, the reply stays failed.
    let late = s
        .finish_agent_reply(
            acme.tenant.id,
            old.id,
            AgentReplyOutcome::Sent {
                provider_id: Some("mid-late".into()),
            },
            at(32),
        )
        .await
        .unwrap();
    assert_eq!(&late, settled);
    let messages = s
        .list_messages(acme.tenant.id, acme_conv.id, 100)
        .await
        .unwrap();
    assert!(
        messages
            .iter()
            .all(|m| m.provider_message_id.as_deref() != Some("mid-late"))
    );

    // Nothing left before the bound; a later bound takes the recent one.
    assert!(
        s.settle_abandoned_agent_replies(at(15), at(33), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = s
        .settle_abandoned_agent_replies(at(40), at(41), 10)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![recent.id]
    );
}
