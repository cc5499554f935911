//! [`RetentionStore`]: old rows removed in short batches, so that retention
//! never holds a long transaction or a lock on a busy table.
//!
//! What each kind removes (rows older than the cutoff):
//! - [`Retained::WebhookEvents`]: *routed* events whose platform time
//!   (`occurred_at`) is before the cutoff; an unrouted event is kept whatever
//!   its age. On Postgres the table is partitioned by month of `occurred_at`
//!   and a call first drops every month that ends before the cutoff and holds
//!   no unrouted event (its answer then counts those rows too, so it can
//!   exceed `batch`). Once removed, a redelivery of the event would be stored
//!   again, but routing still stores its message or comment only once (their
//!   own keys).
//! - [`Retained::PostRuns`]: finished runs (`success`, `failed`) started
//!   before the cutoff; a `running` run is kept.
//! - [`Retained::DeadLetters`]: dead letters received before the cutoff.
//! - [`Retained::Notifications`]: outbox notifications that occurred before
//!   the cutoff and are settled (none of their deliveries is still
//!   `pending`), with their deliveries. A notification still being
//!   delivered is kept whatever its age. Once removed, its deduplication key
//!   is free again: a cause that happened more than the retention ago is
//!   not expected to be reported again.
//!
//! - [`Retained::Messages`]: messages (both directions) whose own time
//!   (`created_at`) is before the cutoff; kept forever by default. On
//!   Postgres the table is partitioned by month of `created_at`, and a call
//!   first drops every month that ends before the cutoff (counted in its
//!   answer). What topics derived from removed messages goes too, up to
//!   `batch` rows of each a call, counted in the answer: the memberships of
//!   messages created before the cutoff, and the message vectors last
//!   computed before it (a vector is a function of the customer's text, so
//!   it must not outlive it by much: one computed after its message, by a
//!   weekly topic run, goes at a later call once its own time passes the
//!   cutoff; a topic's label, terms and daily sizes are aggregates and
//!   stay). What points at a removed message
//!   stays: its AI decision, the agent reply that sent it, a reply's
//!   `in_reply_to`, the inbox item of its conversation (which keeps the
//!   times it had computed).
//!
//! Execution logs have their own, partition-based removal
//! (`WorkerStore::delete_executions_before`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::error::Result;

/// A kind of row with a retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retained {
    /// Routed webhook events.
    WebhookEvents,
    /// Finished post runs.
    PostRuns,
    /// Dead letters.
    DeadLetters,
    /// Settled outbox notifications (with their deliveries).
    Notifications,
    /// Messages.
    Messages,
}

impl Retained {
    /// Every kind.
    pub const ALL: [Retained; 5] = [
        Retained::WebhookEvents,
        Retained::PostRuns,
        Retained::DeadLetters,
        Retained::Notifications,
        Retained::Messages,
    ];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Retained::WebhookEvents => "webhook_events",
            Retained::PostRuns => "post_runs",
            Retained::DeadLetters => "dead_letters",
            Retained::Notifications => "notifications",
            Retained::Messages => "messages",
        }
    }
}

/// How long each kind is kept (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Routed webhook events (default 30 days: platforms redeliver within
    /// hours, and routing has copied what matters into messages and
    /// comments).
    pub webhook_events: Option<Duration>,
    /// Finished post runs (default 180 days: the publishing history a person
    /// looks into).
    pub post_runs: Option<Duration>,
    /// Dead letters (default 90 days).
    pub dead_letters: Option<Duration>,
    /// Settled outbox notifications and their deliveries (default 30 days:
    /// the endpoints have them, and a dead delivery has been reported).
    pub notifications: Option<Duration>,
    /// Execution logs (default 30 days). Not removed by the retention
    /// worker but by the execution-log cleanup worker, which drops whole
    /// months (`CleanupExecutionLogsWorker::with_policy` in
    /// `nexiom-scheduler` reads it).
    pub execution_logs: Option<Duration>,
    /// Messages (default `None`: a conversation's history is kept; a team
    /// bound by a data-retention rule sets it).
    pub messages: Option<Duration>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            webhook_events: Some(Duration::days(30)),
            post_runs: Some(Duration::days(180)),
            dead_letters: Some(Duration::days(90)),
            notifications: Some(Duration::days(30)),
            execution_logs: Some(Duration::days(30)),
            messages: None,
        }
    }
}

impl RetentionPolicy {
    /// The retention of `kind`.
    pub fn of(&self, kind: Retained) -> Option<Duration> {
        match kind {
            Retained::WebhookEvents => self.webhook_events,
            Retained::PostRuns => self.post_runs,
            Retained::DeadLetters => self.dead_letters,
            Retained::Notifications => self.notifications,
            Retained::Messages => self.messages,
        }
    }
}

/// Batched removal of old rows. Spans tenants: on Postgres it uses the
/// worker (scan) pool.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes at most `batch` rows of `kind` older than `cutoff` (see the
    /// module docs for what counts; on Postgres, the whole old months of
    /// webhook events and messages are dropped first, beyond `batch`), in
    /// short transactions, and
    /// returns how many. Call it again while it returns `batch` or more.
    async fn purge_before(&self, kind: Retained, cutoff: DateTime<Utc>, batch: u32) -> Result<u64>;
}
