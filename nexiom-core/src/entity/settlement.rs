//! Batched writes of the publish queue: the final state of claimed posts and
//! the end of their attempts, written together for a whole batch.

use chrono::{DateTime, Utc};

use crate::enums::{PostRunStatus, PostStatus};
use crate::error::CoreError;
use crate::id::{PostId, PostRunId, TenantId};
use crate::validate;

/// What a publication left on the post (written with status `published`).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedFields {
    /// The platform's id of the post.
    pub platform_post_id: String,
    /// Public URL, when the platform gives one.
    pub url: Option<String>,
    /// Publication time.
    pub published_at: DateTime<Utc>,
    /// First comment poll (`None`: the post's comments are never polled,
    /// as a broadcast's).
    pub next_check_at: Option<DateTime<Utc>>,
    /// End of comment polling (`None`: no end).
    pub stop_at: Option<DateTime<Utc>>,
}

/// The end of one attempt, written with its post.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The run.
    pub run_id: PostRunId,
    /// `success` or `failed`.
    pub status: PostRunStatus,
    /// Error of a failed attempt.
    pub error: Option<String>,
}

/// The state a claimed post leaves its claim in: `published`, `queued` again
/// (a retry, or a claim handed back untouched) or `failed`. The lease is
/// released. Written only while the post is still `publishing` under the
/// writer's lease; a post whose lease moved on is left as it is, and so is its
/// run.
#[derive(Debug, Clone, PartialEq)]
pub struct PostSettlement {
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// `published`, `queued` or `failed`.
    pub status: PostStatus,
    /// Attempts made (`None`: unchanged).
    pub retry_count: Option<u32>,
    /// The error message (`None` clears it).
    pub error_message: Option<String>,
    /// Earliest next attempt, for a post queued again (`None` clears it).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Set for a publication; other fields of the post stay as they are otherwise.
    pub published: Option<PublishedFields>,
    /// The attempt this settlement ends, if one was started (also a run
    /// already closed as stale, when a lookup found that it did publish).
    pub run: Option<RunEnd>,
}

impl PostSettlement {
    /// Checks the status and the strings; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !matches!(
            self.status,
            PostStatus::Published | PostStatus::Queued | PostStatus::Failed
        ) {
            return Err(CoreError::invalid(
                "status",
                "a settlement leaves a post published, queued or failed",
            ));
        }
        if (self.status == PostStatus::Published) != self.published.is_some() {
            return Err(CoreError::invalid(
                "published",
                "set exactly when the status is published",
            ));
        }
        validate::opt_text("error_message", self.error_message.as_deref())?;
        if let Some(published) = &self.published {
            validate::key("platform_post_id", &published.platform_post_id)?;
            validate::opt_text("url", published.url.as_deref())?;
        }
        if let Some(run) = &self.run {
            if run.status == PostRunStatus::Running {
                return Err(CoreError::invalid(
                    "run.status",
                    "an ended run is success or failed",
                ));
            }
            validate::opt_text("run.error", run.error.as_deref())?;
        }
        Ok(())
    }
}
