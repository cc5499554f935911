//! The reply queue on Postgres: outcomes, withdrawals and lease renewals
//! (the claim is in `reply_claim`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedReply, CoreError, DecisionSubject, ReplyOutcome, ReplyStatus, TenantId, Triage,
};
use uuid::Uuid;

use super::error::db;
use super::rows::{CommentRow, MessageRow};
use super::{PgStore, bound};
use crate::error::{Result, StorageError};
use crate::reply_queue::{ReplyQueueStore, apply};

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
        self.claim_replies_fairly(now, since, max, until).await
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

    async fn expire_pending_replies(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<DecisionSubject>> {
        self.expire_replies(now, before, max).await
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
