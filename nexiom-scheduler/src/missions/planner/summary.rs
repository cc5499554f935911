//! What a day's plan reports: the missions scheduled ([`ScheduledItem`]), those
//! skipped and why ([`SkippedMission`], [`SkipReason`]), the serializable
//! [`OrchestrationSummary`], and the [`DayPlan`] that carries it with the posts to
//! commit.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use nexiom_core::{
    ChannelId, ContentJobId, MissionId, MissionStatus, ObjectivePriority, Phase, PlannedPost,
    PostId, TenantId,
};
use serde::{Deserialize, Serialize};

/// Why a mission got no post on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SkipReason {
    /// The mission's dates include the day but it is not `active`.
    NotActive {
        /// Its status.
        status: MissionStatus,
    },
    /// The mission already has a post on the day (one post per mission per day).
    AlreadyPostedToday {
        /// That post.
        post_id: PostId,
    },
    /// The mission has no `ready` content job in any phase.
    NoReadyJob,
    /// Higher-ranked candidates (or existing posts) filled the day's cap.
    DailyCapReached,
    /// The whole local day is in the past.
    DateInPast,
    /// The day is not over, but no distinct publish time is left on it.
    NoPublishTimeLeft,
}

impl SkipReason {
    /// The reason in words, for logs and user interfaces.
    pub fn describe(&self) -> String {
        match self {
            SkipReason::NotActive { status } => format!("the mission is {status}, not active"),
            SkipReason::AlreadyPostedToday { post_id } => {
                format!("the mission already has post {post_id} on this day")
            }
            SkipReason::NoReadyJob => "the mission has no ready content job".to_owned(),
            SkipReason::DailyCapReached => "the channel's daily cap is reached".to_owned(),
            SkipReason::DateInPast => "the date is in the past".to_owned(),
            SkipReason::NoPublishTimeLeft => "no publish time is left on this day".to_owned(),
        }
    }
}

/// A mission that got no post, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedMission {
    /// The mission.
    pub mission_id: MissionId,
    /// Why.
    pub reason: SkipReason,
}

/// One post the orchestrator scheduled (or, in a dry run, would schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledItem {
    /// The mission.
    pub mission_id: MissionId,
    /// The content job published.
    pub content_job_id: ContentJobId,
    /// The post created; `None` in a dry run.
    pub post_id: Option<PostId>,
    /// When it is published.
    pub publish_at: DateTime<Utc>,
    /// The job's phase.
    pub phase: Phase,
    /// The phase the mission is in on that day.
    pub expected_phase: Phase,
    /// `true` when no ready job of the expected phase existed and the nearest
    /// phase's job was taken instead.
    pub phase_fallback: bool,
    /// The mission's priority.
    pub objective_priority: ObjectivePriority,
}

/// What one day's orchestration did (or, in a dry run, would do). Serializes
/// to JSON for logs and user interfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestrationSummary {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// The local date.
    pub date: NaiveDate,
    /// The time zone of `date`.
    pub time_zone: Tz,
    /// The day's cap.
    pub cap: u32,
    /// Counted posts (queued, publishing, published) already on the day before
    /// this run.
    pub already_scheduled: u32,
    /// What this run scheduled, in ranking order.
    pub scheduled: Vec<ScheduledItem>,
    /// Missions in play that got nothing, and why.
    pub skipped: Vec<SkippedMission>,
    /// `true` when nothing was written.
    pub dry_run: bool,
}

/// A day's plan: its summary and what to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPlan {
    /// The summary (post ids unset until committed).
    pub summary: OrchestrationSummary,
    /// Start of the local day, UTC.
    pub from: DateTime<Utc>,
    /// End of the local day (exclusive), UTC.
    pub to: DateTime<Utc>,
    /// The counted posts the plan saw on the day.
    pub expected_posts: Vec<PostId>,
    /// The posts to create, in ranking order.
    pub entries: Vec<PlannedPost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_read_well_and_serialize_with_a_code() {
        let reason = SkipReason::NotActive {
            status: MissionStatus::Paused,
        };
        assert_eq!(reason.describe(), "the mission is paused, not active");
        let json = serde_json::to_value(reason).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "not_active", "status": "paused"})
        );
    }
}
