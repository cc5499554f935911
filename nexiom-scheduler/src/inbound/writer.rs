//! Group commit of webhook events: the events of concurrent requests stored
//! together, one multi-row insert per commit.
//!
//! Each request hands its body's events to the writer as one job and waits
//! for the answer. A collector task takes jobs from a bounded queue; as soon
//! as one of its flush slots is free, it takes the oldest job, then every job
//! that is already waiting (up to [`GroupCommitConfig::max_batch`] events),
//! and waits for more only until the oldest job has waited
//! [`GroupCommitConfig::linger`] (zero by default). The batch is written with
//! [`EventBatchStore::insert_events`] in one statement, and each job gets its
//! own events' answers once that statement is committed. One job's events are
//! never split, so one body's events always go in one statement.
//!
//! With the default zero linger, under light load (no other batch being
//! written) a request is written at once in a batch of its own; under heavy
//! load, jobs pile up while the flush slots are busy and the next flush
//! takes them all, then waits for more until the runtime timer's next
//! millisecond tick: the commits per second stay bounded by the slots while
//! the events per commit grow with the load. With a linger set, every batch
//! waits for more until its oldest job has waited the linger (rounded up to
//! the timer's tick).
//!
//! When the store is unavailable, every job of the batch gets that error at
//! once (the platforms deliver again). When a batch fails as a whole
//! otherwise, each job is written again on its own, so the failure is
//! answered to the requests it concerns; every insert is insert-if-absent,
//! so writing an event twice is harmless. When the collector is gone (its runtime ended), the request
//! writes its events itself and a new collector is started on next use.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexiom_core::NewWebhookEvent;
use nexiom_storage::{EventWrite, StorageError, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// How the receiver's writer groups events into commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Events above which a batch is flushed without waiting for more
    /// (a single body larger than this is still written in one statement).
    /// Default 1,000.
    pub max_batch: usize,
    /// How long the oldest waiting job may wait for others to join its
    /// batch, rounded up to the runtime timer's next millisecond tick.
    /// Default zero: a batch that is the only one being written (always so
    /// with one flush slot) leaves as soon as the queue is empty, one formed
    /// while other batches are being written waits for the timer's next
    /// tick, and batches grow from the requests that arrive while the slots
    /// are busy (measured with `examples/webhook_load.rs` at 32
    /// connections: 11,667 requests/s, 16 requests per commit, against
    /// 7,041/s with a 1 ms linger, which only adds latency when the flushes
    /// keep up).
    pub linger: Duration,
    /// Batches written at once (each holds a database connection while it
    /// is written). Default 4.
    pub max_flushes: usize,
    /// Jobs (requests) that may wait in the queue; more wait to enter it.
    /// Default 4,096.
    pub queue: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_batch: 1_000,
            linger: Duration::ZERO,
            max_flushes: 4,
            queue: 4_096,
        }
    }
}

/// The answers of one job, or the error that stopped them.
type Answer = Result<Vec<EventWrite>, StorageError>;

/// One request's events and where its answer goes.
struct Job {
    events: Vec<NewWebhookEvent>,
    queued: Instant,
    reply: oneshot::Sender<Answer>,
}

/// Where batches are written: the store (a counting fake in the tests).
#[async_trait::async_trait]
pub(crate) trait Sink: Send + Sync + 'static {
    /// [`EventBatchStore::insert_events`](nexiom_storage::EventBatchStore::insert_events).
    async fn insert_events(&self, events: &[NewWebhookEvent]) -> Answer;
}

#[async_trait::async_trait]
impl Sink for Arc<dyn Store> {
    async fn insert_events(&self, events: &[NewWebhookEvent]) -> Answer {
        self.as_ref().insert_events(events).await
    }
}

/// The writer: a handle on the collector task (started on first use, in the
/// runtime of the caller). Cheap to clone; clones share the collector.
#[derive(Clone)]
pub(crate) struct EventWriter {
    store: Arc<dyn Sink>,
    config: GroupCommitConfig,
    sender: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

impl EventWriter {
    /// A writer over `store`.
    pub(crate) fn new(store: Arc<dyn Store>, config: GroupCommitConfig) -> Self {
        Self::with_sink(Arc::new(store), config)
    }

    /// A writer over any sink.
    pub(crate) fn with_sink(store: Arc<dyn Sink>, config: GroupCommitConfig) -> Self {
        EventWriter {
            store,
            config: GroupCommitConfig {
                max_batch: config.max_batch.max(1),
                max_flushes: config.max_flushes.max(1),
                queue: config.queue.max(1),
                ..config
            },
            sender: Arc::new(Mutex::new(None)),
        }
    }

    /// The writer's settings.
    pub(crate) fn config(&self) -> GroupCommitConfig {
        self.config
    }

    /// Stores `events` (one request's) in the next batch and answers each
    /// at its position once the batch is committed.
    pub(crate) async fn write(&self, events: Vec<NewWebhookEvent>) -> Answer {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            events,
            queued: Instant::now(),
            reply,
        };
        let sender = self.sender();
        let job = match sender.send(job).await {
            Ok(()) => match answer.await {
                Ok(answer) => return answer,
                // The collector stopped with the job (its runtime ended):
                // the events are not known to be stored.
                Err(_) => None,
            },
            Err(mpsc::error::SendError(job)) => Some(job),
        };
        self.forget(&sender);
        match job {
            Some(job) => self.store.insert_events(&job.events).await,
            None => Err(StorageError::backend(
                "the event writer stopped before answering: deliver the webhook again",
            )),
        }
    }

    /// The collector's queue, started when there is none (or it stopped).
    fn sender(&self) -> mpsc::Sender<Job> {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(self.config.queue);
                tokio::spawn(collect(Arc::clone(&self.store), self.config, receiver));
                *slot = Some(sender.clone());
                sender
            }
        }
    }

    /// Drops `stale` as the collector's queue (a new one starts on next use).
    fn forget(&self, stale: &mpsc::Sender<Job>) {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|s| s.same_channel(stale)) {
            *slot = None;
        }
    }
}

/// The collector: forms batches while flush slots are free, until every
/// handle on the queue is dropped.
async fn collect(
    store: Arc<dyn Sink>,
    config: GroupCommitConfig,
    mut receiver: mpsc::Receiver<Job>,
) {
    let slots = Arc::new(Semaphore::new(config.max_flushes));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let deadline = first.queued + config.linger;
        let mut events = first.events.len();
        let mut jobs = vec![first];
        while events < config.max_batch {
            let job = match receiver.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                // No linger and no other batch being written: leave at
                // once. (The timer below fires on the runtime's millisecond
                // ticks, so even a zero linger would hold a lone request
                // until the next tick.)
                Err(mpsc::error::TryRecvError::Empty)
                    if config.linger.is_zero()
                        && slots.available_permits() + 1 >= config.max_flushes =>
                {
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                    job = receiver.recv() => job,
                    () = tokio::time::sleep_until(deadline) => None,
                },
            };
            let Some(job) = job else { break };
            events += job.events.len();
            jobs.push(job);
        }
        tokio::spawn(flush(Arc::clone(&store), jobs, slot));
    }
}

/// Writes `jobs` in one batch and answers each.
async fn flush(store: Arc<dyn Sink>, jobs: Vec<Job>, _slot: OwnedSemaphorePermit) {
    let mut all = Vec::with_capacity(jobs.iter().map(|j| j.events.len()).sum());
    let mut parts: Vec<(Range<usize>, oneshot::Sender<Answer>)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let start = all.len();
        all.extend(job.events);
        parts.push((start..all.len(), job.reply));
    }
    crate::telemetry::ingest_batch(all.len());
    match store.insert_events(&all).await {
        Ok(answers) if answers.len() == all.len() => {
            let mut answers = answers.into_iter();
            for (range, reply) in parts {
                let mine: Vec<EventWrite> = answers.by_ref().take(range.len()).collect();
                let _ = reply.send(Ok(mine));
            }
        }
        // The store is unavailable: every request gets the outage at once
        // (its platform delivers again), rather than waiting for one more
        // attempt per request. But a batch that met a lock or statement
        // timeout may have been too big for the database's limits, and so
        // would every batch the redeliveries make: each request writes its
        // own events instead (below).
        Err(e) if e.is_unavailable() && !e.is_timeout() => {
            tracing::warn!(error = %e, events = all.len(), "event batch failed: the store is unavailable");
            for (_, reply) in parts {
                let _ = reply.send(Err(StorageError::unavailable(format!(
                    "the events were not stored: {e}"
                ))));
            }
        }
        // One request's batch: writing it again alone would fail (or wait)
        // the same way.
        Err(e) if parts.len() == 1 => {
            tracing::warn!(error = %e, events = all.len(), "event batch failed");
            if let Some((_, reply)) = parts.pop() {
                let _ = reply.send(Err(e));
            }
        }
        outcome => {
            let batch_timed_out = matches!(&outcome, Err(e) if e.is_timeout());
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, events = all.len(), "event batch failed: each request writes its own");
            }
            // Each job on its own, so that a failure reaches the requests it
            // concerns. After a batch that timed out, a request that times
            // out on its own too means the database is overloaded, not the
            // batch too big: the requests left get that outage at once
            // instead of each waiting as long.
            let mut overloaded: Option<String> = None;
            for (range, reply) in parts {
                let answer = match &overloaded {
                    Some(message) => Err(StorageError::timed_out(message.clone())),
                    None => store.insert_events(&all[range]).await,
                };
                if let Err(e) = &answer
                    && batch_timed_out
                    && e.is_timeout()
                    && overloaded.is_none()
                {
                    overloaded = Some(format!("the events were not stored: {e}"));
                }
                let _ = reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;
    use nexiom_core::{ChannelId, EventKind, Platform, TenantId};
    use tokio::sync::Notify;

    /// A sink that records each batch's size, holds the first batch until
    /// released, and fails the batches it is told to fail.
    #[derive(Default)]
    struct Recording {
        batches: Mutex<Vec<usize>>,
        hold_first: Notify,
        holding: std::sync::atomic::AtomicBool,
        fail_batches_over: Option<usize>,
        time_out_batches_over: Option<usize>,
        unavailable: bool,
    }

    #[async_trait::async_trait]
    impl Sink for Recording {
        async fn insert_events(&self, events: &[NewWebhookEvent]) -> Answer {
            let first = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(events.len());
                batches.len() == 1
            };
            if first && self.holding.load(std::sync::atomic::Ordering::SeqCst) {
                self.hold_first.notified().await;
            }
            if self.unavailable {
                return Err(StorageError::unavailable("connection refused"));
            }
            if self.time_out_batches_over.is_some_and(|n| events.len() > n) {
                return Err(StorageError::timed_out(
                    "canceling statement due to statement timeout",
                ));
            }
            if self.fail_batches_over.is_some_and(|n| events.len() > n) {
                return Err(StorageError::backend("the statement failed"));
            }
            Ok(events.iter().map(|_| EventWrite::Created).collect())
        }
    }

    /// A writer with `max_flushes` slots over a sink that holds its first
    /// batch until released.
    fn holding_first(max_flushes: usize) -> (Arc<Recording>, EventWriter) {
        let sink = Arc::new(Recording::default());
        sink.holding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_flushes,
                ..GroupCommitConfig::default()
            },
        );
        (sink, writer)
    }

    fn events(request: usize, n: usize) -> Vec<NewWebhookEvent> {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
        (0..n)
            .map(|i| NewWebhookEvent {
                tenant_id: TenantId::generate(),
                channel_id: ChannelId::generate(),
                platform: Platform::WhatsApp,
                event_id: format!("wamid.{request}.{i}"),
                kind: EventKind::Message,
                sender_id: Some("1555".into()),
                sender_name: None,
                text: Some("hi".into()),
                has_media: false,
                delivery_status: None,
                target_id: None,
                parent_id: None,
                occurred_at: at,
                payload: serde_json::json!({}),
                received_at: at,
            })
            .collect()
    }

    /// While the only flush slot is busy, requests pile up and the next
    /// flush takes them all (one body's events never split); each request
    /// gets exactly its own answers.
    #[tokio::test(start_paused = true)]
    async fn requests_waiting_for_a_busy_slot_share_the_next_commit() {
        let (sink, writer) = holding_first(1);
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(events(0, 1)).await }
        });
        // The first batch is being written (and held).
        while sink.batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        let mut waiting = Vec::new();
        for r in 1..=10 {
            let writer = writer.clone();
            waiting.push(tokio::spawn(
                async move { writer.write(events(r, r)).await },
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        sink.hold_first.notify_one();
        assert_eq!(first.await.unwrap().unwrap().len(), 1);
        for (r, task) in (1..=10).zip(waiting) {
            assert_eq!(
                task.await.unwrap().unwrap().len(),
                r,
                "request {r}'s answers"
            );
        }
        // 1 + (1 + 2 + … + 10) events in two commits.
        assert_eq!(*sink.batches.lock().unwrap(), [1, 55]);
    }

    /// A lone request waits at most the linger, and a batch stops growing at
    /// `max_batch` events (the rest go in the next one).
    #[tokio::test(start_paused = true)]
    async fn a_batch_is_flushed_after_the_linger_or_at_its_size() {
        let sink = Arc::new(Recording::default());
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_batch: 5,
                linger: Duration::from_millis(2),
                max_flushes: 1,
                queue: 64,
            },
        );
        let started = Instant::now();
        assert_eq!(writer.write(events(0, 2)).await.unwrap().len(), 2);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(2) && waited < Duration::from_millis(4),
            "{waited:?}"
        );
        // Twelve requests of one event at once: batches of at most 5.
        let tasks: Vec<_> = (1..=12)
            .map(|r| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(events(r, 1)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().len(), 1);
        }
        let batches = sink.batches.lock().unwrap().clone();
        assert_eq!(batches[0], 2);
        assert_eq!(batches[1..].iter().sum::<usize>(), 12);
        assert!(batches[1..].iter().all(|&n| n <= 5), "{batches:?}");
        // One body larger than a batch still goes in one statement.
        assert_eq!(writer.write(events(99, 9)).await.unwrap().len(), 9);
        assert_eq!(sink.batches.lock().unwrap().last(), Some(&9));
    }

    /// With no linger and no other batch being written, a lone request is
    /// written at once, not at the timer's next tick.
    #[tokio::test(start_paused = true)]
    async fn a_lone_request_is_written_at_once_without_a_linger() {
        let sink = Arc::new(Recording::default());
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_flushes: 2,
                ..GroupCommitConfig::default()
            },
        );
        for r in 0..3 {
            // Between two of the timer's millisecond ticks.
            tokio::time::advance(Duration::from_micros(300)).await;
            let started = Instant::now();
            assert_eq!(writer.write(events(r, 1)).await.unwrap().len(), 1);
            assert_eq!(started.elapsed(), Duration::ZERO, "request {r}");
        }
        assert_eq!(*sink.batches.lock().unwrap(), [1, 1, 1]);
    }

    /// While another batch is being written, a new batch still waits for
    /// the timer's next tick (that wait is what lets batches grow under
    /// load).
    #[tokio::test(start_paused = true)]
    async fn a_batch_formed_while_another_is_written_waits_for_the_tick() {
        let (sink, writer) = holding_first(2);
        // Between two of the timer's millisecond ticks.
        tokio::time::advance(Duration::from_micros(300)).await;
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(events(0, 1)).await }
        });
        // The first batch is being written (and held); no time passes.
        while sink.batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        assert_eq!(writer.write(events(1, 2)).await.unwrap().len(), 2);
        let waited = started.elapsed();
        assert!(
            waited > Duration::ZERO && waited <= Duration::from_millis(1),
            "{waited:?}"
        );
        sink.hold_first.notify_one();
        assert_eq!(first.await.unwrap().unwrap().len(), 1);
        assert_eq!(*sink.batches.lock().unwrap(), [1, 2]);
    }

    /// A batch that fails as a whole is written again request by request,
    /// so each request gets its own answer (here: the small ones succeed,
    /// the large one fails).
    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_answered_request_by_request() {
        let sink = Recording {
            fail_batches_over: Some(3),
            ..Recording::default()
        };
        let large = answered_request_by_request(sink).await;
        assert!(!large.is_unavailable(), "{large:?}");
    }

    /// A batch that met a timeout (too big, maybe, for the database's
    /// limits, as every batch the redeliveries would make) is written request
    /// by request too, not failed whole as an outage.
    #[tokio::test(start_paused = true)]
    async fn a_batch_that_timed_out_is_written_request_by_request() {
        let sink = Recording {
            time_out_batches_over: Some(3),
            ..Recording::default()
        };
        let large = answered_request_by_request(sink).await;
        assert!(large.is_timeout(), "{large:?}");
    }

    /// Requests of 1, 2 and 4 events over `sink`, which fails batches of
    /// more than 3: the 1 is written alone, the 2 and 4 together (failed),
    /// then each on its own; returns the 4's error.
    async fn answered_request_by_request(sink: Recording) -> StorageError {
        let sink = Arc::new(sink);
        sink.holding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_flushes: 1,
                ..GroupCommitConfig::default()
            },
        );
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(events(0, 1)).await }
        });
        while sink.batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        let small = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(events(1, 2)).await }
        });
        let large = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(events(2, 4)).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        sink.hold_first.notify_one();
        assert!(first.await.unwrap().is_ok());
        assert_eq!(small.await.unwrap().unwrap().len(), 2);
        let large = large.await.unwrap().unwrap_err();
        // The combined batch of 6 failed, then 2 and 4 on their own.
        assert_eq!(*sink.batches.lock().unwrap(), [1, 6, 2, 4]);
        large
    }

    /// An unavailable store fails every request of the batch at once, with
    /// no second attempt per request (each would wait for the outage again).
    #[tokio::test(start_paused = true)]
    async fn an_unavailable_store_fails_every_request_of_the_batch_at_once() {
        let sink = Arc::new(Recording {
            unavailable: true,
            ..Recording::default()
        });
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_flushes: 1,
                linger: Duration::from_millis(1),
                ..GroupCommitConfig::default()
            },
        );
        let tasks: Vec<_> = (0..3)
            .map(|r| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(events(r, 2)).await })
            })
            .collect();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(err.is_unavailable(), "{err:?}");
        }
        assert_eq!(*sink.batches.lock().unwrap(), [6]);
    }
    /// A store that times out every write (overloaded, not a batch too
    /// big): after the batch, the first request written alone times out too
    /// and the others get that outage at once, without a write each; a lone
    /// request's batch is not written twice.
    #[tokio::test(start_paused = true)]
    async fn an_overloaded_store_costs_two_writes_not_one_per_request() {
        let sink = Arc::new(Recording {
            time_out_batches_over: Some(0),
            ..Recording::default()
        });
        let writer = EventWriter::with_sink(
            Arc::clone(&sink) as Arc<dyn Sink>,
            GroupCommitConfig {
                max_flushes: 1,
                linger: Duration::from_millis(1),
                ..GroupCommitConfig::default()
            },
        );
        let tasks: Vec<_> = (0..3)
            .map(|r| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(events(r, 2)).await })
            })
            .collect();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(err.is_timeout(), "{err:?}");
        }
        assert_eq!(*sink.batches.lock().unwrap(), [6, 2]);
        let err = writer.write(events(9, 2)).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(*sink.batches.lock().unwrap(), [6, 2, 2]);
    }
}
