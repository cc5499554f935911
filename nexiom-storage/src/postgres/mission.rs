//! [`MissionStore`] on Postgres: `missions`, `content_jobs` and `mission_reports`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    ContentJob, ContentJobFilter, ContentJobId, ContentJobStatus, Mission, MissionFilter,
    MissionId, MissionIntelligenceReport, MissionStatus, NewContentJob, NewMission, Phase, PostId,
    ReportId, TenantId, validate,
};
use sqlx::types::Json;

use super::error::{Ref, WriteFailure, db, write_error};
use super::rows::{ContentJobRow, MissionRow, ReportRow, all};
use super::{PgStore, opt_limit};
use crate::error::{Result, StorageError};
use crate::traits::MissionStore;

#[async_trait]
impl MissionStore for PgStore {
    async fn create_mission(&self, new: NewMission) -> Result<Mission> {
        new.validate()?;
        let refs = [Ref::Channel(new.channel_id)];
        let result: std::result::Result<MissionRow, _> = sqlx::query_as(
            "INSERT INTO missions (id, tenant_id, channel_id, name, status, objective_priority, \
                 start_date, end_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING *",
        )
        .bind(MissionId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.channel_id.as_uuid())
        .bind(&new.name)
        .bind(new.status.as_str())
        .bind(new.objective_priority.as_str())
        .bind(new.start_date)
        .bind(new.end_date)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => row.into_entity(),
            Err(err) => Err(write_error(
                &self.pool,
                err,
                WriteFailure {
                    tenant: Some(new.tenant_id),
                    refs: &refs,
                    conflict: None,
                },
            )
            .await),
        }
    }

    async fn get_mission(&self, tenant: TenantId, id: MissionId) -> Result<Mission> {
        let row: Option<MissionRow> =
            sqlx::query_as("SELECT * FROM missions WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("mission", id))?
            .into_entity()
    }

    async fn list_missions(&self, tenant: TenantId, filter: MissionFilter) -> Result<Vec<Mission>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let rows: Vec<MissionRow> = sqlx::query_as(
            "SELECT * FROM missions \
             WHERE tenant_id = $1 \
                 AND ($2::uuid IS NULL OR channel_id = $2) \
                 AND ($3::text IS NULL OR status = $3) \
                 AND ($4::date IS NULL OR (start_date <= $4 AND $4 <= end_date)) \
             ORDER BY start_date, id \
             LIMIT $5",
        )
        .bind(tenant.as_uuid())
        .bind(filter.channel_id.map(|c| c.as_uuid()))
        .bind(filter.status.map(MissionStatus::as_str))
        .bind(filter.active_on)
        .bind(opt_limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        all(rows, MissionRow::into_entity)
    }

    async fn set_mission_status(
        &self,
        tenant: TenantId,
        id: MissionId,
        status: MissionStatus,
    ) -> Result<Mission> {
        let row: Option<MissionRow> = sqlx::query_as(
            "UPDATE missions SET status = $3 WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("mission", id))?
            .into_entity()
    }

    async fn create_content_job(&self, new: NewContentJob) -> Result<ContentJob> {
        new.validate()?;
        // The foreign key (tenant, mission, channel) makes the mission the
        // tenant's and on the job's channel.
        let mut refs = vec![Ref::Channel(new.channel_id)];
        refs.extend(new.mission_id.map(|m| Ref::MissionOn(m, new.channel_id)));
        let result: std::result::Result<ContentJobRow, _> = sqlx::query_as(
            "INSERT INTO content_jobs (id, tenant_id, mission_id, channel_id, phase, status, \
                 content, scheduled_post_id, source_ref, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $9) \
             RETURNING *",
        )
        .bind(ContentJobId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.mission_id.map(|m| m.as_uuid()))
        .bind(new.channel_id.as_uuid())
        .bind(new.phase.as_str())
        .bind(new.status.as_str())
        .bind(Json(&new.content))
        .bind(new.source_ref.as_deref())
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => row.into_entity(),
            Err(err) => Err(write_error(
                &self.pool,
                err,
                WriteFailure {
                    tenant: Some(new.tenant_id),
                    refs: &refs,
                    conflict: None,
                },
            )
            .await),
        }
    }

    async fn get_content_job(&self, tenant: TenantId, id: ContentJobId) -> Result<ContentJob> {
        let row: Option<ContentJobRow> =
            sqlx::query_as("SELECT * FROM content_jobs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("content_job", id))?
            .into_entity()
    }

    async fn list_content_jobs(
        &self,
        tenant: TenantId,
        filter: ContentJobFilter,
    ) -> Result<Vec<ContentJob>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let rows: Vec<ContentJobRow> = sqlx::query_as(
            "SELECT * FROM content_jobs \
             WHERE tenant_id = $1 \
                 AND ($2::uuid IS NULL OR mission_id = $2) \
                 AND ($3::uuid IS NULL OR channel_id = $3) \
                 AND ($4::text IS NULL OR phase = $4) \
                 AND ($5::text IS NULL OR status = $5) \
             ORDER BY created_at, id \
             LIMIT $6",
        )
        .bind(tenant.as_uuid())
        .bind(filter.mission_id.map(|m| m.as_uuid()))
        .bind(filter.channel_id.map(|c| c.as_uuid()))
        .bind(filter.phase.map(Phase::as_str))
        .bind(filter.status.map(ContentJobStatus::as_str))
        .bind(opt_limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        all(rows, ContentJobRow::into_entity)
    }

    async fn update_content_job(
        &self,
        tenant: TenantId,
        id: ContentJobId,
        status: ContentJobStatus,
        scheduled_post: Option<PostId>,
        at: DateTime<Utc>,
    ) -> Result<ContentJob> {
        let result: std::result::Result<Option<ContentJobRow>, _> = sqlx::query_as(
            "UPDATE content_jobs SET \
                 status = $3, scheduled_post_id = COALESCE($4, scheduled_post_id), updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .bind(scheduled_post.map(|p| p.as_uuid()))
        .bind(at)
        .fetch_optional(&self.pool)
        .await;
        match result {
            Ok(row) => row
                .ok_or_else(|| StorageError::not_found("content_job", id))?
                .into_entity(),
            Err(err) => {
                let refs: Vec<Ref> = scheduled_post.map(Ref::Post).into_iter().collect();
                Err(write_error(
                    &self.pool,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn add_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
        report: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<MissionIntelligenceReport> {
        validate::json("report", &report)?;
        let refs = [Ref::Mission(mission)];
        let result: std::result::Result<ReportRow, _> = sqlx::query_as(
            "INSERT INTO mission_reports (id, tenant_id, mission_id, report, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING *",
        )
        .bind(ReportId::generate().as_uuid())
        .bind(tenant.as_uuid())
        .bind(mission.as_uuid())
        .bind(&report)
        .bind(at)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(row.into_entity()),
            Err(err) => Err(write_error(
                &self.pool,
                err,
                WriteFailure {
                    tenant: Some(tenant),
                    refs: &refs,
                    conflict: None,
                },
            )
            .await),
        }
    }

    async fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>> {
        let row: Option<ReportRow> = sqlx::query_as(
            "SELECT * FROM mission_reports WHERE tenant_id = $1 AND mission_id = $2 \
             ORDER BY created_at DESC, id DESC \
             LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(mission.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(ReportRow::into_entity))
    }
}
