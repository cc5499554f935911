//! The scenarios' world: a tenant's Facebook page, the orchestrator over it
//! and a manual clock at t0 (1 June 2026, 08:00 in Paris), missions and
//! their ready jobs, manual posts; and readers of a run's summary.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::{MissionOrchestrator, OrchestrationSummary, SkipReason, local_instant};
use nexiom_storage::Store;

pub fn june(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
}

/// Local wall time in Paris, as UTC.
pub fn paris(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    local_instant(june(d).and_hms_opt(h, m, 0).unwrap(), Paris)
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 6, 0, 0).unwrap()
}

pub struct Fx {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub orch: MissionOrchestrator,
    pub tenant: TenantId,
    pub channel: ChannelId,
}

pub async fn fx(store: Arc<dyn Store>) -> Fx {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Studio", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: "page-1".into(),
            name: "Page".into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let orch = MissionOrchestrator::new(Arc::clone(&store), clock.clone());
    Fx {
        store,
        clock,
        orch,
        tenant: tenant.id,
        channel: channel.id,
    }
}

impl Fx {
    pub async fn mission(
        &self,
        name: &str,
        priority: ObjectivePriority,
        start: u32,
        end: u32,
    ) -> Mission {
        self.store
            .create_mission(NewMission {
                tenant_id: self.tenant,
                channel_id: self.channel,
                name: name.into(),
                status: MissionStatus::Active,
                objective_priority: priority,
                start_date: june(start),
                end_date: june(end),
                created_at: t0(),
            })
            .await
            .unwrap()
    }

    /// A ready job created `age_rank` minutes after t0 (smaller is older).
    pub async fn job(&self, mission: &Mission, phase: Phase, age_rank: i64) -> ContentJob {
        self.store
            .create_content_job(NewContentJob {
                tenant_id: self.tenant,
                mission_id: Some(mission.id),
                channel_id: self.channel,
                phase,
                status: ContentJobStatus::Ready,
                content: Content::text(format!("{} {phase} {age_rank}", mission.name)),
                source_ref: Some(format!(
                    "prepared_facebook_post:{}-{age_rank}",
                    mission.name
                )),
                created_at: t0() + Duration::minutes(age_rank),
            })
            .await
            .unwrap()
    }

    pub async fn post(&self, mission: Option<MissionId>, at: DateTime<Utc>) -> ScheduledPost {
        let mut new =
            NewScheduledPost::one_off(self.tenant, self.channel, Content::text("manual"), at, t0());
        new.mission_id = mission;
        self.store.insert_post(new).await.unwrap().record
    }

    pub async fn run(&self, day: u32, cap: u32) -> OrchestrationSummary {
        self.orch
            .orchestrate_global_publishing(self.tenant, self.channel, june(day), cap, Paris)
            .await
            .unwrap()
    }

    pub async fn counted(&self, day: u32) -> u64 {
        self.store
            .count_posts(
                self.tenant,
                self.channel,
                paris(day, 0, 0),
                paris(day + 1, 0, 0),
                &COUNTED_POST_STATUSES,
            )
            .await
            .unwrap()
    }

    pub async fn job_status(&self, job: &ContentJob) -> ContentJobStatus {
        self.store
            .get_content_job(self.tenant, job.id)
            .await
            .unwrap()
            .status
    }
}

pub fn scheduled_missions(s: &OrchestrationSummary) -> Vec<MissionId> {
    s.scheduled.iter().map(|i| i.mission_id).collect()
}

pub fn times(s: &OrchestrationSummary) -> Vec<DateTime<Utc>> {
    s.scheduled.iter().map(|i| i.publish_at).collect()
}

pub fn skip_of(s: &OrchestrationSummary, mission: &Mission) -> Option<SkipReason> {
    s.skipped
        .iter()
        .find(|k| k.mission_id == mission.id)
        .map(|k| k.reason)
}
