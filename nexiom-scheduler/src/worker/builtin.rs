//! The workers this crate ships: publishing, stale leases, log cleanup.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use nexiom_storage::Store;

use super::cadence::Cadence;
use super::runtime::{WorkReport, Worker, WorkerContext};
use crate::error::Result;
use crate::publish::PublishQueue;

/// Name (and flag) of [`EnqueueDuePostsWorker`].
pub const ENQUEUE_DUE_POSTS: &str = "enqueue_due_posts";
/// Name (and flag) of [`ReleaseStaleLeasesWorker`].
pub const RELEASE_STALE_LEASES: &str = "release_stale_leases";
/// The most agent replies left `sending` that one run of
/// [`ReleaseStaleLeasesWorker`] settles (the rest wait for the next run).
pub const ABANDONED_AGENT_REPLIES_PER_RUN: u32 = 500;
/// Name (and flag) of [`CleanupExecutionLogsWorker`].
pub const CLEANUP_EXECUTION_LOGS: &str = "cleanup_execution_logs";

/// Every minute: claims due posts in batches and publishes them
/// ([`PublishQueue::run_due`]).
#[derive(Debug, Clone)]
pub struct EnqueueDuePostsWorker {
    queue: PublishQueue,
    cadence: Duration,
}

impl EnqueueDuePostsWorker {
    /// The worker over `queue`, every minute.
    pub fn new(queue: PublishQueue) -> Self {
        EnqueueDuePostsWorker {
            queue,
            cadence: Duration::minutes(1),
        }
    }

    /// The same worker with another cadence.
    pub fn every(mut self, cadence: Duration) -> Self {
        self.cadence = cadence;
        self
    }
}

#[async_trait]
impl Worker for EnqueueDuePostsWorker {
    fn name(&self) -> &str {
        ENQUEUE_DUE_POSTS
    }

    fn cadence(&self) -> Cadence {
        Cadence::Every(self.cadence)
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        // Gauges for the operator; a failed read never stops publishing.
        let store = self.queue.store();
        match (
            store.publish_queue_stats(ctx.now).await,
            store.channels_needing_reauth().await,
        ) {
            (Ok(queue), Ok(reauth)) => crate::telemetry::publish_queue(
                queue.due,
                queue.oldest_due_age(ctx.now).num_milliseconds() as f64 / 1e3,
                reauth,
            ),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "queue metrics not read; publishing goes on");
            }
        }
        let report = self.queue.run_due(&ctx.batch, Some(&ctx.shutdown)).await?;
        Ok(WorkReport {
            items_processed: i64::try_from(report.processed() + report.failed).unwrap_or(i64::MAX),
            items_failed: i64::try_from(report.failed).unwrap_or(i64::MAX),
            results: report.to_json(),
        })
    }
}

/// Every minute: returns posts whose lease lapsed (a worker died) to the
/// queue, and settles agent replies left `sending` by a stopped sender for
/// longer than
/// [`AGENT_REPLY_ABANDONED_AFTER_MINUTES`](crate::inbox::AGENT_REPLY_ABANDONED_AFTER_MINUTES)
/// ([`AgentReplies::settle_abandoned`](crate::inbox::AgentReplies::settle_abandoned),
/// up to [`ABANDONED_AGENT_REPLIES_PER_RUN`] a run).
#[derive(Clone)]
pub struct ReleaseStaleLeasesWorker {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for ReleaseStaleLeasesWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseStaleLeasesWorker")
            .finish_non_exhaustive()
    }
}

impl ReleaseStaleLeasesWorker {
    /// The worker over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        ReleaseStaleLeasesWorker { store }
    }
}

#[async_trait]
impl Worker for ReleaseStaleLeasesWorker {
    fn name(&self) -> &str {
        RELEASE_STALE_LEASES
    }

    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::minutes(1))
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        let released = self.store.release_stale_leases(ctx.now).await?;
        // A failure there leaves the replies for the next run; the leases
        // released are still reported.
        let (settled, settle_error) = match crate::inbox::settle_abandoned(
            self.store.as_ref(),
            ctx.now,
            ABANDONED_AGENT_REPLIES_PER_RUN,
        )
        .await
        {
            Ok(settled) => (u64::try_from(settled.len()).unwrap_or(u64::MAX), None),
            Err(error) => {
                tracing::warn!(%error, "abandoned agent replies not settled; the next run tries again");
                (0, Some(error.to_string()))
            }
        };
        Ok(WorkReport {
            items_processed: i64::try_from(released.saturating_add(settled)).unwrap_or(i64::MAX),
            items_failed: i64::from(settle_error.is_some()),
            results: serde_json::json!({
                "released": released,
                "agent_replies_settled": settled,
                "agent_replies_error": settle_error,
            }),
        })
    }
}

/// Sunday at 02:00 Europe/Paris by default ([`Cadence::cleanup`]): creates
/// the next three months' partitions of every partitioned table (Postgres),
/// then removes the logs older than the retention (default 30 days): whole
/// months by dropping their partition, the rest of the boundary month by a
/// delete; last, refreshes the statistics of the partitioned tables as a
/// whole ([`OpsStore::refresh_statistics`](nexiom_storage::OpsStore::refresh_statistics)).
/// A retention of `None` ([`RetentionPolicy::execution_logs`]) keeps every
/// log; a negative one is refused by the run (nothing deleted), and one
/// reaching before the calendar's start keeps every log.
///
/// [`RetentionPolicy::execution_logs`]: nexiom_storage::RetentionPolicy::execution_logs
#[derive(Clone)]
pub struct CleanupExecutionLogsWorker {
    store: Arc<dyn Store>,
    retention: Option<Duration>,
    cadence: Cadence,
}

impl std::fmt::Debug for CleanupExecutionLogsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupExecutionLogsWorker")
            .field("retention", &self.retention)
            .field("cadence", &self.cadence)
            .finish_non_exhaustive()
    }
}

impl CleanupExecutionLogsWorker {
    /// The worker over `store`, keeping 30 days of logs, on Sundays at
    /// 02:00 Europe/Paris.
    pub fn new(store: Arc<dyn Store>) -> Self {
        CleanupExecutionLogsWorker {
            store,
            retention: Some(Duration::days(30)),
            cadence: Cadence::cleanup(),
        }
    }

    /// The same worker on another cadence (an interval or a
    /// [`CronSchedule`](super::CronSchedule)).
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }

    /// The same worker keeping `retention` of logs.
    pub fn keeping(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The same worker keeping logs as long as `policy.execution_logs` says
    /// (`None`: forever), the setting the [`RetentionWorker`] leaves to it.
    ///
    /// [`RetentionWorker`]: super::RetentionWorker
    pub fn with_policy(mut self, policy: &nexiom_storage::RetentionPolicy) -> Self {
        self.retention = policy.execution_logs;
        self
    }
}

#[async_trait]
impl Worker for CleanupExecutionLogsWorker {
    fn name(&self) -> &str {
        CLEANUP_EXECUTION_LOGS
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        // The coming months' partitions first (on Postgres), so that new
        // logs never wait in the default partition.
        let created = self.store.prepare_partitions(ctx.now, 3).await?;
        if let Some(keep) = self.retention
            && keep < Duration::zero()
        {
            return Err(crate::SchedulerError::InvalidConfig(format!(
                "the execution logs' retention is negative ({keep}): it would delete every log; \
                 give a positive duration, or none to keep them"
            )));
        }
        // No retention, or one reaching before the calendar's start: nothing
        // is old enough to go.
        let cutoff = self
            .retention
            .and_then(|keep| ctx.now.checked_sub_signed(keep));
        let deleted = match cutoff {
            Some(cutoff) => self.store.delete_executions_before(cutoff).await?,
            None => 0,
        };
        // Then the statistics of the partitioned tables as a whole, which
        // autovacuum never refreshes. A failure (a lock not granted within
        // 10 s while a partition is created elsewhere) is reported, not
        // fatal: the logs were cleaned, and the next run tries again.
        let statistics = match self.store.refresh_statistics().await {
            Ok(n) => serde_json::json!({ "tables_analyzed": n }),
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the partitioned tables' statistics failed");
                serde_json::json!({ "error": e.to_string() })
            }
        };
        Ok(WorkReport {
            items_processed: i64::try_from(deleted).unwrap_or(i64::MAX),
            items_failed: 0,
            results: serde_json::json!({
                "deleted": deleted,
                "cutoff": cutoff,
                "partitions_created": created,
                "statistics": statistics,
            }),
        })
    }
}
