//! Missions, content jobs and mission intelligence reports.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Missions, content jobs and mission intelligence reports.
#[async_trait]
pub trait MissionStore: Send + Sync {
    /// Creates a mission. `start_date <= end_date`; the channel must be the tenant's.
    async fn create_mission(&self, new: NewMission) -> Result<Mission>;
    /// The mission, or `NotFound`.
    async fn get_mission(&self, tenant: TenantId, id: MissionId) -> Result<Mission>;
    /// The tenant's missions matching `filter`, by start date then id.
    async fn list_missions(&self, tenant: TenantId, filter: MissionFilter) -> Result<Vec<Mission>>;
    /// Sets the mission's status.
    async fn set_mission_status(
        &self,
        tenant: TenantId,
        id: MissionId,
        status: MissionStatus,
    ) -> Result<Mission>;

    /// Creates a content job. A mission, when given, must be the tenant's and on
    /// the same channel.
    async fn create_content_job(&self, new: NewContentJob) -> Result<ContentJob>;
    /// The job, or `NotFound`.
    async fn get_content_job(&self, tenant: TenantId, id: ContentJobId) -> Result<ContentJob>;
    /// The tenant's jobs matching `filter`, oldest first.
    async fn list_content_jobs(
        &self,
        tenant: TenantId,
        filter: ContentJobFilter,
    ) -> Result<Vec<ContentJob>>;
    /// Sets the job's status and, when `Some`, its scheduled post. A status
    /// other than `published` / `failed` clears the outcome of its last post
    /// (`platform_post_id`, `published_at`, `error_message`).
    async fn update_content_job(
        &self,
        tenant: TenantId,
        id: ContentJobId,
        status: ContentJobStatus,
        scheduled_post: Option<PostId>,
        at: DateTime<Utc>,
    ) -> Result<ContentJob>;

    /// Adds an intelligence report to the mission.
    async fn add_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
        report: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<MissionIntelligenceReport>;
    /// The mission's latest report (its summary), if any.
    async fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>>;

    /// Everything the mission orchestrator plans from, read in one consistent
    /// step (see [`OrchestrationSnapshot`] for what each list holds and its
    /// order): the channel's missions overlapping the dates, the oldest
    /// `jobs_per_phase` ready jobs of each (mission, phase), and the channel's
    /// counted posts in `[from, to)`. Jobs without a mission are never returned.
    /// `Invalid` for a bad query; an unknown tenant or channel reads as empty.
    async fn orchestration_snapshot(
        &self,
        query: OrchestrationQuery,
    ) -> Result<OrchestrationSnapshot>;

    /// Applies one day's orchestration plan atomically, or nothing.
    ///
    /// Runs serialized with every other commit on the same `(tenant, channel)`
    /// (on Postgres a transaction-level advisory lock; in memory the store's
    /// lock), then checks, against the stored state at that moment:
    ///
    /// 1. the channel's counted posts ([`COUNTED_POST_STATUSES`]) with
    ///    `publish_at` in `[from, to)` are exactly `expected_posts`, and none of
    ///    them serves a mission of `entries`;
    /// 2. every entry's job is a `ready` job of the tenant, on the channel, of the
    ///    entry's mission.
    ///
    /// When both hold it creates one `queued` post per entry (the job's content,
    /// the entry's `publish_at`, linked to the mission and the job,
    /// `created_at = at`) and marks each job `scheduled` with its post, and
    /// answers [`CommitOutcome::Committed`] with the posts in entry order.
    /// Otherwise it writes nothing and answers [`CommitOutcome::Stale`] saying
    /// what changed. So however many callers race, a day never holds more than
    /// `max_posts_per_day` counted posts from commits, never two posts of one
    /// mission, and a job is never scheduled twice.
    ///
    /// `Invalid` (nothing read or written) when [`OrchestrationCommit::validate`]
    /// refuses the input, for example a plan that does not fit under the cap.
    async fn commit_orchestration(&self, commit: OrchestrationCommit) -> Result<CommitOutcome>;
}
