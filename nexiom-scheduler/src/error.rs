//! [`SchedulerError`]: what the scheduling API, the publish queue and the worker
//! runtime refuse or fail with.

use chrono::{DateTime, Utc};
use nexiom_core::{PostId, PostStatus};
use nexiom_storage::StorageError;
use thiserror::Error;

/// Result of a scheduler call.
pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

/// Errors of the scheduler. Refusals of user input come first; each message says
/// what to change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The RRULE does not parse or does not validate against RFC 5545.
    #[error(
        "invalid RRULE {rrule:?}: {reason}; write it as in RFC 5545, e.g. FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9"
    )]
    InvalidRrule {
        /// The rule as given.
        rrule: String,
        /// What the parser or validator said.
        reason: String,
    },

    /// The time zone is not an IANA zone name.
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Paris or America/New_York")]
    UnknownTimeZone(String),

    /// The rule has no occurrence after the current time (it ended, or its COUNT
    /// or UNTIL lies in the past).
    #[error("the rule {rrule:?} has no occurrence after {after}: move DTSTART, UNTIL or COUNT")]
    NoFutureOccurrence {
        /// The rule.
        rrule: String,
        /// The instant after which nothing occurs.
        after: DateTime<Utc>,
    },

    /// The content can never be published on the channel: the connector's
    /// capabilities refuse it whatever the time (too long, media kind not
    /// supported, file too large, …).
    #[error("the channel can never publish this content: {0}")]
    ContentRefused(String),

    /// The post is not in a state that allows the operation (for example
    /// cancelling a post that is already being published).
    #[error("post {post} is {status}: {action} needs a queued post")]
    WrongStatus {
        /// The post.
        post: PostId,
        /// Its current status.
        status: PostStatus,
        /// What was asked.
        action: &'static str,
    },

    /// The operation does not apply to this kind of post.
    #[error("post {post}: {reason}")]
    Unsupported {
        /// The post.
        post: PostId,
        /// Why, and what to do instead.
        reason: String,
    },

    /// Storage failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),

    /// A setting the run cannot use (what it is, and what to give instead).
    #[error("invalid setting: {0}")]
    InvalidConfig(String),

    /// Every step of a pipeline pass failed (the errors, joined).
    #[error("every pipeline step failed: {0}")]
    PipelineFailed(String),

    /// An inbound step (routing, triage, auto-replies) stopped, in a
    /// pipeline pass or a worker.
    #[error("inbound step failed: {0}")]
    Inbound(#[source] Box<crate::inbound::InboundError>),
}

impl From<crate::inbound::InboundError> for SchedulerError {
    fn from(err: crate::inbound::InboundError) -> Self {
        match err {
            crate::inbound::InboundError::Storage(s) => SchedulerError::Storage(s),
            other => SchedulerError::Inbound(Box::new(other)),
        }
    }
}

impl SchedulerError {
    /// Whether trying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SchedulerError::Storage(e) if e.is_transient())
    }

    /// A short, stable name of the error's class (`storage_unavailable`,
    /// `storage`, `inbound`, `pipeline`, `invalid_config`, `invalid_input`,
    /// `wrong_status`, `unsupported`), with none of its text: what may be shown to someone who
    /// must not read the message itself (a `worker_failing` notification goes
    /// to every subscribed tenant, and a worker's error can quote another
    /// tenant's data).
    pub fn kind(&self) -> &'static str {
        match self {
            SchedulerError::Storage(e) if e.is_transient() => "storage_unavailable",
            SchedulerError::Storage(_) => "storage",
            SchedulerError::Inbound(_) => "inbound",
            SchedulerError::PipelineFailed(_) => "pipeline",
            SchedulerError::InvalidConfig(_) => "invalid_config",
            SchedulerError::InvalidRrule { .. }
            | SchedulerError::UnknownTimeZone(_)
            | SchedulerError::NoFutureOccurrence { .. }
            | SchedulerError::ContentRefused(_) => "invalid_input",
            SchedulerError::WrongStatus { .. } => "wrong_status",
            SchedulerError::Unsupported { .. } => "unsupported",
        }
    }
}
