//! The reply queue on Postgres: claims with `FOR UPDATE SKIP LOCKED` over the
//! partial indexes of the `pending` / `sending` items.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedReply, CoreError, DecisionSubject, ReplyOutcome, ReplyStatus, TenantId, Triage,
};
use uuid::Uuid;

use super::error::db;
use super::rows::{CommentRow, MessageRow};
use super::{PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::reply_queue::{ReplyQueueStore, apply};

/// The claimable items of `table` (`messages` or `comments`), oldest first,
/// locked; `$1` now, `$2` since (or NULL), `$3` the limit. Items of a tenant
/// whose AI control is off, of a paused channel, or of a channel whose
/// auto-replies the tenant switched off are left where they are (not
/// claimed and handed back, which would keep the oldest of them at the head
/// of the queue, run after run). A message behind an older one of its
/// conversation that waits (its retry not due yet, or its reply in flight
/// with another worker) waits too, so that a conversation's replies go out
/// in order (the older ones' probe reads the conversation index from
/// `since`, the window the queue answers in).
fn due_sql(table: &str) -> String {
    let inbound = if table == "messages" {
        "AND t.direction = 'inbound' \
         AND NOT EXISTS (SELECT 1 FROM messages o \
             WHERE o.conversation_id = t.conversation_id \
                 AND ($2::timestamptz IS NULL OR o.created_at >= $2) \
                 AND (o.created_at, o.id) < (t.created_at, t.id) \
                 AND o.direction = 'inbound' \
                 AND ((o.reply_state = 'pending' AND o.reply_next_at > $1) \
                      OR (o.reply_state = 'sending' AND o.reply_lease_until > $1))) "
    } else {
        ""
    };
    format!(
        "SELECT t.* FROM {table} t \
         WHERE t.reply_state IN ('pending', 'sending') {inbound}\
             AND ((t.reply_state = 'pending' \
                     AND (t.reply_next_at IS NULL OR t.reply_next_at <= $1)) \
                  OR (t.reply_state = 'sending' \
                     AND (t.reply_lease_until IS NULL OR t.reply_lease_until <= $1))) \
             AND ($2::timestamptz IS NULL OR t.created_at >= $2) \
             AND EXISTS (SELECT 1 FROM ai_controls a \
                         WHERE a.tenant_id = t.tenant_id AND a.enabled) \
             AND t.channel_id NOT IN (SELECT id FROM channels WHERE status <> 'active') \
             AND NOT EXISTS (SELECT 1 FROM tenant_settings s \
                         WHERE s.tenant_id = t.tenant_id \
                             AND s.settings -> 'auto_reply_off_channels' ? t.channel_id::text) \
         ORDER BY t.created_at, t.id \
         LIMIT $3 \
         FOR UPDATE OF t SKIP LOCKED"
    )
}

/// Marks `ids` of `table` claimed until `$2`.
fn claim_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET reply_state = 'sending', reply_lease_until = $2 \
         WHERE id = ANY($1) RETURNING *"
    )
}

#[async_trait]
impl ReplyQueueStore for PgStore {
    async fn claim_pending_replies(
        &self,
        now: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        max: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedReply>> {
        let until = now.checked_add_signed(lease).ok_or_else(|| {
            CoreError::invalid("lease", "ends beyond the representable time range")
        })?;
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant scan.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        // Up to `max` of each kind, locked; the oldest `max` of both together
        // are claimed, the others are unlocked untouched at commit.
        let messages: Vec<MessageRow> = sqlx::query_as(&due_sql("messages"))
            .bind(bound(now))
            .bind(since.map(bound))
            .bind(limit(max))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let comments: Vec<CommentRow> = sqlx::query_as(&due_sql("comments"))
            .bind(bound(now))
            .bind(since.map(bound))
            .bind(limit(max))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut candidates: Vec<(DateTime<Utc>, Uuid, bool)> = Vec::new();
        for row in messages {
            let m = row.into_entity()?;
            candidates.push((m.created_at, m.id.as_uuid(), true));
        }
        for row in comments {
            let c = row.into_entity()?;
            candidates.push((c.created_at, c.id.as_uuid(), false));
        }
        candidates.sort();
        candidates.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        let (message_ids, comment_ids): (Vec<_>, Vec<_>) = candidates
            .iter()
            .partition(|(_, _, is_message)| *is_message);
        let message_ids: Vec<Uuid> = message_ids.into_iter().map(|(_, id, _)| id).collect();
        let comment_ids: Vec<Uuid> = comment_ids.into_iter().map(|(_, id, _)| id).collect();
        let mut claimed = Vec::with_capacity(candidates.len());
        if !message_ids.is_empty() {
            let rows: Vec<MessageRow> = sqlx::query_as(&claim_sql("messages"))
                .bind(&message_ids)
                .bind(bound(until))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for row in rows {
                claimed.push(ClaimedReply::Message(row.into_entity()?));
            }
        }
        if !comment_ids.is_empty() {
            let rows: Vec<CommentRow> = sqlx::query_as(&claim_sql("comments"))
                .bind(&comment_ids)
                .bind(bound(until))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for row in rows {
                claimed.push(ClaimedReply::Comment(row.into_entity()?));
            }
        }
        tx.commit().await.map_err(db)?;
        claimed.sort_by_key(|c| {
            let id = match c.subject() {
                DecisionSubject::Message(id) => id.as_uuid(),
                DecisionSubject::Comment(id) => id.as_uuid(),
            };
            (c.created_at(), id)
        });
        Ok(claimed)
    }

    async fn finish_reply(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
        outcome: ReplyOutcome,
    ) -> Result<ReplyStatus> {
        let (table, id) = match subject {
            DecisionSubject::Message(id) => ("messages", id.as_uuid()),
            DecisionSubject::Comment(id) => ("comments", id.as_uuid()),
        };
        let mut tx = self.scoped(tenant).await?;
        let current = match subject {
            DecisionSubject::Message(_) => {
                let row: Option<MessageRow> = sqlx::query_as(
                    "SELECT * FROM messages WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                )
                .bind(tenant.as_uuid())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                row.map(|r| r.into_entity().map(|m| m.reply)).transpose()?
            }
            DecisionSubject::Comment(_) => {
                let row: Option<CommentRow> = sqlx::query_as(
                    "SELECT * FROM comments WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                )
                .bind(tenant.as_uuid())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                row.map(|r| r.into_entity().map(|c| c.reply)).transpose()?
            }
        };
        let Some(current) = current else {
            return Err(StorageError::not_found(subject.kind(), id));
        };
        let Some(mut reply) = current else {
            return Err(StorageError::precondition(
                subject.kind(),
                id,
                "not in the reply queue (never triaged auto_reply)",
            ));
        };
        let before = reply.clone();
        let escalate = apply(&mut reply, outcome);
        if reply != before {
            let sql = format!(
                "UPDATE {table} SET reply_state = $3, reply_attempts = $4, reply_error = $5, \
                     reply_next_at = $6, reply_lease_until = $7, \
                     triage = CASE WHEN $8 THEN $9 ELSE triage END \
                 WHERE tenant_id = $1 AND id = $2"
            );
            sqlx::query(&sql)
                .bind(tenant.as_uuid())
                .bind(id)
                .bind(reply.state.as_str())
                .bind(i64::from(reply.attempts))
                .bind(reply.error.as_deref())
                .bind(reply.next_at.map(bound))
                .bind(reply.lease_until.map(bound))
                .bind(escalate)
                .bind(Triage::Escalate.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(reply)
    }

    async fn withdraw_reply_claim(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<bool> {
        // The claim's insert refreshed the inbox item (answered, no longer
        // waiting); no trigger follows a delete, so the item is refreshed
        // here, in the same transaction: waiting again, as before the claim.
        let (delete, refresh, id) = match subject {
            DecisionSubject::Message(id) => (
                "DELETE FROM messages WHERE tenant_id = $1 AND in_reply_to = $2 \
                   AND direction = 'outbound' AND delivery_status = 'pending' \
                   AND provider_message_id IS NULL \
                 RETURNING conversation_id",
                "SELECT nexiom_inbox_refresh_conversations($1)",
                id.as_uuid(),
            ),
            DecisionSubject::Comment(id) => (
                "DELETE FROM comment_replies WHERE tenant_id = $1 AND comment_id = $2 \
                   AND status = 'pending' \
                 RETURNING comment_id",
                "SELECT nexiom_inbox_refresh_comments($1)",
                id.as_uuid(),
            ),
        };
        let mut tx = self.scoped(tenant).await?;
        let gone: Vec<Uuid> = sqlx::query_scalar(delete)
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if !gone.is_empty() {
            sqlx::query(refresh)
                .bind(&gone)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(!gone.is_empty())
    }

    async fn renew_reply_leases(
        &self,
        subjects: &[DecisionSubject],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        let (mut messages, mut comments) = (Vec::new(), Vec::new());
        for subject in subjects {
            match subject {
                DecisionSubject::Message(id) => messages.push(id.as_uuid()),
                DecisionSubject::Comment(id) => comments.push(id.as_uuid()),
            }
        }
        if messages.is_empty() && comments.is_empty() {
            return Ok(0);
        }
        // A cross-tenant heartbeat, keyed by ids. Both tables in one statement;
        // `reply_lease_until = $3` keeps the claims another worker took over
        // (they carry another lease) apart.
        let renewed: i64 = sqlx::query_scalar(
            "WITH m AS (UPDATE messages SET reply_lease_until = $4 \
                        WHERE id = ANY($1) AND reply_state = 'sending' \
                          AND reply_lease_until = $3 RETURNING 1), \
                  c AS (UPDATE comments SET reply_lease_until = $4 \
                        WHERE id = ANY($2) AND reply_state = 'sending' \
                          AND reply_lease_until = $3 RETURNING 1) \
             SELECT (SELECT count(*) FROM m) + (SELECT count(*) FROM c)",
        )
        .bind(&messages)
        .bind(&comments)
        .bind(bound(held_until))
        .bind(bound(expires_at))
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(renewed).unwrap_or(0))
    }
}
