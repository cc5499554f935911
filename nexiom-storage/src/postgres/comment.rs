//! [`CommentStore`] on Postgres: `comments` and `comment_checkpoints`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Comment, CommentCheckpoint, CommentId, CommentReply, DecisionId, DeliveryStatus, Inserted,
    NewComment, NewCommentReply, PostId, TenantId, Triage, validate,
};

use super::error::{Ref, WriteFailure, db, require_refs, write_error};
use super::rows::{CheckpointRow, CommentReplyRow, CommentRow, all};
use super::{PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::traits::CommentStore;

#[async_trait]
impl CommentStore for PgStore {
    async fn insert_comment(&self, new: NewComment) -> Result<Inserted<Comment>> {
        new.validate()?;
        let refs = [Ref::Post(new.post_id)];
        let mut tx = self.scoped(new.tenant_id).await?;
        // The post (the tenant's) gives the channel.
        let inserted: std::result::Result<Option<CommentRow>, _> = sqlx::query_as(
            "WITH post AS ( \
                 SELECT id, channel_id FROM scheduled_posts WHERE tenant_id = $2 AND id = $3 \
             ) \
             INSERT INTO comments (id, tenant_id, post_id, channel_id, platform_comment_id, \
                 parent_platform_comment_id, author_id, author_name, text, created_at, \
                 stored_at, triage, confidence, ai_decision_id, hidden) \
             SELECT $1, $2, post.id, post.channel_id, $4, $5, $6, $7, $8, $9, $10, \
                 NULL, NULL, NULL, $11 \
             FROM post \
             ON CONFLICT (post_id, platform_comment_id) DO NOTHING \
             RETURNING *",
        )
        .bind(CommentId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.post_id.as_uuid())
        .bind(&new.platform_comment_id)
        .bind(new.parent_platform_comment_id.as_deref())
        .bind(new.author_id.as_deref())
        .bind(new.author_name.as_deref())
        .bind(&new.text)
        .bind(new.created_at)
        .bind(new.stored_at)
        .bind(new.hidden)
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
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        let existing: Option<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments \
             WHERE tenant_id = $1 AND post_id = $2 AND platform_comment_id = $3",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.post_id.as_uuid())
        .bind(&new.platform_comment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(
                "postgres: the comment conflicted with a stored one that cannot be read",
            )),
        }
    }

    async fn get_comment(&self, tenant: TenantId, id: CommentId) -> Result<Comment> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentRow> =
            sqlx::query_as("SELECT * FROM comments WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("comment", id))?
            .into_entity()
    }

    async fn find_comment(
        &self,
        tenant: TenantId,
        post: PostId,
        platform_comment_id: &str,
    ) -> Result<Option<Comment>> {
        validate::key("platform_comment_id", platform_comment_id)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments \
             WHERE tenant_id = $1 AND post_id = $2 AND platform_comment_id = $3",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .bind(platform_comment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(CommentRow::into_entity).transpose()
    }

    async fn list_comments(
        &self,
        tenant: TenantId,
        post: PostId,
        max: u32,
    ) -> Result<Vec<Comment>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments WHERE tenant_id = $1 AND post_id = $2 \
             ORDER BY created_at, id \
             LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, CommentRow::into_entity)
    }

    async fn list_comments_since(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<Comment>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments WHERE tenant_id = $1 AND created_at >= $2 \
             ORDER BY created_at, id \
             LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(bound(since))
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, CommentRow::into_entity)
    }

    async fn set_comment_triage(
        &self,
        tenant: TenantId,
        id: CommentId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Comment> {
        validate::unit_interval("confidence", confidence)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentRow> = sqlx::query_as(
            "UPDATE comments SET triage = $3, confidence = $4, ai_decision_id = $5, \
                 reply_state = CASE WHEN $3 = 'auto_reply' AND reply_state IS NULL \
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
        row.ok_or_else(|| StorageError::not_found("comment", id))?
            .into_entity()
    }

    async fn list_untriaged_comments(&self, tenant: TenantId, max: u32) -> Result<Vec<Comment>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments \
             WHERE tenant_id = $1 AND triage IS NULL AND NOT hidden \
             ORDER BY created_at, id \
             LIMIT $2",
        )
        .bind(tenant.as_uuid())
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, CommentRow::into_entity)
    }

    async fn list_comments_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<Comment>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT * FROM comments \
             WHERE tenant_id = $1 AND triage = $2 AND created_at >= $3 \
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
        all(rows, CommentRow::into_entity)
    }

    async fn insert_comment_reply(&self, new: NewCommentReply) -> Result<Inserted<CommentReply>> {
        new.validate()?;
        let refs = [Ref::Comment(new.comment_id)];
        let mut tx = self.scoped(new.tenant_id).await?;
        let inserted: std::result::Result<Option<CommentReplyRow>, _> = sqlx::query_as(
            "INSERT INTO comment_replies (comment_id, tenant_id, text, status, \
                 platform_comment_id, error, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', NULL, NULL, $4, $4) \
             ON CONFLICT (comment_id) DO NOTHING \
             RETURNING *",
        )
        .bind(new.comment_id.as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(&new.text)
        .bind(new.created_at)
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
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        // The stored reply, read in the same transaction (as `find_comment_reply`).
        let existing: Option<CommentReplyRow> = sqlx::query_as(
            "SELECT * FROM comment_replies WHERE tenant_id = $1 AND comment_id = $2",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.comment_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(format!(
                "postgres: the reply to comment {} conflicted but cannot be read",
                new.comment_id
            ))),
        }
    }

    async fn finish_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
        status: DeliveryStatus,
        platform_comment_id: Option<&str>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<CommentReply> {
        validate::opt_key("platform_comment_id", platform_comment_id)?;
        validate::opt_text("error", error)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentReplyRow> = sqlx::query_as(
            "UPDATE comment_replies SET status = $3, \
                 platform_comment_id = COALESCE($4, platform_comment_id), error = $5, \
                 updated_at = $6 \
             WHERE tenant_id = $1 AND comment_id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(comment.as_uuid())
        .bind(status.as_str())
        .bind(platform_comment_id)
        .bind(error)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("comment reply", comment))?
            .into_entity()
    }

    async fn find_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
    ) -> Result<Option<CommentReply>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentReplyRow> = sqlx::query_as(
            "SELECT * FROM comment_replies WHERE tenant_id = $1 AND comment_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(comment.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(CommentReplyRow::into_entity).transpose()
    }

    async fn set_comment_hidden(
        &self,
        tenant: TenantId,
        id: CommentId,
        hidden: bool,
    ) -> Result<Comment> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CommentRow> = sqlx::query_as(
            "UPDATE comments SET hidden = $3 WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(hidden)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("comment", id))?
            .into_entity()
    }

    async fn get_checkpoint(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<CommentCheckpoint>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<CheckpointRow> = sqlx::query_as(
            "SELECT * FROM comment_checkpoints WHERE tenant_id = $1 AND post_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(CheckpointRow::into_entity).transpose()
    }

    async fn save_checkpoint(&self, checkpoint: CommentCheckpoint) -> Result<CommentCheckpoint> {
        checkpoint.validate()?;
        let refs = [Ref::Post(checkpoint.post_id)];
        let mut tx = self.scoped(checkpoint.tenant_id).await?;
        // The WHERE keeps another tenant's checkpoint (of its own post) untouched;
        // the foreign key refuses a post that is not the tenant's.
        let saved: std::result::Result<Option<CheckpointRow>, _> = sqlx::query_as(
            "INSERT INTO comment_checkpoints (post_id, tenant_id, last_cursor, last_seen_at, \
                 updated_at, rereading) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (post_id) DO UPDATE SET \
                 last_cursor = EXCLUDED.last_cursor, \
                 last_seen_at = EXCLUDED.last_seen_at, \
                 updated_at = EXCLUDED.updated_at, \
                 rereading = EXCLUDED.rereading \
             WHERE comment_checkpoints.tenant_id = EXCLUDED.tenant_id \
             RETURNING *",
        )
        .bind(checkpoint.post_id.as_uuid())
        .bind(checkpoint.tenant_id.as_uuid())
        .bind(checkpoint.last_cursor.as_deref())
        .bind(checkpoint.last_seen_at.map(bound))
        .bind(bound(checkpoint.updated_at))
        .bind(checkpoint.rereading)
        .fetch_optional(&mut *tx)
        .await;
        match saved {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Ok(None) => {
                require_refs(&mut *tx, checkpoint.tenant_id, &refs).await?;
                Err(StorageError::unknown("post", checkpoint.post_id))
            }
            // Under row-level security, `DO UPDATE` on another tenant's
            // checkpoint fails its policy (SQLSTATE 42501) instead of being
            // skipped by the WHERE: the post is then not the tenant's. The failed
            // statement aborted the transaction: check in a new one.
            Err(err) if is_policy_violation(&err) => {
                drop(tx);
                let mut tx = self.scoped(checkpoint.tenant_id).await?;
                require_refs(&mut *tx, checkpoint.tenant_id, &refs).await?;
                Err(db(err))
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(checkpoint.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }
}

/// A write refused by a row-level security policy (or a missing privilege):
/// SQLSTATE 42501.
fn is_policy_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "42501")
}
