//! Auto-reply step: AUTO_REPLY items answered through the connector, once
//! each, only while the tenant's AI control is ON.

use chrono::{DateTime, Utc};
use nexiom_connectors::{ChannelContext, OutboundMessage, PlatformConnector};
use nexiom_core::{
    Channel, Comment, DecisionId, DeliveryStatus, Message, MessageDirection, NewCommentReply,
    NewMessage, TenantId, Triage,
};
use nexiom_triage::{ReplyKind, ReplyRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{InboundError, InboundPipeline};

/// What one auto-reply batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReplyReport {
    /// Replies the platform accepted (the `auto_replied` count of a pipeline
    /// run).
    pub sent: u64,
    /// Replies that could not be made or that the platform refused (stored as
    /// `failed`, never retried automatically: a duplicate is worse than a
    /// visible failure).
    pub failed: u64,
    /// Items left alone because the tenant's AI control was OFF when their
    /// turn came.
    pub skipped_ai_off: u64,
    /// Items answered already (by an earlier run or another worker).
    pub already_replied: u64,
}

/// Everything needed to answer a message, gathered before anything is claimed.
struct Prepared {
    connector: Arc<dyn PlatformConnector>,
    ctx: ChannelContext,
    recipient: String,
    text: String,
}

impl InboundPipeline {
    /// Replies to the AUTO_REPLY messages and comments of every tenant created
    /// at or after `since` (at most `limit` of each per tenant, oldest first):
    /// a message through the channel's connector `send_message` to the
    /// contact's handle, a comment through `reply_comment`. The text is the
    /// draft triage kept in the decision (drafted again when missing).
    ///
    /// Never twice: the reply is stored BEFORE the platform is called, under a
    /// unique key (an outbound message keyed by the inbound it answers; a
    /// comment reply keyed by the comment), so a second run or a concurrent
    /// worker finds the key taken and sends nothing. The platform's answer is
    /// recorded afterwards (provider id and `sent`, or `failed`).
    ///
    /// Never while AI control is OFF: the switch is read again for each item,
    /// just before it is claimed and sent, whatever triage saw.
    pub async fn auto_reply_recent_inbound(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<AutoReplyReport, InboundError> {
        let mut report = AutoReplyReport::default();
        for tenant in self.store.list_tenants().await? {
            let messages = self
                .store
                .list_messages_by_triage(tenant.id, Triage::AutoReply, since, limit)
                .await?;
            for message in messages {
                self.reply_to_message(tenant.id, &message, &mut report)
                    .await?;
            }
            let comments = self
                .store
                .list_comments_by_triage(tenant.id, Triage::AutoReply, since, limit)
                .await?;
            for comment in comments {
                self.reply_to_comment(tenant.id, &comment, &mut report)
                    .await?;
            }
        }
        Ok(report)
    }

    /// Whether the tenant's AI control is ON right now.
    async fn ai_on(&self, tenant: TenantId) -> Result<bool, InboundError> {
        Ok(self.store.get_ai_control(tenant).await?.enabled)
    }

    /// The draft kept in the item's decision, or a fresh one.
    async fn reply_text(
        &self,
        tenant: TenantId,
        decision: Option<DecisionId>,
        request: ReplyRequest<'_>,
    ) -> Result<Result<String, String>, InboundError> {
        if let Some(id) = decision {
            let decision = self.store.get_decision(tenant, id).await?;
            if let Some(draft) = decision.snapshot.get("draft").and_then(|d| d.as_str())
                && !draft.trim().is_empty()
            {
                return Ok(Ok(draft.to_owned()));
            }
        }
        Ok(self
            .generator
            .generate(&request)
            .await
            .map(|d| d.text)
            .map_err(|e| e.to_string()))
    }

    /// The connector and context of a channel.
    fn connector_for(
        &self,
        channel: &Channel,
    ) -> Result<(Arc<dyn PlatformConnector>, ChannelContext), String> {
        let connector = self
            .connectors
            .get(channel.platform.as_str())
            .map_err(|e| e.to_string())?;
        let ctx = ChannelContext::from_channel(channel).map_err(|e| e.to_string())?;
        Ok((connector, ctx))
    }

    /// The reply to a message, or why it cannot be made.
    async fn prepare_message(
        &self,
        tenant: TenantId,
        message: &Message,
    ) -> Result<Result<Prepared, String>, InboundError> {
        let channel = self.store.get_channel(tenant, message.channel_id).await?;
        let conversation = self
            .store
            .get_conversation(tenant, message.conversation_id)
            .await?;
        let contact = self
            .store
            .get_contact(tenant, conversation.contact_id)
            .await?;
        let handle = self
            .store
            .list_contact_channels(tenant, conversation.contact_id)
            .await?
            .into_iter()
            .find(|h| h.platform == channel.platform)
            .map(|h| h.external_handle);
        let Some(recipient) = handle else {
            return Ok(Err(format!(
                "contact {} has no {} handle",
                contact.id, channel.platform
            )));
        };
        let (connector, ctx) = match self.connector_for(&channel) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let request = ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Message,
            contact_name: contact.display_name.as_deref(),
            text: &message.text,
        };
        let text = match self
            .reply_text(tenant, message.ai_decision_id, request)
            .await?
        {
            Ok(text) => text,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(Prepared {
            connector,
            ctx,
            recipient,
            text,
        }))
    }

    #[tracing::instrument(name = "auto_reply_message", skip_all, fields(%tenant, message = %message.id))]
    async fn reply_to_message(
        &self,
        tenant: TenantId,
        message: &Message,
        report: &mut AutoReplyReport,
    ) -> Result<(), InboundError> {
        if message.direction != MessageDirection::Inbound {
            return Ok(());
        }
        let prepared = match self.prepare_message(tenant, message).await? {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::warn!(%tenant, message = %message.id, %reason, "auto-reply not possible");
                report.failed += 1;
                return Ok(());
            }
        };
        if !self.ai_on(tenant).await? {
            report.skipped_ai_off += 1;
            return Ok(());
        }
        let now = self.clock.now();
        // The claim: unique by the inbound message it answers.
        let claim = self
            .store
            .insert_message(NewMessage {
                tenant_id: tenant,
                conversation_id: message.conversation_id,
                direction: MessageDirection::Outbound,
                text: prepared.text.clone(),
                has_media: false,
                provider_message_id: None,
                in_reply_to: Some(message.id),
                delivery_status: Some(DeliveryStatus::Pending),
                created_at: now,
                stored_at: now,
            })
            .await?;
        if !claim.created {
            report.already_replied += 1;
            return Ok(());
        }
        let outbound = OutboundMessage {
            reply_to: message.provider_message_id.clone(),
            last_inbound_at: Some(message.created_at),
            ..OutboundMessage::text(prepared.recipient, prepared.text)
        };
        match prepared
            .connector
            .send_message(&prepared.ctx, &outbound)
            .await
        {
            Ok(sent) => {
                self.store
                    .record_message_sent(
                        tenant,
                        claim.record.id,
                        Some(&sent.message_id),
                        DeliveryStatus::Sent,
                    )
                    .await?;
                report.sent += 1;
            }
            Err(error) => {
                tracing::warn!(%tenant, message = %message.id, %error, "auto-reply refused");
                self.store
                    .record_message_sent(tenant, claim.record.id, None, DeliveryStatus::Failed)
                    .await?;
                report.failed += 1;
            }
        }
        Ok(())
    }

    #[tracing::instrument(name = "auto_reply_comment", skip_all, fields(%tenant, comment = %comment.id))]
    async fn reply_to_comment(
        &self,
        tenant: TenantId,
        comment: &Comment,
        report: &mut AutoReplyReport,
    ) -> Result<(), InboundError> {
        if self
            .store
            .find_comment_reply(tenant, comment.id)
            .await?
            .is_some()
        {
            report.already_replied += 1;
            return Ok(());
        }
        let channel = self.store.get_channel(tenant, comment.channel_id).await?;
        let (connector, ctx) = match self.connector_for(&channel) {
            Ok(found) => found,
            Err(reason) => {
                tracing::warn!(%tenant, comment = %comment.id, %reason, "auto-reply not possible");
                report.failed += 1;
                return Ok(());
            }
        };
        let request = ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Comment,
            contact_name: comment.author_name.as_deref(),
            text: &comment.text,
        };
        let text = match self
            .reply_text(tenant, comment.ai_decision_id, request)
            .await?
        {
            Ok(text) => text,
            Err(reason) => {
                tracing::warn!(%tenant, comment = %comment.id, %reason, "no reply drafted");
                report.failed += 1;
                return Ok(());
            }
        };
        if !self.ai_on(tenant).await? {
            report.skipped_ai_off += 1;
            return Ok(());
        }
        let now = self.clock.now();
        let claim = self
            .store
            .insert_comment_reply(NewCommentReply {
                tenant_id: tenant,
                comment_id: comment.id,
                text: text.clone(),
                created_at: now,
            })
            .await?;
        if !claim.created {
            report.already_replied += 1;
            return Ok(());
        }
        let outcome = connector
            .reply_comment(&ctx, &comment.platform_comment_id, &text)
            .await;
        let now = self.clock.now();
        match outcome {
            Ok(reply_id) => {
                self.store
                    .finish_comment_reply(
                        tenant,
                        comment.id,
                        DeliveryStatus::Sent,
                        Some(&reply_id),
                        None,
                        now,
                    )
                    .await?;
                report.sent += 1;
            }
            Err(error) => {
                tracing::warn!(%tenant, comment = %comment.id, %error, "comment reply refused");
                self.store
                    .finish_comment_reply(
                        tenant,
                        comment.id,
                        DeliveryStatus::Failed,
                        None,
                        Some(&error.to_string()),
                        now,
                    )
                    .await?;
                report.failed += 1;
            }
        }
        Ok(())
    }
}
