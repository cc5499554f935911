//! Rows of `missions`, `content_jobs` and `mission_reports`, and what
//! orchestration reads.

use chrono::{DateTime, NaiveDate, Utc};
use nexiom_core::{Content, ContentJob, DayPost, Mission, MissionIntelligenceReport, ReadyJob};
use sqlx::types::Json;
use uuid::Uuid;

use super::convert::parse;
use crate::error::Result;

/// `missions`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct MissionRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    name: String,
    status: String,
    objective_priority: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    created_at: DateTime<Utc>,
}

impl MissionRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<Mission> {
        Ok(Mission {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            name: self.name,
            status: parse("mission status", &self.status)?,
            objective_priority: parse("objective priority", &self.objective_priority)?,
            start_date: self.start_date,
            end_date: self.end_date,
            created_at: self.created_at,
        })
    }
}

/// `content_jobs`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ContentJobRow {
    id: Uuid,
    tenant_id: Uuid,
    mission_id: Option<Uuid>,
    channel_id: Uuid,
    phase: String,
    status: String,
    content: Json<Content>,
    scheduled_post_id: Option<Uuid>,
    platform_post_id: Option<String>,
    published_at: Option<DateTime<Utc>>,
    error_message: Option<String>,
    source_ref: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ContentJobRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<ContentJob> {
        Ok(ContentJob {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            mission_id: self.mission_id.map(Into::into),
            channel_id: self.channel_id.into(),
            phase: parse("phase", &self.phase)?,
            status: parse("content job status", &self.status)?,
            content: self.content.0,
            scheduled_post_id: self.scheduled_post_id.map(Into::into),
            platform_post_id: self.platform_post_id,
            published_at: self.published_at,
            error_message: self.error_message,
            source_ref: self.source_ref,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `mission_reports`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ReportRow {
    id: Uuid,
    tenant_id: Uuid,
    mission_id: Uuid,
    report: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl ReportRow {
    pub(in crate::postgres) fn into_entity(self) -> MissionIntelligenceReport {
        MissionIntelligenceReport {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            mission_id: self.mission_id.into(),
            report: self.report,
            created_at: self.created_at,
        }
    }
}

/// A ready job as `orchestration_snapshot` reads it.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct ReadyJobRow {
    id: Uuid,
    mission_id: Uuid,
    phase: String,
    created_at: DateTime<Utc>,
}

impl ReadyJobRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<ReadyJob> {
        Ok(ReadyJob {
            id: self.id.into(),
            mission_id: self.mission_id.into(),
            phase: parse("phase", &self.phase)?,
            created_at: self.created_at,
        })
    }
}

/// A counted post as `orchestration_snapshot` and `commit_orchestration` read it.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct DayPostRow {
    id: Uuid,
    mission_id: Option<Uuid>,
    publish_at: DateTime<Utc>,
}

impl DayPostRow {
    pub(in crate::postgres) fn into_entity(self) -> DayPost {
        DayPost {
            id: self.id.into(),
            mission_id: self.mission_id.map(Into::into),
            publish_at: self.publish_at,
        }
    }
}
