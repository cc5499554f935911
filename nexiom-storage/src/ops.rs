//! [`OpsStore`]: what an operator's health check and metrics read from the
//! store itself.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;

/// The schema's version against the one this build of the library expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The newest migration applied (`None`: none; the memory store reports
    /// the expected version).
    pub applied: Option<i64>,
    /// The newest migration this build embeds.
    pub expected: i64,
}

impl SchemaStatus {
    /// Whether every migration this build embeds is applied.
    pub fn is_current(&self) -> bool {
        self.applied.is_some_and(|v| v >= self.expected)
    }
}

/// The publish queue at one instant, across tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Queued posts due (their time and any retry time passed).
    pub due: u64,
    /// The publish time of the oldest of them.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

impl QueueStats {
    /// How long the oldest due post has waited at `now` (zero when none).
    pub fn oldest_due_age(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.oldest_due_at.map_or(chrono::Duration::zero(), |at| {
            (now - at).max(chrono::Duration::zero())
        })
    }
}

/// Operator reads. They span tenants: on Postgres they use the worker (scan)
/// pool.
#[async_trait]
pub trait OpsStore: Send + Sync {
    /// Reaches the database (an error when it cannot) and tells whether its
    /// schema is the one this build expects.
    async fn schema_status(&self) -> Result<SchemaStatus>;

    /// Queued posts due at `now` (publish time passed, no retry pending) and
    /// the oldest one's publish time; posts of a held or throttled channel
    /// count too (they are waiting).
    async fn publish_queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats>;

    /// Channels whose status is `needs_reauth` (a person must reconnect
    /// them), across tenants.
    async fn channels_needing_reauth(&self) -> Result<u64>;

    /// Creates the storage the coming months need (on Postgres, the monthly
    /// partitions of the execution logs, the webhook events and the
    /// messages from `now`'s month to
    /// `months_ahead` months later); returns how many were created. Nothing
    /// to do in memory.
    async fn prepare_partitions(&self, now: DateTime<Utc>, months_ahead: u32) -> Result<u64>;

    /// Refreshes the planner's statistics of the partitioned tables as a
    /// whole (on Postgres, `ANALYZE` of the execution logs, the webhook
    /// events and the messages, which autovacuum never does for a
    /// partitioned table, only for its partitions); returns how many tables
    /// were analyzed. Reads a bounded sample of each table, and lets reads
    /// and writes go on meanwhile; one table per transaction, so that a
    /// partition's creation or drop waits for one table at most. A table
    /// whose lock is not granted within 10 s does not stop the others: the
    /// first such error is returned once all were tried. Nothing to do in
    /// memory.
    async fn refresh_statistics(&self) -> Result<u64>;
}

/// The newest migration embedded in this build (the memory store's version).
pub fn expected_schema_version() -> i64 {
    crate::PgStore::migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}
