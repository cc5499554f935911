//! One claimed item's turn in the auto-reply step: the reply drafted, claimed
//! under its unique key, sent through the connector and recorded; or why it
//! could not be.

use chrono::Duration;
use nexiom_connectors::{
    ChannelContext, ConnectorError, ErrorAction, OutboundMessage, PlatformConnector,
};
use nexiom_core::{
    Channel, Comment, DecisionId, DecisionSubject, DeliveryStatus, Message, MessageDirection,
    NewCommentReply, NewMessage, TenantId,
};
use nexiom_triage::{ReplyKind, ReplyRequest};
use std::sync::Arc;

use super::{InboundError, InboundPipeline};

/// How one item's turn ended.
pub(super) enum Turn {
    /// The platform accepted the reply.
    Sent,
    /// The reply existed already.
    AlreadyReplied,
    /// AI control is OFF: put back without an attempt.
    AiOff,
    /// Nothing was sent (failed before the claim, or the platform refused
    /// before acting and the claim was withdrawn): safe to try again, not
    /// before the wait the platform asked for, when it gave one.
    Retryable(String, Option<Duration>),
    /// Failed after the reply was claimed (refused, or outcome unknown):
    /// never sent again automatically.
    Final(String),
}

/// Everything needed to answer a message, gathered before anything is claimed.
struct Prepared {
    connector: Arc<dyn PlatformConnector>,
    ctx: ChannelContext,
    recipient: String,
    text: String,
}

impl InboundPipeline {
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
    pub(super) async fn reply_to_message(
        &self,
        tenant: TenantId,
        message: &Message,
    ) -> Result<Turn, InboundError> {
        if message.direction != MessageDirection::Inbound {
            return Ok(Turn::Final("only inbound messages are answered".into()));
        }
        let prepared = match self.prepare_message(tenant, message).await? {
            Ok(prepared) => prepared,
            Err(reason) => return Ok(Turn::Retryable(reason, None)),
        };
        if !self.ai_on(tenant).await? {
            return Ok(Turn::AiOff);
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
            return Ok(earlier_reply(claim.record.delivery_status));
        }
        let outbound = OutboundMessage {
            reply_to: message.provider_message_id.clone(),
            last_inbound_at: Some(message.created_at),
            ..OutboundMessage::text(prepared.recipient, prepared.text)
        };
        // From here on the reply is claimed: whatever happens, it is never
        // sent again, so storage errors are logged, not returned.
        match prepared
            .connector
            .send_message(&prepared.ctx, &outbound)
            .await
        {
            Ok(sent) => {
                if let Err(error) = self
                    .store
                    .record_message_sent(
                        tenant,
                        claim.record.id,
                        Some(&sent.message_id),
                        DeliveryStatus::Sent,
                    )
                    .await
                {
                    tracing::warn!(%tenant, message = %message.id, %error, "reply sent but not recorded");
                }
                Ok(Turn::Sent)
            }
            Err(error) => {
                if let Some(turn) = self
                    .withdraw_unsent(tenant, DecisionSubject::Message(message.id), &error)
                    .await
                {
                    return Ok(turn);
                }
                if let Err(error) = self
                    .store
                    .record_message_sent(tenant, claim.record.id, None, DeliveryStatus::Failed)
                    .await
                {
                    tracing::warn!(%tenant, message = %message.id, %error, "failed reply not recorded");
                }
                Ok(Turn::Final(format!(
                    "the send failed (never re-sent): {error}"
                )))
            }
        }
    }

    #[tracing::instrument(name = "auto_reply_comment", skip_all, fields(%tenant, comment = %comment.id))]
    pub(super) async fn reply_to_comment(
        &self,
        tenant: TenantId,
        comment: &Comment,
    ) -> Result<Turn, InboundError> {
        if let Some(reply) = self.store.find_comment_reply(tenant, comment.id).await? {
            return Ok(earlier_reply(Some(reply.status)));
        }
        let channel = self.store.get_channel(tenant, comment.channel_id).await?;
        let (connector, ctx) = match self.connector_for(&channel) {
            Ok(found) => found,
            Err(reason) => return Ok(Turn::Retryable(reason, None)),
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
            Err(reason) => return Ok(Turn::Retryable(format!("no reply drafted: {reason}"), None)),
        };
        if !self.ai_on(tenant).await? {
            return Ok(Turn::AiOff);
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
            return Ok(earlier_reply(Some(claim.record.status)));
        }
        let outcome = connector
            .reply_comment(&ctx, &comment.platform_comment_id, &text)
            .await;
        if let Err(error) = &outcome
            && let Some(turn) = self
                .withdraw_unsent(tenant, DecisionSubject::Comment(comment.id), error)
                .await
        {
            return Ok(turn);
        }
        let now = self.clock.now();
        let (status, reply_id, error) = match &outcome {
            Ok(reply_id) => (DeliveryStatus::Sent, Some(reply_id.as_str()), None),
            Err(error) => (DeliveryStatus::Failed, None, Some(error.to_string())),
        };
        if let Err(store_error) = self
            .store
            .finish_comment_reply(tenant, comment.id, status, reply_id, error.as_deref(), now)
            .await
        {
            tracing::warn!(%tenant, comment = %comment.id, error = %store_error, "comment reply outcome not recorded");
        }
        Ok(match error {
            None => Turn::Sent,
            Some(error) => Turn::Final(format!("the reply failed (never re-sent): {error}")),
        })
    }
}

impl InboundPipeline {
    /// After a failed send: when the platform refused before acting (its
    /// error says retry later or refresh the token: rate limited, circuit
    /// open, `503`, a connect failure, `401`), nothing was sent, so the claim
    /// is withdrawn and the item retried with backoff (never sooner than a
    /// Retry-After). `None` when the send may have happened or the claim could
    /// not be withdrawn: the caller settles it for good.
    async fn withdraw_unsent(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        error: &ConnectorError,
    ) -> Option<Turn> {
        let wait = match error.action() {
            ErrorAction::RetryLater { after } => after.and_then(|d| Duration::from_std(d).ok()),
            ErrorAction::RefreshToken => None,
            ErrorAction::NeedsAttention | ErrorAction::Fail => return None,
        };
        match self.store.withdraw_reply_claim(tenant, subject).await {
            Ok(true) => Some(Turn::Retryable(
                format!("the platform did not act, retried later: {error}"),
                wait,
            )),
            Ok(false) => None,
            Err(store_error) => {
                tracing::warn!(%tenant, ?subject, error = %store_error, "unsent reply claim not withdrawn");
                None
            }
        }
    }
}

/// The turn of an item whose reply was claimed before (by an earlier run, a
/// concurrent worker, or a worker that stopped), from that reply's status.
fn earlier_reply(status: Option<DeliveryStatus>) -> Turn {
    match status {
        Some(DeliveryStatus::Failed) => {
            Turn::Final("an earlier reply to this item failed; it is never re-sent".into())
        }
        Some(DeliveryStatus::Pending) | None => Turn::Final(
            "outcome unknown: a worker stopped after claiming the reply and before recording \
             the platform's answer; check the account before answering by hand"
                .into(),
        ),
        Some(_) => Turn::AlreadyReplied,
    }
}
