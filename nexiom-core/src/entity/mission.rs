use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::entity::ScheduledPost;
use crate::enums::{ContentJobStatus, MissionStatus, ObjectivePriority, Phase, PostStatus};
use crate::error::CoreError;
use crate::id::{ChannelId, ContentJobId, MissionId, PostId, ReportId, TenantId};
use crate::validate;

/// A marketing mission on one channel between two dates (inclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mission {
    /// Id.
    pub id: MissionId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel it publishes on.
    pub channel_id: ChannelId,
    /// Name.
    pub name: String,
    /// Status.
    pub status: MissionStatus,
    /// Priority of its objective.
    pub objective_priority: ObjectivePriority,
    /// First day (local date).
    pub start_date: NaiveDate,
    /// Last day (local date), `>= start_date`.
    pub end_date: NaiveDate,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to create a [`Mission`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewMission {
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Name (non-empty).
    pub name: String,
    /// Initial status.
    pub status: MissionStatus,
    /// Priority.
    pub objective_priority: ObjectivePriority,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (`>= start_date`).
    pub end_date: NaiveDate,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewMission {
    /// Checks `name`, then that `end_date` >= `start_date`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)?;
        if self.start_date > self.end_date {
            return Err(CoreError::invalid(
                "end_date",
                format!(
                    "{} is before the start date {}",
                    self.end_date, self.start_date
                ),
            ));
        }
        Ok(())
    }
}

/// Filter for listing missions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MissionFilter {
    /// Channel.
    pub channel_id: Option<ChannelId>,
    /// Status.
    pub status: Option<MissionStatus>,
    /// Missions whose dates include this day.
    pub active_on: Option<NaiveDate>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// A piece of content to publish, usually for a mission phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentJob {
    /// Id.
    pub id: ContentJobId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission, if any.
    pub mission_id: Option<MissionId>,
    /// Channel.
    pub channel_id: ChannelId,
    /// Phase it belongs to.
    pub phase: Phase,
    /// Status.
    pub status: ContentJobStatus,
    /// What to publish.
    pub content: Content,
    /// The scheduled post made from it.
    pub scheduled_post_id: Option<PostId>,
    /// The platform's id of its post, once that post is `published` (written
    /// with the post's settlement).
    #[serde(default)]
    pub platform_post_id: Option<String>,
    /// When its post went out, once `published`.
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    /// Why its post failed for good, once `failed`.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Where it came from (for example a prepared Facebook post's id).
    pub source_ref: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input to create a [`ContentJob`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewContentJob {
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission (must belong to the tenant and use the same channel).
    pub mission_id: Option<MissionId>,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Phase.
    pub phase: Phase,
    /// Initial status.
    pub status: ContentJobStatus,
    /// Content.
    pub content: Content,
    /// Origin reference.
    pub source_ref: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewContentJob {
    /// Checks the content, then `source_ref`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.content.validate()?;
        validate::opt_key("source_ref", self.source_ref.as_deref())
    }
}

/// Filter for listing content jobs; ordered oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContentJobFilter {
    /// Mission.
    pub mission_id: Option<MissionId>,
    /// Channel.
    pub channel_id: Option<ChannelId>,
    /// Phase.
    pub phase: Option<Phase>,
    /// Status.
    pub status: Option<ContentJobStatus>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// A mission intelligence report; the latest one is the mission's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissionIntelligenceReport {
    /// Id.
    pub id: ReportId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission.
    pub mission_id: MissionId,
    /// The report.
    pub report: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What `MissionStore::orchestration_snapshot` (in `nexiom-storage`) reads: everything the mission
/// orchestrator needs to plan a channel over local dates `first_date..=last_date`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestrationQuery {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel being planned.
    pub channel_id: ChannelId,
    /// First local date planned.
    pub first_date: NaiveDate,
    /// Last local date planned (`>= first_date`).
    pub last_date: NaiveDate,
    /// Start of `first_date`'s local day, in UTC.
    pub from: DateTime<Utc>,
    /// End of `last_date`'s local day (exclusive), in UTC.
    pub to: DateTime<Utc>,
    /// How many ready jobs to return per (mission, phase), oldest first; at least
    /// 1 (a plan over `n` days needs at most `n`).
    pub jobs_per_phase: u32,
}

impl OrchestrationQuery {
    /// Checks the dates, the window and `jobs_per_phase`; the storage backends
    /// call it before reading.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.first_date > self.last_date {
            return Err(CoreError::invalid(
                "last_date",
                format!(
                    "{} is before the first date {}",
                    self.last_date, self.first_date
                ),
            ));
        }
        if self.from >= self.to {
            return Err(CoreError::invalid(
                "to",
                format!("{} is not after {}", self.to, self.from),
            ));
        }
        if self.jobs_per_phase == 0 {
            return Err(CoreError::invalid("jobs_per_phase", "must be at least 1"));
        }
        Ok(())
    }
}

/// A `ready` content job of a mission, as the orchestrator ranks it (its content
/// stays in storage until the job is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReadyJob {
    /// The job.
    pub id: ContentJobId,
    /// Its mission.
    pub mission_id: MissionId,
    /// Its phase.
    pub phase: Phase,
    /// Its creation time (older jobs go first).
    pub created_at: DateTime<Utc>,
}

/// A post that counts against a channel's daily cap: `queued`, `publishing` or
/// `published`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DayPost {
    /// The post.
    pub id: PostId,
    /// The mission it serves, if any.
    pub mission_id: Option<MissionId>,
    /// When it is (or was) published.
    pub publish_at: DateTime<Utc>,
}

/// The post statuses that count against a channel's daily cap and against "one
/// post per mission per day".
pub const COUNTED_POST_STATUSES: [PostStatus; 3] = [
    PostStatus::Queued,
    PostStatus::Publishing,
    PostStatus::Published,
];

/// What [`OrchestrationQuery`] returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrchestrationSnapshot {
    /// The channel's missions (any status) whose dates overlap the planned
    /// dates, by start date then id.
    pub missions: Vec<Mission>,
    /// For each of those missions and each phase, its oldest `jobs_per_phase`
    /// `ready` jobs; ordered by mission id, phase (intro, nurture, closing),
    /// creation time, then id.
    pub ready_jobs: Vec<ReadyJob>,
    /// The channel's posts with `publish_at` in `[from, to)` and a status in
    /// [`COUNTED_POST_STATUSES`], by `publish_at` then id.
    pub posts: Vec<DayPost>,
}

/// One post the orchestrator decided to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPost {
    /// The mission it serves.
    pub mission_id: MissionId,
    /// The `ready` job it publishes.
    pub content_job_id: ContentJobId,
    /// When to publish it.
    pub publish_at: DateTime<Utc>,
}

/// Input of `MissionStore::commit_orchestration` (in `nexiom-storage`): a day's plan and what it was
/// planned against.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestrationCommit {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// Start of the local day, in UTC.
    pub from: DateTime<Utc>,
    /// End of the local day (exclusive), in UTC.
    pub to: DateTime<Utc>,
    /// The day's cap.
    pub max_posts_per_day: u32,
    /// The counted posts of the day the plan saw (any order).
    pub expected_posts: Vec<PostId>,
    /// The posts to create, in ranking order.
    pub entries: Vec<PlannedPost>,
    /// When the commit happens (`created_at` / `updated_at`).
    pub at: DateTime<Utc>,
}

impl OrchestrationCommit {
    /// Checks the window, that every entry falls in it, that no mission or job
    /// appears twice, and that the plan fits under the cap; the storage backends
    /// call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.from >= self.to {
            return Err(CoreError::invalid(
                "to",
                format!("{} is not after {}", self.to, self.from),
            ));
        }
        let planned = self.expected_posts.len() + self.entries.len();
        if planned > usize::try_from(self.max_posts_per_day).unwrap_or(usize::MAX) {
            return Err(CoreError::invalid(
                "entries",
                format!(
                    "{} existing and {} new posts exceed the cap of {}",
                    self.expected_posts.len(),
                    self.entries.len(),
                    self.max_posts_per_day
                ),
            ));
        }
        let mut missions = std::collections::HashSet::new();
        let mut jobs = std::collections::HashSet::new();
        for entry in &self.entries {
            if entry.publish_at < self.from || entry.publish_at >= self.to {
                return Err(CoreError::invalid(
                    "publish_at",
                    format!("{} is outside the day being committed", entry.publish_at),
                ));
            }
            if !missions.insert(entry.mission_id) {
                return Err(CoreError::invalid(
                    "entries",
                    format!("mission {} appears twice", entry.mission_id),
                ));
            }
            if !jobs.insert(entry.content_job_id) {
                return Err(CoreError::invalid(
                    "entries",
                    format!("content job {} appears twice", entry.content_job_id),
                ));
            }
        }
        Ok(())
    }
}

/// What [`OrchestrationCommit`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// Every entry was created, in entry order; the jobs are `scheduled`.
    Committed(Vec<ScheduledPost>),
    /// The day or a job changed since the plan was made; nothing was written.
    /// Re-read and plan again.
    Stale {
        /// What changed.
        reason: String,
    },
}

impl CommitOutcome {
    /// `Stale`: the job is no longer a `ready` job of the mission on the channel.
    pub fn job_not_ready(job: ContentJobId, mission: MissionId) -> Self {
        CommitOutcome::Stale {
            reason: format!(
                "content job {job} is no longer a ready job of mission {mission} on this channel"
            ),
        }
    }

    /// `Stale`: the mission has a counted post on the day already.
    pub fn mission_already_posted(mission: MissionId, post: PostId) -> Self {
        CommitOutcome::Stale {
            reason: format!("mission {mission} already has post {post} on this day"),
        }
    }

    /// `Stale`: the day's counted posts are not the ones the plan saw.
    pub fn day_changed(found: usize, expected: usize) -> Self {
        CommitOutcome::Stale {
            reason: format!(
                "the day's counted posts changed: {found} now, {expected} when planned"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_date_must_not_precede_start_date() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("a March day");
        let mut mission = NewMission {
            tenant_id: TenantId::generate(),
            channel_id: ChannelId::generate(),
            name: "Launch".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::High,
            start_date: day(10),
            end_date: day(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert!(matches!(
            mission.validate(),
            Err(CoreError::Invalid {
                field: "end_date",
                ..
            })
        ));
        mission.end_date = day(10);
        assert_eq!(mission.validate(), Ok(()));
        mission.name = String::new();
        assert!(matches!(
            mission.validate(),
            Err(CoreError::Invalid { field: "name", .. })
        ));
    }
}
