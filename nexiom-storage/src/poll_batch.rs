//! [`PollBatchStore`]: comment polling claimed and written back in batches,
//! each post guarded by its claim.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{CommentCheckpoint, CoreError, NewComment, PostId, ScheduledPost, TenantId};

use crate::error::Result;

/// A post claimed for a comment check by [`PollBatchStore::claim_polls`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedPoll {
    /// The post as stored after the claim (its `next_check_at` is
    /// [`ClaimedPoll::lease_until`]).
    pub post: ScheduledPost,
    /// Its comment checkpoint, if it has one.
    pub checkpoint: Option<CommentCheckpoint>,
    /// The `next_check_at` the post had before the claim (when it was due).
    pub due_at: DateTime<Utc>,
    /// The claim: the post's `next_check_at` until the check is written back.
    /// A poller that stops leaves the post due again at this instant.
    pub lease_until: DateTime<Utc>,
}

/// What one post's check wrote, given to [`PollBatchStore::finish_polls`].
#[derive(Debug, Clone, PartialEq)]
pub struct PollResult {
    /// The post's tenant.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// The claim the check ran under ([`ClaimedPoll::lease_until`]).
    pub lease_until: DateTime<Utc>,
    /// The comments read, in the order read (each stored once per
    /// `(post, platform_comment_id)`; a comment stored already is kept as it
    /// is). Their tenant and post must be the result's.
    pub comments: Vec<NewComment>,
    /// The checkpoint to save, when it changed (its tenant and post must be
    /// the result's).
    pub checkpoint: Option<CommentCheckpoint>,
    /// The post's new `last_check_at`, when it was checked (`None` keeps it).
    pub last_check_at: Option<DateTime<Utc>>,
    /// The post's new `next_check_at` (`None`: polling ended).
    pub next_check_at: Option<DateTime<Utc>>,
    /// The post's new [`poll_failures`](nexiom_core::ScheduledPost::poll_failures):
    /// 0 after a check that read, one more after one the platform refused,
    /// else as claimed.
    pub poll_failures: u32,
}

impl PollResult {
    /// Checks the result's own fields (before anything is written).
    pub fn validate(&self) -> std::result::Result<(), CoreError> {
        for comment in &self.comments {
            comment.validate()?;
            if comment.tenant_id != self.tenant_id || comment.post_id != self.post_id {
                return Err(CoreError::invalid(
                    "comments",
                    "a comment of another post than its result's",
                ));
            }
        }
        if let Some(checkpoint) = &self.checkpoint {
            checkpoint.validate()?;
            if checkpoint.tenant_id != self.tenant_id || checkpoint.post_id != self.post_id {
                return Err(CoreError::invalid(
                    "checkpoint",
                    "the checkpoint of another post than its result's",
                ));
            }
        }
        Ok(())
    }
}

/// How [`PollBatchStore::finish_polls`] treated one result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollWritten {
    /// Whether the result was written: `false` when the post was no longer
    /// `published` under the result's claim (another poller claimed it after
    /// the claim lapsed, or its schedule was changed meanwhile); then nothing
    /// of it was written.
    pub written: bool,
    /// Aligned with the result's comments: whether each was stored by this
    /// call (`false` for one stored already, or repeated earlier in the
    /// result, or when the result was not written).
    pub created: Vec<bool>,
}

/// Comment polling in batches: posts claimed with their checkpoints in one
/// step, and the checks of many posts written back in one atomic step (one
/// statement on Postgres), each post only while its claim holds. Both are
/// worker-queue operations, across tenants.
#[async_trait]
pub trait PollBatchStore: Send + Sync {
    /// Claims up to `limit` posts due for polling (as
    /// [`PostStore::list_posts_due_for_polling`](crate::PostStore::list_posts_due_for_polling):
    /// `published`, `next_check_at <= now`, `last_check_at < stop_at` when both are set, oldest `next_check_at`
    /// first, then id) and returns them in that order with their checkpoints.
    /// The claim sets each post's `next_check_at` to `now + lease`
    /// (`updated_at` is kept), so a concurrent claimer skips it (on Postgres
    /// `FOR UPDATE SKIP LOCKED`: it skips what another is claiming instead of
    /// waiting), and a poller that stops leaves it due again when the lease
    /// ends. `Invalid("lease")` when `lease` is not positive or `now + lease`
    /// is out of range.
    async fn claim_polls(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedPoll>>;

    /// Writes back the checks of claimed posts in one atomic step. For each
    /// result whose post is still `published` with `next_check_at` equal to
    /// the result's `lease_until` (the claim holds): its comments are stored
    /// (insert-if-absent), its checkpoint saved when given, `last_check_at`
    /// set when given, `next_check_at` set, and `updated_at = at`. A result
    /// whose claim moved on writes nothing, and says so. The answer is
    /// aligned with `results`. `Invalid` (nothing written) when a result
    /// fails [`PollResult::validate`] or a post appears twice.
    async fn finish_polls(
        &self,
        results: &[PollResult],
        at: DateTime<Utc>,
    ) -> Result<Vec<PollWritten>>;
}

/// Checks a polling claim's lease and returns when it ends, `now + lease`.
pub(crate) fn poll_lease(now: DateTime<Utc>, lease: Duration) -> Result<DateTime<Utc>> {
    if lease <= Duration::zero() {
        return Err(CoreError::invalid("lease", "must be positive").into());
    }
    Ok(now
        .checked_add_signed(lease)
        .ok_or_else(|| CoreError::invalid("lease", "ends beyond the representable time range"))?)
}

/// Validates every result and refuses a post named twice.
pub(crate) fn check_results(results: &[PollResult]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for result in results {
        result.validate()?;
        if !seen.insert(result.post_id) {
            return Err(CoreError::invalid("results", "a post appears twice").into());
        }
    }
    Ok(())
}
