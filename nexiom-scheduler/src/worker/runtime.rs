//! [`WorkerRuntime`]: named workers on cadences (intervals or wall-clock
//! schedules), behind flags, with execution logs.

use crate::publish::checked::{storable_json, storable_text};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Clock, ExecutionOutcome, RunStatus, TaskExecutionLog};
use nexiom_storage::Store;
use tracing::{Instrument, info_span, warn};

use super::cadence::Cadence;
use super::shutdown::Shutdown;
use crate::error::Result;

/// How a worker processes its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// Items claimed or read per batch (default 50).
    pub batch_size: u32,
    /// Batches per run at most (default 20).
    pub max_batches: u32,
    /// Pause between two items (default none), to spread load on the platforms.
    pub item_delay: std::time::Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_size: 50,
            max_batches: 20,
            item_delay: std::time::Duration::ZERO,
        }
    }
}

/// What a worker run gets.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    /// The run's start (from the runtime's clock).
    pub now: DateTime<Utc>,
    /// Checked between items: when triggered, finish the item in flight and stop.
    pub shutdown: Shutdown,
    /// Batch size and delay for this worker.
    pub batch: BatchConfig,
}

/// What a worker run reports; written to its execution log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkReport {
    /// Items handled.
    pub items_processed: i64,
    /// Items that failed.
    pub items_failed: i64,
    /// Free-form results (counts, ids…).
    pub results: serde_json::Value,
}

/// A named unit of background work, run by a [`WorkerRuntime`] on its
/// [`Worker::cadence`]. Implement it to plug a new worker in (comment polling,
/// KPIs, …) and [`WorkerRuntime::register`] it.
///
/// A run should handle its items in batches and return between two items
/// once `ctx.shutdown` is triggered, leaving nothing half-written.
#[async_trait]
pub trait Worker: Send + Sync {
    /// Unique name; also the name of its flag and of its execution logs.
    fn name(&self) -> &str;
    /// When it runs: an interval (`Duration` converts into one) or a
    /// wall-clock [`Cadence::Cron`] schedule.
    fn cadence(&self) -> Cadence;
    /// One run.
    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport>;
}

/// What happened to a worker in one [`WorkerRuntime::run_once`] step.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerRun {
    /// It ran; its execution log (completed or failed).
    Ran(TaskExecutionLog),
    /// Its flag is off: skipped, no log written.
    Disabled,
    /// Not due yet.
    NotDue,
    /// A slot of its wall-clock schedule that another process sharing the
    /// store claimed first ([`WorkerStore::claim_worker_slot`]): run there,
    /// not here; no log written by this process.
    ///
    /// [`WorkerStore::claim_worker_slot`]: nexiom_storage::WorkerStore::claim_worker_slot
    ClaimedElsewhere,
}

struct Entry {
    worker: Arc<dyn Worker>,
    batch: BatchConfig,
    /// When the worker is due next (`None`: not stepped yet). Each worker's
    /// own: [`WorkerRuntime::run`] steps the workers concurrently.
    next_run_at: Mutex<Option<DateTime<Utc>>>,
}

impl Entry {
    fn next_run_at(&self) -> Option<DateTime<Utc>> {
        *self
            .next_run_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_next_run_at(&self, at: DateTime<Utc>) {
        *self
            .next_run_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(at);
    }
}

/// Runs registered workers on their cadences.
///
/// - **Flags.** Before every run the worker's flag is read from storage
///   (`WorkerStore::get_worker_flag`); a disabled flag skips the run, so
///   switching a worker off or on needs no restart. A worker without a flag
///   runs unless [`WorkerRuntime::disabled_by_default`] was set.
/// - **Cadences.** An interval worker runs at the first step, then every
///   interval after the start of its previous run. A cron worker runs at its
///   slots; at the first step it runs only if a slot passed since its last
///   recorded run (its newest execution log), so after downtime it catches
///   up once, not once per missed slot. A cron run that outlasts its next
///   slots is followed by the first slot after it ended: the slots it
///   overlapped are skipped, never run in a burst.
/// - **Several processes.** Worker processes that share a store each run a
///   runtime. Interval workers run in each (their items are claimed, so the
///   processes share the work). A cron slot is run by one of them: before a
///   scheduled run the runtime claims the slot in the store
///   ([`WorkerStore::claim_worker_slot`]), and a process that finds it taken
///   skips it ([`WorkerRun::ClaimedElsewhere`]). The slot claimed is the
///   schedule's last at the clock's time, so a process that steps late does
///   not run a slot the others passed. A slot is run at most once: if the
///   process running it stops, the next slot runs as usual (a process that
///   is shutting down claims none). A run that outlasts its next slots skips
///   them in its own process only: another process may claim and run them
///   meanwhile, so two runs of the worker can overlap. A run asked by name
///   ([`WorkerRuntime::run_worker`]) claims nothing.
/// - **Execution logs.** Every run writes a `running` log first, then
///   completes it (`completed` or `failed`, items processed / failed, results,
///   duration from the clock).
/// - **Stepping.** [`WorkerRuntime::run_once`] runs what is due at the
///   clock's time, worker after worker, and returns; [`WorkerRuntime::run`]
///   steps each worker in a loop of its own that waits, the loops running
///   concurrently, so a worker whose run waits (on the network, the
///   database) holds back no other; work that blocks the thread would
///   (tests
///   drive `run_once` with a manual clock, never sleeping).
/// - **Shutdown.** [`WorkerRuntime::run`] stops when its [`Shutdown`] fires:
///   the run in flight finishes its current item and returns, no new run starts.
/// - **Failing workers.** The run that makes a worker's streak of failed runs
///   reach [`WorkerRuntime::alert_after_failures`] (3 by default) notifies
///   `worker_failing` once per streak to every tenant subscribed to it
///   ([`OutboxStore::notify_subscribers`]), with the error's class and its
///   execution log's id, not its text (which may quote another tenant's
///   data; the operator reads it in the execution log).
///
/// [`OutboxStore::notify_subscribers`]: nexiom_storage::OutboxStore::notify_subscribers
/// [`WorkerStore::claim_worker_slot`]: nexiom_storage::WorkerStore::claim_worker_slot
pub struct WorkerRuntime {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    entries: Vec<Entry>,
    enabled_by_default: bool,
    idle_poll: std::time::Duration,
    failure_alert: u32,
}

impl std::fmt::Debug for WorkerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRuntime")
            .field("workers", &self.worker_names())
            .field("enabled_by_default", &self.enabled_by_default)
            .finish_non_exhaustive()
    }
}

impl WorkerRuntime {
    /// An empty runtime.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        WorkerRuntime {
            store,
            clock,
            entries: Vec::new(),
            enabled_by_default: true,
            idle_poll: std::time::Duration::from_secs(1),
            failure_alert: 3,
        }
    }

    /// Workers without a flag are skipped (opt-in deployments).
    pub fn disabled_by_default(mut self) -> Self {
        self.enabled_by_default = false;
        self
    }

    /// Adds a worker with the default [`BatchConfig`]; it first runs at the
    /// next step.
    pub fn register(&mut self, worker: Arc<dyn Worker>) -> &mut Self {
        self.register_with(worker, BatchConfig::default())
    }

    /// Adds a worker with its batch configuration. A worker registered under a
    /// name already taken replaces the earlier one.
    pub fn register_with(&mut self, worker: Arc<dyn Worker>, batch: BatchConfig) -> &mut Self {
        self.entries.retain(|e| e.worker.name() != worker.name());
        self.entries.push(Entry {
            worker,
            batch,
            next_run_at: Mutex::new(None),
        });
        self
    }

    /// The registered workers' names, in registration order.
    pub fn worker_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.worker.name().to_owned())
            .collect()
    }

    /// Each registered worker's name and cadence, in registration order.
    pub fn schedules(&self) -> Vec<(String, Cadence)> {
        self.entries
            .iter()
            .map(|e| (e.worker.name().to_owned(), e.worker.cadence()))
            .collect()
    }

    /// Whether a worker without a flag runs (see
    /// [`WorkerRuntime::disabled_by_default`]).
    pub fn runs_unflagged_workers(&self) -> bool {
        self.enabled_by_default
    }

    /// When the next worker is due (`None`: no worker registered).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        self.entries
            .iter()
            .map(|e| e.next_run_at().unwrap_or(now))
            .min()
    }

    /// Runs every worker due at the clock's time, in registration order, and
    /// returns what happened to each registered worker. Stops starting new runs
    /// once `shutdown` fires.
    pub async fn run_once(&mut self, shutdown: &Shutdown) -> Result<Vec<(String, WorkerRun)>> {
        let mut out = Vec::with_capacity(self.entries.len());
        for i in 0..self.entries.len() {
            out.push(self.step(i, shutdown).await?);
        }
        Ok(out)
    }

    /// Runs worker `i` if it is due at the clock's time.
    async fn step(&self, i: usize, shutdown: &Shutdown) -> Result<(String, WorkerRun)> {
        let entry = &self.entries[i];
        let name = entry.worker.name().to_owned();
        let now = self.clock.now();
        if shutdown.is_triggered() {
            return Ok((name, WorkerRun::NotDue));
        }
        let cadence = entry.worker.cadence();
        let due = match entry.next_run_at() {
            Some(at) => (at <= now).then_some(at),
            None => self.due_at_start(&name, &cadence, now).await?,
        };
        let Some(due_at) = due else {
            if entry.next_run_at().is_none() {
                entry.set_next_run_at(next_or_never(&cadence, now));
            }
            return Ok((name, WorkerRun::NotDue));
        };
        entry.set_next_run_at(next_or_never(&cadence, now));
        // A cron run is its slot's: the first process to claim it runs it.
        // The slot is the schedule's last at the clock's time: a process
        // whose step comes late (a long run of an earlier worker, a pause)
        // claims the slot the others see now, not one they passed.
        let slot = match &cadence {
            Cadence::Cron(schedule) => Some(
                schedule
                    .last_at_or_before(now)
                    .map_or(due_at, |last| last.max(due_at)),
            ),
            Cadence::Every(_) => None,
        };
        let run = self.run_entry(i, shutdown, slot).await?;
        if let Cadence::Cron(_) = cadence {
            let ended = self.clock.now().max(now);
            entry.set_next_run_at(next_or_never(&cadence, ended));
        }
        Ok((name, run))
    }

    /// When a worker not run yet by this runtime is due at its first step
    /// (`None`: not due): now for an interval; for a cron schedule, its last
    /// slot, when that slot passed since the worker's last recorded run (or it
    /// never ran).
    async fn due_at_start(
        &self,
        name: &str,
        cadence: &Cadence,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let Cadence::Cron(schedule) = cadence else {
            return Ok(Some(now));
        };
        let Some(slot) = schedule.last_at_or_before(now) else {
            return Ok(None);
        };
        let last = self.store.list_executions(Some(name), 1).await?;
        Ok(last
            .first()
            .is_none_or(|log| log.started_at < slot)
            .then_some(slot))
    }

    /// Runs the named worker now, due or not (its flag still applies).
    /// `None` when no worker has that name.
    pub async fn run_worker(&self, name: &str, shutdown: &Shutdown) -> Result<Option<WorkerRun>> {
        match self.entries.iter().position(|e| e.worker.name() == name) {
            Some(i) => Ok(Some(self.run_entry(i, shutdown, None).await?)),
            None => Ok(None),
        }
    }

    /// Runs entry `i` if its flag allows, and, for a `slot` of its
    /// schedule, if this process is the first to claim that slot.
    async fn run_entry(
        &self,
        i: usize,
        shutdown: &Shutdown,
        slot: Option<DateTime<Utc>>,
    ) -> Result<WorkerRun> {
        let entry = &self.entries[i];
        let name = entry.worker.name();
        let enabled = match self.store.get_worker_flag(name).await? {
            Some(flag) => flag.enabled,
            None => self.enabled_by_default,
        };
        if !enabled {
            return Ok(WorkerRun::Disabled);
        }
        // A slot claimed by a process that is stopping would be lost for
        // every process: leave it to the others.
        if slot.is_some() && shutdown.is_triggered() {
            return Ok(WorkerRun::NotDue);
        }
        if let Some(slot) = slot
            && !self
                .store
                .claim_worker_slot(name, slot, self.clock.now())
                .await?
        {
            return Ok(WorkerRun::ClaimedElsewhere);
        }
        let started = self.clock.now();
        let timer = std::time::Instant::now();
        let log = self.store.start_execution(name, started).await?;
        let ctx = WorkerContext {
            now: started,
            shutdown: shutdown.clone(),
            batch: entry.batch.clone(),
        };
        let span = info_span!("worker_run", worker = name, execution_id = %log.id);
        let result = entry.worker.run(&ctx).instrument(span).await;
        crate::telemetry::worker_run(name, result.is_ok(), timer.elapsed().as_secs_f64(), started);
        let mut failed_kind = None;
        let outcome = match result {
            Ok(report) => ExecutionOutcome {
                status: RunStatus::Completed,
                finished_at: self.clock.now(),
                items_processed: report.items_processed,
                items_failed: report.items_failed,
                // A worker's report may quote a platform's words (a failure
                // with a NUL in it): stored cleaned, not refused, so that the
                // execution log does not stay `running`.
                results: storable_json(report.results),
                error: None,
            },
            Err(err) => {
                warn!(worker = name, error = %err, "worker run failed");
                failed_kind = Some(err.kind());
                ExecutionOutcome {
                    status: RunStatus::Failed,
                    finished_at: self.clock.now(),
                    items_processed: 0,
                    items_failed: 0,
                    results: serde_json::Value::Null,
                    error: Some(storable_text(&err.to_string())),
                }
            }
        };
        let log = self.store.finish_execution(log.id, outcome).await?;
        if let Some(kind) = failed_kind
            && log.status == RunStatus::Failed
            && let Err(error) = self.alert_if_failing(name, kind).await
        {
            warn!(worker = name, %error, "could not notify the failing worker");
        }
        Ok(WorkerRun::Ran(log))
    }

    /// Notifies `worker_failing` when the worker's last `failure_alert` runs
    /// failed and the run before them did not (so once per streak).
    ///
    /// The notification goes to every subscribed tenant, so it names the
    /// last error's class (`kind`, [`SchedulerError::kind`]) and its execution
    /// log, never its text: a worker serves every tenant, and its error can
    /// quote one tenant's data (a key in a constraint violation, a platform's
    /// answer). The text stays in the execution log, for the operator.
    ///
    /// [`SchedulerError::kind`]: crate::SchedulerError::kind
    async fn alert_if_failing(&self, name: &str, kind: &'static str) -> Result<()> {
        let threshold = self.failure_alert;
        if threshold == 0 {
            return Ok(());
        }
        let logs = self
            .store
            .list_executions(Some(name), threshold.saturating_add(1))
            .await?;
        let n = usize::try_from(threshold).unwrap_or(usize::MAX);
        let streak = logs
            .iter()
            .take_while(|l| l.status == RunStatus::Failed)
            .count();
        if streak != n {
            return Ok(());
        }
        let (Some(first), Some(last)) = (logs.get(n - 1), logs.first()) else {
            return Ok(());
        };
        let payload = serde_json::json!({
            "worker": name,
            "failures": threshold,
            "error_kind": kind,
            "execution_id": last.id,
            "since": first.started_at,
        });
        self.store
            .notify_subscribers(
                nexiom_core::NotificationKind::WorkerFailing,
                &format!("worker_failing:{name}:{}", first.id),
                payload,
                last.finished_at.unwrap_or(last.started_at),
            )
            .await?;
        Ok(())
    }

    /// Notifies `worker_failing` when a worker's streak of failed runs reaches
    /// `runs` (0: never). Default 3.
    pub fn alert_after_failures(mut self, runs: u32) -> Self {
        self.failure_alert = runs;
        self
    }

    /// Runs workers on their cadences until `shutdown` fires, each in its own
    /// loop (concurrently, in this task): the worker's step (as in
    /// [`run_once`]), then a wait until it is due again (re-reading the clock
    /// at most every second, so a clock that jumps is followed) or shutdown.
    /// So a long run (notifications to an endpoint that hangs until its
    /// timeout, a slow platform) delays only its own worker's next run, never
    /// the others'. A storage failure of a step is logged and the loop goes
    /// on.
    ///
    /// [`run_once`]: WorkerRuntime::run_once
    pub async fn run(self, shutdown: Shutdown) {
        if self.entries.is_empty() {
            shutdown.wait().await;
            return;
        }
        let this = &self;
        let loops = (0..self.entries.len()).map(|i| {
            let shutdown = shutdown.clone();
            async move {
                while !shutdown.is_triggered() {
                    if let Err(err) = this.step(i, &shutdown).await {
                        warn!(worker = this.entries[i].worker.name(), error = %err, "worker step failed");
                    }
                    let now = this.clock.now();
                    let wait = this.entries[i]
                        .next_run_at()
                        .map(|at| (at - now).to_std().unwrap_or_default())
                        .unwrap_or(this.idle_poll)
                        .min(this.idle_poll);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait() => {}
                    }
                }
            }
        });
        futures_util::future::join_all(loops).await;
    }
}

/// The run after one that started at `now`; a schedule that never matches
/// again is never due.
fn next_or_never(cadence: &Cadence, now: DateTime<Utc>) -> DateTime<Utc> {
    // An interval under one second (built without `Cadence::every`'s check)
    // counts as one second, so the loop never spins on the database.
    match cadence {
        Cadence::Every(d) if *d < chrono::Duration::seconds(1) => {
            now + chrono::Duration::seconds(1)
        }
        _ => cadence.next_after(now).unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}
