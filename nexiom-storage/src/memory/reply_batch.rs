//! [`ReplyBatchStore`] in memory: the per-item steps of the reply queue for
//! a batch under the store's lock, with the same guards as on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AgentReplyState, AgentReplyTarget, ClaimedReply, DecisionSubject, DeliveryStatus,
    MessageDirection, NewCommentReply, NewMessage, ReplyState, TenantId,
};

use super::comment::ReplyOutcome as CommentAnswer;
use super::{Inner, MemoryStore};
use crate::error::{Result, StorageError};
use crate::reply_batch::{
    ReplyBatchStore, ReplyClaim, ReplyClaimed, ReplyContext, ReplySettlement, check_claims,
    check_settlements, draft_of,
};

impl Inner {
    fn reply_context(&self, item: &ClaimedReply) -> ReplyContext {
        let draft = |tenant: TenantId, decision: Option<nexiom_core::DecisionId>| {
            decision
                .and_then(|id| self.decisions.get(&id))
                .filter(|d| d.tenant_id == tenant)
                .and_then(|d| draft_of(&d.snapshot))
        };
        match item {
            ClaimedReply::Message(m) => {
                let Some(stored) = self
                    .messages
                    .get(&m.id)
                    .filter(|s| s.tenant_id == m.tenant_id)
                else {
                    return ReplyContext::default();
                };
                let contact = self
                    .conversations
                    .get(&stored.conversation_id)
                    .and_then(|c| self.contacts.get(&c.contact_id))
                    .filter(|c| c.tenant_id == stored.tenant_id);
                let platform = self.channels.get(&stored.channel_id).map(|c| &c.platform);
                let recipient = contact.and_then(|c| {
                    self.list_contact_channels(c.tenant_id, c.id)
                        .into_iter()
                        .find(|h| Some(&h.platform) == platform)
                        .map(|h| h.external_handle)
                });
                ReplyContext {
                    contact_id: contact.map(|c| c.id),
                    contact_name: contact.and_then(|c| c.display_name.clone()),
                    recipient,
                    draft: draft(stored.tenant_id, stored.ai_decision_id),
                    existing_reply: self
                        .reply_by_inbound
                        .get(&stored.id)
                        .and_then(|r| self.messages.get(r))
                        .map(|r| r.delivery_status.unwrap_or(DeliveryStatus::Pending)),
                }
            }
            ClaimedReply::Comment(c) => {
                let Some(stored) = self
                    .comments
                    .get(&c.id)
                    .filter(|s| s.tenant_id == c.tenant_id)
                else {
                    return ReplyContext::default();
                };
                ReplyContext {
                    draft: draft(stored.tenant_id, stored.ai_decision_id),
                    existing_reply: self.comment_replies.get(&stored.id).map(|r| r.status),
                    ..ReplyContext::default()
                }
            }
        }
    }

    /// Whether `subject` is `sending` under `lease_until`, and the tenant's.
    fn held(&self, tenant: TenantId, subject: DecisionSubject, lease_until: DateTime<Utc>) -> bool {
        let reply = match subject {
            DecisionSubject::Message(id) => self
                .messages
                .get(&id)
                .filter(|m| m.tenant_id == tenant)
                .and_then(|m| m.reply.as_ref()),
            DecisionSubject::Comment(id) => self
                .comments
                .get(&id)
                .filter(|c| c.tenant_id == tenant)
                .and_then(|c| c.reply.as_ref()),
        };
        reply.is_some_and(|r| r.state == ReplyState::Sending && r.lease_until == Some(lease_until))
    }

    /// Whether an agent reply was sent to `subject`'s conversation, claimed
    /// once the message was stored, or to the comment (as on PostgreSQL).
    fn answered_by_a_person(&self, subject: DecisionSubject) -> bool {
        let sent = self
            .agent_replies
            .all()
            .filter(|r| r.state == AgentReplyState::Sent);
        match subject {
            DecisionSubject::Message(id) => self.messages.get(&id).is_some_and(|m| {
                sent.filter(|r| r.tenant_id == m.tenant_id).any(|r| {
                    r.target
                        == AgentReplyTarget::Conversation {
                            conversation: m.conversation_id,
                        }
                        && r.created_at >= m.stored_at
                })
            }),
            DecisionSubject::Comment(id) => self.comments.get(&id).is_some_and(|c| {
                sent.filter(|r| r.tenant_id == c.tenant_id)
                    .any(|r| match r.target {
                        AgentReplyTarget::PublicComment { comment }
                        | AgentReplyTarget::PrivateComment { comment } => comment == id,
                        AgentReplyTarget::Conversation { .. } => false,
                    })
            }),
        }
    }

    fn claim_reply(&mut self, claim: &ReplyClaim) -> Result<ReplyClaimed> {
        if !self.held(claim.tenant_id, claim.subject, claim.lease_until) {
            return Ok(ReplyClaimed::LeaseLost);
        }
        let ai_on = self
            .ai_controls
            .get(&claim.tenant_id)
            .is_some_and(|c| c.enabled);
        // Auto-replies switched off on the item's channel (as the AI
        // switch, read at the claim: a worker's cached settings may be older).
        let channel = match claim.subject {
            DecisionSubject::Message(id) => self.messages.get(&id).map(|m| m.channel_id),
            DecisionSubject::Comment(id) => self.comments.get(&id).map(|c| c.channel_id),
        };
        let switched_off = channel.is_some_and(|channel| {
            self.tenant_settings
                .get(&claim.tenant_id)
                .is_some_and(|s| s.auto_reply_off_channels.contains(&channel))
        });
        if !ai_on || switched_off {
            return Ok(ReplyClaimed::AiOff);
        }
        if self.answered_by_a_person(claim.subject) {
            let reply = match claim.subject {
                DecisionSubject::Message(id) => self.messages.get_mut(&id).map(|m| &mut m.reply),
                DecisionSubject::Comment(id) => self.comments.get_mut(&id).map(|c| &mut c.reply),
            };
            if let Some(Some(reply)) = reply {
                reply.state = ReplyState::Superseded;
                reply.lease_until = None;
                reply.next_at = None;
            }
            return Ok(ReplyClaimed::Superseded);
        }
        match claim.subject {
            DecisionSubject::Message(id) => {
                let Some(conversation) = self.messages.get(&id).map(|m| m.conversation_id) else {
                    return Ok(ReplyClaimed::LeaseLost);
                };
                let inserted = self.insert_message(NewMessage {
                    tenant_id: claim.tenant_id,
                    conversation_id: conversation,
                    direction: MessageDirection::Outbound,
                    text: claim.text.clone(),
                    has_media: false,
                    provider_message_id: None,
                    in_reply_to: Some(id),
                    delivery_status: Some(DeliveryStatus::Pending),
                    created_at: claim.at,
                    stored_at: claim.at,
                })?;
                Ok(if inserted.created {
                    ReplyClaimed::Claimed(Some(inserted.record.id))
                } else {
                    ReplyClaimed::Existing(inserted.record.delivery_status)
                })
            }
            DecisionSubject::Comment(id) => {
                let inserted = self.insert_comment_reply(NewCommentReply {
                    tenant_id: claim.tenant_id,
                    comment_id: id,
                    text: claim.text.clone(),
                    created_at: claim.at,
                })?;
                Ok(if inserted.created {
                    ReplyClaimed::Claimed(None)
                } else {
                    ReplyClaimed::Existing(Some(inserted.record.status))
                })
            }
        }
    }

    fn settle_reply(&mut self, s: &ReplySettlement, at: DateTime<Utc>) -> Result<bool> {
        if let Some(answer) = &s.answer {
            match s.subject {
                DecisionSubject::Message(id) => {
                    let reply = self.reply_by_inbound.get(&id).copied().filter(|r| {
                        self.messages
                            .get(r)
                            .is_some_and(|m| m.tenant_id == s.tenant_id)
                    });
                    if let Some(reply) = reply {
                        // A provider id another message of the channel holds
                        // is left out; the status is recorded all the same.
                        let recorded = self.record_message_sent(
                            s.tenant_id,
                            reply,
                            answer.provider_id.as_deref(),
                            answer.status,
                        );
                        if let Err(StorageError::Conflict { .. }) = recorded {
                            self.record_message_sent(s.tenant_id, reply, None, answer.status)?;
                        } else {
                            recorded?;
                        }
                    }
                }
                DecisionSubject::Comment(id) => {
                    let stored = self
                        .comment_replies
                        .get(&id)
                        .is_some_and(|r| r.tenant_id == s.tenant_id);
                    if stored {
                        self.finish_comment_reply(
                            s.tenant_id,
                            id,
                            CommentAnswer {
                                status: answer.status,
                                platform_comment_id: answer.provider_id.as_deref(),
                                error: answer.error.as_deref(),
                            },
                            at,
                        )?;
                    }
                }
            }
        }
        let any_state = s.outcome == nexiom_core::ReplyOutcome::Sent;
        let in_queue = match s.subject {
            DecisionSubject::Message(id) => self
                .messages
                .get(&id)
                .is_some_and(|m| m.tenant_id == s.tenant_id && m.reply.is_some()),
            DecisionSubject::Comment(id) => self
                .comments
                .get(&id)
                .is_some_and(|c| c.tenant_id == s.tenant_id && c.reply.is_some()),
        };
        if !in_queue || !(any_state || self.held(s.tenant_id, s.subject, s.lease_until)) {
            return Ok(false);
        }
        self.finish_reply(s.tenant_id, s.subject, s.outcome.clone())?;
        Ok(true)
    }
}

#[async_trait]
impl ReplyBatchStore for MemoryStore {
    async fn reply_contexts(&self, items: &[ClaimedReply]) -> Result<Vec<ReplyContext>> {
        let inner = self.lock();
        Ok(items.iter().map(|item| inner.reply_context(item)).collect())
    }

    async fn claim_replies(&self, claims: &[ReplyClaim]) -> Result<Vec<ReplyClaimed>> {
        check_claims(claims)?;
        let mut inner = self.lock();
        claims
            .iter()
            .map(|claim| inner.claim_reply(claim))
            .collect()
    }

    async fn settle_replies(
        &self,
        settlements: &[ReplySettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        check_settlements(settlements)?;
        let mut inner = self.lock();
        settlements
            .iter()
            .map(|s| inner.settle_reply(s, at))
            .collect()
    }
}
