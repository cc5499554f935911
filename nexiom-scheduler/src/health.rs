//! [`HealthCheck`]: is the database reachable, is its schema current, and has
//! each worker run as often as its cadence says?
//!
//! - **Ready** ([`HealthReport::ready`], for `/readyz`): the database
//!   answers, every migration this build embeds is applied, and every
//!   enabled worker completed a run within its tolerance: twice its period
//!   ([`Cadence::period`]) plus [`HealthCheck::grace`]. A worker that has not
//!   run yet is late only once that tolerance has passed since the check was
//!   created (the process started).
//! - **Live** ([`HealthReport::live`], for `/healthz`): the runtime is not
//!   stuck: every enabled worker *ran* (completed or failed) within its
//!   tolerance, or a run of one of them is in progress and younger than
//!   [`HealthCheck::max_run`] (the runtime runs its workers one after
//!   another, so a long run delays the others without being stuck). A
//!   database that is down makes the process not ready, but not dead:
//!   restarting it would not help. Execution logs are shared by worker name:
//!   with several processes, the check reflects the fleet's runs.
//!
//! Worker flags and execution logs are read from the store; a worker whose
//! flag is off is reported but never late.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{Clock, RunStatus};
use nexiom_storage::Store;
use serde::Serialize;

use crate::worker::{Cadence, WorkerRuntime};

/// Execution logs read per worker to find its last completed run.
const LOGS_READ: u32 = 20;

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was found (an error, the versions).
    pub detail: String,
}

/// One worker's state against its cadence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerHealth {
    /// The worker's name.
    pub name: String,
    /// Its cadence, as text.
    pub cadence: String,
    /// Its flag (a worker without one runs when the runtime runs workers by
    /// default).
    pub enabled: bool,
    /// Start of its newest run (any outcome).
    pub last_run: Option<DateTime<Utc>>,
    /// Start of its newest completed run.
    pub last_success: Option<DateTime<Utc>>,
    /// How long without a run before it counts as late.
    pub tolerance_seconds: i64,
    /// Enabled and no completed run within the tolerance.
    pub late: bool,
    /// Enabled and no run at all within the tolerance.
    pub stalled: bool,
}

/// The result of one [`HealthCheck::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// When it was checked.
    pub checked_at: DateTime<Utc>,
    /// The database answered.
    pub database: Check,
    /// The schema is current.
    pub migrations: Check,
    /// Each worker, in registration order.
    pub workers: Vec<WorkerHealth>,
}

impl HealthReport {
    /// Ready to serve: database, schema and every enabled worker on time.
    pub fn ready(&self) -> bool {
        self.database.ok && self.migrations.ok && self.workers.iter().all(|w| !w.late)
    }

    /// Alive: no enabled worker stalled (see the module docs).
    pub fn live(&self) -> bool {
        self.workers.iter().all(|w| !w.stalled)
    }

    /// The report as JSON, with `ready` and `live`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert("ready".into(), self.ready().into());
            map.insert("live".into(), self.live().into());
        }
        value
    }
}

/// Checks the store and the workers of a runtime; cheap to clone.
#[derive(Clone)]
pub struct HealthCheck {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    workers: Vec<(String, Cadence)>,
    enabled_by_default: bool,
    started_at: DateTime<Utc>,
    grace: Duration,
    max_run: Duration,
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("workers", &self.workers)
            .field("started_at", &self.started_at)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl HealthCheck {
    /// A check of `store` and of the workers registered on `runtime` (their
    /// names and cadences as they are now); the process counts as started at
    /// the clock's time.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, runtime: &WorkerRuntime) -> Self {
        let started_at = clock.now();
        HealthCheck {
            store,
            clock,
            workers: runtime.schedules(),
            enabled_by_default: runtime.runs_unflagged_workers(),
            started_at,
            grace: Duration::minutes(1),
            max_run: Duration::hours(2),
        }
    }

    /// The same check allowing a run in progress to last `max_run` before
    /// the process counts as stuck (default two hours).
    pub fn max_run(mut self, max_run: Duration) -> Self {
        self.max_run = max_run;
        self
    }

    /// The same check with another grace added to each tolerance (default
    /// one minute).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs every check. Never fails: what cannot be read is reported as not
    /// ok.
    pub async fn check(&self) -> HealthReport {
        let now = self.clock.now();
        let (database, migrations) = match self.store.schema_status().await {
            Ok(schema) => (
                Check {
                    ok: true,
                    detail: "reachable".into(),
                },
                Check {
                    ok: schema.is_current(),
                    detail: format!(
                        "applied {}, expected {}",
                        schema.applied.map_or("none".into(), |v| v.to_string()),
                        schema.expected
                    ),
                },
            ),
            Err(err) => (
                Check {
                    ok: false,
                    detail: err.to_string(),
                },
                Check {
                    ok: false,
                    detail: "unknown: the database did not answer".into(),
                },
            ),
        };
        let mut workers = Vec::with_capacity(self.workers.len());
        let mut busy = false;
        for (name, cadence) in &self.workers {
            let (health, running_since) = self.worker(name, cadence, now, database.ok).await;
            busy |= running_since.is_some_and(|at| now - at <= self.max_run);
            workers.push(health);
        }
        if busy {
            for w in &mut workers {
                w.stalled = false;
            }
        }
        HealthReport {
            checked_at: now,
            database,
            migrations,
            workers,
        }
    }

    /// The worker's state, and the start of its run in progress if its
    /// newest log is one.
    async fn worker(
        &self,
        name: &str,
        cadence: &Cadence,
        now: DateTime<Utc>,
        database_ok: bool,
    ) -> (WorkerHealth, Option<DateTime<Utc>>) {
        let tolerance = cadence.period(now) * 2 + self.grace;
        let enabled = match self.store.get_worker_flag(name).await {
            Ok(flag) => flag.map_or(self.enabled_by_default, |f| f.enabled),
            Err(_) => self.enabled_by_default,
        };
        let logs = if database_ok {
            self.store
                .list_executions(Some(name), LOGS_READ)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let last_run = logs.first().map(|l| l.started_at);
        let last_success = logs
            .iter()
            .find(|l| l.status == RunStatus::Completed)
            .map(|l| l.started_at);
        // Measured from the last run, or from the start for a worker that has
        // not run since this process started.
        let overdue = |at: Option<DateTime<Utc>>| {
            let reference = at
                .filter(|at| *at >= self.started_at)
                .unwrap_or(self.started_at);
            now - reference > tolerance
        };
        let running_since = logs
            .first()
            .filter(|l| l.status == RunStatus::Running)
            .map(|l| l.started_at);
        let health = WorkerHealth {
            name: name.to_owned(),
            cadence: cadence.to_string(),
            enabled,
            last_run,
            last_success,
            tolerance_seconds: tolerance.num_seconds(),
            late: enabled && overdue(last_success),
            // Without the database the logs cannot be read: not stalled.
            stalled: enabled && database_ok && overdue(last_run),
        };
        (health, running_since)
    }
}
