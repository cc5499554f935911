//! Comments and comment polling checkpoints.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Comment, CommentCheckpoint, CommentId, CommentReply, DecisionId, DecisionSubject,
    DeliveryStatus, Inserted, NewComment, NewCommentReply, PostId, TenantId, Triage, validate,
};

/// The outcome of sending a comment reply, as `finish_comment_reply` takes it.
pub(super) struct ReplyOutcome<'a> {
    pub(super) status: DeliveryStatus,
    pub(super) platform_comment_id: Option<&'a str>,
    pub(super) error: Option<&'a str>,
}

use super::{Inner, MemoryStore, get_scoped, get_scoped_mut, limit_len, require_ref, scoped};
use crate::error::{Result, StorageError};
use crate::traits::CommentStore;

impl Inner {
    pub(super) fn insert_comment(&mut self, new: NewComment) -> Result<Inserted<Comment>> {
        new.validate()?;
        let tenant = new.tenant_id;
        self.require_tenant(tenant)?;
        let channel_id = scoped(&self.posts, tenant, &new.post_id)
            .ok_or_else(|| StorageError::unknown("post", new.post_id))?
            .channel_id;
        let key = (new.post_id, new.platform_comment_id.clone());
        if let Some(existing) = self
            .comment_by_key
            .get(&key)
            .and_then(|id| self.comments.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }
        let comment = Comment {
            id: CommentId::generate(),
            tenant_id: tenant,
            post_id: new.post_id,
            channel_id,
            platform_comment_id: new.platform_comment_id,
            parent_platform_comment_id: new.parent_platform_comment_id,
            author_id: new.author_id,
            author_name: new.author_name,
            text: new.text,
            created_at: new.created_at,
            stored_at: new.stored_at,
            triage: None,
            confidence: None,
            ai_decision_id: None,
            hidden: new.hidden,
            reply: None,
        };
        self.comment_by_key.insert(key, comment.id);
        self.comments.insert(comment.id, comment.clone());
        Ok(Inserted::created(comment))
    }

    fn find_comment(
        &self,
        tenant: TenantId,
        post: PostId,
        platform_comment_id: &str,
    ) -> Result<Option<Comment>> {
        validate::key("platform_comment_id", platform_comment_id)?;
        Ok(self
            .comment_by_key
            .get(&(post, platform_comment_id.to_owned()))
            .and_then(|id| scoped(&self.comments, tenant, id))
            .cloned())
    }

    /// Up to `limit` comments matching `keep`, oldest `created_at` first.
    fn comments_where(&self, limit: u32, keep: impl Fn(&Comment) -> bool) -> Vec<Comment> {
        if limit == 0 {
            return Vec::new();
        }
        let mut comments: Vec<&Comment> = self.comments.values().filter(|c| keep(c)).collect();
        comments.sort_by_key(|c| (c.created_at, c.id));
        comments
            .into_iter()
            .take(limit_len(limit))
            .cloned()
            .collect()
    }

    fn set_comment_triage(
        &mut self,
        tenant: TenantId,
        id: CommentId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Comment> {
        validate::unit_interval("confidence", confidence)?;
        if triage == Triage::Escalate
            && let Some(notification) =
                self.escalation(tenant, DecisionSubject::Comment(id), decision)?
        {
            // The notification first: a refused one leaves the triage unwritten.
            self.notify(notification)?;
        }
        let comment = get_scoped_mut(&mut self.comments, tenant, &id, "comment")?;
        comment.triage = Some(triage);
        comment.confidence = Some(confidence);
        comment.ai_decision_id = decision;
        if triage == Triage::AutoReply && comment.reply.is_none() {
            comment.reply = Some(nexiom_core::ReplyStatus::pending());
        }
        Ok(comment.clone())
    }

    pub(super) fn insert_comment_reply(
        &mut self,
        new: NewCommentReply,
    ) -> Result<Inserted<CommentReply>> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        require_ref(&self.comments, new.tenant_id, &new.comment_id, "comment")?;
        if let Some(existing) = self.comment_replies.get(&new.comment_id) {
            return Ok(Inserted::existing(existing.clone()));
        }
        let reply = CommentReply {
            tenant_id: new.tenant_id,
            comment_id: new.comment_id,
            text: new.text,
            status: DeliveryStatus::Pending,
            platform_comment_id: None,
            error: None,
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        self.comment_replies.insert(reply.comment_id, reply.clone());
        Ok(Inserted::created(reply))
    }

    pub(super) fn finish_comment_reply(
        &mut self,
        tenant: TenantId,
        comment: CommentId,
        outcome: ReplyOutcome<'_>,
        at: DateTime<Utc>,
    ) -> Result<CommentReply> {
        validate::opt_key("platform_comment_id", outcome.platform_comment_id)?;
        validate::opt_text("error", outcome.error)?;
        let reply = self
            .comment_replies
            .get_mut(&comment)
            .filter(|r| r.tenant_id == tenant)
            .ok_or_else(|| StorageError::not_found("comment reply", comment))?;
        reply.status = outcome.status;
        if outcome.platform_comment_id.is_some() {
            reply.platform_comment_id = outcome.platform_comment_id.map(str::to_owned);
        }
        reply.error = outcome.error.map(str::to_owned);
        reply.updated_at = at;
        Ok(reply.clone())
    }

    fn save_checkpoint(&mut self, checkpoint: CommentCheckpoint) -> Result<CommentCheckpoint> {
        checkpoint.validate()?;
        self.require_tenant(checkpoint.tenant_id)?;
        require_ref(
            &self.posts,
            checkpoint.tenant_id,
            &checkpoint.post_id,
            "post",
        )?;
        self.checkpoints
            .insert(checkpoint.post_id, checkpoint.clone());
        Ok(checkpoint)
    }
}

#[async_trait]
impl CommentStore for MemoryStore {
    async fn insert_comment(&self, new: NewComment) -> Result<Inserted<Comment>> {
        self.lock().insert_comment(new)
    }

    async fn get_comment(&self, tenant: TenantId, id: CommentId) -> Result<Comment> {
        get_scoped(&self.lock().comments, tenant, &id, "comment").cloned()
    }

    async fn find_comment(
        &self,
        tenant: TenantId,
        post: PostId,
        platform_comment_id: &str,
    ) -> Result<Option<Comment>> {
        self.lock().find_comment(tenant, post, platform_comment_id)
    }

    async fn list_comments(
        &self,
        tenant: TenantId,
        post: PostId,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        Ok(self
            .lock()
            .comments_where(limit, |c| c.tenant_id == tenant && c.post_id == post))
    }

    async fn list_comments_since(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        Ok(self
            .lock()
            .comments_where(limit, |c| c.tenant_id == tenant && c.created_at >= since))
    }

    async fn set_comment_triage(
        &self,
        tenant: TenantId,
        id: CommentId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Comment> {
        self.lock()
            .set_comment_triage(tenant, id, triage, confidence, decision)
    }

    async fn list_untriaged_comments(&self, tenant: TenantId, limit: u32) -> Result<Vec<Comment>> {
        Ok(self.lock().comments_where(limit, |c| {
            c.tenant_id == tenant && c.triage.is_none() && !c.hidden
        }))
    }

    async fn list_comments_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        Ok(self.lock().comments_where(limit, |c| {
            c.tenant_id == tenant && c.triage == Some(triage) && c.created_at >= since
        }))
    }

    async fn insert_comment_reply(&self, new: NewCommentReply) -> Result<Inserted<CommentReply>> {
        self.lock().insert_comment_reply(new)
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
        let outcome = ReplyOutcome {
            status,
            platform_comment_id,
            error,
        };
        self.lock()
            .finish_comment_reply(tenant, comment, outcome, at)
    }

    async fn find_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
    ) -> Result<Option<CommentReply>> {
        Ok(self
            .lock()
            .comment_replies
            .get(&comment)
            .filter(|r| r.tenant_id == tenant)
            .cloned())
    }

    async fn set_comment_hidden(
        &self,
        tenant: TenantId,
        id: CommentId,
        hidden: bool,
    ) -> Result<Comment> {
        let mut inner = self.lock();
        let comment = get_scoped_mut(&mut inner.comments, tenant, &id, "comment")?;
        comment.hidden = hidden;
        Ok(comment.clone())
    }

    async fn get_checkpoint(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<CommentCheckpoint>> {
        Ok(self
            .lock()
            .checkpoints
            .get(&post)
            .filter(|c| c.tenant_id == tenant)
            .cloned())
    }

    async fn save_checkpoint(&self, checkpoint: CommentCheckpoint) -> Result<CommentCheckpoint> {
        self.lock().save_checkpoint(checkpoint)
    }
}
