//! [`RetentionWorker`]: removes old webhook events, post runs, dead
//! letters and settled notifications in short batches.

use std::sync::Arc;

use async_trait::async_trait;
use nexiom_storage::{Retained, RetentionPolicy, Store};

use super::cadence::Cadence;
use super::runtime::{WorkReport, Worker, WorkerContext};
use crate::error::Result;

/// Name (and flag) of [`RetentionWorker`].
pub const RETENTION: &str = "retention";

/// Rows removed per statement.
const BATCH: u32 = 1000;

/// Sunday at 02:00 Europe/Paris by default ([`Cadence::cleanup`]): for each
/// kind of [`RetentionPolicy`] (routed webhook events 30 days, finished post
/// runs 180 days, dead letters 90 days, settled outbox notifications 30
/// days, messages kept, by default), removes what is older: on Postgres the
/// whole months of webhook events and messages first (their partitions
/// dropped), then 1,000 rows per short transaction, until nothing is left
/// or shutdown fires. Execution logs are [`CleanupExecutionLogsWorker`]'s
/// (partition drops on Postgres); that worker also creates every
/// partitioned table's coming months.
///
/// [`CleanupExecutionLogsWorker`]: super::CleanupExecutionLogsWorker
#[derive(Clone)]
pub struct RetentionWorker {
    store: Arc<dyn Store>,
    policy: RetentionPolicy,
    cadence: Cadence,
}

impl std::fmt::Debug for RetentionWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionWorker")
            .field("policy", &self.policy)
            .field("cadence", &self.cadence)
            .finish_non_exhaustive()
    }
}

impl RetentionWorker {
    /// The worker over `store` with the default policy and cadence.
    pub fn new(store: Arc<dyn Store>) -> Self {
        RetentionWorker {
            store,
            policy: RetentionPolicy::default(),
            cadence: Cadence::cleanup(),
        }
    }

    /// The same worker with another policy.
    pub fn with_policy(mut self, policy: RetentionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same worker on another cadence.
    pub fn on(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }
}

#[async_trait]
impl Worker for RetentionWorker {
    fn name(&self) -> &str {
        RETENTION
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        // Checked before anything is removed: a negative retention puts the
        // cutoff in the future, which would remove every row of its kind.
        for kind in Retained::ALL {
            if let Some(keep) = self.policy.of(kind)
                && keep < chrono::Duration::zero()
            {
                return Err(crate::SchedulerError::InvalidConfig(format!(
                    "the retention of {} is negative ({keep}): it would remove every row; give \
                     a positive duration, or none to keep them",
                    kind.as_str()
                )));
            }
        }
        let mut results = serde_json::Map::new();
        let mut total = 0u64;
        for kind in Retained::ALL {
            let Some(keep) = self.policy.of(kind) else {
                continue;
            };
            // A retention reaching before the calendar's start keeps all.
            let Some(cutoff) = ctx.now.checked_sub_signed(keep) else {
                continue;
            };
            let mut removed = 0u64;
            while !ctx.shutdown.is_triggered() {
                let n = self.store.purge_before(kind, cutoff, BATCH).await?;
                removed += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            total += removed;
            results.insert(kind.as_str().to_owned(), removed.into());
        }
        Ok(WorkReport {
            items_processed: i64::try_from(total).unwrap_or(i64::MAX),
            items_failed: 0,
            results: serde_json::Value::Object(results),
        })
    }
}
