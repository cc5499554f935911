//! [`RetentionStore`] on Postgres: each batch is one short `DELETE` of at
//! most `batch` rows, on the scan pool; webhook events drop their whole
//! months' partitions first.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::error::db;
use super::{PgStore, bound, limit};
use crate::error::Result;
use crate::retention::{Retained, RetentionStore};

/// The topic memberships of messages created before `$1` (a membership
/// carries its message's time) and the message vectors last computed before
/// `$1` (computed after their message was created, so of a message older
/// than `$1`), at most `$2` of each, through the partial time indexes of
/// migration 0044; the number removed.
const PURGE_MESSAGE_TOPIC_ROWS: &str = "\
WITH members AS (
    DELETE FROM topic_members WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM topic_members
        WHERE subject_kind = 'message' AND created_at < $1 LIMIT $2))
    RETURNING 1
), vectors AS (
    DELETE FROM item_embeddings WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM item_embeddings
        WHERE subject_kind = 'message' AND computed_at < $1 LIMIT $2))
    RETURNING 1
)
SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM vectors)";
#[async_trait]
impl RetentionStore for PgStore {
    async fn purge_before(&self, kind: Retained, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        // Webhook events and messages are partitioned by month: the whole
        // months before the cutoff go with their partition first (a
        // partition still holding an unrouted event stays), then the rest in
        // batches.
        let mut dropped = 0;
        let partitioned = match kind {
            Retained::WebhookEvents => Some("webhook_events"),
            Retained::Messages => Some("messages"),
            _ => None,
        };
        if let Some(table) = partitioned {
            let (_, rows): (i32, i64) = sqlx::query_as(
                "SELECT dropped, rows_dropped FROM nexiom_drop_months_before($1, $2)",
            )
            .bind(table)
            .bind(bound(cutoff))
            .fetch_one(&self.scan_pool)
            .await
            .map_err(db)?;
            dropped = u64::try_from(rows).unwrap_or(0);
        }
        let sql = match kind {
            Retained::WebhookEvents => {
                "DELETE FROM webhook_events WHERE (id, occurred_at) IN ( \
                     SELECT id, occurred_at FROM webhook_events \
                     WHERE routed_at IS NOT NULL AND occurred_at < $1 LIMIT $2)"
            }
            Retained::Messages => {
                "DELETE FROM messages WHERE (id, created_at) IN ( \
                     SELECT id, created_at FROM messages WHERE created_at < $1 LIMIT $2)"
            }
            Retained::PostRuns => {
                "DELETE FROM post_runs WHERE id IN ( \
                     SELECT id FROM post_runs \
                     WHERE status <> 'running' AND started_at < $1 LIMIT $2)"
            }
            Retained::DeadLetters => {
                "DELETE FROM dead_letters WHERE id IN ( \
                     SELECT id FROM dead_letters WHERE received_at < $1 LIMIT $2)"
            }
            // The notifications are locked first: a delivery being added
            // to one (its foreign key takes a share lock) makes it skipped.
            Retained::Notifications => {
                "WITH old AS ( \
                     SELECT n.tenant_id, n.id FROM notifications n \
                     WHERE n.occurred_at < $1 AND NOT EXISTS ( \
                         SELECT 1 FROM notification_deliveries d \
                         WHERE d.tenant_id = n.tenant_id AND d.notification_id = n.id \
                             AND d.state = 'pending') \
                     LIMIT $2 \
                     FOR UPDATE SKIP LOCKED \
                 ), deliveries AS ( \
                     DELETE FROM notification_deliveries d USING old \
                     WHERE d.tenant_id = old.tenant_id AND d.notification_id = old.id \
                 ) \
                 DELETE FROM notifications n USING old WHERE n.id = old.id"
            }
        };
        let done = sqlx::query(sql)
            .bind(bound(cutoff))
            .bind(limit(batch.max(1)))
            .execute(&self.scan_pool)
            .await
            .map_err(db)?;
        let derived = if kind == Retained::Messages {
            // What topics kept of the messages that went: their memberships
            // and vectors (derived from the customer's text, they must not
            // outlive it). Up to `batch` of each a call.
            sqlx::query_scalar::<_, i64>(PURGE_MESSAGE_TOPIC_ROWS)
                .bind(bound(cutoff))
                .bind(limit(batch.max(1)))
                .fetch_one(&self.scan_pool)
                .await
                .map_err(db)?
        } else {
            0
        };
        Ok(dropped + done.rows_affected() + u64::try_from(derived).unwrap_or(0))
    }
}
