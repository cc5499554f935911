//! [`AgentReplies::reply_as_agent`]: a person answers a conversation or a
//! comment through the channel's connector, under the platforms' messaging
//! policy, exactly once per idempotency key.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{
    ConnectorError, ConnectorRegistry, ErrorAction, MessageBody, OutboundMessage,
    PlatformConnector, PrivateReply, Template,
};
use nexiom_core::{
    AgentReply, AgentReplyOutcome, AgentReplyTarget, AgentTemplate, Clock, Content, NewAgentReply,
    Platform, SecretString, TenantId,
};
use nexiom_storage::{
    AgentReplyClaim, AgentReplyContext, OUTCOME_UNKNOWN_PREFIX, StorageError, Store,
};
use thiserror::Error;

/// The messaging window of WhatsApp (customer service), Instagram and
/// Messenger (standard messaging), in hours.
pub const MESSAGING_WINDOW_HOURS: i64 = 24;

/// How long after a comment a private reply may be sent, in days.
pub const PRIVATE_REPLY_WINDOW_DAYS: i64 = 7;

/// What an agent asks to send.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReplyRequest {
    /// The tenant.
    pub tenant_id: TenantId,
    /// What it answers.
    pub target: AgentReplyTarget,
    /// The agent (an opaque id of the caller's user).
    pub agent_id: String,
    /// The text.
    pub text: String,
    /// A WhatsApp template, sent instead of the text (needed outside the
    /// 24-hour window).
    pub template: Option<AgentTemplate>,
    /// The client's idempotency key: a second call with it sends nothing
    /// and answers the first call's reply.
    pub idempotency_key: String,
}

/// Why an agent reply was not sent.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AgentReplyError {
    /// The messaging policy forbids it; nothing was sent or recorded.
    #[error("reply refused by the messaging policy: {0}")]
    Refused(String),
    /// Storage failed or refused (an unknown conversation or comment is
    /// `NotFound`).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The channel cannot send now (no connector for its platform, no usable
    /// token: it may need re-authorization; the target lacks what the call
    /// needs). Nothing was sent or recorded: the same key can be sent again
    /// once that is fixed, and a comment's one private reply is not used up.
    #[error("the channel cannot send this reply now: {0}")]
    Unavailable(String),
}

/// Sends replies written by people.
#[derive(Clone)]
pub struct AgentReplies {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    connectors: ConnectorRegistry,
    tokens: crate::tokens::ChannelTokens,
}

impl std::fmt::Debug for AgentReplies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentReplies")
            .field("connectors", &self.connectors.names())
            .finish_non_exhaustive()
    }
}

/// The policy's verdict on a reply, before any call: `Ok` or why not.
fn check_policy(
    request: &AgentReplyRequest,
    ctx: &AgentReplyContext,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let platform = &ctx.channel.platform;
    let meta = matches!(platform, Platform::Instagram | Platform::Facebook);
    if request.template.is_some() && *platform != Platform::WhatsApp {
        return Err(format!(
            "templates are WhatsApp's; {platform} takes the text only"
        ));
    }
    match request.target {
        AgentReplyTarget::Conversation { .. } => {
            if ctx.recipient.is_none() {
                return Err(format!(
                    "the conversation's contact has no {platform} handle to write to"
                ));
            }
            let inside = ctx
                .last_inbound_at
                .is_some_and(|at| now - at <= Duration::hours(MESSAGING_WINDOW_HOURS));
            if inside {
                return Ok(());
            }
            let since = ctx.last_inbound_at.map_or_else(
                || "the contact never wrote".to_owned(),
                |at| format!("the contact last wrote {} h ago", (now - at).num_hours()),
            );
            match platform {
                Platform::WhatsApp if request.template.is_some() => Ok(()),
                Platform::WhatsApp => Err(format!(
                    "{since}, outside WhatsApp's {MESSAGING_WINDOW_HOURS}-hour window: send an \
                     approved template"
                )),
                _ if meta => Err(format!(
                    "{since}, outside {platform}'s {MESSAGING_WINDOW_HOURS}-hour messaging \
                     window: answer once the person writes again"
                )),
                _ => Ok(()),
            }
        }
        AgentReplyTarget::PublicComment { .. } => Ok(()),
        AgentReplyTarget::PrivateComment { .. } => {
            if !meta {
                return Err(format!(
                    "{platform} has no private replies to comments: reply publicly"
                ));
            }
            if ctx.private_reply_claimed {
                return Err(
                    "a private reply to this comment was sent already (one per comment): reply \
                     publicly"
                        .into(),
                );
            }
            match ctx.comment_created_at {
                Some(at) if now - at > Duration::days(PRIVATE_REPLY_WINDOW_DAYS) => Err(format!(
                    "the comment is {} days old; private replies are allowed for \
                     {PRIVATE_REPLY_WINDOW_DAYS} days: reply publicly",
                    (now - at).num_days()
                )),
                _ => Ok(()),
            }
        }
    }
}

/// The connector's message body of a request.
fn body(request: &AgentReplyRequest) -> MessageBody {
    match &request.template {
        Some(t) => {
            let mut template = Template::new(t.name.clone(), t.language.clone());
            if !t.parameters.is_empty() {
                let parameters: Vec<serde_json::Value> = t
                    .parameters
                    .iter()
                    .map(|p| serde_json::json!({"type": "text", "text": p}))
                    .collect();
                template.components =
                    vec![serde_json::json!({"type": "body", "parameters": parameters})];
            }
            MessageBody::Template(template)
        }
        None => MessageBody::Content(Content::text(request.text.clone())),
    }
}

impl AgentReplies {
    /// Replies through the connectors of `connectors` (one per platform
    /// name), reading the time from `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: ConnectorRegistry,
    ) -> Self {
        AgentReplies {
            tokens: crate::tokens::ChannelTokens::new(Arc::clone(&store), Arc::clone(&clock)),
            store,
            clock,
            connectors,
        }
    }

    /// Gets tokens through `tokens` (share the process's one keeper); by
    /// default it has its own over the same store. A channel that needs
    /// re-authorization makes no call: the reply is refused with that
    /// reason ([`AgentReplyError::Unavailable`]), and nothing is recorded.
    pub fn with_tokens(mut self, tokens: crate::tokens::ChannelTokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Sends an agent's reply:
    ///
    /// 1. A reply already stored under the idempotency key is returned as it
    ///    is: nothing is sent. One left `sending` for longer than
    ///    [`AGENT_REPLY_ABANDONED_AFTER_MINUTES`](super::AGENT_REPLY_ABANDONED_AFTER_MINUTES)
    ///    (its sender stopped before recording the answer) is settled first,
    ///    as `failed` of unknown outcome ([`Self::settle_abandoned`]).
    /// 2. The messaging policy is checked before anything is written or
    ///    sent ([`AgentReplyError::Refused`]): a conversation needs the
    ///    contact's handle and, on WhatsApp, Instagram and Messenger, the
    ///    contact's last message within 24 hours (WhatsApp accepts a
    ///    template outside it); a private reply needs Instagram or Facebook,
    ///    a comment at most 7 days old and no private reply to it yet.
    /// 3. What the call needs is read (the connector, the channel's token,
    ///    the target's platform ids); when that fails nothing is sent or
    ///    recorded ([`AgentReplyError::Unavailable`]): the key stays free and
    ///    a comment's one private reply is not used up.
    /// 4. The reply is claimed under the key (two concurrent calls with one
    ///    key: one claim, one platform call; the other call answers the
    ///    stored reply), then sent through the channel's connector: a direct
    ///    message, a public comment reply or a private reply.
    /// 5. The answer is recorded: `sent` (a conversation reply becomes an
    ///    outbound message with the agent's reply linked, so it counts for
    ///    the first-response time) or `failed` with the platform's error
    ///    (an answer that never came after the request went out is failed
    ///    as `outcome_unknown`: it may have been sent); either way the key
    ///    never sends again. A call that never reached the platform or was
    ///    refused before it acted (a throttle, an outage, an open circuit,
    ///    a refused token) sent nothing: the claim is withdrawn and the call
    ///    answers [`AgentReplyError::Unavailable`], so the key is free again
    ///    and a comment's one private reply is not used up.
    pub async fn reply_as_agent(
        &self,
        request: AgentReplyRequest,
    ) -> Result<AgentReply, AgentReplyError> {
        let tenant = request.tenant_id;
        let new = NewAgentReply {
            tenant_id: tenant,
            target: request.target,
            agent_id: request.agent_id.clone(),
            text: request.text.clone(),
            template: request.template.clone(),
            idempotency_key: request.idempotency_key.clone(),
            created_at: self.clock.now(),
        };
        new.validate().map_err(StorageError::from)?;
        if let Some(stored) = self
            .store
            .find_agent_reply(tenant, &request.idempotency_key)
            .await?
        {
            return self.unless_abandoned(stored).await;
        }
        let ctx = self
            .store
            .agent_reply_context(tenant, request.target)
            .await?;
        let now = self.clock.now();
        check_policy(&request, &ctx, now).map_err(AgentReplyError::Refused)?;
        // Everything the call needs, before the claim: a failure here sent
        // nothing, so it records nothing (the key stays free, a comment's
        // private reply is not used up).
        let call = self.prepare(&request, &ctx).await?;
        let reply = match self.store.claim_agent_reply(new).await? {
            AgentReplyClaim::Claimed(reply) => reply,
            AgentReplyClaim::Existing(reply) => return self.unless_abandoned(reply).await,
            AgentReplyClaim::PrivateReplyTaken => {
                return Err(AgentReplyError::Refused(
                    "a private reply to this comment was sent already (one per comment)".into(),
                ));
            }
        };
        let connector = Arc::clone(&call.connector);
        let used_token = call.channel.access_token.clone();
        let outcome = match self.send(&request, call).await {
            Ok(provider_id) => AgentReplyOutcome::Sent { provider_id },
            Err(error) if never_reached(&error) => {
                let refused_token = (connector, used_token);
                return self
                    .withdraw_unsent(&request, &ctx, reply, error, refused_token)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%tenant, reply = %reply.id, %error, "agent reply not sent");
                let error = match error {
                    ConnectorError::OutcomeUnknown { .. } => format!(
                        "{OUTCOME_UNKNOWN_PREFIX}: {error}; the reply may have been sent and is \
                         never sent again under this key"
                    ),
                    other => other.to_string(),
                };
                AgentReplyOutcome::Failed { error }
            }
        };
        Ok(self
            .store
            .finish_agent_reply(tenant, reply.id, outcome, self.clock.now())
            .await?)
    }

    /// A reply whose call never reached the platform ([`never_reached`]):
    /// its claim is withdrawn, so the key is free again and a comment's one
    /// private reply is not used up; after a refused token the channel's
    /// token is renewed for the next try (the one another worker stored, or
    /// one refreshed now; a refused refresh pauses the channel, and the
    /// answer says so). Answers [`AgentReplyError::Unavailable`], or the reply
    /// as stored when it was finished meanwhile.
    async fn withdraw_unsent(
        &self,
        request: &AgentReplyRequest,
        ctx: &AgentReplyContext,
        reply: AgentReply,
        error: ConnectorError,
        (connector, used_token): (Arc<dyn PlatformConnector>, SecretString),
    ) -> Result<AgentReply, AgentReplyError> {
        let tenant = reply.tenant_id;
        tracing::warn!(%tenant, reply = %reply.id, %error, "agent reply not sent; withdrawn");
        let withdrawn = self.store.withdraw_agent_reply(tenant, reply.id).await?;
        let mut why = format!("not sent, nothing recorded; try again later: {error}");
        if matches!(error.action(), ErrorAction::RefreshToken) {
            let renewed = self
                .tokens
                .after_unauthorized(&ctx.channel, Some(&used_token), |c| async move {
                    crate::tokens::connector_refresh(connector.as_ref(), &c).await
                })
                .await;
            match renewed {
                Ok(_) => {}
                Err(err) if err.is_paused() => {
                    why = format!(
                        "not sent, nothing recorded: the channel needs to be reconnected ({err})"
                    );
                }
                Err(err) => {
                    tracing::warn!(%tenant, error = %err, "token not refreshed after a 401");
                }
            }
        }
        if withdrawn {
            return Err(AgentReplyError::Unavailable(why));
        }
        // Finished meanwhile (cannot happen under one claim): as stored.
        Ok(self
            .store
            .find_agent_reply(tenant, &request.idempotency_key)
            .await?
            .unwrap_or(reply))
    }

    /// The connector, the channel's context (its token) and the target's
    /// platform ids: all a call needs, or why it cannot be made.
    async fn prepare(
        &self,
        request: &AgentReplyRequest,
        ctx: &AgentReplyContext,
    ) -> Result<Call, AgentReplyError> {
        let connector = self
            .connectors
            .get(ctx.channel.platform.as_str())
            .map_err(|e| AgentReplyError::Unavailable(e.to_string()))?;
        let missing =
            |what: &str| AgentReplyError::Unavailable(format!("the target has no {what}"));
        let target = match request.target {
            AgentReplyTarget::Conversation { .. } => {
                CallTarget::Message(ctx.recipient.clone().ok_or_else(|| missing("recipient"))?)
            }
            AgentReplyTarget::PublicComment { .. } => {
                let comment = ctx
                    .comment_platform_id
                    .as_deref()
                    .ok_or_else(|| missing("comment id"))?;
                // A reply to a reply goes where the platform takes it (on
                // Instagram, under the top-level comment).
                let target =
                    connector.reply_target(comment, ctx.comment_parent_platform_id.as_deref());
                CallTarget::Comment(target.to_owned())
            }
            AgentReplyTarget::PrivateComment { .. } => {
                let (Some(comment), Some(at)) =
                    (ctx.comment_platform_id.clone(), ctx.comment_created_at)
                else {
                    return Err(missing("comment id"));
                };
                CallTarget::Private(comment, at)
            }
        };
        let channel = self
            .tokens
            .context(connector.as_ref(), &ctx.channel)
            .await
            .map_err(|e| match e {
                crate::tokens::TokenError::Storage(e) => AgentReplyError::Storage(e),
                other => AgentReplyError::Unavailable(other.to_string()),
            })?;
        Ok(Call {
            connector,
            channel,
            target,
            last_inbound_at: ctx.last_inbound_at,
        })
    }

    /// The platform call; the platform's id of what was sent, or the error.
    async fn send(
        &self,
        request: &AgentReplyRequest,
        call: Call,
    ) -> Result<Option<String>, ConnectorError> {
        let Call {
            connector,
            channel,
            target,
            last_inbound_at,
        } = call;
        match target {
            CallTarget::Message(recipient) => {
                let message = OutboundMessage {
                    recipient,
                    body: body(request),
                    reply_to: None,
                    reference: Some(request.idempotency_key.clone()),
                    last_inbound_at,
                };
                connector
                    .send_message(&channel, &message)
                    .await
                    .map(|sent| Some(sent.message_id))
            }
            CallTarget::Comment(comment) => connector
                .reply_comment(&channel, &comment, &request.text)
                .await
                .map(Some),
            CallTarget::Private(comment, at) => connector
                .send_private_reply(&channel, &PrivateReply::new(comment, &request.text, at))
                .await
                .map(|sent| Some(sent.message_id)),
        }
    }
}

/// What one agent reply's call needs, read before the reply is claimed.
struct Call {
    connector: Arc<dyn nexiom_connectors::PlatformConnector>,
    channel: nexiom_connectors::ChannelContext,
    target: CallTarget,
    last_inbound_at: Option<DateTime<Utc>>,
}

/// Where the reply goes, with the platform's ids.
enum CallTarget {
    /// A direct message to this recipient.
    Message(String),
    /// A public reply to this comment.
    Comment(String),
    /// A private reply to this comment, created at that time.
    Private(String, DateTime<Utc>),
}

/// Whether a failed call never reached the platform, or was refused before
/// it acted (a throttle, an outage, an open circuit, a refused token): then
/// nothing was sent and the reply can be withdrawn. An answer that never
/// came after the request went out (`OutcomeUnknown`) is not such a call.
fn never_reached(error: &ConnectorError) -> bool {
    matches!(
        error.action(),
        ErrorAction::RetryLater { .. } | ErrorAction::RefreshToken
    )
}
