//! Missions, content jobs and mission intelligence reports.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use nexiom_core::{
    COUNTED_POST_STATUSES, CommitOutcome, ContentJob, ContentJobFilter, ContentJobId,
    ContentJobStatus, DayPost, Mission, MissionFilter, MissionId, MissionIntelligenceReport,
    MissionStatus, NewContentJob, NewMission, NewScheduledPost, OrchestrationCommit,
    OrchestrationQuery, OrchestrationSnapshot, PostId, ReadyJob, ReportId, ScheduledPost, TenantId,
    validate,
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
            platform_post_id: None,
            published_at: None,
            error_message: None,
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
        if !status.is_settled() {
            job.platform_post_id = None;
            job.published_at = None;
            job.error_message = None;
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

    fn orchestration_snapshot(&self, q: &OrchestrationQuery) -> OrchestrationSnapshot {
        let mut missions: Vec<Mission> = self
            .missions
            .values()
            .filter(|m| {
                m.tenant_id == q.tenant_id
                    && m.channel_id == q.channel_id
                    && m.start_date <= q.last_date
                    && q.first_date <= m.end_date
            })
            .cloned()
            .collect();
        missions.sort_by_key(|m| (m.start_date, m.id));
        let wanted: HashSet<MissionId> = missions.iter().map(|m| m.id).collect();

        let mut ready: Vec<ReadyJob> = self
            .content_jobs
            .values()
            .filter(|j| {
                j.tenant_id == q.tenant_id
                    && j.channel_id == q.channel_id
                    && j.status == ContentJobStatus::Ready
            })
            .filter_map(|j| {
                let mission_id = j.mission_id.filter(|m| wanted.contains(m))?;
                Some(ReadyJob {
                    id: j.id,
                    mission_id,
                    phase: j.phase,
                    created_at: j.created_at,
                })
            })
            .collect();
        ready.sort_by_key(|j| (j.mission_id, j.phase.index(), j.created_at, j.id));
        let per_phase = usize::try_from(q.jobs_per_phase).unwrap_or(usize::MAX);
        let mut taken: HashMap<(MissionId, u32), usize> = HashMap::new();
        ready.retain(|j| {
            let n = taken.entry((j.mission_id, j.phase.index())).or_insert(0);
            *n += 1;
            *n <= per_phase
        });

        let mut posts: Vec<DayPost> = self
            .counted_posts(q.tenant_id, q.channel_id, q.from, q.to)
            .map(|p| DayPost {
                id: p.id,
                mission_id: p.mission_id,
                publish_at: p.publish_at,
            })
            .collect();
        posts.sort_by_key(|p| (p.publish_at, p.id));
        OrchestrationSnapshot {
            missions,
            ready_jobs: ready,
            posts,
        }
    }

    /// The channel's posts counted against its daily cap in `[from, to)`.
    fn counted_posts(
        &self,
        tenant: TenantId,
        channel: nexiom_core::ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = &ScheduledPost> {
        self.posts.values().filter(move |p| {
            p.tenant_id == tenant
                && p.channel_id == channel
                && p.publish_at >= from
                && p.publish_at < to
                && COUNTED_POST_STATUSES.contains(&p.status)
                && p.origin == nexiom_core::PostOrigin::Scheduled
        })
    }

    fn commit_orchestration(&mut self, c: OrchestrationCommit) -> Result<CommitOutcome> {
        c.validate()?;
        // Everything below runs under the store's one lock: the check and the
        // writes are one atomic step, like the advisory lock on Postgres.
        let planned: HashSet<MissionId> = c.entries.iter().map(|e| e.mission_id).collect();
        let mut stored: Vec<PostId> = Vec::new();
        for post in self.counted_posts(c.tenant_id, c.channel_id, c.from, c.to) {
            if let Some(mission) = post.mission_id.filter(|m| planned.contains(m)) {
                return Ok(CommitOutcome::mission_already_posted(mission, post.id));
            }
            stored.push(post.id);
        }
        let mut expected = c.expected_posts.clone();
        stored.sort();
        expected.sort();
        if stored != expected {
            return Ok(CommitOutcome::day_changed(stored.len(), expected.len()));
        }
        for entry in &c.entries {
            let usable = self
                .content_jobs
                .get(&entry.content_job_id)
                .is_some_and(|j| {
                    j.tenant_id == c.tenant_id
                        && j.channel_id == c.channel_id
                        && j.mission_id == Some(entry.mission_id)
                        && j.status == ContentJobStatus::Ready
                });
            if !usable {
                return Ok(CommitOutcome::job_not_ready(
                    entry.content_job_id,
                    entry.mission_id,
                ));
            }
        }

        let mut created = Vec::with_capacity(c.entries.len());
        for entry in &c.entries {
            let content = self
                .content_jobs
                .get(&entry.content_job_id)
                .map(|j| j.content.clone())
                .unwrap_or_default();
            let new = NewScheduledPost {
                mission_id: Some(entry.mission_id),
                content_job_id: Some(entry.content_job_id),
                ..NewScheduledPost::one_off(
                    c.tenant_id,
                    c.channel_id,
                    content,
                    entry.publish_at,
                    c.at,
                )
            };
            let post = self.insert_post(new)?.record;
            if let Some(job) = self.content_jobs.get_mut(&entry.content_job_id) {
                job.status = ContentJobStatus::Scheduled;
                job.scheduled_post_id = Some(post.id);
                job.updated_at = c.at;
            }
            created.push(post);
        }
        Ok(CommitOutcome::Committed(created))
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

    async fn orchestration_snapshot(
        &self,
        query: OrchestrationQuery,
    ) -> Result<OrchestrationSnapshot> {
        query.validate()?;
        Ok(self.lock().orchestration_snapshot(&query))
    }

    async fn commit_orchestration(&self, commit: OrchestrationCommit) -> Result<CommitOutcome> {
        self.lock().commit_orchestration(commit)
    }
}
