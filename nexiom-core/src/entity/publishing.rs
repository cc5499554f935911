use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ReplyStatus;
use crate::content::Content;
use crate::enums::{PostOrigin, PostRunStatus, PostStatus, Triage};
use crate::error::CoreError;
use crate::id::{
    ChannelId, CommentId, ContentJobId, DecisionId, MissionId, PostId, PostRunId, TenantId,
};
use crate::validate;

/// The recurrence of a post series: an RFC 5545 RRULE, its DTSTART as local wall
/// time, and the IANA time zone that wall time is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurrence {
    /// The RRULE, without the `RRULE:` prefix (for example `FREQ=WEEKLY;BYDAY=MO`).
    pub rrule: String,
    /// DTSTART as local wall-clock time in `time_zone`.
    pub dtstart: NaiveDateTime,
    /// The time zone of `dtstart` and of every occurrence.
    pub time_zone: Tz,
}

/// A post to publish at `publish_at`, or a series template with a [`Recurrence`]
/// whose occurrences are posts of their own, keyed by `(series_id, occurrence_at)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledPost {
    /// Id.
    pub id: PostId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel to publish on.
    pub channel_id: ChannelId,
    /// What to publish.
    pub content: Content,
    /// When to publish (for a series template: its next occurrence).
    pub publish_at: DateTime<Utc>,
    /// Set on a series template.
    pub recurrence: Option<Recurrence>,
    /// Set on an occurrence: the series template it came from.
    pub series_id: Option<PostId>,
    /// Set on an occurrence: the occurrence instant (part of its unique key).
    pub occurrence_at: Option<DateTime<Utc>>,
    /// Life cycle status.
    pub status: PostStatus,
    /// Where the post comes from (`external`: a post made elsewhere whose
    /// comments are handled here; see [`PostOrigin`]).
    #[serde(default = "scheduled_origin")]
    pub origin: PostOrigin,
    /// The platform's id once published.
    pub platform_post_id: Option<String>,
    /// The public URL once published.
    pub url: Option<String>,
    /// Why it failed (or the last error of a retried attempt).
    pub error_message: Option<String>,
    /// Attempts made so far.
    pub retry_count: u32,
    /// Earliest time of the next attempt (backoff); `None` means as soon as due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The worker holding the claim, while `publishing`.
    pub lease_owner: Option<String>,
    /// When the claim lapses and the post becomes claimable again.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When it went live.
    pub published_at: Option<DateTime<Utc>>,
    /// Last comment poll.
    pub last_check_at: Option<DateTime<Utc>>,
    /// Next comment poll (`None`: not polled).
    pub next_check_at: Option<DateTime<Utc>>,
    /// Comment polling stops for good at this instant.
    pub stop_at: Option<DateTime<Utc>>,
    /// Comment checks of this post the platform refused in a row (as it
    /// refuses a deleted post's comments); a check that reads resets it. The
    /// first refusal waits the poller's interval, each one after it twice the
    /// wait before, up to the poller's `failure_backoff_max`.
    #[serde(default)]
    pub poll_failures: u32,
    /// Mission this post serves, if any.
    pub mission_id: Option<MissionId>,
    /// Content job this post publishes, if any.
    pub content_job_id: Option<ContentJobId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// How the `error_message` of a series template stopped on request starts
/// (cancelled, or replaced by a new series): its occurrences not published
/// yet are not published, even one that was being published at that instant
/// and came back to `queued` afterwards (a retry, a lease taken over). A
/// series whose rule ran out is `cancelled` too, without this mark: its
/// occurrences still go out.
pub const SERIES_STOPPED: &str = "series stopped";

impl ScheduledPost {
    /// Whether this is a series template stopped on request (`cancelled`,
    /// its `error_message` starting with [`SERIES_STOPPED`]).
    pub fn is_stopped_series(&self) -> bool {
        self.recurrence.is_some()
            && self.status == PostStatus::Cancelled
            && self
                .error_message
                .as_deref()
                .is_some_and(|e| e.starts_with(SERIES_STOPPED))
    }
}

fn scheduled_origin() -> PostOrigin {
    PostOrigin::Scheduled
}

/// Input to create a [`ScheduledPost`] (status `queued`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewScheduledPost {
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Content.
    pub content: Content,
    /// When to publish.
    pub publish_at: DateTime<Utc>,
    /// Recurrence, for a series template.
    pub recurrence: Option<Recurrence>,
    /// Series template, for an occurrence (set together with `occurrence_at`).
    pub series_id: Option<PostId>,
    /// Occurrence instant, for an occurrence.
    pub occurrence_at: Option<DateTime<Utc>>,
    /// Mission link.
    pub mission_id: Option<MissionId>,
    /// Content job link.
    pub content_job_id: Option<ContentJobId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewScheduledPost {
    /// A one-off post at `publish_at`, without mission, job or recurrence.
    pub fn one_off(
        tenant_id: TenantId,
        channel_id: ChannelId,
        content: Content,
        publish_at: DateTime<Utc>,
        created_at: DateTime<Utc>,
    ) -> Self {
        NewScheduledPost {
            tenant_id,
            channel_id,
            content,
            publish_at,
            recurrence: None,
            series_id: None,
            occurrence_at: None,
            mission_id: None,
            content_job_id: None,
            created_at,
        }
    }

    /// Checks the content, then `rrule`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.content.validate()?;
        if let Some(recurrence) = &self.recurrence {
            validate::text("rrule", &recurrence.rrule)?;
        }
        Ok(())
    }
}

/// A partial update of a [`ScheduledPost`]. `None` leaves a field as it is; for
/// nullable fields `Some(None)` clears it. The `expect_*` guards make the update
/// conditional: if the stored post does not match, nothing is written and the
/// store answers with a precondition error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostPatch {
    /// New status.
    pub status: Option<PostStatus>,
    /// New content.
    pub content: Option<Content>,
    /// New publish time.
    pub publish_at: Option<DateTime<Utc>>,
    /// Platform post id.
    pub platform_post_id: Option<Option<String>>,
    /// Public URL.
    pub url: Option<Option<String>>,
    /// Error message.
    pub error_message: Option<Option<String>>,
    /// Attempts made.
    pub retry_count: Option<u32>,
    /// Next attempt time.
    pub next_attempt_at: Option<Option<DateTime<Utc>>>,
    /// Clears `lease_owner` and `lease_expires_at`.
    pub release_lease: bool,
    /// Publication time.
    pub published_at: Option<Option<DateTime<Utc>>>,
    /// Last poll.
    pub last_check_at: Option<Option<DateTime<Utc>>>,
    /// Next poll.
    pub next_check_at: Option<Option<DateTime<Utc>>>,
    /// Polling stop.
    pub stop_at: Option<Option<DateTime<Utc>>>,
    /// Guard: the stored status must be this.
    pub expect_status: Option<PostStatus>,
    /// Guard: the stored lease must be held by this owner.
    pub expect_lease_owner: Option<String>,
}

impl PostPatch {
    /// Checks the content and strings it sets; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(content) = &self.content {
            content.validate()?;
        }
        validate::opt_key(
            "platform_post_id",
            self.platform_post_id.as_ref().and_then(Option::as_deref),
        )?;
        validate::opt_text("url", self.url.as_ref().and_then(Option::as_deref))?;
        validate::opt_text(
            "error_message",
            self.error_message.as_ref().and_then(Option::as_deref),
        )?;
        validate::opt_key("expect_lease_owner", self.expect_lease_owner.as_deref())
    }
}

/// Filter for listing posts. Every set field must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostFilter {
    /// Status.
    pub status: Option<PostStatus>,
    /// Channel.
    pub channel_id: Option<ChannelId>,
    /// Mission.
    pub mission_id: Option<MissionId>,
    /// Series template (its occurrences).
    pub series_id: Option<PostId>,
    /// `publish_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `publish_at < to`.
    pub to: Option<DateTime<Utc>>,
    /// At most this many rows (`None`: no limit).
    pub limit: Option<u32>,
}

/// One publishing attempt. Unique by `(post, attempt)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostRun {
    /// Id.
    pub id: PostRunId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End, once finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome.
    pub status: PostRunStatus,
    /// Error of a failed attempt.
    pub error: Option<String>,
}

/// Input to start a [`PostRun`] (status `running`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPostRun {
    /// Owner.
    pub tenant_id: TenantId,
    /// The post (must belong to the tenant).
    pub post_id: PostId,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Start.
    pub started_at: DateTime<Utc>,
}

impl NewPostRun {
    /// Checks that `attempt` is at least 1; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.attempt < 1 {
            return Err(CoreError::invalid("attempt", "must be at least 1"));
        }
        Ok(())
    }
}

/// A comment on a published post. Unique by `(post, platform_comment_id)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Id.
    pub id: CommentId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// The post's channel.
    pub channel_id: ChannelId,
    /// The platform's comment id.
    pub platform_comment_id: String,
    /// The platform id of the parent comment, for a reply in a thread.
    pub parent_platform_comment_id: Option<String>,
    /// Author's platform id.
    pub author_id: Option<String>,
    /// Author's display name.
    pub author_name: Option<String>,
    /// Text.
    pub text: String,
    /// Platform time.
    pub created_at: DateTime<Utc>,
    /// Storage time.
    pub stored_at: DateTime<Utc>,
    /// Triage outcome, once triaged.
    pub triage: Option<Triage>,
    /// Triage confidence.
    pub confidence: Option<f64>,
    /// The deciding decision.
    pub ai_decision_id: Option<DecisionId>,
    /// Hidden on the platform.
    pub hidden: bool,
    /// The reply-queue state, for an item triaged AUTO_REPLY (or
    /// `superseded`: a person answered before its triage).
    pub reply: Option<ReplyStatus>,
}

/// Input to store a [`Comment`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewComment {
    /// Owner.
    pub tenant_id: TenantId,
    /// The post (must belong to the tenant).
    pub post_id: PostId,
    /// Platform comment id (a key).
    pub platform_comment_id: String,
    /// Parent comment's platform id.
    pub parent_platform_comment_id: Option<String>,
    /// Author id.
    pub author_id: Option<String>,
    /// Author name.
    pub author_name: Option<String>,
    /// Text.
    pub text: String,
    /// Platform time.
    pub created_at: DateTime<Utc>,
    /// Storage time.
    pub stored_at: DateTime<Utc>,
    /// Hidden on the platform when it was read (a moderator hid it, or the
    /// platform did): stored so, and left out of triage, so it gets no
    /// decision and no reply (Instagram refuses replies to hidden comments).
    pub hidden: bool,
}

impl NewComment {
    /// Checks the keys, `author_name`, then `text`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("platform_comment_id", &self.platform_comment_id)?;
        validate::opt_key(
            "parent_platform_comment_id",
            self.parent_platform_comment_id.as_deref(),
        )?;
        validate::opt_key("author_id", self.author_id.as_deref())?;
        validate::opt_text("author_name", self.author_name.as_deref())?;
        validate::text("text", &self.text)
    }
}

/// Where comment polling of a post stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentCheckpoint {
    /// Owner.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// The cursor to resume from.
    pub last_cursor: Option<String>,
    /// Time of the newest comment seen.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Last change; for a checkpoint written by a re-read (in progress or
    /// just finished), when that re-read began.
    pub updated_at: DateTime<Utc>,
    /// Whether `last_cursor` is part way through a re-read of the post's
    /// comments from the first page, with their replies: the next check goes
    /// on with that listing until the last page.
    #[serde(default)]
    pub rereading: bool,
}

impl CommentCheckpoint {
    /// Checks `last_cursor` (a pagination cursor: opaque, possibly longer
    /// than a key); the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::opt_cursor("last_cursor", self.last_cursor.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    #[test]
    fn post_validation_checks_content_then_rrule() {
        let mut post = NewScheduledPost::one_off(
            TenantId::generate(),
            ChannelId::generate(),
            Content::text("bad\0text"),
            t0(),
            t0(),
        );
        post.recurrence = Some(Recurrence {
            rrule: "FREQ=DAILY\0".into(),
            dtstart: t0().naive_utc(),
            time_zone: chrono_tz::Europe::Paris,
        });
        assert!(matches!(
            post.validate(),
            Err(CoreError::Invalid { field: "text", .. })
        ));
        post.content = Content::text("ok");
        assert!(matches!(
            post.validate(),
            Err(CoreError::Invalid { field: "rrule", .. })
        ));
    }

    #[test]
    fn patch_checks_only_what_it_sets() {
        assert_eq!(PostPatch::default().validate(), Ok(()));
        let cleared = PostPatch {
            platform_post_id: Some(None),
            ..PostPatch::default()
        };
        assert_eq!(cleared.validate(), Ok(()));
        let empty_id = PostPatch {
            platform_post_id: Some(Some(String::new())),
            expect_lease_owner: Some(String::new()),
            ..PostPatch::default()
        };
        assert!(matches!(
            empty_id.validate(),
            Err(CoreError::Invalid {
                field: "platform_post_id",
                ..
            })
        ));
    }

    #[test]
    fn attempt_starts_at_one() {
        let mut run = NewPostRun {
            tenant_id: TenantId::generate(),
            post_id: PostId::generate(),
            attempt: 0,
            started_at: t0(),
        };
        assert!(matches!(
            run.validate(),
            Err(CoreError::Invalid {
                field: "attempt",
                ..
            })
        ));
        run.attempt = 1;
        assert_eq!(run.validate(), Ok(()));
    }

    #[test]
    fn comment_text_is_checked_last() {
        let mut comment = NewComment {
            tenant_id: TenantId::generate(),
            post_id: PostId::generate(),
            platform_comment_id: "c1".into(),
            parent_platform_comment_id: None,
            author_id: Some("a\u{7}".into()),
            author_name: None,
            text: "x\0".into(),
            created_at: t0(),
            stored_at: t0(),
            hidden: false,
        };
        assert!(matches!(
            comment.validate(),
            Err(CoreError::Invalid {
                field: "author_id",
                ..
            })
        ));
        comment.author_id = None;
        assert!(matches!(
            comment.validate(),
            Err(CoreError::Invalid { field: "text", .. })
        ));
    }
}
