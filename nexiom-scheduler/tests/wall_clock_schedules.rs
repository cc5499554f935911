//! Wall-clock worker schedules under the runtime, with a manual clock that
//! jumps from one due time to the next (as `WorkerRuntime::run` waits):
//! both 2026 daylight-saving changes in Europe/Paris, catch-up after
//! downtime (once, not once per missed slot), the seeds' default
//! cadences, and several processes sharing one store (each slot run by one).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use common::Env;
use nexiom_core::Clock;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    a_missing_time_on_spring_forward_runs_once_right_after_the_gap,
    a_repeated_time_on_fall_back_runs_once,
    downtime_is_caught_up_once_not_once_per_missed_slot,
    a_run_longer_than_its_slots_is_followed_by_the_next_slot_only,
    each_slot_is_run_by_one_of_the_processes_sharing_the_store,
);

/// A worker that records the clock's time at each of its runs.
struct Recorder {
    name: &'static str,
    cadence: Cadence,
    clock: Arc<nexiom_core::ManualClock>,
    runs: Mutex<Vec<DateTime<Utc>>>,
    /// Clock time each run takes.
    takes: Duration,
}

impl Recorder {
    fn new(env: &Env, name: &'static str, cadence: Cadence) -> Arc<Recorder> {
        Arc::new(Recorder {
            name,
            cadence,
            clock: env.clock.clone(),
            runs: Mutex::new(Vec::new()),
            takes: Duration::zero(),
        })
    }

    fn runs(&self) -> Vec<DateTime<Utc>> {
        self.runs.lock().unwrap().clone()
    }
}

#[async_trait]
impl Worker for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn cadence(&self) -> Cadence {
        self.cadence.clone()
    }

    async fn run(&self, ctx: &WorkerContext) -> nexiom_scheduler::Result<WorkReport> {
        self.runs.lock().unwrap().push(ctx.now);
        self.clock.advance(self.takes);
        Ok(WorkReport::default())
    }
}

fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Paris
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

/// Steps `runtime` from the clock's time to `until`, jumping the clock to
/// each due time as the runtime's loop would.
async fn step_until(env: &Env, runtime: &mut WorkerRuntime, until: DateTime<Utc>) {
    let shutdown = Shutdown::never();
    loop {
        runtime.run_once(&shutdown).await.unwrap();
        let Some(next) = runtime.next_due() else {
            break;
        };
        if next > until {
            env.clock.set(until);
            break;
        }
        if next > env.clock.now() {
            env.clock.set(next);
        }
    }
}

/// A record of a run at `at` (a previous process's execution log).
async fn ran_before(store: &Arc<dyn Store>, name: &str, at: DateTime<Utc>) {
    let log = store.start_execution(name, at).await.unwrap();
    store
        .finish_execution(
            log.id,
            nexiom_core::ExecutionOutcome {
                status: nexiom_core::RunStatus::Completed,
                finished_at: at,
                items_processed: 0,
                items_failed: 0,
                results: serde_json::Value::Null,
                error: None,
            },
        )
        .await
        .unwrap();
}

async fn a_missing_time_on_spring_forward_runs_once_right_after_the_gap(store: Arc<dyn Store>) {
    // 29 March 2026: Paris jumps from 02:00 CET to 03:00 CEST; 02:30 does not
    // exist that day.
    let env = Env::at(store.clone(), paris(2026, 3, 28, 12, 0)).await;
    ran_before(&store, "at_0230", paris(2026, 3, 28, 2, 30)).await;
    let worker = Recorder::new(
        &env,
        "at_0230",
        Cadence::cron("30 2 * * *", "Europe/Paris").unwrap(),
    );
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(worker.clone());
    step_until(&env, &mut runtime, paris(2026, 3, 31, 12, 0)).await;
    assert_eq!(
        worker.runs(),
        vec![
            utc(2026, 3, 29, 1, 0),  // 03:00 CEST, right after the gap
            utc(2026, 3, 30, 0, 30), // 02:30 CEST
            utc(2026, 3, 31, 0, 30),
        ]
    );
    let logs = store.list_executions(Some("at_0230"), 10).await.unwrap();
    assert_eq!(
        logs.len(),
        4,
        "one execution log per run, plus the earlier one"
    );
}

async fn a_repeated_time_on_fall_back_runs_once(store: Arc<dyn Store>) {
    // 25 October 2026: Paris goes back from 03:00 CEST to 02:00 CET; 02:30
    // happens twice that day.
    let env = Env::at(store.clone(), paris(2026, 10, 24, 12, 0)).await;
    ran_before(&store, "at_0230", paris(2026, 10, 24, 2, 30)).await;
    ran_before(&store, "every_quarter", paris(2026, 10, 24, 12, 0)).await;
    let fixed = Recorder::new(
        &env,
        "at_0230",
        Cadence::cron("30 2 * * *", "Europe/Paris").unwrap(),
    );
    // A step job runs in both passes of the repeated hour (croner's rule).
    let quarterly = Recorder::new(
        &env,
        "every_quarter",
        Cadence::cron("*/15 2 * * *", "Europe/Paris").unwrap(),
    );
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(fixed.clone()).register(quarterly.clone());
    step_until(&env, &mut runtime, paris(2026, 10, 26, 12, 0)).await;
    assert_eq!(
        fixed.runs(),
        vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        "02:30 CEST on the 25th only, then 02:30 CET on the 26th"
    );
    let on_the_25th: Vec<_> = quarterly
        .runs()
        .into_iter()
        .filter(|t| *t < utc(2026, 10, 25, 12, 0))
        .collect();
    assert_eq!(
        on_the_25th.len(),
        8,
        "02:00–02:45 in both passes: {on_the_25th:?}"
    );
}

async fn downtime_is_caught_up_once_not_once_per_missed_slot(store: Arc<dyn Store>) {
    let env = Env::at(store.clone(), utc(2026, 6, 1, 10, 5)).await;
    let hourly = || Cadence::cron("0 * * * *", "UTC").unwrap();
    // The last run before the downtime was at 10:00; the process comes back
    // at 15:20, five slots later.
    ran_before(&store, "hourly", utc(2026, 6, 1, 10, 0)).await;
    env.clock.set(utc(2026, 6, 1, 15, 20));
    let worker = Recorder::new(&env, "hourly", hourly());
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(worker.clone());
    step_until(&env, &mut runtime, utc(2026, 6, 1, 16, 30)).await;
    assert_eq!(
        worker.runs(),
        vec![utc(2026, 6, 1, 15, 20), utc(2026, 6, 1, 16, 0)],
        "once on start, then on its slots"
    );

    // A restart with no slot missed does not run on start.
    let again = Recorder::new(&env, "hourly", hourly());
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(again.clone());
    step_until(&env, &mut runtime, utc(2026, 6, 1, 17, 30)).await;
    assert_eq!(again.runs(), vec![utc(2026, 6, 1, 17, 0)]);

    // The seeds' defaults: the daily 03:00 clustering and Sunday cleanup
    // catch up once on a first start, interval workers run at once.
    let cluster = Recorder::new(&env, "clustering", Cadence::clustering());
    let cleanup = Recorder::new(&env, "cleanup", Cadence::cleanup());
    let kpis = Recorder::new(&env, "kpis", Cadence::kpis());
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime
        .register(cluster.clone())
        .register(cleanup.clone())
        .register(kpis.clone());
    let start = env.clock.now(); // Monday 1 June 2026, 17:30 UTC
    step_until(&env, &mut runtime, utc(2026, 6, 8, 12, 0)).await;
    let cluster_runs = cluster.runs();
    assert_eq!(cluster_runs[0], start);
    assert_eq!(cluster_runs[1], paris(2026, 6, 2, 3, 0));
    assert_eq!(cluster_runs.len(), 8, "on start, then 2–8 June at 03:00");
    assert_eq!(cleanup.runs(), vec![start, paris(2026, 6, 7, 2, 0)]);
    let kpi_runs = kpis.runs();
    assert_eq!(kpi_runs[0], start);
    assert!(
        kpi_runs
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::minutes(30))
    );
}

async fn a_run_longer_than_its_slots_is_followed_by_the_next_slot_only(store: Arc<dyn Store>) {
    let env = Env::at(store.clone(), utc(2026, 6, 1, 9, 59)).await;
    ran_before(&store, "slow", utc(2026, 6, 1, 9, 55)).await;
    let worker = Arc::new(Recorder {
        name: "slow",
        cadence: Cadence::cron("*/5 * * * *", "UTC").unwrap(),
        clock: env.clock.clone(),
        runs: Mutex::new(Vec::new()),
        takes: Duration::minutes(12),
    });
    let mut runtime = WorkerRuntime::new(store.clone(), env.clock.clone());
    runtime.register(worker.clone());
    step_until(&env, &mut runtime, utc(2026, 6, 1, 10, 40)).await;
    // 10:00 runs until 10:12: 10:05 and 10:10 are skipped, the next run is
    // 10:15 (until 10:27), then 10:30.
    assert_eq!(
        worker.runs(),
        vec![
            utc(2026, 6, 1, 10, 0),
            utc(2026, 6, 1, 10, 15),
            utc(2026, 6, 1, 10, 30),
        ]
    );
}

/// `n` worker processes on one store: each has its runtime and its own
/// instance of the hourly worker.
fn processes(env: &Env, n: usize) -> (Vec<Arc<Recorder>>, Vec<WorkerRuntime>) {
    let hourly = Cadence::cron("0 * * * *", "UTC").unwrap();
    let workers: Vec<_> = (0..n)
        .map(|_| Recorder::new(env, "hourly", hourly.clone()))
        .collect();
    let runtimes = workers
        .iter()
        .map(|w| {
            let mut runtime = WorkerRuntime::new(env.store.clone(), env.clock.clone());
            runtime.register(w.clone());
            runtime
        })
        .collect();
    (workers, runtimes)
}

/// One step of three processes at the same instant, concurrently; how many
/// found the slot claimed by another.
async fn step_together(runtimes: &mut [WorkerRuntime]) -> usize {
    let shutdown = Shutdown::never();
    let [a, b, c] = runtimes else {
        unreachable!("three processes")
    };
    let (ra, rb, rc) = tokio::join!(
        a.run_once(&shutdown),
        b.run_once(&shutdown),
        c.run_once(&shutdown)
    );
    [ra.unwrap(), rb.unwrap(), rc.unwrap()]
        .iter()
        .flatten()
        .filter(|(_, r)| *r == WorkerRun::ClaimedElsewhere)
        .count()
}

async fn each_slot_is_run_by_one_of_the_processes_sharing_the_store(store: Arc<dyn Store>) {
    let env = Env::at(store.clone(), utc(2026, 6, 1, 10, 5)).await;
    ran_before(&store, "hourly", utc(2026, 6, 1, 10, 0)).await;
    let (workers, mut runtimes) = processes(&env, 3);
    let mut elsewhere = 0;
    loop {
        elsewhere += step_together(&mut runtimes).await;
        let next = runtimes.iter().filter_map(|r| r.next_due()).min().unwrap();
        if next > utc(2026, 6, 1, 13, 30) {
            break;
        }
        if next > env.clock.now() {
            env.clock.set(next);
        }
    }
    let mut runs: Vec<_> = workers.iter().flat_map(|w| w.runs()).collect();
    runs.sort();
    assert_eq!(
        runs,
        vec![
            utc(2026, 6, 1, 11, 0),
            utc(2026, 6, 1, 12, 0),
            utc(2026, 6, 1, 13, 0),
        ],
        "each slot once, by one of the three processes"
    );
    assert_eq!(elsewhere, 6, "the two others found each slot claimed");
    let logs = store.list_executions(Some("hourly"), 10).await.unwrap();
    assert_eq!(logs.len(), 4, "one log per slot, plus the earlier one");

    // A process whose step comes late (a long run of another worker, a
    // pause) claims the slot the others see now, not the one it missed: at
    // 15:20 it does not run 14:00 after another process, started at 15:10,
    // caught up 15:00.
    let shutdown = Shutdown::never();
    env.clock.set(utc(2026, 6, 1, 13, 30));
    let (late, mut late_runtime) = processes(&env, 1);
    late_runtime[0].run_once(&shutdown).await.unwrap();
    env.clock.set(utc(2026, 6, 1, 15, 10));
    let (started, mut started_runtime) = processes(&env, 1);
    started_runtime[0].run_once(&shutdown).await.unwrap();
    env.clock.set(utc(2026, 6, 1, 15, 20));
    let step = late_runtime[0].run_once(&shutdown).await.unwrap();
    assert_eq!(step[0].1, WorkerRun::ClaimedElsewhere);
    assert_eq!(started[0].runs(), vec![utc(2026, 6, 1, 15, 10)]);
    assert!(late[0].runs().is_empty());

    // Three processes coming back together after downtime catch the missed
    // slots up once between them.
    env.clock.set(utc(2026, 6, 1, 18, 20));
    let (back, mut runtimes) = processes(&env, 3);
    step_together(&mut runtimes).await;
    let runs: Vec<_> = back.iter().flat_map(|w| w.runs()).collect();
    assert_eq!(runs, vec![utc(2026, 6, 1, 18, 20)], "one catch-up run");
}
