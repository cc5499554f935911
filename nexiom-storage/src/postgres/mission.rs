//! [`MissionStore`] on Postgres: `missions`, `content_jobs` and `mission_reports`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use nexiom_core::{
    COUNTED_POST_STATUSES, CommitOutcome, ContentJob, ContentJobFilter, ContentJobId,
    ContentJobStatus, Mission, MissionFilter, MissionId, MissionIntelligenceReport, MissionStatus,
    NewContentJob, NewMission, OrchestrationCommit, OrchestrationQuery, OrchestrationSnapshot,
    Phase, PostId, ReportId, TenantId, validate,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::error::{Ref, WriteFailure, db, write_error};
use super::rows::{ContentJobRow, DayPostRow, MissionRow, PostRow, ReadyJobRow, ReportRow, all};
use super::{PgStore, opt_limit};
use crate::error::{Result, StorageError};
use crate::traits::MissionStore;

/// The channel's counted posts in `[$3, $4)` (statuses in `$5`).
const COUNTED_POSTS: &str = "SELECT id, mission_id, publish_at FROM scheduled_posts \
     WHERE tenant_id = $1 AND channel_id = $2 AND publish_at >= $3 AND publish_at < $4 \
         AND status = ANY($5) AND origin = 'scheduled' \
     ORDER BY publish_at, id";

/// The counted statuses as Postgres compares them.
fn counted_statuses() -> Vec<&'static str> {
    COUNTED_POST_STATUSES.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl MissionStore for PgStore {
    async fn create_mission(&self, new: NewMission) -> Result<Mission> {
        new.validate()?;
        let refs = [Ref::Channel(new.channel_id)];
        let mut tx = self.scoped(new.tenant_id).await?;
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
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn get_mission(&self, tenant: TenantId, id: MissionId) -> Result<Mission> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<MissionRow> =
            sqlx::query_as("SELECT * FROM missions WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("mission", id))?
            .into_entity()
    }

    async fn list_missions(&self, tenant: TenantId, filter: MissionFilter) -> Result<Vec<Mission>> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
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
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, MissionRow::into_entity)
    }

    async fn set_mission_status(
        &self,
        tenant: TenantId,
        id: MissionId,
        status: MissionStatus,
    ) -> Result<Mission> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<MissionRow> = sqlx::query_as(
            "UPDATE missions SET status = $3 WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("mission", id))?
            .into_entity()
    }

    async fn create_content_job(&self, new: NewContentJob) -> Result<ContentJob> {
        new.validate()?;
        // The foreign key (tenant, mission, channel) makes the mission the
        // tenant's and on the job's channel.
        let mut refs = vec![Ref::Channel(new.channel_id)];
        refs.extend(new.mission_id.map(|m| Ref::MissionOn(m, new.channel_id)));
        let mut tx = self.scoped(new.tenant_id).await?;
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
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn get_content_job(&self, tenant: TenantId, id: ContentJobId) -> Result<ContentJob> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ContentJobRow> =
            sqlx::query_as("SELECT * FROM content_jobs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
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
        let mut tx = self.scoped(tenant).await?;
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
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
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
        let mut tx = self.scoped(tenant).await?;
        let result: std::result::Result<Option<ContentJobRow>, _> = sqlx::query_as(
            "UPDATE content_jobs SET \
                 status = $3, scheduled_post_id = COALESCE($4, scheduled_post_id), \
                 platform_post_id = CASE WHEN $6 THEN platform_post_id END, \
                 published_at = CASE WHEN $6 THEN published_at END, \
                 error_message = CASE WHEN $6 THEN error_message END, \
                 updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .bind(scheduled_post.map(|p| p.as_uuid()))
        .bind(at)
        .bind(status.is_settled())
        .fetch_optional(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.ok_or_else(|| StorageError::not_found("content_job", id))?
                    .into_entity()
            }
            Err(err) => {
                drop(tx);
                let refs: Vec<Ref> = scheduled_post.map(Ref::Post).into_iter().collect();
                Err(write_error(
                    self,
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
        let mut tx = self.scoped(tenant).await?;
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
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                Ok(row.into_entity())
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
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

    async fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ReportRow> = sqlx::query_as(
            "SELECT * FROM mission_reports WHERE tenant_id = $1 AND mission_id = $2 \
             ORDER BY created_at DESC, id DESC \
             LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(mission.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row.map(ReportRow::into_entity))
    }

    async fn orchestration_snapshot(
        &self,
        query: OrchestrationQuery,
    ) -> Result<OrchestrationSnapshot> {
        query.validate()?;
        // One snapshot for the three reads, so they agree with each other.
        let mut tx = self
            .scoped_with(
                query.tenant_id,
                "ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )
            .await?;
        let missions: Vec<MissionRow> = sqlx::query_as(
            "SELECT * FROM missions \
             WHERE tenant_id = $1 AND channel_id = $2 AND start_date <= $4 AND $3 <= end_date \
             ORDER BY start_date, id",
        )
        .bind(query.tenant_id.as_uuid())
        .bind(query.channel_id.as_uuid())
        .bind(query.first_date)
        .bind(query.last_date)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let jobs: Vec<ReadyJobRow> = sqlx::query_as(
            "SELECT id, mission_id, phase, created_at FROM ( \
                 SELECT j.id, j.mission_id, j.phase, j.created_at, \
                     row_number() OVER ( \
                         PARTITION BY j.mission_id, j.phase ORDER BY j.created_at, j.id) AS rn \
                 FROM content_jobs j \
                 JOIN missions m ON m.tenant_id = j.tenant_id AND m.id = j.mission_id \
                 WHERE j.tenant_id = $1 AND j.channel_id = $2 AND j.status = 'ready' \
                     AND m.channel_id = $2 AND m.start_date <= $4 AND $3 <= m.end_date \
             ) ranked \
             WHERE rn <= $5 \
             ORDER BY mission_id, \
                 CASE phase WHEN 'intro' THEN 0 WHEN 'nurture' THEN 1 ELSE 2 END, \
                 created_at, id",
        )
        .bind(query.tenant_id.as_uuid())
        .bind(query.channel_id.as_uuid())
        .bind(query.first_date)
        .bind(query.last_date)
        .bind(i64::from(query.jobs_per_phase))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let posts: Vec<DayPostRow> = sqlx::query_as(COUNTED_POSTS)
            .bind(query.tenant_id.as_uuid())
            .bind(query.channel_id.as_uuid())
            .bind(query.from)
            .bind(query.to)
            .bind(counted_statuses())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(OrchestrationSnapshot {
            missions: all(missions, MissionRow::into_entity)?,
            ready_jobs: all(jobs, ReadyJobRow::into_entity)?,
            posts: posts.into_iter().map(DayPostRow::into_entity).collect(),
        })
    }

    async fn commit_orchestration(&self, c: OrchestrationCommit) -> Result<CommitOutcome> {
        c.validate()?;
        let tenant = c.tenant_id.as_uuid();
        let channel = c.channel_id.as_uuid();
        // READ COMMITTED whatever the server's default: the day's posts are
        // read after the lock below, and must be read as the commit before
        // this one left them (a snapshot taken at the transaction's first
        // statement would not see it).
        let mut tx = self
            .scoped_with(c.tenant_id, "ISOLATION LEVEL READ COMMITTED")
            .await?;
        // Serializes every commit on this (tenant, channel) until this
        // transaction ends. A channel-wide key (not per day) also covers the
        // windows of one date in two time zones, which overlap.
        sqlx::query(
            "SELECT pg_advisory_xact_lock( \
                 hashtextextended('nexiom:orchestration:' || $1::text || ':' || $2::text, 0))",
        )
        .bind(tenant)
        .bind(channel)
        .execute(&mut *tx)
        .await
        .map_err(db)?;

        let stored: Vec<DayPostRow> = sqlx::query_as(COUNTED_POSTS)
            .bind(tenant)
            .bind(channel)
            .bind(c.from)
            .bind(c.to)
            .bind(counted_statuses())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let planned: HashSet<MissionId> = c.entries.iter().map(|e| e.mission_id).collect();
        let stored: Vec<_> = stored.into_iter().map(DayPostRow::into_entity).collect();
        if let Some((mission, post)) = stored.iter().find_map(|p| {
            p.mission_id
                .filter(|m| planned.contains(m))
                .map(|m| (m, p.id))
        }) {
            tx.commit().await.map_err(db)?;
            return Ok(CommitOutcome::mission_already_posted(mission, post));
        }
        let mut stored_ids: Vec<PostId> = stored.iter().map(|p| p.id).collect();
        let mut expected = c.expected_posts.clone();
        stored_ids.sort();
        expected.sort();
        if stored_ids != expected {
            tx.commit().await.map_err(db)?;
            return Ok(CommitOutcome::day_changed(stored_ids.len(), expected.len()));
        }
        if c.entries.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(CommitOutcome::Committed(Vec::new()));
        }

        // Lock the jobs; a job another commit took meanwhile no longer matches.
        let job_ids: Vec<Uuid> = c
            .entries
            .iter()
            .map(|e| e.content_job_id.as_uuid())
            .collect();
        let usable: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT id, mission_id FROM content_jobs \
             WHERE tenant_id = $1 AND channel_id = $2 AND id = ANY($3) AND status = 'ready' \
             FOR UPDATE",
        )
        .bind(tenant)
        .bind(channel)
        .bind(&job_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let usable: HashMap<Uuid, Option<Uuid>> = usable.into_iter().collect();
        if let Some(entry) = c.entries.iter().find(|e| {
            usable.get(&e.content_job_id.as_uuid()) != Some(&Some(e.mission_id.as_uuid()))
        }) {
            tx.commit().await.map_err(db)?;
            return Ok(CommitOutcome::job_not_ready(
                entry.content_job_id,
                entry.mission_id,
            ));
        }

        // One statement creates the posts and links the jobs to them.
        let post_ids: Vec<Uuid> = c
            .entries
            .iter()
            .map(|_| PostId::generate().as_uuid())
            .collect();
        let mission_ids: Vec<Uuid> = c.entries.iter().map(|e| e.mission_id.as_uuid()).collect();
        let publish_ats: Vec<_> = c.entries.iter().map(|e| e.publish_at).collect();
        let rows: Vec<PostRow> = sqlx::query_as(
            "WITH e AS ( \
                 SELECT * FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[]) \
                     AS e(post_id, job_id, mission_id, publish_at) \
             ), ins AS ( \
                 INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, \
                     rrule, dtstart, time_zone, series_id, occurrence_at, status, \
                     platform_post_id, url, error_message, retry_count, next_attempt_at, \
                     lease_owner, lease_expires_at, published_at, last_check_at, next_check_at, \
                     stop_at, mission_id, content_job_id, created_at, updated_at) \
                 SELECT e.post_id, $1, $2, j.content, e.publish_at, NULL, NULL, NULL, NULL, \
                     NULL, 'queued', NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, \
                     NULL, e.mission_id, e.job_id, $7, $7 \
                 FROM e JOIN content_jobs j ON j.tenant_id = $1 AND j.id = e.job_id \
                 RETURNING * \
             ), upd AS ( \
                 UPDATE content_jobs j \
                 SET status = 'scheduled', scheduled_post_id = e.post_id, updated_at = $7 \
                 FROM e WHERE j.tenant_id = $1 AND j.id = e.job_id \
             ) \
             SELECT * FROM ins",
        )
        .bind(tenant)
        .bind(channel)
        .bind(&post_ids)
        .bind(&job_ids)
        .bind(&mission_ids)
        .bind(&publish_ats)
        .bind(c.at)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;

        let mut by_id: HashMap<Uuid, PostRow> = rows.into_iter().map(|r| (r.id(), r)).collect();
        let mut created = Vec::with_capacity(post_ids.len());
        for id in &post_ids {
            let row = by_id.remove(id).ok_or_else(|| {
                StorageError::backend("postgres: a committed post was not returned")
            })?;
            created.push(row.into_entity()?);
        }
        Ok(CommitOutcome::Committed(created))
    }
}
