//! Marketing missions and the global publishing orchestrator.
//!
//! - The planner — the decision logic, pure: [`plan_day`] implements the
//!   orchestrator's rules for one channel and local day over plain inputs, and
//!   [`simulate_days`] repeats it over a range, carrying used jobs and planned
//!   posts from day to day.
//! - [`MissionOrchestrator`] — applies those decisions to a store:
//!   [`orchestrate_global_publishing`](MissionOrchestrator::orchestrate_global_publishing)
//!   (snapshot, plan, atomic commit, re-plan when the day changed),
//!   [`plan_range`](MissionOrchestrator::plan_range) (dry run or commit over a
//!   range of days), and the mission reads.

mod error;
mod orchestrator;
mod planner;
mod reads;

pub use error::MissionError;
pub use orchestrator::{
    MAX_PLAN_DAYS, MissionOrchestrator, OrchestratorConfig, PlanMode, RangePlan,
};
pub use planner::{
    DayPlan, DayRequest, JobPool, OrchestrationSummary, ScheduledItem, SkipReason, SkippedMission,
    SlotConfig, expected_phase, local_day, plan_day, simulate_days,
};
pub use reads::CalendarDay;
