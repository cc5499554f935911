//! Rows of `scheduled_posts` and `post_runs`.

use chrono::{DateTime, NaiveDateTime, Utc};
use nexiom_core::{Content, PostRun, Recurrence, ScheduledPost, Tz};
use sqlx::types::Json;
use uuid::Uuid;

use super::convert::{parse, to_u32};
use crate::error::Result;
use crate::postgres::error::corrupt;

/// `scheduled_posts`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct PostRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    content: Json<Content>,
    publish_at: DateTime<Utc>,
    rrule: Option<String>,
    dtstart: Option<NaiveDateTime>,
    time_zone: Option<String>,
    series_id: Option<Uuid>,
    occurrence_at: Option<DateTime<Utc>>,
    status: String,
    origin: String,
    platform_post_id: Option<String>,
    url: Option<String>,
    error_message: Option<String>,
    retry_count: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    published_at: Option<DateTime<Utc>>,
    last_check_at: Option<DateTime<Utc>>,
    next_check_at: Option<DateTime<Utc>>,
    stop_at: Option<DateTime<Utc>>,
    poll_failures: i32,
    mission_id: Option<Uuid>,
    content_job_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PostRow {
    /// The post's id.
    pub(in crate::postgres) fn id(&self) -> Uuid {
        self.id
    }

    pub(in crate::postgres) fn into_entity(self) -> Result<ScheduledPost> {
        let recurrence = match (self.rrule, self.dtstart, self.time_zone) {
            (Some(rrule), Some(dtstart), Some(time_zone)) => Some(Recurrence {
                rrule,
                dtstart,
                time_zone: parse::<Tz>("time_zone", &time_zone)?,
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "recurrence",
                    "rrule, dtstart and time_zone go together",
                ));
            }
        };
        Ok(ScheduledPost {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            content: self.content.0,
            publish_at: self.publish_at,
            recurrence,
            series_id: self.series_id.map(Into::into),
            occurrence_at: self.occurrence_at,
            status: parse("post status", &self.status)?,
            origin: parse("post origin", &self.origin)?,
            platform_post_id: self.platform_post_id,
            url: self.url,
            error_message: self.error_message,
            retry_count: to_u32("retry_count", self.retry_count)?,
            next_attempt_at: self.next_attempt_at,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            published_at: self.published_at,
            last_check_at: self.last_check_at,
            next_check_at: self.next_check_at,
            stop_at: self.stop_at,
            poll_failures: to_u32("poll_failures", i64::from(self.poll_failures))?,
            mission_id: self.mission_id.map(Into::into),
            content_job_id: self.content_job_id.map(Into::into),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The guarded fields of a post, to explain a failed conditional update.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct PostGuardRow {
    pub(in crate::postgres) status: String,
    pub(in crate::postgres) lease_owner: Option<String>,
}

/// `post_runs`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct PostRunRow {
    id: Uuid,
    tenant_id: Uuid,
    post_id: Uuid,
    attempt: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    status: String,
    error: Option<String>,
}

impl PostRunRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<PostRun> {
        Ok(PostRun {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            attempt: to_u32("attempt", self.attempt)?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status: parse("post run status", &self.status)?,
            error: self.error,
        })
    }
}
