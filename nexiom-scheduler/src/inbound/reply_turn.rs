//! One claimed item's turn in the auto-reply step: the reply drafted, claimed
//! under its unique key (through the batch's claim writer), sent through the
//! connector; or why it could not be. The platform's answer goes back with
//! the turn, to be recorded with the item's settlement.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{
    ChannelContext, ConnectorError, ErrorAction, OutboundMessage, PlatformConnector,
};
use nexiom_core::{
    Channel, ChannelId, Comment, ContactId, DecisionId, DecisionSubject, DeliveryStatus, Message,
    MessageDirection, TenantId,
};
use nexiom_storage::{ReplyAnswer, ReplyClaimed, ReplyContext, StorageError};
use nexiom_triage::{ReplyKind, ReplyRequest};
use tokio::sync::{mpsc, oneshot};

use super::{InboundError, InboundPipeline};

/// A reply to claim, sent to the batch's claim writer (which adds the lease
/// the batch holds), with where to answer.
pub(super) type ClaimRequest = (ClaimAsk, oneshot::Sender<Result<ReplyClaimed, String>>);

/// The item, text and time of a reply to claim.
pub(super) struct ClaimAsk {
    pub(super) tenant: TenantId,
    pub(super) subject: DecisionSubject,
    pub(super) text: String,
    pub(super) at: DateTime<Utc>,
}

/// What the turns of one batch share: what was read for the whole batch
/// (an item or a channel missing here is read on its own), and the claim
/// writer.
pub(super) struct Shared<'a> {
    pub(super) contexts: HashMap<DecisionSubject, ReplyContext>,
    pub(super) channels: HashMap<ChannelId, Channel>,
    pub(super) claims: &'a mpsc::UnboundedSender<ClaimRequest>,
}

/// How one item's turn ended.
pub(super) enum Turn {
    /// The platform accepted the reply.
    Sent,
    /// The reply existed already.
    AlreadyReplied,
    /// AI control is OFF: put back without an attempt.
    AiOff,
    /// The channel is paused (needs re-authorization): put back without an
    /// attempt or a call.
    Paused(String),
    /// The comment is hidden on the platform: put back without an attempt
    /// or a call (the claim takes it again once it is shown).
    Hidden,
    /// Nothing was sent (failed before the claim, or the platform refused
    /// before acting and the claim was withdrawn): safe to try again, not
    /// before the wait the platform asked for, when it gave one.
    Retryable(String, Option<Duration>),
    /// As [`Turn::Retryable`], but the wait is this item's, not its
    /// channel's: WhatsApp's pair rate limit (131056), about one customer,
    /// whose Retry-After must not hold the replies to the others.
    RetryableAlone(String, Option<Duration>),
    /// Failed after the reply was claimed (refused, or outcome unknown):
    /// never sent again automatically.
    Final(String),
    /// The item's lease moved on before its reply was claimed (another
    /// worker holds it now): nothing was stored or sent.
    LeaseLost,
    /// A person answered first: the claim made the item `superseded`;
    /// nothing was stored or sent.
    Superseded,
}

/// Everything needed to answer a message, gathered before anything is claimed.
struct Prepared {
    channel: Channel,
    connector: Arc<dyn PlatformConnector>,
    ctx: ChannelContext,
    recipient: String,
    text: String,
}

impl InboundPipeline {
    /// The draft kept in the item's decision, or a fresh one.
    async fn reply_text(
        &self,
        tenant: TenantId,
        known: Option<Option<String>>,
        decision: Option<DecisionId>,
        request: ReplyRequest<'_>,
    ) -> Result<Result<String, String>, InboundError> {
        let draft = match known {
            Some(draft) => draft,
            None => match decision {
                Some(id) => {
                    let decision = self.store.get_decision(tenant, id).await?;
                    decision
                        .snapshot
                        .get("draft")
                        .and_then(|d| d.as_str())
                        .filter(|d| !d.trim().is_empty())
                        .map(str::to_owned)
                }
                None => None,
            },
        };
        if let Some(draft) = draft {
            return Ok(Ok(draft));
        }
        // Drafted now: with the tenant's reply settings, as triage does.
        let settings = self.configs.get(tenant).await?;
        Ok(self
            .generator
            .generate_with(&request, &settings.reply)
            .await
            .map(|d| d.text)
            .map_err(|e| e.to_string()))
    }

    /// The connector and a context with a token valid for a while yet
    /// (through the pipeline's [`ChannelTokens`](crate::ChannelTokens)), or
    /// the turn that ends the item when there is none.
    async fn connector_for(
        &self,
        channel: &Channel,
    ) -> Result<(Arc<dyn PlatformConnector>, ChannelContext), Turn> {
        let connector = self
            .connectors
            .get(channel.platform.as_str())
            .map_err(|e| Turn::Retryable(e.to_string(), None))?;
        match self.tokens.context(connector.as_ref(), channel).await {
            Ok(ctx) => Ok((connector, ctx)),
            Err(err) if err.is_paused() => Err(Turn::Paused(err.to_string())),
            Err(crate::tokens::TokenError::Failed {
                message,
                retry_after,
                ..
            }) => Err(Turn::Retryable(message, retry_after)),
            Err(err) => Err(Turn::Retryable(err.to_string(), None)),
        }
    }

    /// The channel, from the batch's reads or on its own.
    async fn channel_of(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Channel, InboundError> {
        match shared.channels.get(&channel) {
            Some(found) if found.tenant_id == tenant => Ok(found.clone()),
            _ => Ok(self.store.get_channel(tenant, channel).await?),
        }
    }

    /// The message's contact, its name and its handle on `channel`'s
    /// platform: from the batch's context, or read on their own.
    async fn recipient_of(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        message: &Message,
        channel: &Channel,
    ) -> Result<(Option<ContactId>, Option<String>, Option<String>), InboundError> {
        if let Some(ctx) = shared.contexts.get(&DecisionSubject::Message(message.id)) {
            return Ok((
                ctx.contact_id,
                ctx.contact_name.clone(),
                ctx.recipient.clone(),
            ));
        }
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
        Ok((Some(contact.id), contact.display_name, handle))
    }

    /// The reply to a message, or why it cannot be made.
    async fn prepare_message(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        message: &Message,
    ) -> Result<Result<Prepared, Turn>, InboundError> {
        let channel = self.channel_of(shared, tenant, message.channel_id).await?;
        let (contact, contact_name, handle) =
            self.recipient_of(shared, tenant, message, &channel).await?;
        let Some(recipient) = handle else {
            let contact = contact.map_or_else(|| "of the message".to_owned(), |c| c.to_string());
            return Ok(Err(Turn::Retryable(
                format!("contact {contact} has no {} handle", channel.platform),
                None,
            )));
        };
        let (connector, ctx) = match self.connector_for(&channel).await {
            Ok(found) => found,
            Err(turn) => return Ok(Err(turn)),
        };
        let request = ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Message,
            contact_name: contact_name.as_deref(),
            text: &message.text,
        };
        let known = shared
            .contexts
            .get(&DecisionSubject::Message(message.id))
            .map(|c| c.draft.clone());
        let text = match self
            .reply_text(tenant, known, message.ai_decision_id, request)
            .await?
        {
            Ok(text) => text,
            Err(e) => return Ok(Err(Turn::Retryable(e, None))),
        };
        Ok(Ok(Prepared {
            channel,
            connector,
            ctx,
            recipient,
            text,
        }))
    }

    /// Claims the reply through the batch's claim writer.
    async fn claim(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        subject: DecisionSubject,
        text: &str,
    ) -> Result<ReplyClaimed, InboundError> {
        let (answer, wait) = oneshot::channel();
        let ask = ClaimAsk {
            tenant,
            subject,
            text: text.to_owned(),
            at: self.clock.now(),
        };
        let failed = |message: String| {
            InboundError::Storage(StorageError::Backend {
                message,
                source: None,
            })
        };
        if shared.claims.send((ask, answer)).is_err() {
            return Err(failed("the claim writer stopped".into()));
        }
        match wait.await {
            Ok(Ok(claimed)) => Ok(claimed),
            Ok(Err(error)) => Err(failed(error)),
            Err(_) => Err(failed("the claim writer stopped".into())),
        }
    }

    #[tracing::instrument(name = "auto_reply_message", skip_all, fields(%tenant, message = %message.id))]
    pub(super) async fn reply_to_message(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        message: &Message,
    ) -> Result<(Turn, Option<ReplyAnswer>), InboundError> {
        if message.direction != MessageDirection::Inbound {
            return Ok((
                Turn::Final("only inbound messages are answered".into()),
                None,
            ));
        }
        // Auto-replies switched off on the channel since triage: as AI OFF.
        if !self
            .configs
            .get(tenant)
            .await?
            .auto_reply_on(message.channel_id)
        {
            return Ok((Turn::AiOff, None));
        }
        let prepared = match self.prepare_message(shared, tenant, message).await? {
            Ok(prepared) => prepared,
            Err(turn) => return Ok((turn, None)),
        };
        // The claim: unique by the inbound message it answers, only while
        // AI control is ON and the item is still this batch's.
        let subject = DecisionSubject::Message(message.id);
        match self.claim(shared, tenant, subject, &prepared.text).await? {
            ReplyClaimed::Claimed(_) => {}
            ReplyClaimed::Existing(status) => return Ok((earlier_reply(status), None)),
            ReplyClaimed::AiOff => return Ok((Turn::AiOff, None)),
            ReplyClaimed::LeaseLost => return Ok((Turn::LeaseLost, None)),
            ReplyClaimed::Superseded => return Ok((Turn::Superseded, None)),
        }
        let outbound = OutboundMessage {
            reply_to: message.provider_message_id.clone(),
            last_inbound_at: Some(message.created_at),
            ..OutboundMessage::text(prepared.recipient, prepared.text)
        };
        // From here on the reply is claimed: whatever happens, it is never
        // sent again; the answer is recorded with the item's settlement.
        match prepared
            .connector
            .send_message(&prepared.ctx, &outbound)
            .await
        {
            Ok(sent) => Ok((
                Turn::Sent,
                Some(ReplyAnswer {
                    status: DeliveryStatus::Sent,
                    provider_id: Some(sent.message_id),
                    error: None,
                }),
            )),
            Err(error) => {
                let sent_with = (
                    &prepared.channel,
                    prepared.connector.as_ref(),
                    &prepared.ctx,
                );
                if let Some(turn) = self
                    .withdraw_unsent(tenant, subject, &error, sent_with)
                    .await
                {
                    return Ok((turn, None));
                }
                Ok((
                    Turn::Final(format!("the send failed (never re-sent): {error}")),
                    Some(ReplyAnswer {
                        status: DeliveryStatus::Failed,
                        provider_id: None,
                        error: None,
                    }),
                ))
            }
        }
    }

    #[tracing::instrument(name = "auto_reply_comment", skip_all, fields(%tenant, comment = %comment.id))]
    pub(super) async fn reply_to_comment(
        &self,
        shared: &Shared<'_>,
        tenant: TenantId,
        comment: &Comment,
    ) -> Result<(Turn, Option<ReplyAnswer>), InboundError> {
        let subject = DecisionSubject::Comment(comment.id);
        let context = shared.contexts.get(&subject);
        let existing = match context {
            Some(ctx) => ctx.existing_reply,
            None => self
                .store
                .find_comment_reply(tenant, comment.id)
                .await?
                .map(|r| r.status),
        };
        if let Some(status) = existing {
            return Ok((earlier_reply(Some(status)), None));
        }
        // Hidden since it was claimed (a moderator, or `hide_comment`): not
        // answered while hidden (Instagram refuses replies to hidden
        // comments, and a brand does not answer what it hid), nor escalated:
        // put back, the claim leaves it alone until it is shown again.
        if comment.hidden {
            return Ok((Turn::Hidden, None));
        }
        if !self
            .configs
            .get(tenant)
            .await?
            .auto_reply_on(comment.channel_id)
        {
            return Ok((Turn::AiOff, None));
        }
        let channel = self.channel_of(shared, tenant, comment.channel_id).await?;
        let (connector, ctx) = match self.connector_for(&channel).await {
            Ok(found) => found,
            Err(turn) => return Ok((turn, None)),
        };
        let request = ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Comment,
            contact_name: comment.author_name.as_deref(),
            text: &comment.text,
        };
        let known = context.map(|c| c.draft.clone());
        let text = match self
            .reply_text(tenant, known, comment.ai_decision_id, request)
            .await?
        {
            Ok(text) => text,
            Err(reason) => {
                return Ok((
                    Turn::Retryable(format!("no reply drafted: {reason}"), None),
                    None,
                ));
            }
        };
        match self.claim(shared, tenant, subject, &text).await? {
            ReplyClaimed::Claimed(_) => {}
            ReplyClaimed::Existing(status) => return Ok((earlier_reply(status), None)),
            ReplyClaimed::AiOff => return Ok((Turn::AiOff, None)),
            ReplyClaimed::LeaseLost => return Ok((Turn::LeaseLost, None)),
            ReplyClaimed::Superseded => return Ok((Turn::Superseded, None)),
        }
        let target = connector.reply_target(
            &comment.platform_comment_id,
            comment.parent_platform_comment_id.as_deref(),
        );
        let outcome = connector.reply_comment(&ctx, target, &text).await;
        if let Err(error) = &outcome
            && let Some(turn) = self
                .withdraw_unsent(tenant, subject, error, (&channel, connector.as_ref(), &ctx))
                .await
        {
            return Ok((turn, None));
        }
        Ok(match outcome {
            Ok(reply_id) => (
                Turn::Sent,
                Some(ReplyAnswer {
                    status: DeliveryStatus::Sent,
                    provider_id: Some(reply_id),
                    error: None,
                }),
            ),
            Err(error) => (
                Turn::Final(format!("the reply failed (never re-sent): {error}")),
                Some(ReplyAnswer {
                    status: DeliveryStatus::Failed,
                    provider_id: None,
                    error: Some(error.to_string()),
                }),
            ),
        })
    }
}

impl InboundPipeline {
    /// After a failed send: when the platform refused before acting (its
    /// error says retry later or refresh the token: rate limited, circuit
    /// open, `503`, a connect failure, `401`), nothing was sent, so the claim
    /// is withdrawn and the item retried with backoff (never sooner than a
    /// Retry-After). After a `401` the channel's token is refreshed first
    /// (under the channel's lease, as publishing and polling do: the token
    /// another worker stored meanwhile, else one refreshed now), so the retry
    /// goes out with a fresh token; a refused refresh pauses the channel and
    /// the item waits for it. `None` when the send may have happened or the
    /// claim could not be withdrawn: the caller settles it for good.
    async fn withdraw_unsent(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        error: &ConnectorError,
        (channel, connector, ctx): (&Channel, &dyn PlatformConnector, &ChannelContext),
    ) -> Option<Turn> {
        let (wait, unauthorized) = match error.action() {
            ErrorAction::RetryLater { after } => {
                let asked = after.and_then(|d| Duration::from_std(d).ok());
                // A throttle that names no wait (Meta's codes 4, 17, 32 and
                // 613 come so, and often LinkedIn's 429) still holds the
                // channel, for the retry policy's base delay: otherwise its
                // other replies in the batch would each meet it and spend an
                // attempt, and be escalated after a few runs. Not WhatsApp's
                // pair rate limit (131056): it is about one customer, whose
                // later replies wait behind the refused one anyway.
                let pair_limit = error.is_pair_rate_limit();
                let asked = match (asked, error) {
                    (None, ConnectorError::RateLimited { .. }) if !pair_limit => {
                        Some(self.auto_reply.retry.base)
                    }
                    (asked, _) => asked,
                };
                (asked, false)
            }
            ErrorAction::RefreshToken => (None, true),
            ErrorAction::NeedsAttention | ErrorAction::Fail => return None,
        };
        match self.store.withdraw_reply_claim(tenant, subject).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(store_error) => {
                tracing::warn!(%tenant, ?subject, error = %store_error, "unsent reply claim not withdrawn");
                return None;
            }
        }
        if unauthorized {
            let renewed = self
                .tokens
                .after_unauthorized(channel, Some(&ctx.access_token), |c| async move {
                    crate::tokens::connector_refresh(connector, &c).await
                })
                .await;
            match renewed {
                Ok(_) => {}
                Err(err) if err.is_paused() => return Some(Turn::Paused(err.to_string())),
                Err(err) => {
                    tracing::warn!(%tenant, ?subject, error = %err, "token not refreshed after a 401; retried later");
                }
            }
        }
        let message = format!("the platform did not act, retried later: {error}");
        Some(if error.is_pair_rate_limit() {
            Turn::RetryableAlone(message, wait)
        } else {
            Turn::Retryable(message, wait)
        })
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
