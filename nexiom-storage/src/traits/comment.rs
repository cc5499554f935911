//! Comments on published posts and the polling checkpoints.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Comments on published posts and the polling checkpoints.
#[async_trait]
pub trait CommentStore: Send + Sync {
    /// Stores the comment unless `(post, platform_comment_id)` is stored already.
    async fn insert_comment(&self, new: NewComment) -> Result<Inserted<Comment>>;
    /// The comment, or `NotFound`.
    async fn get_comment(&self, tenant: TenantId, id: CommentId) -> Result<Comment>;
    /// The comment stored under `(post, platform_comment_id)`, if any.
    async fn find_comment(
        &self,
        tenant: TenantId,
        post: PostId,
        platform_comment_id: &str,
    ) -> Result<Option<Comment>>;
    /// The post's comments, oldest `created_at` first, at most `limit`.
    async fn list_comments(
        &self,
        tenant: TenantId,
        post: PostId,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// The tenant's comments created at or after `since`, oldest first.
    async fn list_comments_since(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// Records the comment's triage. AUTO_REPLY puts the comment in the reply
    /// queue (its [`reply`](nexiom_core::Comment::reply) becomes `pending`, due
    /// at once) unless it is there already; see [`ReplyQueueStore`].
    ///
    /// [`ReplyQueueStore`]: crate::ReplyQueueStore
    async fn set_comment_triage(
        &self,
        tenant: TenantId,
        id: CommentId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Comment>;
    /// The tenant's comments that have no triage yet and are not hidden on
    /// the platform, oldest `created_at` first, at most `limit` (the triage
    /// queue: a hidden comment gets no decision and no reply).
    async fn list_untriaged_comments(&self, tenant: TenantId, limit: u32) -> Result<Vec<Comment>>;
    /// The tenant's comments triaged `triage` created at or after `since`,
    /// oldest first, at most `limit`.
    async fn list_comments_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// Claims the automatic reply to a comment, `pending`, unless the comment
    /// has one already (then the stored reply is returned with `created ==
    /// false`). Written before the platform is called: the claim is what makes
    /// a second reply impossible. `UnknownReference` when the comment is not
    /// the tenant's.
    async fn insert_comment_reply(&self, new: NewCommentReply) -> Result<Inserted<CommentReply>>;
    /// Records the outcome of sending the comment's reply: its status, the
    /// platform's id of the reply and the error, at `at`. `NotFound` when the
    /// comment has no reply claimed.
    async fn finish_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
        status: DeliveryStatus,
        platform_comment_id: Option<&str>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<CommentReply>;
    /// The comment's reply, if one was claimed.
    async fn find_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
    ) -> Result<Option<CommentReply>>;
    /// Records that the comment is hidden (or shown again) on the platform.
    /// Routing a `moderation` event (a Facebook Page's moderator) records it
    /// too.
    async fn set_comment_hidden(
        &self,
        tenant: TenantId,
        id: CommentId,
        hidden: bool,
    ) -> Result<Comment>;

    /// The post's polling checkpoint, if any.
    async fn get_checkpoint(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<CommentCheckpoint>>;
    /// Creates or replaces the post's checkpoint.
    async fn save_checkpoint(&self, checkpoint: CommentCheckpoint) -> Result<CommentCheckpoint>;
}
