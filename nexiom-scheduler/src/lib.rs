//! Scheduling for Nexiom: the scheduling API with RRULE series, the publish
//! queue with leases and retries, the worker runtime, the pipeline runner, and
//! the calendar arithmetic they share (KPI windows, DST rules).
//!
//! - [`Scheduler`] creates, previews, cancels, reschedules and lists posts; a
//!   series is an RFC 5545 RRULE with a local DTSTART in an IANA zone
//!   ([`RecurrenceRule`]).
//! - [`PublishQueue`] claims due posts with a lease, turns due occurrences of a
//!   series into posts of their own, and publishes through a
//!   [`PublishGateway`] with the retry rules of the design;
//!   [`ConnectorGateway`] is that gateway over the connectors of
//!   `nexiom-connectors` (`MockConnector` in tests).
//! - [`WorkerRuntime`] runs named [`Worker`]s on cadences, behind flags read
//!   at every run, writing an execution log per run, with graceful shutdown.
//! - [`PipelineRunner`] runs route → triage → auto-reply → schedules →
//!   metrics once; [`PipelineRunner::standard`] wires the library's own steps
//!   ([`KpiWorker`] is the metrics step) and [`PipelineWorker`] runs the pass
//!   on a cadence.
//! - [`CommentPoller`] polls the comments of published posts every 5 minutes
//!   for 7 days ([`PollCommentsWorker`] on the runtime), stores each once,
//!   hands new ones to the inbound triage and auto-reply steps, and hides
//!   comments.
//! - [`ClusterDailyWorker`] (`cluster_daily`) runs every tenant's topics
//!   (`nexiom-topics`) once a day.
//!
//! The 2-hour KPI windows of a local day follow the daylight-saving rules of the
//! design (a boundary in a spring-forward gap moves to the first instant after
//! the gap; an ambiguous one takes the earlier instant).
//!
//! On top of them, the KPI worker step: [`aggregate_kpis`] recomputes every
//! tenant's windows of the last 48 hours (configurable in [`KpiConfig`]) and
//! upserts them on `(tenant, window_start)`; [`recent_kpis`] reads them beside
//! the same local windows 7 days earlier.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use nexiom_scheduler::kpi_windows;
//!
//! // 2026-03-29 in Paris: clocks jump from 02:00 to 03:00.
//! let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
//! let windows = kpi_windows(day, chrono_tz::Europe::Paris);
//! assert_eq!(windows.len(), 12);
//! let two_am = &windows[1];
//! assert_eq!(two_am.start, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
//! assert_eq!(two_am.end - two_am.start, chrono::Duration::hours(1));
//! ```
//!
//! The inbound pipeline (routing, triage, auto-replies, dry runs of rule sets,
//! the settings overview) is in [`inbound`].
#![forbid(unsafe_code)]

mod channel_reads;
mod concurrency;
mod error;
mod health;
mod held_lease;
pub mod inbound;
pub mod inbox;
mod kpi;
mod missions;
pub mod notify;
mod pipeline;
mod polling;
mod publish;
mod schedule;
pub mod telemetry;
mod tenant_config;
mod tokens;
mod topics;
mod windows;
mod worker;

pub use concurrency::ConcurrencyConfig;
pub use error::{Result, SchedulerError};
pub use health::{Check, HealthCheck, HealthReport, WorkerHealth};
pub use kpi::{
    AGGREGATE_KPIS, KpiComparison, KpiConfig, KpiRunSummary, KpiWorker, LocalKpiWindow,
    TenantFailure, aggregate_kpis, aggregate_kpis_incremental, aggregate_tenant_kpis, recent_kpis,
    recent_windows,
};
pub use missions::*;
pub use pipeline::{
    AutoReplyStep, DEFAULT_LIMIT, FnStep, PIPELINE, PipelineCounts, PipelineRunner, PipelineStep,
    PipelineWorker, RouteStep, TriageStep, default_since, step_fn,
};
pub use polling::{
    CommentPoller, DEFAULT_POLLS_PER_CHANNEL, DiscoveryFailure, POLL_COMMENTS, PollCommentsWorker,
    PollFailure, PollReport, PollingConfig, PollingError,
};
pub use publish::{
    AWAITING_RECONNECTION, ConnectorGateway, OUTCOME_UNKNOWN, PostLookup, PostOutcome,
    PublishConfig, PublishFailure, PublishGateway, PublishQueue, PublishedPost, QueueReport,
    RecipientMessage, RetryPolicy, channel_context, classify,
};
#[cfg(feature = "testing")]
pub use publish::{MockGateway, MockStep};
pub use schedule::{PREVIEW_LIMIT, RecurrenceRule, Scheduler, SeriesSpec};
pub use tenant_config::{DEFAULT_TTL, TenantConfigs};
pub use tokens::{
    CALL_REFRESH_BACKOFF, ChannelTokens, DEFAULT_HORIZON, DEFAULT_MARGIN, FAILED_BACKOFF,
    ReauthListener, RefreshOutcome, RenewReport, TOKEN_REFRESH, TokenError, TokenRefreshWorker,
    WebhookSetupError, connector_refresh,
};
pub use topics::{CLUSTER_DAILY, ClusterDailyWorker};
pub use windows::{KpiWindow, kpi_windows, local_instant, window_containing};
pub use worker::{
    ABANDONED_AGENT_REPLIES_PER_RUN, BatchConfig, CLEANUP_EXECUTION_LOGS, Cadence, CadenceError,
    CleanupExecutionLogsWorker, CronSchedule, ENQUEUE_DUE_POSTS, EnqueueDuePostsWorker,
    RELEASE_STALE_LEASES, RETENTION, ReleaseStaleLeasesWorker, RetentionWorker, Shutdown,
    ShutdownTrigger, WorkReport, Worker, WorkerContext, WorkerRun, WorkerRuntime, shutdown_channel,
};
