//! [`AgentReplyStore`] on Postgres: `agent_replies` (migration 0026). Every
//! operation runs in a transaction scoped to its tenant.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AgentReply, AgentReplyId, AgentReplyOutcome, AgentReplyState, AgentReplyTarget, AgentTemplate,
    ChannelId, CommentId, ConversationId, NewAgentReply, TenantId, validate,
};
use uuid::Uuid;

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use super::message_keys::{lock_keys, message_key_lock};
use crate::agent_reply::{AgentReplyClaim, AgentReplyContext, AgentReplyStore};
use crate::error::{Result, StorageError};
use crate::traits::TenantStore;

#[derive(sqlx::FromRow)]
struct AgentReplyRow {
    id: Uuid,
    tenant_id: Uuid,
    target_kind: String,
    conversation_id: Option<Uuid>,
    comment_id: Option<Uuid>,
    channel_id: Uuid,
    agent_id: String,
    text: String,
    template: Option<serde_json::Value>,
    idempotency_key: String,
    state: String,
    message_id: Option<Uuid>,
    provider_id: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl AgentReplyRow {
    fn into_entity(self) -> Result<AgentReply> {
        let bad = |what: &str| StorageError::backend(format!("agent reply {}: {what}", self.id));
        let target = match (
            self.target_kind.as_str(),
            self.conversation_id,
            self.comment_id,
        ) {
            ("conversation", Some(c), _) => AgentReplyTarget::Conversation {
                conversation: ConversationId::from_uuid(c),
            },
            ("public_comment", _, Some(c)) => AgentReplyTarget::PublicComment {
                comment: CommentId::from_uuid(c),
            },
            ("private_comment", _, Some(c)) => AgentReplyTarget::PrivateComment {
                comment: CommentId::from_uuid(c),
            },
            _ => return Err(bad("unknown target")),
        };
        let template: Option<AgentTemplate> = self
            .template
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| bad(&format!("template: {e}")))?;
        Ok(AgentReply {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            target,
            channel_id: self.channel_id.into(),
            agent_id: self.agent_id,
            text: self.text,
            template,
            idempotency_key: self.idempotency_key,
            state: AgentReplyState::parse(&self.state)?,
            message_id: self.message_id.map(Into::into),
            provider_id: self.provider_id,
            error: self.error,
            created_at: self.created_at,
            finished_at: self.finished_at,
        })
    }
}

/// An [`AgentReplyContext`] before its channel is read.
struct Partial {
    contact_id: Option<nexiom_core::ContactId>,
    recipient: Option<String>,
    last_inbound_at: Option<DateTime<Utc>>,
    last_inbound_provider_id: Option<String>,
    comment_platform_id: Option<String>,
    comment_parent_platform_id: Option<String>,
    comment_created_at: Option<DateTime<Utc>>,
    private_reply_claimed: bool,
}

impl Partial {
    fn with(self, channel: nexiom_core::Channel) -> AgentReplyContext {
        AgentReplyContext {
            channel,
            contact_id: self.contact_id,
            recipient: self.recipient,
            last_inbound_at: self.last_inbound_at,
            last_inbound_provider_id: self.last_inbound_provider_id,
            comment_platform_id: self.comment_platform_id,
            comment_parent_platform_id: self.comment_parent_platform_id,
            comment_created_at: self.comment_created_at,
            private_reply_claimed: self.private_reply_claimed,
        }
    }
}

/// The conversation and comment ids of a target, as columns.
fn target_columns(target: AgentReplyTarget) -> (Option<Uuid>, Option<Uuid>) {
    match target {
        AgentReplyTarget::Conversation { conversation } => (Some(conversation.as_uuid()), None),
        AgentReplyTarget::PublicComment { comment }
        | AgentReplyTarget::PrivateComment { comment } => (None, Some(comment.as_uuid())),
    }
}

#[async_trait]
impl AgentReplyStore for PgStore {
    async fn agent_reply_context(
        &self,
        tenant: TenantId,
        target: AgentReplyTarget,
    ) -> Result<AgentReplyContext> {
        let mut tx = self.scoped(tenant).await?;
        let context = match target {
            AgentReplyTarget::Conversation { conversation } => {
                type Row = (
                    Uuid,
                    Uuid,
                    Option<String>,
                    Option<DateTime<Utc>>,
                    Option<String>,
                );
                let row: Option<Row> = sqlx::query_as(
                    "SELECT c.channel_id, c.contact_id, \
                         (SELECT cc.external_handle FROM contact_channels cc \
                          JOIN channels ch ON ch.tenant_id = c.tenant_id AND ch.id = c.channel_id \
                          WHERE cc.tenant_id = c.tenant_id AND cc.contact_id = c.contact_id \
                              AND cc.platform = ch.platform \
                          ORDER BY cc.created_at, cc.id LIMIT 1), \
                         m.created_at, m.provider_message_id \
                     FROM conversations c \
                     LEFT JOIN LATERAL ( \
                         SELECT created_at, provider_message_id FROM messages \
                         WHERE conversation_id = c.id AND direction = 'inbound' \
                         ORDER BY created_at DESC, id DESC LIMIT 1) m ON true \
                     WHERE c.tenant_id = $1 AND c.id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(conversation.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let (channel, contact, recipient, last_at, last_id) =
                    row.ok_or_else(|| StorageError::not_found("conversation", conversation))?;
                (
                    ChannelId::from_uuid(channel),
                    Partial {
                        contact_id: Some(contact.into()),
                        recipient,
                        last_inbound_at: last_at,
                        last_inbound_provider_id: last_id,
                        comment_platform_id: None,
                        comment_parent_platform_id: None,
                        comment_created_at: None,
                        private_reply_claimed: false,
                    },
                )
            }
            AgentReplyTarget::PublicComment { comment }
            | AgentReplyTarget::PrivateComment { comment } => {
                type Row = (Uuid, String, Option<String>, DateTime<Utc>, bool);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT c.channel_id, c.platform_comment_id, c.parent_platform_comment_id, \
                         c.created_at, \
                         EXISTS (SELECT 1 FROM agent_replies a WHERE a.tenant_id = c.tenant_id \
                             AND a.comment_id = c.id AND a.target_kind = 'private_comment') \
                     FROM comments c WHERE c.tenant_id = $1 AND c.id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(comment.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let (channel, platform_id, parent_id, created_at, claimed) =
                    row.ok_or_else(|| StorageError::not_found("comment", comment))?;
                (
                    ChannelId::from_uuid(channel),
                    Partial {
                        contact_id: None,
                        recipient: None,
                        last_inbound_at: None,
                        last_inbound_provider_id: None,
                        comment_platform_id: Some(platform_id),
                        comment_parent_platform_id: parent_id,
                        comment_created_at: Some(created_at),
                        private_reply_claimed: claimed,
                    },
                )
            }
        };
        tx.commit().await.map_err(db)?;
        let (channel_id, partial) = context;
        let channel = self.get_channel(tenant, channel_id).await?;
        Ok(partial.with(channel))
    }

    async fn claim_agent_reply(&self, new: NewAgentReply) -> Result<AgentReplyClaim> {
        new.validate()?;
        let (conversation, comment) = target_columns(new.target);
        let template = new
            .template
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| StorageError::backend(format!("template: {e}")))?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let channel: Option<Uuid> = sqlx::query_scalar(
            "SELECT channel_id FROM conversations WHERE tenant_id = $1 AND id = $2 \
             UNION ALL \
             SELECT channel_id FROM comments WHERE tenant_id = $1 AND id = $3",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(conversation)
        .bind(comment)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(channel) = channel else {
            return Err(match new.target {
                AgentReplyTarget::Conversation { conversation } => {
                    StorageError::not_found("conversation", conversation)
                }
                AgentReplyTarget::PublicComment { comment }
                | AgentReplyTarget::PrivateComment { comment } => {
                    StorageError::not_found("comment", comment)
                }
            });
        };
        // A conflict whose row is gone when read was a claim withdrawn
        // meanwhile (`withdraw_agent_reply`): the insert is tried again.
        let mut attempts = 0;
        let claim = loop {
            attempts += 1;
            let inserted: std::result::Result<Option<AgentReplyRow>, _> = sqlx::query_as(
                "INSERT INTO agent_replies (id, tenant_id, target_kind, conversation_id, comment_id, \
                     channel_id, agent_id, text, template, idempotency_key, state, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'sending', $11) \
                 ON CONFLICT DO NOTHING RETURNING *",
            )
            .bind(AgentReplyId::generate().as_uuid())
            .bind(new.tenant_id.as_uuid())
            .bind(new.target.kind())
            .bind(conversation)
            .bind(comment)
            .bind(channel)
            .bind(&new.agent_id)
            .bind(&new.text)
            .bind(template.clone())
            .bind(&new.idempotency_key)
            .bind(new.created_at)
            .fetch_optional(&mut *tx)
            .await;
            let inserted = match inserted {
                Ok(row) => row,
                Err(err) => {
                    drop(tx);
                    return Err(write_error(
                        self,
                        err,
                        WriteFailure {
                            tenant: Some(new.tenant_id),
                            refs: &[],
                            conflict: None,
                        },
                    )
                    .await);
                }
            };
            break match inserted {
                Some(row) => AgentReplyClaim::Claimed(row.into_entity()?),
                None => {
                    let existing: Option<AgentReplyRow> = sqlx::query_as(
                        "SELECT * FROM agent_replies WHERE tenant_id = $1 AND idempotency_key = $2",
                    )
                    .bind(new.tenant_id.as_uuid())
                    .bind(&new.idempotency_key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                    match existing {
                        Some(row) => AgentReplyClaim::Existing(row.into_entity()?),
                        None if private_taken(&mut tx, &new).await? => {
                            AgentReplyClaim::PrivateReplyTaken
                        }
                        None if attempts < 3 => continue,
                        None => {
                            return Err(StorageError::backend(
                                "agent reply: the key's claim kept changing; try again",
                            ));
                        }
                    }
                }
            };
        };
        tx.commit().await.map_err(db)?;
        Ok(claim)
    }

    async fn settle_abandoned_agent_replies(
        &self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AgentReply>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant scan; a reply finished meanwhile (its sender's
        // answer recorded) is locked or no longer `sending`, and stays. The
        // pick is materialized once: a `LIMIT … FOR UPDATE` subquery under
        // `IN` may be run again per row and take more than the limit.
        let rows: Vec<AgentReplyRow> = sqlx::query_as(
            "WITH picked AS MATERIALIZED ( \
                 SELECT id FROM agent_replies \
                 WHERE state = 'sending' AND created_at < $1 \
                 ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE agent_replies a SET state = 'failed', error = $3, finished_at = $2 \
             FROM picked WHERE a.id = picked.id AND a.state = 'sending' \
             RETURNING a.*",
        )
        .bind(super::bound(before))
        .bind(at)
        .bind(crate::ABANDONED_AGENT_REPLY_ERROR)
        .bind(i64::from(limit))
        .fetch_all(&self.scan_pool)
        .await
        .map_err(db)?;
        let mut settled = rows
            .into_iter()
            .map(AgentReplyRow::into_entity)
            .collect::<Result<Vec<_>>>()?;
        settled.sort_by_key(|r| (r.created_at, r.id));
        Ok(settled)
    }

    async fn finish_agent_reply(
        &self,
        tenant: TenantId,
        id: AgentReplyId,
        outcome: AgentReplyOutcome,
        at: DateTime<Utc>,
    ) -> Result<AgentReply> {
        let (state, provider_id, error) = match &outcome {
            AgentReplyOutcome::Sent { provider_id } => {
                validate::opt_key("provider_id", provider_id.as_deref())?;
                (AgentReplyState::Sent, provider_id.as_deref(), None)
            }
            AgentReplyOutcome::Failed { error } => {
                validate::text("error", error)?;
                (AgentReplyState::Failed, None, Some(error.as_str()))
            }
        };
        // READ COMMITTED whatever the server's default: the provider id is
        // checked after its lock is taken (below), as `insert_message` does.
        let mut tx = self
            .scoped_with(tenant, "ISOLATION LEVEL READ COMMITTED")
            .await?;
        let updated: Option<AgentReplyRow> = sqlx::query_as(
            "UPDATE agent_replies SET state = $3, provider_id = $4, error = $5, finished_at = $6 \
             WHERE tenant_id = $1 AND id = $2 AND state = 'sending' RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(state.as_str())
        .bind(provider_id)
        .bind(error)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = updated else {
            let stored: Option<AgentReplyRow> =
                sqlx::query_as("SELECT * FROM agent_replies WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return stored
                .ok_or_else(|| StorageError::not_found("agent reply", id))?
                .into_entity();
        };
        let row = match (state, row.conversation_id) {
            (AgentReplyState::Sent, Some(conversation)) => {
                // The outbound message (or the one already holding its
                // provider id, looked up under the key's transaction lock,
                // as `insert_message` does), the conversation moved forward,
                // the link.
                let keys: Vec<String> = provider_id
                    .iter()
                    .map(|p| message_key_lock(tenant.as_uuid(), p))
                    .collect();
                lock_keys(&mut tx, &keys).await.map_err(db)?;
                let message: Uuid = sqlx::query_scalar(
                    "WITH ins AS ( \
                         INSERT INTO messages (id, tenant_id, conversation_id, channel_id, \
                             direction, text, has_media, provider_message_id, in_reply_to, \
                             triage, confidence, ai_decision_id, delivery_status, created_at, \
                             stored_at) \
                         SELECT $1, $2, $3, $4, 'outbound', $5, false, $6, NULL, NULL, NULL, \
                             NULL, 'sent', $7, $7 \
                         WHERE NOT EXISTS (SELECT 1 FROM messages m \
                             WHERE m.channel_id = $4 AND m.provider_message_id = $6) \
                         ON CONFLICT DO NOTHING RETURNING id, created_at \
                     ), bump AS ( \
                         UPDATE conversations c \
                         SET last_message_at = GREATEST(c.last_message_at, ins.created_at) \
                         FROM ins WHERE c.tenant_id = $2 AND c.id = $3 \
                     ) \
                     SELECT id FROM ins \
                     UNION ALL \
                     SELECT id FROM messages WHERE channel_id = $4 AND provider_message_id = $6 \
                     LIMIT 1",
                )
                .bind(nexiom_core::MessageId::generate().as_uuid())
                .bind(tenant.as_uuid())
                .bind(conversation)
                .bind(row.channel_id)
                .bind(&row.text)
                .bind(provider_id)
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query_as(
                    "UPDATE agent_replies SET message_id = $3 \
                     WHERE tenant_id = $1 AND id = $2 RETURNING *",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(message)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
            }
            _ => row,
        };
        if state == AgentReplyState::Sent {
            let claimed_at = row.created_at;
            supersede_automatic(
                &mut tx,
                tenant,
                row.conversation_id,
                row.comment_id,
                claimed_at,
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }

    async fn withdraw_agent_reply(&self, tenant: TenantId, id: AgentReplyId) -> Result<bool> {
        let mut tx = self.scoped(tenant).await?;
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM agent_replies WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let withdrawn = match state.as_deref() {
            None => return Err(StorageError::not_found("agent reply", id)),
            Some("sending") => {
                sqlx::query("DELETE FROM agent_replies WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                true
            }
            Some(_) => false,
        };
        tx.commit().await.map_err(db)?;
        Ok(withdrawn)
    }

    async fn find_agent_reply(
        &self,
        tenant: TenantId,
        idempotency_key: &str,
    ) -> Result<Option<AgentReply>> {
        validate::key("idempotency_key", idempotency_key)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<AgentReplyRow> = sqlx::query_as(
            "SELECT * FROM agent_replies WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(tenant.as_uuid())
        .bind(idempotency_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(AgentReplyRow::into_entity).transpose()
    }
}

/// Whether `new` is a private reply to a comment that has one claimed
/// already (the platforms allow one per comment).
async fn private_taken(conn: &mut sqlx::PgConnection, new: &NewAgentReply) -> Result<bool> {
    let AgentReplyTarget::PrivateComment { comment } = new.target else {
        return Ok(false);
    };
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agent_replies \
         WHERE tenant_id = $1 AND comment_id = $2 AND target_kind = $3)",
    )
    .bind(new.tenant_id.as_uuid())
    .bind(comment.as_uuid())
    .bind(new.target.kind())
    .fetch_one(conn)
    .await
    .map_err(db)
}

/// A person answered: the items of the conversation (its inbound messages
/// stored by `claimed_at`, when the person's reply was claimed: the ones
/// the person could see, by the store's own clock, so a new message the
/// platform dates a moment earlier is not taken for answered) or the
/// comment that still wait for an automatic
/// reply, or for the triage that could queue one, become `superseded`, so
/// that nothing automatic follows. An automatic reply already in flight
/// (`sending`) is left to finish.
async fn supersede_automatic(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    conversation: Option<Uuid>,
    comment: Option<Uuid>,
    claimed_at: DateTime<Utc>,
) -> Result<()> {
    const WAITING: &str = "(reply_state = 'pending' OR (reply_state IS NULL AND triage IS NULL))";
    const CLEARED: &str =
        "reply_state = 'superseded', reply_next_at = NULL, reply_lease_until = NULL";
    if let Some(conversation) = conversation {
        sqlx::query(&format!(
            "UPDATE messages SET {CLEARED} \
             WHERE conversation_id = $2 AND tenant_id = $1 AND direction = 'inbound' \
                 AND stored_at <= $3 AND {WAITING}"
        ))
        .bind(tenant.as_uuid())
        .bind(conversation)
        .bind(claimed_at)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    if let Some(comment) = comment {
        sqlx::query(&format!(
            "UPDATE comments SET {CLEARED} WHERE id = $2 AND tenant_id = $1 AND {WAITING}"
        ))
        .bind(tenant.as_uuid())
        .bind(comment)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}
