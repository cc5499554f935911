//! Missions, content jobs and mission intelligence reports.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ContentJob, ContentJobFilter, ContentJobId, ContentJobStatus, Mission, MissionFilter,
    MissionId, MissionIntelligenceReport, MissionStatus, NewContentJob, NewMission, PostId,
    ReportId, TenantId, validate,
};

use super::{
    Inner, MemoryStore, get_scoped, get_scoped_mut, require_opt_ref, require_ref, scoped,
    truncate_opt,
};
use crate::error::{Result, StorageError};
use crate::traits::MissionStore;

impl Inner {
    fn create_mission(&mut self, new: NewMission) -> Result<Mission> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        require_ref(&self.channels, new.tenant_id, &new.channel_id, "channel")?;
        let mission = Mission {
            id: MissionId::generate(),
            tenant_id: new.tenant_id,
            channel_id: new.channel_id,
            name: new.name,
            status: new.status,
            objective_priority: new.objective_priority,
            start_date: new.start_date,
            end_date: new.end_date,
            created_at: new.created_at,
        };
        self.missions.insert(mission.id, mission.clone());
        Ok(mission)
    }

    fn list_missions(&self, tenant: TenantId, filter: &MissionFilter) -> Vec<Mission> {
        let mut missions: Vec<&Mission> = self
            .missions
            .values()
            .filter(|m| {
                m.tenant_id == tenant
                    && filter.channel_id.is_none_or(|c| m.channel_id == c)
                    && filter.status.is_none_or(|s| m.status == s)
                    && filter
                        .active_on
                        .is_none_or(|d| m.start_date <= d && d <= m.end_date)
            })
            .collect();
        missions.sort_by_key(|m| (m.start_date, m.id));
        truncate_opt(&mut missions, filter.limit);
        missions.into_iter().cloned().collect()
    }

    fn create_content_job(&mut self, new: NewContentJob) -> Result<ContentJob> {
        new.validate()?;
        let tenant = new.tenant_id;
        self.require_tenant(tenant)?;
        require_ref(&self.channels, tenant, &new.channel_id, "channel")?;
        if let Some(mission) = new.mission_id {
            let same_channel = scoped(&self.missions, tenant, &mission)
                .is_some_and(|m| m.channel_id == new.channel_id);
            if !same_channel {
                return Err(StorageError::unknown("mission", mission));
            }
        }
        let job = ContentJob {
            id: ContentJobId::generate(),
            tenant_id: tenant,
            mission_id: new.mission_id,
            channel_id: new.channel_id,
            phase: new.phase,
            status: new.status,
            content: new.content,
            scheduled_post_id: None,
            source_ref: new.source_ref,
            created_at: new.created_at,
            updated_at: new.created_at,
        };
        self.content_jobs.insert(job.id, job.clone());
        Ok(job)
    }

    fn list_content_jobs(&self, tenant: TenantId, filter: &ContentJobFilter) -> Vec<ContentJob> {
        let mut jobs: Vec<&ContentJob> = self
            .content_jobs
            .values()
            .filter(|j| {
                j.tenant_id == tenant
                    && filter.mission_id.is_none_or(|m| j.mission_id == Some(m))
                    && filter.channel_id.is_none_or(|c| j.channel_id == c)
                    && filter.phase.is_none_or(|p| j.phase == p)
                    && filter.status.is_none_or(|s| j.status == s)
            })
            .collect();
        jobs.sort_by_key(|j| (j.created_at, j.id));
        truncate_opt(&mut jobs, filter.limit);
        jobs.into_iter().cloned().collect()
    }

    fn update_content_job(
        &mut self,
        tenant: TenantId,
        id: ContentJobId,
        status: ContentJobStatus,
        scheduled_post: Option<PostId>,
        at: DateTime<Utc>,
    ) -> Result<ContentJob> {
        get_scoped(&self.content_jobs, tenant, &id, "content_job")?;
        require_opt_ref(&self.posts, tenant, scheduled_post.as_ref(), "post")?;
        let job = get_scoped_mut(&mut self.content_jobs, tenant, &id, "content_job")?;
        job.status = status;
        if let Some(post) = scheduled_post {
            job.scheduled_post_id = Some(post);
        }
        job.updated_at = at;
        Ok(job.clone())
    }

    fn add_report(
        &mut self,
        tenant: TenantId,
        mission: MissionId,
        report: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<MissionIntelligenceReport> {
        validate::json("report", &report)?;
        self.require_tenant(tenant)?;
        require_ref(&self.missions, tenant, &mission, "mission")?;
        let report = MissionIntelligenceReport {
            id: ReportId::generate(),
            tenant_id: tenant,
            mission_id: mission,
            report,
            created_at: at,
        };
        self.reports.insert(report.id, report.clone());
        Ok(report)
    }

    fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Option<MissionIntelligenceReport> {
        self.reports
            .values()
            .filter(|r| r.tenant_id == tenant && r.mission_id == mission)
            .max_by_key(|r| (r.created_at, r.id))
            .cloned()
    }
}

#[async_trait]
impl MissionStore for MemoryStore {
    async fn create_mission(&self, new: NewMission) -> Result<Mission> {
        self.lock().create_mission(new)
    }

    async fn get_mission(&self, tenant: TenantId, id: MissionId) -> Result<Mission> {
        get_scoped(&self.lock().missions, tenant, &id, "mission").cloned()
    }

    async fn list_missions(&self, tenant: TenantId, filter: MissionFilter) -> Result<Vec<Mission>> {
        Ok(self.lock().list_missions(tenant, &filter))
    }

    async fn set_mission_status(
        &self,
        tenant: TenantId,
        id: MissionId,
        status: MissionStatus,
    ) -> Result<Mission> {
        let mut inner = self.lock();
        let mission = get_scoped_mut(&mut inner.missions, tenant, &id, "mission")?;
        mission.status = status;
        Ok(mission.clone())
    }

    async fn create_content_job(&self, new: NewContentJob) -> Result<ContentJob> {
        self.lock().create_content_job(new)
    }

    async fn get_content_job(&self, tenant: TenantId, id: ContentJobId) -> Result<ContentJob> {
        get_scoped(&self.lock().content_jobs, tenant, &id, "content_job").cloned()
    }

    async fn list_content_jobs(
        &self,
        tenant: TenantId,
        filter: ContentJobFilter,
    ) -> Result<Vec<ContentJob>> {
        Ok(self.lock().list_content_jobs(tenant, &filter))
    }

    async fn update_content_job(
        &self,
        tenant: TenantId,
        id: ContentJobId,
        status: ContentJobStatus,
        scheduled_post: Option<PostId>,
        at: DateTime<Utc>,
    ) -> Result<ContentJob> {
        self.lock()
            .update_content_job(tenant, id, status, scheduled_post, at)
    }

    async fn add_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
        report: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<MissionIntelligenceReport> {
        self.lock().add_report(tenant, mission, report, at)
    }

    async fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>> {
        Ok(self.lock().latest_report(tenant, mission))
    }
}
