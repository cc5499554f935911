//! [`ConversationStore`] on Postgres: `conversations` and `messages`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ChannelId, ContactId, Conversation, ConversationId, ConversationStatus, DecisionId,
    DeliveryStatus, Inserted, Message, MessageDirection, MessageId, NewMessage, TenantId, Triage,
    validate,
};

use super::error::{Ref, WriteFailure, db, require_refs, write_error};
use super::message_keys::{lock_keys, message_key_lock, reply_lock};
use super::rows::{ConversationRow, MessageRow, all};
use super::{INSERT_ATTEMPTS, PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::traits::ConversationStore;

/// The SQL rank of a stored delivery status (NULL counts as `pending`), the same
/// order as [`DeliveryStatus::rank`].
pub(super) const DELIVERY_RANK: &str = "(CASE COALESCE(delivery_status, 'pending') \
     WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 \
     WHEN 'read' THEN 3 ELSE 4 END)";

#[async_trait]
impl ConversationStore for PgStore {
    async fn insert_open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        at: DateTime<Utc>,
    ) -> Result<Inserted<Conversation>> {
        let refs = [Ref::Contact(contact), Ref::Channel(channel)];
        // One transaction for every attempt: each statement still sees what
        // was committed before it started.
        let mut tx = self.scoped(tenant).await?;
        for _ in 0..INSERT_ATTEMPTS {
            let inserted: std::result::Result<Option<ConversationRow>, _> = sqlx::query_as(
                "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, \
                     last_message_at, created_at) \
                 VALUES ($1, $2, $3, $4, 'open', NULL, $5) \
                 ON CONFLICT (contact_id, channel_id) WHERE status = 'open' DO NOTHING \
                 RETURNING *",
            )
            .bind(ConversationId::generate().as_uuid())
            .bind(tenant.as_uuid())
            .bind(contact.as_uuid())
            .bind(channel.as_uuid())
            .bind(at)
            .fetch_optional(&mut *tx)
            .await;
            match inserted {
                Ok(Some(row)) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(Inserted::created(row.into_entity()?));
                }
                Ok(None) => {}
                Err(err) => {
                    drop(tx);
                    return Err(write_error(
                        self,
                        err,
                        WriteFailure {
                            tenant: Some(tenant),
                            refs: &refs,
                            conflict: None,
                        },
                    )
                    .await);
                }
            }
            require_refs(&mut *tx, tenant, &refs).await?;
            let existing: Option<ConversationRow> = sqlx::query_as(
                "SELECT * FROM conversations \
                 WHERE tenant_id = $1 AND contact_id = $2 AND channel_id = $3 \
                     AND status = 'open'",
            )
            .bind(tenant.as_uuid())
            .bind(contact.as_uuid())
            .bind(channel.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(row) = existing {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::existing(row.into_entity()?));
            }
            // The open conversation was closed in between: open a new one.
        }
        Err(StorageError::backend(
            "postgres: the open conversation kept changing; try again",
        ))
    }

    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> Result<Conversation> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ConversationRow> =
            sqlx::query_as("SELECT * FROM conversations WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("conversation", id))?
            .into_entity()
    }

    async fn list_conversations(
        &self,
        tenant: TenantId,
        status: Option<ConversationStatus>,
        max: u32,
    ) -> Result<Vec<Conversation>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<ConversationRow> = sqlx::query_as(
            "SELECT * FROM conversations \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) \
             ORDER BY last_message_at DESC NULLS LAST, id \
             LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(status.map(ConversationStatus::as_str))
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, ConversationRow::into_entity)
    }

    async fn close_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ConversationRow> = sqlx::query_as(
            "UPDATE conversations SET status = 'closed' \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("conversation", id))?
            .into_entity()
    }

    async fn insert_message(&self, new: NewMessage) -> Result<Inserted<Message>> {
        new.validate()?;
        let mut refs = vec![Ref::Conversation(new.conversation_id)];
        refs.extend(new.in_reply_to.map(Ref::Message));
        // READ COMMITTED whatever the server's default: the key is checked
        // after its lock is taken, and must be read as the writer before
        // this one left it.
        let mut tx = self
            .scoped_with(new.tenant_id, "ISOLATION LEVEL READ COMMITTED")
            .await?;
        // Messages are partitioned by month and their unique keys hold the
        // month: writers of one key at two times would not collide. So the
        // keys are locked first (provider id, then the message answered; a
        // transaction lock, released at commit), and the insert, a later
        // statement with a later snapshot, sees what a writer before it
        // committed.
        let keys: Vec<String> = new
            .provider_message_id
            .iter()
            .map(|p| message_key_lock(new.tenant_id.as_uuid(), p))
            .chain(
                new.in_reply_to
                    .filter(|_| new.direction == MessageDirection::Outbound)
                    .map(|m| reply_lock(m.as_uuid())),
            )
            .collect();
        lock_keys(&mut tx, &keys).await.map_err(db)?;
        // One statement: the conversation (the tenant's) gives the channel, the
        // message is inserted unless its key is held already (the provider id
        // on the channel, or for an outbound reply the message it answers;
        // checked here: messages are partitioned by month, and a unique key
        // holds the month), and only a new message moves the conversation's
        // `last_message_at` (to the later of the two; GREATEST ignores NULL).
        // The message answered must be the tenant's (no foreign key points
        // into a partitioned table).
        let inserted: std::result::Result<Option<MessageRow>, _> = sqlx::query_as(
            "WITH conv AS ( \
                 SELECT id, channel_id FROM conversations WHERE tenant_id = $2 AND id = $3 \
             ), ins AS ( \
                 INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, \
                     text, has_media, provider_message_id, in_reply_to, triage, confidence, \
                     ai_decision_id, delivery_status, created_at, stored_at) \
                 SELECT $1, $2, conv.id, conv.channel_id, $4, $5, $6, $7, $8, NULL, NULL, NULL, \
                     $9, $10, $11 \
                 FROM conv \
                 WHERE NOT EXISTS (SELECT 1 FROM messages m \
                         WHERE m.channel_id = conv.channel_id AND m.provider_message_id = $7) \
                     AND ($8::uuid IS NULL OR EXISTS (SELECT 1 FROM messages p \
                         WHERE p.tenant_id = $2 AND p.id = $8)) \
                     AND ($8::uuid IS NULL OR $4 <> 'outbound' OR NOT EXISTS ( \
                         SELECT 1 FROM messages r \
                         WHERE r.in_reply_to = $8 AND r.direction = 'outbound')) \
                 ON CONFLICT DO NOTHING \
                 RETURNING * \
             ), bump AS ( \
                 UPDATE conversations c \
                 SET last_message_at = GREATEST(c.last_message_at, ins.created_at) \
                 FROM ins WHERE c.id = ins.conversation_id \
             ) \
             SELECT * FROM ins",
        )
        .bind(MessageId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.conversation_id.as_uuid())
        .bind(new.direction.as_str())
        .bind(&new.text)
        .bind(new.has_media)
        .bind(new.provider_message_id.as_deref())
        .bind(new.in_reply_to.map(|m| m.as_uuid()))
        .bind(new.delivery_status.map(DeliveryStatus::as_str))
        .bind(new.created_at)
        .bind(new.stored_at)
        .fetch_optional(&mut *tx)
        .await;
        match inserted {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::created(row.into_entity()?));
            }
            Ok(None) => {}
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        }
        // Nothing inserted: an unknown reference, or a key already held (by the
        // provider id first, then, for an outbound reply, by the message it
        // answers).
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        // Only an outbound reply is keyed by the message it answers.
        let reply_key = match new.direction {
            MessageDirection::Outbound => new.in_reply_to,
            MessageDirection::Inbound => None,
        };
        let existing: Option<MessageRow> = sqlx::query_as(
            "SELECT m.* FROM messages m \
             WHERE m.tenant_id = $1 AND ( \
                 (m.provider_message_id = $3 AND m.channel_id = \
                     (SELECT channel_id FROM conversations WHERE tenant_id = $1 AND id = $2)) \
                 OR (m.direction = 'outbound' AND m.in_reply_to = $4)) \
             ORDER BY (m.provider_message_id IS NOT DISTINCT FROM $3) DESC \
             LIMIT 1",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.conversation_id.as_uuid())
        .bind(new.provider_message_id.as_deref())
        .bind(reply_key.map(|m| m.as_uuid()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(
                "postgres: the message conflicted with a stored one that cannot be read",
            )),
        }
    }

    async fn get_message(&self, tenant: TenantId, id: MessageId) -> Result<Message> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<MessageRow> =
            sqlx::query_as("SELECT * FROM messages WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("message", id))?
            .into_entity()
    }

    async fn find_message_by_provider_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Option<Message>> {
        validate::key("provider_message_id", provider_message_id)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<MessageRow> = sqlx::query_as(
            "SELECT * FROM messages \
             WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(provider_message_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(MessageRow::into_entity).transpose()
    }

    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        max: u32,
    ) -> Result<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT * FROM messages \
             WHERE tenant_id = $1 AND conversation_id = $2 \
             ORDER BY created_at, id \
             LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(conversation.as_uuid())
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, MessageRow::into_entity)
    }

    async fn list_messages_since(
        &self,
        tenant: TenantId,
        direction: MessageDirection,
        since: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // The direction is part of the text: outbound rows are read through
        // their partial index (ix_messages_outbound), inbound ones through
        // ix_messages_tenant_created.
        let sql = format!(
            "SELECT * FROM messages \
             WHERE tenant_id = $1 AND direction = '{}' AND created_at >= $2 \
             ORDER BY created_at, id \
             LIMIT $3",
            direction.as_str()
        );
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(bound(since))
            .bind(limit(max))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, MessageRow::into_entity)
    }

    async fn update_delivery_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
        status: DeliveryStatus,
    ) -> Result<Option<Message>> {
        validate::key("provider_message_id", provider_message_id)?;
        // Forward only, nothing after `failed` (rank 4 is the maximum, so
        // `rank < new rank` already excludes it).
        let sql = format!(
            "UPDATE messages SET delivery_status = $4 \
             WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3 \
                 AND direction = 'outbound' AND {DELIVERY_RANK} < $5 \
             RETURNING *"
        );
        let mut tx = self.scoped(tenant).await?;
        let updated: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(channel.as_uuid())
            .bind(provider_message_id)
            .bind(status.as_str())
            .bind(i32::from(status.rank()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let row = match updated {
            Some(row) => Some(row),
            None => sqlx::query_as(
                "SELECT * FROM messages \
                 WHERE tenant_id = $1 AND channel_id = $2 AND provider_message_id = $3 \
                     AND direction = 'outbound'",
            )
            .bind(tenant.as_uuid())
            .bind(channel.as_uuid())
            .bind(provider_message_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?,
        };
        tx.commit().await.map_err(db)?;
        row.map(MessageRow::into_entity).transpose()
    }

    async fn list_untriaged_messages(&self, tenant: TenantId, max: u32) -> Result<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT * FROM messages \
             WHERE tenant_id = $1 AND triage IS NULL AND direction = 'inbound' \
             ORDER BY created_at, id \
             LIMIT $2",
        )
        .bind(tenant.as_uuid())
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, MessageRow::into_entity)
    }

    async fn list_messages_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<Message>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT * FROM messages \
             WHERE tenant_id = $1 AND triage = $2 AND direction = 'inbound' \
                 AND created_at >= $3 \
             ORDER BY created_at, id \
             LIMIT $4",
        )
        .bind(tenant.as_uuid())
        .bind(triage.as_str())
        .bind(bound(since))
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, MessageRow::into_entity)
    }

    async fn record_message_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        provider_message_id: Option<&str>,
        status: DeliveryStatus,
    ) -> Result<Message> {
        validate::opt_key("provider_message_id", provider_message_id)?;
        // A provider id is set only where no other message of the channel
        // holds it. The unique key holds the month (messages are
        // partitioned), so it would let one id onto two messages of
        // different instants: the key is locked, as `insert_message` locks
        // it, and checked here.
        let sql = format!(
            "UPDATE messages SET \
                 provider_message_id = COALESCE(provider_message_id, $3), \
                 delivery_status = CASE WHEN delivery_status IS NULL OR {DELIVERY_RANK} < $5 \
                     THEN $4 ELSE delivery_status END \
             WHERE tenant_id = $1 AND id = $2 \
                 AND ($3::text IS NULL OR provider_message_id IS NOT NULL OR NOT EXISTS ( \
                     SELECT 1 FROM messages o \
                     WHERE o.channel_id = messages.channel_id \
                         AND o.provider_message_id = $3 AND o.id <> messages.id)) \
             RETURNING *"
        );
        // READ COMMITTED whatever the server's default, as `insert_message`.
        let mut tx = self
            .scoped_with(tenant, "ISOLATION LEVEL READ COMMITTED")
            .await?;
        let keys: Vec<String> = provider_message_id
            .iter()
            .map(|p| message_key_lock(tenant.as_uuid(), p))
            .collect();
        lock_keys(&mut tx, &keys).await.map_err(db)?;
        let updated: std::result::Result<Option<MessageRow>, _> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(provider_message_id)
            .bind(status.as_str())
            .bind(i32::from(status.rank()))
            .fetch_optional(&mut *tx)
            .await;
        match updated {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Ok(None) => {
                // Not the tenant's message, or the id is another's.
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE tenant_id = $1 AND id = $2)",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                if !exists {
                    return Err(StorageError::not_found("message", id));
                }
                Err(StorageError::conflict(
                    "message",
                    format!(
                        "provider message id {:?} is another message's on this channel",
                        provider_message_id.unwrap_or_default()
                    ),
                ))
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &[],
                        conflict: Some((
                            "message",
                            format!("provider message id {provider_message_id:?}"),
                        )),
                    },
                )
                .await)
            }
        }
    }

    async fn set_message_triage(
        &self,
        tenant: TenantId,
        id: MessageId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Message> {
        validate::unit_interval("confidence", confidence)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<MessageRow> = sqlx::query_as(
            "UPDATE messages SET triage = $3, confidence = $4, ai_decision_id = $5, \
                 reply_state = CASE WHEN $3 = 'auto_reply' AND direction = 'inbound' AND reply_state IS NULL \
                     THEN 'pending' ELSE reply_state END \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(triage.as_str())
        .bind(confidence)
        .bind(decision.map(|d| d.as_uuid()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("message", id))?
            .into_entity()
    }
}
