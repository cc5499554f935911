//! The mission reads: a mission's content jobs, its calendar, its summary.

use chrono::{Duration, NaiveDate};
use nexiom_core::{
    ContentJob, ContentJobFilter, ContentJobStatus, MissionId, MissionIntelligenceReport,
    PostFilter, ScheduledPost, TenantId,
};
use serde::{Deserialize, Serialize};

use super::error::MissionError;
use super::orchestrator::{MAX_PLAN_DAYS, MissionOrchestrator};
use super::planner::local_day;

/// One local day of a mission's calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarDay {
    /// The local date (in the tenant's time zone).
    pub date: NaiveDate,
    /// The mission's posts with `publish_at` on that date, any status, by
    /// `publish_at` then id.
    pub posts: Vec<ScheduledPost>,
}

impl MissionOrchestrator {
    /// The mission's content jobs, optionally of one status, oldest first, at
    /// most `limit`. `NotFound` for a mission that is not the tenant's.
    pub async fn list_content_jobs_for_mission(
        &self,
        tenant: TenantId,
        mission: MissionId,
        status: Option<ContentJobStatus>,
        limit: u32,
    ) -> Result<Vec<ContentJob>, MissionError> {
        self.store.get_mission(tenant, mission).await?;
        Ok(self
            .store
            .list_content_jobs(
                tenant,
                ContentJobFilter {
                    mission_id: Some(mission),
                    status,
                    limit: Some(limit),
                    ..ContentJobFilter::default()
                },
            )
            .await?)
    }

    /// The mission's posts over `days` local days from `start` (1 to 366), in
    /// the tenant's time zone: one entry per day, empty days included.
    /// `NotFound` for a mission that is not the tenant's.
    pub async fn list_mission_calendar(
        &self,
        tenant: TenantId,
        mission: MissionId,
        start: NaiveDate,
        days: u32,
    ) -> Result<Vec<CalendarDay>, MissionError> {
        if days == 0 || days > MAX_PLAN_DAYS {
            return Err(MissionError::invalid(
                "days",
                format!("{days} is not between 1 and {MAX_PLAN_DAYS}"),
            ));
        }
        let tz = self.store.get_tenant(tenant).await?.time_zone;
        self.store.get_mission(tenant, mission).await?;
        let last = start
            .checked_add_signed(Duration::days(i64::from(days) - 1))
            .ok_or_else(|| MissionError::invalid("start", "the range ends beyond year 262143"))?;
        let posts = self
            .store
            .list_posts(
                tenant,
                PostFilter {
                    mission_id: Some(mission),
                    from: Some(local_day(start, tz).0),
                    to: Some(local_day(last, tz).1),
                    ..PostFilter::default()
                },
            )
            .await?;
        let mut calendar: Vec<CalendarDay> = start
            .iter_days()
            .take(usize::try_from(days).unwrap_or(0))
            .map(|date| CalendarDay {
                date,
                posts: Vec::new(),
            })
            .collect();
        for post in posts {
            let date = post.publish_at.with_timezone(&tz).date_naive();
            let index = usize::try_from((date - start).num_days()).ok();
            if let Some(day) = index.and_then(|i| calendar.get_mut(i)) {
                day.posts.push(post);
            }
        }
        Ok(calendar)
    }

    /// The mission's latest intelligence report (its summary), if any.
    /// `NotFound` for a mission that is not the tenant's.
    pub async fn get_mission_intelligence_summary(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>, MissionError> {
        self.store.get_mission(tenant, mission).await?;
        Ok(self.store.latest_report(tenant, mission).await?)
    }
}
