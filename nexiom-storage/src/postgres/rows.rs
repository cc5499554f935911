//! Row structs as Postgres returns them (`#[derive(sqlx::FromRow)]`, read by
//! column name, so `RETURNING *` works), and their conversion into the domain
//! entities of `nexiom_core`.
//!
//! Enumerations and platforms are stored as their lower-case strings and parsed
//! back with `FromStr`; a value that does not parse is reported as a backend
//! error (the row was written by something else than this store).

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use nexiom_core::{
    AiControl, AiDecision, AiRule, AppSetting, Channel, Comment, CommentCheckpoint, CommentReply,
    Contact, ContactChannel, Content, ContentJob, Conversation, Credentials, DayPost,
    DecisionSubject, IgnoreExample, Kpi2h, Message, Mission, MissionIntelligenceReport, PostRun,
    ReadyJob, Recurrence, ReplyStatus, ScheduledPost, SecretString, TaskExecutionLog, Tenant, Tz,
    WebhookEvent, WorkerFlag,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::error::corrupt;
use crate::error::Result;

/// Parses a stored string form.
pub(super) fn parse<T>(what: &str, value: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| corrupt(what, e))
}

/// Parses an optional stored string form.
fn parse_opt<T>(what: &str, value: Option<&str>) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.map(|v| parse(what, v)).transpose()
}

/// How a secret column shows in `Debug`: whether it is set, never its value.
fn redacted(value: Option<&String>) -> Option<&'static str> {
    value.map(|_| "[redacted]")
}

/// A stored non-negative count back as `u32`.
fn to_u32(what: &str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

/// `tenants`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct TenantRow {
    id: Uuid,
    name: String,
    time_zone: String,
    created_at: DateTime<Utc>,
}

impl TenantRow {
    pub(super) fn into_entity(self) -> Result<Tenant> {
        Ok(Tenant {
            id: self.id.into(),
            name: self.name,
            time_zone: parse::<Tz>("time_zone", &self.time_zone)?,
            created_at: self.created_at,
        })
    }
}

/// `channels`. `Debug` redacts the tokens (the entity holds them as
/// [`SecretString`]; the row, read as plain text, must not leak them either).
#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    pub(super) id: Uuid,
    tenant_id: Uuid,
    platform: String,
    external_account_id: String,
    name: String,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    status: String,
    status_reason: Option<String>,
    status_changed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("platform", &self.platform)
            .field("external_account_id", &self.external_account_id)
            .field("name", &self.name)
            .field("access_token", &redacted(self.access_token.as_ref()))
            .field("refresh_token", &redacted(self.refresh_token.as_ref()))
            .field("expires_at", &self.expires_at)
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field("status_changed_at", &self.status_changed_at)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl ChannelRow {
    pub(super) fn into_entity(self) -> Result<Channel> {
        Ok(Channel {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            platform: parse("platform", &self.platform)?,
            external_account_id: self.external_account_id,
            name: self.name,
            credentials: Credentials {
                access_token: self.access_token.map(SecretString::new),
                refresh_token: self.refresh_token.map(SecretString::new),
                expires_at: self.expires_at,
            },
            status: parse("channel status", &self.status)?,
            status_reason: self.status_reason,
            status_changed_at: self.status_changed_at,
            created_at: self.created_at,
        })
    }
}

/// `webhook_events`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct EventRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    platform: String,
    event_id: String,
    kind: String,
    sender_id: Option<String>,
    sender_name: Option<String>,
    text: Option<String>,
    has_media: bool,
    delivery_status: Option<String>,
    target_id: Option<String>,
    parent_id: Option<String>,
    occurred_at: DateTime<Utc>,
    payload: serde_json::Value,
    received_at: DateTime<Utc>,
    routed_at: Option<DateTime<Utc>>,
    conversation_id: Option<Uuid>,
}

impl EventRow {
    pub(super) fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub(super) fn into_entity(self) -> Result<WebhookEvent> {
        Ok(WebhookEvent {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            platform: parse("platform", &self.platform)?,
            event_id: self.event_id,
            kind: parse("event kind", &self.kind)?,
            sender_id: self.sender_id,
            sender_name: self.sender_name,
            text: self.text,
            has_media: self.has_media,
            delivery_status: parse_opt("delivery status", self.delivery_status.as_deref())?,
            target_id: self.target_id,
            parent_id: self.parent_id,
            occurred_at: self.occurred_at,
            payload: self.payload,
            received_at: self.received_at,
            routed_at: self.routed_at,
            conversation_id: self.conversation_id.map(Into::into),
        })
    }
}

/// `contacts`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ContactRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: Option<String>,
    created_at: DateTime<Utc>,
}

impl ContactRow {
    pub(super) fn into_entity(self) -> Result<Contact> {
        Ok(Contact {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            display_name: self.display_name,
            created_at: self.created_at,
        })
    }
}

/// `contact_channels`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ContactChannelRow {
    id: Uuid,
    tenant_id: Uuid,
    contact_id: Uuid,
    platform: String,
    external_handle: String,
    created_at: DateTime<Utc>,
}

impl ContactChannelRow {
    pub(super) fn into_entity(self) -> Result<ContactChannel> {
        Ok(ContactChannel {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            contact_id: self.contact_id.into(),
            platform: parse("platform", &self.platform)?,
            external_handle: self.external_handle,
            created_at: self.created_at,
        })
    }
}

/// `conversations`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ConversationRow {
    id: Uuid,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel_id: Uuid,
    status: String,
    last_message_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl ConversationRow {
    pub(super) fn into_entity(self) -> Result<Conversation> {
        Ok(Conversation {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            contact_id: self.contact_id.into(),
            channel_id: self.channel_id.into(),
            status: parse("conversation status", &self.status)?,
            last_message_at: self.last_message_at,
            created_at: self.created_at,
        })
    }
}

/// `messages`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct MessageRow {
    id: Uuid,
    tenant_id: Uuid,
    conversation_id: Uuid,
    channel_id: Uuid,
    direction: String,
    text: String,
    has_media: bool,
    provider_message_id: Option<String>,
    in_reply_to: Option<Uuid>,
    triage: Option<String>,
    confidence: Option<f64>,
    ai_decision_id: Option<Uuid>,
    delivery_status: Option<String>,
    created_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    reply_state: Option<String>,
    reply_attempts: i64,
    reply_error: Option<String>,
    reply_next_at: Option<DateTime<Utc>>,
    reply_lease_until: Option<DateTime<Utc>>,
}

impl MessageRow {
    pub(super) fn into_entity(self) -> Result<Message> {
        Ok(Message {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            conversation_id: self.conversation_id.into(),
            channel_id: self.channel_id.into(),
            direction: parse("message direction", &self.direction)?,
            text: self.text,
            has_media: self.has_media,
            provider_message_id: self.provider_message_id,
            in_reply_to: self.in_reply_to.map(Into::into),
            triage: parse_opt("triage", self.triage.as_deref())?,
            confidence: self.confidence,
            ai_decision_id: self.ai_decision_id.map(Into::into),
            delivery_status: parse_opt("delivery status", self.delivery_status.as_deref())?,
            created_at: self.created_at,
            stored_at: self.stored_at,
            reply: reply_status(
                self.reply_state.as_deref(),
                self.reply_attempts,
                self.reply_error,
                self.reply_next_at,
                self.reply_lease_until,
            )?,
        })
    }
}

/// The reply-queue columns of a message or comment.
fn reply_status(
    state: Option<&str>,
    attempts: i64,
    error: Option<String>,
    next_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
) -> Result<Option<ReplyStatus>> {
    let Some(state) = state else { return Ok(None) };
    Ok(Some(ReplyStatus {
        state: parse("reply state", state)?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt("reply attempts", e))?,
        error,
        next_at,
        lease_until,
    }))
}

/// `scheduled_posts`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PostRow {
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
    mission_id: Option<Uuid>,
    content_job_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PostRow {
    /// The post's id.
    pub(super) fn id(&self) -> Uuid {
        self.id
    }

    pub(super) fn into_entity(self) -> Result<ScheduledPost> {
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
            mission_id: self.mission_id.map(Into::into),
            content_job_id: self.content_job_id.map(Into::into),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The guarded fields of a post, to explain a failed conditional update.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PostGuardRow {
    pub(super) status: String,
    pub(super) lease_owner: Option<String>,
}

/// `post_runs`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct PostRunRow {
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
    pub(super) fn into_entity(self) -> Result<PostRun> {
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

/// `comments`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CommentRow {
    id: Uuid,
    tenant_id: Uuid,
    post_id: Uuid,
    channel_id: Uuid,
    platform_comment_id: String,
    parent_platform_comment_id: Option<String>,
    author_id: Option<String>,
    author_name: Option<String>,
    text: String,
    created_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    triage: Option<String>,
    confidence: Option<f64>,
    ai_decision_id: Option<Uuid>,
    hidden: bool,
    reply_state: Option<String>,
    reply_attempts: i64,
    reply_error: Option<String>,
    reply_next_at: Option<DateTime<Utc>>,
    reply_lease_until: Option<DateTime<Utc>>,
}

impl CommentRow {
    pub(super) fn into_entity(self) -> Result<Comment> {
        Ok(Comment {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            channel_id: self.channel_id.into(),
            platform_comment_id: self.platform_comment_id,
            parent_platform_comment_id: self.parent_platform_comment_id,
            author_id: self.author_id,
            author_name: self.author_name,
            text: self.text,
            created_at: self.created_at,
            stored_at: self.stored_at,
            triage: parse_opt("triage", self.triage.as_deref())?,
            confidence: self.confidence,
            ai_decision_id: self.ai_decision_id.map(Into::into),
            hidden: self.hidden,
            reply: reply_status(
                self.reply_state.as_deref(),
                self.reply_attempts,
                self.reply_error,
                self.reply_next_at,
                self.reply_lease_until,
            )?,
        })
    }
}

/// `comment_replies`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CommentReplyRow {
    comment_id: Uuid,
    tenant_id: Uuid,
    text: String,
    status: String,
    platform_comment_id: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl CommentReplyRow {
    pub(super) fn into_entity(self) -> Result<CommentReply> {
        Ok(CommentReply {
            tenant_id: self.tenant_id.into(),
            comment_id: self.comment_id.into(),
            text: self.text,
            status: parse("reply status", &self.status)?,
            platform_comment_id: self.platform_comment_id,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `comment_checkpoints`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CheckpointRow {
    tenant_id: Uuid,
    post_id: Uuid,
    last_cursor: Option<String>,
    last_seen_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl CheckpointRow {
    pub(super) fn into_entity(self) -> Result<CommentCheckpoint> {
        Ok(CommentCheckpoint {
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            last_cursor: self.last_cursor,
            last_seen_at: self.last_seen_at,
            updated_at: self.updated_at,
        })
    }
}

/// `ai_rules`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RuleRow {
    id: Uuid,
    tenant_id: Uuid,
    rule_type: String,
    name: String,
    keywords: Vec<String>,
    patterns: Vec<String>,
    confidence_min: Option<f64>,
    enabled: bool,
    priority: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RuleRow {
    pub(super) fn into_entity(self) -> Result<AiRule> {
        Ok(AiRule {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            rule_type: parse("rule type", &self.rule_type)?,
            name: self.name,
            keywords: self.keywords,
            patterns: self.patterns,
            confidence_min: self.confidence_min,
            enabled: self.enabled,
            priority: self.priority,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `ignore_examples`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct IgnoreExampleRow {
    id: Uuid,
    tenant_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
}

impl IgnoreExampleRow {
    pub(super) fn into_entity(self) -> Result<IgnoreExample> {
        Ok(IgnoreExample {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            text: self.text,
            created_at: self.created_at,
        })
    }
}

/// `ai_decisions`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct DecisionRow {
    id: Uuid,
    tenant_id: Uuid,
    subject_kind: String,
    subject_id: Uuid,
    triage: String,
    confidence: f64,
    rule_id: Option<Uuid>,
    reason: String,
    snapshot: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl DecisionRow {
    pub(super) fn into_entity(self) -> Result<AiDecision> {
        let subject = match self.subject_kind.as_str() {
            "message" => DecisionSubject::Message(self.subject_id.into()),
            "comment" => DecisionSubject::Comment(self.subject_id.into()),
            other => return Err(corrupt("decision subject kind", other)),
        };
        Ok(AiDecision {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            subject,
            triage: parse("triage", &self.triage)?,
            confidence: self.confidence,
            rule_id: self.rule_id.map(Into::into),
            reason: self.reason,
            snapshot: self.snapshot,
            created_at: self.created_at,
        })
    }
}

/// A tenant's AI control, joined from `tenants` (absent switch: OFF).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AiControlRow {
    tenant_id: Uuid,
    enabled: bool,
    updated_by: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

impl AiControlRow {
    pub(super) fn into_entity(self) -> AiControl {
        AiControl {
            tenant_id: self.tenant_id.into(),
            enabled: self.enabled,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }
    }
}

/// `kpi_2h`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct KpiRow {
    tenant_id: Uuid,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    messages_count: i64,
    comments_count: i64,
    frt_p50_seconds: Option<i64>,
    auto_reply_rate: Option<f64>,
    escalate_count: i64,
    ignored_count: i64,
    posts_active: i64,
    computed_at: DateTime<Utc>,
}

impl KpiRow {
    pub(super) fn into_entity(self) -> Kpi2h {
        Kpi2h {
            tenant_id: self.tenant_id.into(),
            window_start: self.window_start,
            window_end: self.window_end,
            messages_count: self.messages_count,
            comments_count: self.comments_count,
            frt_p50_seconds: self.frt_p50_seconds,
            auto_reply_rate: self.auto_reply_rate,
            escalate_count: self.escalate_count,
            ignored_count: self.ignored_count,
            posts_active: self.posts_active,
            computed_at: self.computed_at,
        }
    }
}

/// `missions`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct MissionRow {
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
    pub(super) fn into_entity(self) -> Result<Mission> {
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
pub(super) struct ContentJobRow {
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
    pub(super) fn into_entity(self) -> Result<ContentJob> {
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
pub(super) struct ReportRow {
    id: Uuid,
    tenant_id: Uuid,
    mission_id: Uuid,
    report: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl ReportRow {
    pub(super) fn into_entity(self) -> MissionIntelligenceReport {
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
pub(super) struct ReadyJobRow {
    id: Uuid,
    mission_id: Uuid,
    phase: String,
    created_at: DateTime<Utc>,
}

impl ReadyJobRow {
    pub(super) fn into_entity(self) -> Result<ReadyJob> {
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
pub(super) struct DayPostRow {
    id: Uuid,
    mission_id: Option<Uuid>,
    publish_at: DateTime<Utc>,
}

impl DayPostRow {
    pub(super) fn into_entity(self) -> DayPost {
        DayPost {
            id: self.id.into(),
            mission_id: self.mission_id.map(Into::into),
            publish_at: self.publish_at,
        }
    }
}

/// `app_settings`. Setting values are secrets (API keys): `Debug` redacts them.
#[derive(sqlx::FromRow)]
pub(super) struct SettingRow {
    key: String,
    value: String,
    updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for SettingRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingRow")
            .field("key", &self.key)
            .field("value", &redacted(Some(&self.value)))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl SettingRow {
    pub(super) fn into_entity(self) -> AppSetting {
        AppSetting {
            key: self.key,
            value: SecretString::new(self.value),
            updated_at: self.updated_at,
        }
    }
}

/// `worker_flags`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct WorkerFlagRow {
    worker_name: String,
    enabled: bool,
    updated_at: DateTime<Utc>,
}

impl WorkerFlagRow {
    pub(super) fn into_entity(self) -> WorkerFlag {
        WorkerFlag {
            worker_name: self.worker_name,
            enabled: self.enabled,
            updated_at: self.updated_at,
        }
    }
}

/// `task_executions`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ExecutionRow {
    id: Uuid,
    worker_name: String,
    status: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    items_processed: i64,
    items_failed: i64,
    results: serde_json::Value,
    error: Option<String>,
}

impl ExecutionRow {
    pub(super) fn into_entity(self) -> Result<TaskExecutionLog> {
        Ok(TaskExecutionLog {
            id: self.id.into(),
            worker_name: self.worker_name,
            status: parse("run status", &self.status)?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.duration_ms,
            items_processed: self.items_processed,
            items_failed: self.items_failed,
            results: self.results,
            error: self.error,
        })
    }
}

/// Converts every row of a list.
pub(super) fn all<R, T>(rows: Vec<R>, convert: impl Fn(R) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(convert).collect()
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
