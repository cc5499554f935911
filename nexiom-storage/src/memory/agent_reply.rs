//! Agent replies in memory.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AgentReply, AgentReplyId, AgentReplyOutcome, AgentReplyState, AgentReplyTarget, CommentId,
    DeliveryStatus, MessageDirection, NewAgentReply, NewMessage, ReplyState, ReplyStatus, TenantId,
    validate,
};

use super::{Inner, MemoryStore, get_scoped};
use crate::agent_reply::{AgentReplyClaim, AgentReplyContext, AgentReplyStore};
use crate::error::{Result, StorageError};

/// The agent replies' rows.
#[derive(Default)]
pub(super) struct AgentReplies {
    rows: BTreeMap<AgentReplyId, AgentReply>,
    /// `(tenant, idempotency key)` → reply.
    by_key: HashMap<(TenantId, String), AgentReplyId>,
    /// Comment → its private reply.
    private_by_comment: HashMap<CommentId, AgentReplyId>,
}

impl AgentReplies {
    /// Every stored reply.
    pub(super) fn all(&self) -> impl Iterator<Item = &AgentReply> {
        self.rows.values()
    }
}

impl Inner {
    fn agent_reply_context(
        &self,
        tenant: TenantId,
        target: AgentReplyTarget,
    ) -> Result<AgentReplyContext> {
        match target {
            AgentReplyTarget::Conversation { conversation } => {
                let conv = get_scoped(&self.conversations, tenant, &conversation, "conversation")?;
                let channel = get_scoped(&self.channels, tenant, &conv.channel_id, "channel")?;
                let recipient = self
                    .list_contact_channels(tenant, conv.contact_id)
                    .into_iter()
                    .find(|h| h.platform == channel.platform)
                    .map(|h| h.external_handle);
                let last = self
                    .messages
                    .values()
                    .filter(|m| {
                        m.conversation_id == conversation
                            && m.direction == MessageDirection::Inbound
                    })
                    .max_by_key(|m| (m.created_at, m.id));
                Ok(AgentReplyContext {
                    channel: channel.clone(),
                    contact_id: Some(conv.contact_id),
                    recipient,
                    last_inbound_at: last.map(|m| m.created_at),
                    last_inbound_provider_id: last.and_then(|m| m.provider_message_id.clone()),
                    comment_platform_id: None,
                    comment_parent_platform_id: None,
                    comment_created_at: None,
                    private_reply_claimed: false,
                })
            }
            AgentReplyTarget::PublicComment { comment }
            | AgentReplyTarget::PrivateComment { comment } => {
                let c = get_scoped(&self.comments, tenant, &comment, "comment")?;
                let channel = get_scoped(&self.channels, tenant, &c.channel_id, "channel")?;
                Ok(AgentReplyContext {
                    channel: channel.clone(),
                    contact_id: None,
                    recipient: None,
                    last_inbound_at: None,
                    last_inbound_provider_id: None,
                    comment_platform_id: Some(c.platform_comment_id.clone()),
                    comment_parent_platform_id: c.parent_platform_comment_id.clone(),
                    comment_created_at: Some(c.created_at),
                    private_reply_claimed: self
                        .agent_replies
                        .private_by_comment
                        .contains_key(&comment),
                })
            }
        }
    }

    fn claim_agent_reply(&mut self, new: NewAgentReply) -> Result<AgentReplyClaim> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        let channel_id = self
            .agent_reply_context(new.tenant_id, new.target)?
            .channel
            .id;
        let key = (new.tenant_id, new.idempotency_key.clone());
        if let Some(stored) = self
            .agent_replies
            .by_key
            .get(&key)
            .and_then(|id| self.agent_replies.rows.get(id))
        {
            return Ok(AgentReplyClaim::Existing(stored.clone()));
        }
        if let AgentReplyTarget::PrivateComment { comment } = new.target
            && self.agent_replies.private_by_comment.contains_key(&comment)
        {
            return Ok(AgentReplyClaim::PrivateReplyTaken);
        }
        let reply = AgentReply {
            id: AgentReplyId::generate(),
            tenant_id: new.tenant_id,
            target: new.target,
            channel_id,
            agent_id: new.agent_id,
            text: new.text,
            template: new.template,
            idempotency_key: new.idempotency_key,
            state: AgentReplyState::Sending,
            message_id: None,
            provider_id: None,
            error: None,
            created_at: new.created_at,
            finished_at: None,
        };
        if let AgentReplyTarget::PrivateComment { comment } = reply.target {
            self.agent_replies
                .private_by_comment
                .insert(comment, reply.id);
        }
        self.agent_replies.by_key.insert(key, reply.id);
        self.agent_replies.rows.insert(reply.id, reply.clone());
        Ok(AgentReplyClaim::Claimed(reply))
    }

    fn finish_agent_reply(
        &mut self,
        tenant: TenantId,
        id: AgentReplyId,
        outcome: AgentReplyOutcome,
        at: DateTime<Utc>,
    ) -> Result<AgentReply> {
        match &outcome {
            AgentReplyOutcome::Sent { provider_id } => {
                validate::opt_key("provider_id", provider_id.as_deref())?;
            }
            AgentReplyOutcome::Failed { error } => validate::text("error", error)?,
        }
        let reply = match self.agent_replies.rows.get(&id) {
            Some(r) if r.tenant_id == tenant => r.clone(),
            _ => return Err(StorageError::not_found("agent reply", id)),
        };
        if reply.state != AgentReplyState::Sending {
            return Ok(reply);
        }
        let mut done = reply;
        done.finished_at = Some(at);
        match outcome {
            AgentReplyOutcome::Sent { provider_id } => {
                if let AgentReplyTarget::Conversation { conversation } = done.target {
                    let message = self.insert_message(NewMessage {
                        tenant_id: tenant,
                        conversation_id: conversation,
                        direction: MessageDirection::Outbound,
                        text: done.text.clone(),
                        has_media: false,
                        provider_message_id: provider_id.clone(),
                        in_reply_to: None,
                        delivery_status: Some(DeliveryStatus::Sent),
                        created_at: at,
                        stored_at: at,
                    })?;
                    done.message_id = Some(message.record.id);
                }
                done.state = AgentReplyState::Sent;
                done.provider_id = provider_id;
                self.supersede_automatic(tenant, done.target, done.created_at);
            }
            AgentReplyOutcome::Failed { error } => {
                done.state = AgentReplyState::Failed;
                done.error = Some(error);
            }
        }
        self.agent_replies.rows.insert(id, done.clone());
        Ok(done)
    }

    /// See [`AgentReplyStore::settle_abandoned_agent_replies`].
    fn settle_abandoned_agent_replies(
        &mut self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Vec<AgentReply> {
        let mut stale: Vec<(DateTime<Utc>, AgentReplyId)> = self
            .agent_replies
            .rows
            .values()
            .filter(|r| r.state == AgentReplyState::Sending && r.created_at < before)
            .map(|r| (r.created_at, r.id))
            .collect();
        stale.sort();
        stale.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut settled = Vec::with_capacity(stale.len());
        for (_, id) in stale {
            if let Some(reply) = self.agent_replies.rows.get_mut(&id) {
                reply.state = AgentReplyState::Failed;
                reply.error = Some(crate::ABANDONED_AGENT_REPLY_ERROR.to_owned());
                reply.finished_at = Some(at);
                settled.push(reply.clone());
            }
        }
        settled
    }

    /// A person answered `target` (the reply claimed at `claimed_at`): its
    /// items still waiting for an automatic reply, or for their triage,
    /// become `superseded` (as on PostgreSQL: messages stored by then); one
    /// in flight is left to the reply claim.
    fn supersede_automatic(
        &mut self,
        tenant: TenantId,
        target: AgentReplyTarget,
        claimed_at: DateTime<Utc>,
    ) {
        match target {
            AgentReplyTarget::Conversation { conversation } => {
                for m in self.messages.values_mut().filter(|m| {
                    m.tenant_id == tenant
                        && m.conversation_id == conversation
                        && m.direction == MessageDirection::Inbound
                        && m.stored_at <= claimed_at
                }) {
                    supersede(&mut m.reply, m.triage.is_some());
                }
            }
            AgentReplyTarget::PublicComment { comment }
            | AgentReplyTarget::PrivateComment { comment } => {
                if let Some(c) = self
                    .comments
                    .get_mut(&comment)
                    .filter(|c| c.tenant_id == tenant)
                {
                    supersede(&mut c.reply, c.triage.is_some());
                }
            }
        }
    }
}

/// `reply` superseded if it is `pending`, or if it is none yet and the item
/// is not triaged; its attempts and last error kept.
fn supersede(reply: &mut Option<ReplyStatus>, triaged: bool) {
    match reply {
        Some(r) if r.state == ReplyState::Pending => {
            r.state = ReplyState::Superseded;
            r.next_at = None;
            r.lease_until = None;
        }
        None if !triaged => {
            *reply = Some(ReplyStatus {
                state: ReplyState::Superseded,
                ..ReplyStatus::pending()
            });
        }
        _ => {}
    }
}

#[async_trait]
impl AgentReplyStore for MemoryStore {
    async fn agent_reply_context(
        &self,
        tenant: TenantId,
        target: AgentReplyTarget,
    ) -> Result<AgentReplyContext> {
        self.lock().agent_reply_context(tenant, target)
    }

    async fn claim_agent_reply(&self, new: NewAgentReply) -> Result<AgentReplyClaim> {
        self.lock().claim_agent_reply(new)
    }

    async fn settle_abandoned_agent_replies(
        &self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AgentReply>> {
        Ok(self
            .lock()
            .settle_abandoned_agent_replies(before, at, limit))
    }

    async fn finish_agent_reply(
        &self,
        tenant: TenantId,
        id: AgentReplyId,
        outcome: AgentReplyOutcome,
        at: DateTime<Utc>,
    ) -> Result<AgentReply> {
        self.lock().finish_agent_reply(tenant, id, outcome, at)
    }

    async fn withdraw_agent_reply(&self, tenant: TenantId, id: AgentReplyId) -> Result<bool> {
        let mut inner = self.lock();
        let replies = &mut inner.agent_replies;
        let reply = match replies.rows.get(&id) {
            Some(r) if r.tenant_id == tenant => r,
            _ => return Err(StorageError::not_found("agent reply", id)),
        };
        if reply.state != AgentReplyState::Sending {
            return Ok(false);
        }
        let key = (tenant, reply.idempotency_key.clone());
        if let AgentReplyTarget::PrivateComment { comment } = reply.target {
            replies.private_by_comment.remove(&comment);
        }
        replies.by_key.remove(&key);
        replies.rows.remove(&id);
        Ok(true)
    }

    async fn find_agent_reply(
        &self,
        tenant: TenantId,
        idempotency_key: &str,
    ) -> Result<Option<AgentReply>> {
        validate::key("idempotency_key", idempotency_key)?;
        let inner = self.lock();
        Ok(inner
            .agent_replies
            .by_key
            .get(&(tenant, idempotency_key.to_owned()))
            .and_then(|id| inner.agent_replies.rows.get(id))
            .cloned())
    }
}
