//! Topics and their runs.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Topics: the texts to cluster, their stored vectors, and the topics, members
/// and daily sizes that runs write.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// The tenant's inbound messages and comments with non-blank text (more
    /// than Unicode white space, as `str::trim` counts it) created in
    /// `[from, to)`, oldest first (then by id); with `post`, only that post's
    /// comments.
    async fn list_topic_items(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        post: Option<PostId>,
    ) -> Result<Vec<TopicItem>>;
    /// The tenant's posts with at least `min_comments` comments in all, of
    /// which at least one was created at or after `since`; by post id.
    async fn list_posts_with_comments(
        &self,
        tenant: TenantId,
        min_comments: u32,
        since: DateTime<Utc>,
    ) -> Result<Vec<PostId>>;

    /// Stores each vector (one per subject and model; a second one replaces
    /// the first). `UnknownReference` when a subject is not the tenant's
    /// message or comment; nothing is written then. Returns how many were
    /// written.
    async fn upsert_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<u64>;
    /// The stored vectors of `model` for these subjects (those that have one),
    /// in the order of `subjects`.
    async fn get_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        subjects: &[TopicSubject],
    ) -> Result<Vec<ItemEmbedding>>;

    /// The tenant's topics of `scope`, most recently seen first (then by id):
    /// what a run matches its clusters against.
    async fn list_topics(&self, tenant: TenantId, scope: TopicScope) -> Result<Vec<Topic>>;
    /// Writes one run atomically (see [`TopicRun`]): topics created or
    /// updated (a known id must be the tenant's topic of the same scope, else
    /// `UnknownReference`), memberships replaced, the day's sizes upserted.
    /// Returns the run's topics as stored, in the run's order.
    async fn save_topic_run(&self, run: TopicRun) -> Result<Vec<Topic>>;
    /// The tenant's topics of `scope` by their summed daily sizes over the
    /// days `[from, to]` (largest first, then by id), at most `limit`, each
    /// with its size on `to`, the day before and 7 days before. Topics of no
    /// size in the range are left out.
    async fn top_topics(
        &self,
        tenant: TenantId,
        scope: TopicScope,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<TopicSummary>>;
    /// The topics of a post's comments, largest (last run's size) first, then
    /// by id.
    async fn topics_for_post(&self, tenant: TenantId, post: PostId) -> Result<Vec<Topic>>;
    /// A page of a topic's members, newest first (`created_at`, then id, both
    /// descending), starting after `cursor`. `NotFound` for a topic that is
    /// not the tenant's.
    async fn messages_in_topic(
        &self,
        tenant: TenantId,
        topic: TopicId,
        cursor: Option<TopicCursor>,
        limit: u32,
    ) -> Result<TopicMembersPage>;
}
