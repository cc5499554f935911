//! Rows of `comments`, `comment_replies` and `comment_checkpoints`.

use chrono::{DateTime, Utc};
use nexiom_core::{Comment, CommentCheckpoint, CommentReply};
use uuid::Uuid;

use super::convert::{parse, parse_opt, reply_status};
use crate::error::Result;

/// `comments`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct CommentRow {
    id: Uuid,
    tenant_id: Uuid,
    post_id: Uuid,
    channel_id: Uuid,
    platform_comment_id: String,
    parent_platform_comment_id: Option<String>,
    author_id: Option<String>,
    author_name: Option<String>,
    text: String,
    created_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    triage: Option<String>,
    confidence: Option<f64>,
    ai_decision_id: Option<Uuid>,
    hidden: bool,
    reply_state: Option<String>,
    reply_attempts: i64,
    reply_error: Option<String>,
    reply_next_at: Option<DateTime<Utc>>,
    reply_lease_until: Option<DateTime<Utc>>,
}

impl CommentRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Comment> {
        Ok(Comment {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            channel_id: self.channel_id.into(),
            platform_comment_id: self.platform_comment_id,
            parent_platform_comment_id: self.parent_platform_comment_id,
            author_id: self.author_id,
            author_name: self.author_name,
            text: self.text,
            created_at: self.created_at,
            stored_at: self.stored_at,
            triage: parse_opt("triage", self.triage.as_deref())?,
            confidence: self.confidence,
            ai_decision_id: self.ai_decision_id.map(Into::into),
            hidden: self.hidden,
            reply: reply_status(
                self.reply_state.as_deref(),
                self.reply_attempts,
                self.reply_error,
                self.reply_next_at,
                self.reply_lease_until,
            )?,
        })
    }
}

/// `comment_replies`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct CommentReplyRow {
    comment_id: Uuid,
    tenant_id: Uuid,
    text: String,
    status: String,
    platform_comment_id: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl CommentReplyRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<CommentReply> {
        Ok(CommentReply {
            tenant_id: self.tenant_id.into(),
            comment_id: self.comment_id.into(),
            text: self.text,
            status: parse("reply status", &self.status)?,
            platform_comment_id: self.platform_comment_id,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `comment_checkpoints`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct CheckpointRow {
    tenant_id: Uuid,
    post_id: Uuid,
    last_cursor: Option<String>,
    last_seen_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    rereading: bool,
}

impl CheckpointRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<CommentCheckpoint> {
        Ok(CommentCheckpoint {
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            last_cursor: self.last_cursor,
            last_seen_at: self.last_seen_at,
            updated_at: self.updated_at,
            rereading: self.rereading,
        })
    }
}
