//! [`MissionOrchestrator`]: the planner's decisions applied to a store.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use nexiom_core::{
    ChannelId, Clock, CommitOutcome, OrchestrationCommit, OrchestrationQuery, TenantId,
};
use nexiom_storage::Store;
use serde::{Deserialize, Serialize};

use super::error::MissionError;
use super::planner::{DayRequest, OrchestrationSummary, SlotConfig, local_day, simulate_days};

/// The longest range [`MissionOrchestrator::plan_range`] plans at once.
pub const MAX_PLAN_DAYS: u32 = 366;

/// Settings of the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestratorConfig {
    /// Where publish times go within a day.
    pub slots: SlotConfig,
    /// How many times a day is re-planned when its commit finds the day changed
    /// (a concurrent run) before giving up with [`MissionError::Contention`]
    /// (default 5).
    pub max_attempts: u32,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            slots: SlotConfig::default(),
            max_attempts: 5,
        }
    }
}

/// Whether [`MissionOrchestrator::plan_range`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// Plan only; nothing is written. Later days account for the posts earlier
    /// days would have created and the jobs they would have used.
    DryRun,
    /// Orchestrate each day in turn, writing its posts.
    Commit,
}

/// The calendar a range plan produced: one summary per day, in date order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangePlan {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Each day's summary.
    pub days: Vec<OrchestrationSummary>,
}

impl RangePlan {
    /// How many posts the plan scheduled over all its days.
    pub fn total_scheduled(&self) -> usize {
        self.days.iter().map(|d| d.scheduled.len()).sum()
    }
}

/// Decides, per channel and local day, which content jobs of which missions are
/// published, and reads missions back.
///
/// The decisions are the pure [`plan_day`](crate::plan_day) over a
/// [snapshot](nexiom_storage::MissionStore::orchestration_snapshot) of the
/// store; the writes are one atomic
/// [`commit_orchestration`](nexiom_storage::MissionStore::commit_orchestration),
/// which refuses a plan whose day changed meanwhile, and the day is then planned
/// again from a fresh snapshot. So re-running a day schedules nothing more, and
/// concurrent runs (threads or processes on one Postgres) never exceed the cap.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use nexiom_core::*;
/// use nexiom_scheduler::MissionOrchestrator;
/// use nexiom_storage::{MemoryStore, Store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 6, 0, 0).unwrap()));
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let tenant = store.create_tenant(NewTenant::new("Acme", clock.now())).await?;
/// let channel = store.create_channel(NewChannel {
///     tenant_id: tenant.id, platform: Platform::Facebook, external_account_id: "page-1".into(),
///     name: "Page".into(), credentials: Credentials::default(), created_at: clock.now(),
/// }).await?;
/// let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
/// let mission = store.create_mission(NewMission {
///     tenant_id: tenant.id, channel_id: channel.id, name: "Launch".into(),
///     status: MissionStatus::Active, objective_priority: ObjectivePriority::High,
///     start_date: day, end_date: day, created_at: clock.now(),
/// }).await?;
/// store.create_content_job(NewContentJob {
///     tenant_id: tenant.id, mission_id: Some(mission.id), channel_id: channel.id,
///     phase: Phase::Intro, status: ContentJobStatus::Ready, content: Content::text("Hello"),
///     source_ref: None, created_at: clock.now(),
/// }).await?;
///
/// let orchestrator = MissionOrchestrator::new(Arc::clone(&store), clock);
/// let summary = orchestrator
///     .orchestrate_global_publishing(tenant.id, channel.id, day, 3, chrono_tz::Europe::Paris)
///     .await?;
/// assert_eq!(summary.scheduled.len(), 1);
/// // 09:00 in Paris.
/// assert_eq!(summary.scheduled[0].publish_at, Utc.with_ymd_and_hms(2026, 5, 1, 7, 0, 0).unwrap());
/// println!("{}", serde_json::to_string_pretty(&summary).unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MissionOrchestrator {
    pub(super) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: OrchestratorConfig,
}

impl std::fmt::Debug for MissionOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MissionOrchestrator")
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MissionOrchestrator {
    /// An orchestrator over `store`, reading time from `clock`, with the default
    /// [`OrchestratorConfig`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        MissionOrchestrator {
            store,
            clock,
            config: OrchestratorConfig::default(),
        }
    }

    /// The same orchestrator with `config`.
    pub fn with_config(mut self, config: OrchestratorConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OrchestratorConfig {
        &self.config
    }

    fn request(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        date: NaiveDate,
        max_posts_per_day: u32,
        time_zone: Tz,
    ) -> DayRequest {
        DayRequest {
            tenant_id: tenant,
            channel_id: channel,
            date,
            time_zone,
            max_posts_per_day,
            now: self.clock.now(),
            slots: self.config.slots,
        }
    }

    /// Schedules the channel's posts for local date `date` in `time_zone`, at
    /// most `max_posts_per_day` counting the posts already there, following the
    /// orchestrator rules (one post per mission per day, active missions within
    /// their dates, the expected phase with fallback, ranking by priority, then
    /// exact phase, then end date, then job age). Returns what it scheduled and
    /// why each other mission in play got nothing.
    ///
    /// Re-running it for the same day schedules nothing more; concurrent runs
    /// never exceed the cap. `NotFound` for a channel that is not the tenant's;
    /// [`MissionError::Contention`] when the day changed under every attempt.
    #[tracing::instrument(skip(self), fields(tenant = %tenant, channel = %channel, date = %date))]
    pub async fn orchestrate_global_publishing(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        date: NaiveDate,
        max_posts_per_day: u32,
        time_zone: Tz,
    ) -> Result<OrchestrationSummary, MissionError> {
        self.store.get_channel(tenant, channel).await?;
        let attempts = self.config.max_attempts.max(1);
        for attempt in 1..=attempts {
            let req = self.request(tenant, channel, date, max_posts_per_day, time_zone);
            let (from, to) = local_day(date, time_zone);
            let snapshot = self
                .store
                .orchestration_snapshot(OrchestrationQuery {
                    tenant_id: tenant,
                    channel_id: channel,
                    first_date: date,
                    last_date: date,
                    from,
                    to,
                    jobs_per_phase: 1,
                })
                .await?;
            let Some(plan) = simulate_days(&req, 1, &snapshot).pop() else {
                break;
            };
            let mut summary = plan.summary;
            summary.dry_run = false;
            if plan.entries.is_empty() {
                return Ok(summary);
            }
            let outcome = self
                .store
                .commit_orchestration(OrchestrationCommit {
                    tenant_id: tenant,
                    channel_id: channel,
                    from: plan.from,
                    to: plan.to,
                    max_posts_per_day,
                    expected_posts: plan.expected_posts,
                    entries: plan.entries,
                    at: req.now,
                })
                .await?;
            match outcome {
                CommitOutcome::Committed(posts) => {
                    for (item, post) in summary.scheduled.iter_mut().zip(&posts) {
                        item.post_id = Some(post.id);
                    }
                    tracing::info!(
                        scheduled = posts.len(),
                        skipped = summary.skipped.len(),
                        "orchestrated"
                    );
                    return Ok(summary);
                }
                CommitOutcome::Stale { reason } => {
                    tracing::debug!(attempt, %reason, "the day changed; planning again");
                }
            }
        }
        Err(MissionError::Contention { attempts })
    }

    /// Plans `days` days from `start` (1 to [`MAX_PLAN_DAYS`]) and returns the
    /// resulting calendar. In [`PlanMode::DryRun`] nothing is written: one
    /// snapshot is read and the days are simulated in order, each seeing the
    /// posts and jobs the earlier ones would have used. In [`PlanMode::Commit`]
    /// each day is orchestrated in turn with
    /// [`orchestrate_global_publishing`](Self::orchestrate_global_publishing).
    /// Without concurrent writers, a dry run returns what a commit would do
    /// (post ids aside).
    #[tracing::instrument(skip(self), fields(tenant = %tenant, channel = %channel))]
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_range(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        start: NaiveDate,
        days: u32,
        max_posts_per_day: u32,
        time_zone: Tz,
        mode: PlanMode,
    ) -> Result<RangePlan, MissionError> {
        if days == 0 || days > MAX_PLAN_DAYS {
            return Err(MissionError::invalid(
                "days",
                format!("{days} is not between 1 and {MAX_PLAN_DAYS}"),
            ));
        }
        let last = start
            .checked_add_signed(Duration::days(i64::from(days) - 1))
            .ok_or_else(|| MissionError::invalid("start", "the range ends beyond year 262143"))?;
        match mode {
            PlanMode::Commit => {
                let mut out = Vec::new();
                let mut date = start;
                while date <= last {
                    out.push(
                        self.orchestrate_global_publishing(
                            tenant,
                            channel,
                            date,
                            max_posts_per_day,
                            time_zone,
                        )
                        .await?,
                    );
                    let Some(next) = date.succ_opt() else { break };
                    date = next;
                }
                Ok(RangePlan {
                    dry_run: false,
                    days: out,
                })
            }
            PlanMode::DryRun => {
                self.store.get_channel(tenant, channel).await?;
                let snapshot = self
                    .store
                    .orchestration_snapshot(OrchestrationQuery {
                        tenant_id: tenant,
                        channel_id: channel,
                        first_date: start,
                        last_date: last,
                        from: local_day(start, time_zone).0,
                        to: local_day(last, time_zone).1,
                        jobs_per_phase: days,
                    })
                    .await?;
                let req = self.request(tenant, channel, start, max_posts_per_day, time_zone);
                let plans = simulate_days(&req, days, &snapshot);
                Ok(RangePlan {
                    dry_run: true,
                    days: plans.into_iter().map(|p| p.summary).collect(),
                })
            }
        }
    }
}
