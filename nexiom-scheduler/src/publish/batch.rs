//! A claimed batch at platform speed: posts run concurrently in lanes (one
//! lane per channel, or per sub-lane when a channel may take several calls at
//! once), under the worker's cap on calls in flight; the batch's runs are
//! started and its posts settled by two writers that each put whatever is
//! waiting into one statement; a heartbeat renews the batch's leases while
//! its calls are in flight.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use nexiom_core::{ChannelId, PostId, PostStatus, ScheduledPost, TenantId};
use nexiom_storage::StorageError;
use tokio::sync::mpsc;
use tracing::warn;

use super::attempt::{Attempted, RunRequest, Runs, Step};
use super::queue::{PostOutcome, PublishQueue, QueueReport};
use crate::concurrency::{for_each_lane, lanes, sub_lane};
use crate::error::Result;
use crate::worker::Shutdown;

/// Whether `step` puts its post back in the queue due at once (a broadcast
/// whose pass ended with recipients still to send).
fn due_again_at_once(step: &Step, now: DateTime<Utc>) -> bool {
    matches!(step, Step::Settle(s, _)
        if s.status == PostStatus::Queued && s.next_attempt_at.is_some_and(|at| at <= now))
}

/// Series templates a batch advances at once.
const TEMPLATES_AT_ONCE: usize = 8;

/// At most this many rows per statement of the writers.
const WRITE_CHUNK: usize = 1_000;

impl PublishQueue {
    /// Processes a claimed batch (see the module docs); counts go to `report`.
    /// Returns whether posts were handed back because the batch ran out of
    /// time ([`PublishConfig::batch_time`](super::PublishConfig::batch_time)):
    /// they are due again at once.
    pub(super) async fn process_batch(
        &self,
        claimed: Vec<ScheduledPost>,
        item_delay: std::time::Duration,
        shutdown: Option<&Shutdown>,
        report: &mut QueueReport,
    ) -> bool {
        let ids: Vec<PostId> = claimed.iter().map(|p| p.id).collect();
        let report_cell = Mutex::new(std::mem::take(report));
        let timed_out = AtomicBool::new(false);
        let work = self.run_batch(claimed, item_delay, shutdown, &report_cell, &timed_out);
        let heartbeat = self.heartbeat(&ids);
        tokio::select! {
            biased;
            () = work => {}
            () = heartbeat => {}
        }
        *report = report_cell.into_inner().unwrap_or_else(|e| e.into_inner());
        timed_out.into_inner()
    }

    /// Renews the batch's leases every third of the lease period, forever (the
    /// caller stops it when the batch is done).
    pub(super) async fn heartbeat(&self, ids: &[PostId]) {
        let period = (self.config.lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let expires = self.clock.now() + self.config.lease;
            if let Err(err) = self
                .store
                .renew_post_leases(&self.config.worker_id, ids, expires)
                .await
            {
                warn!(error = %err, "renewing the batch's leases failed");
            }
        }
    }

    async fn run_batch(
        &self,
        claimed: Vec<ScheduledPost>,
        item_delay: std::time::Duration,
        shutdown: Option<&Shutdown>,
        report: &Mutex<QueueReport>,
        timed_out: &AtomicBool,
    ) {
        let (templates, posts): (Vec<_>, Vec<_>) =
            claimed.into_iter().partition(|p| p.recurrence.is_some());
        // Series templates touch only the database (an occurrence inserted,
        // the template moved on): each on its own, a few at once (within
        // what a connection pool holds).
        futures_util::stream::iter(templates)
            .for_each_concurrent(TEMPLATES_AT_ONCE, |template| async move {
                let outcome = if shutdown.is_some_and(Shutdown::is_triggered) {
                    self.hand_back(&template).await
                } else {
                    self.advance_series(&template).await
                };
                add(report, &outcome);
            })
            .await;
        let lanes = self.lanes_of(posts).await;
        // Past this, lanes start no new call (`PublishConfig::batch_time`).
        let ends_at = self
            .clock
            .now()
            .checked_add_signed(self.config.batch_time)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (run_tx, run_rx) = mpsc::unbounded_channel::<RunRequest>();
        let (settle_tx, settle_rx) = mpsc::unbounded_channel::<Step>();
        // A channel the platform asked to wait is held back in every lane of
        // the batch (a platform may allow several calls at once per channel),
        // not only in the lane that met the wait.
        let holds: Holds = Mutex::new(HashMap::new());
        let lanes_done = async move {
            let (run_tx, settle_tx, holds) = (&run_tx, &settle_tx, &holds);
            for_each_lane(
                lanes,
                self.config.concurrency.worker_cap(),
                |lane| async move {
                    // Whether the lane has made progress: a post that ran
                    // and is not due again at once (a broadcast whose pass
                    // ended full is due again at once: the lane's next post
                    // still runs, so a large broadcast does not hold its
                    // channel's other posts for all of its passes).
                    let mut progressed = false;
                    // Full broadcast passes that ended past the batch's
                    // time: the lane goes on after one (so the channel's
                    // next post still runs), not after two (a lane of large
                    // broadcasts alone would otherwise run all their passes).
                    let mut late_passes = 0u32;
                    for (i, post) in lane.into_iter().enumerate() {
                        let past = |progressed: bool, late_passes: u32| {
                            (progressed || late_passes >= 2) && self.clock.now() >= ends_at
                        };
                        if i > 0
                            && !item_delay.is_zero()
                            && !shutdown.is_some_and(Shutdown::is_triggered)
                            && !past(progressed, late_passes)
                            && held_until(holds, post.channel_id).is_none()
                        {
                            tokio::time::sleep(item_delay).await;
                        }
                        // A lane past the batch's time (read after the
                        // delay) hands its other posts back, so the next
                        // claim comes soon.
                        let out_of_time = past(progressed, late_passes);
                        if out_of_time {
                            timed_out.store(true, Ordering::Relaxed);
                        }
                        let stopping = shutdown.is_some_and(Shutdown::is_triggered) || out_of_time;
                        // Read after the delay: another lane may have met a
                        // wait meanwhile.
                        let hold = held_until(holds, post.channel_id);
                        let step = if stopping || hold.is_some() {
                            self.handed_back(&post, hold)
                        } else {
                            let Attempted { step, hold } =
                                self.attempt(&post, &Runs::Batched(run_tx)).await;
                            if let Some(until) = hold {
                                hold_back(holds, post.channel_id, until);
                            }
                            let now = self.clock.now();
                            if due_again_at_once(&step, now) {
                                late_passes += u32::from(now >= ends_at);
                            } else {
                                progressed = true;
                            }
                            step
                        };
                        let _ = settle_tx.send(step);
                    }
                },
            )
            .await;
        };
        tokio::join!(
            lanes_done,
            self.run_writer(run_rx),
            self.settle_writer(settle_rx, report)
        );
    }

    /// Groups posts into lanes: by channel, and by sub-lane when the channel's
    /// platform allows several calls at once (a series keeps one sub-lane).
    /// The channels come from the cache or one read per tenant.
    async fn lanes_of(&self, posts: Vec<ScheduledPost>) -> Vec<Vec<ScheduledPost>> {
        let keys: Vec<(TenantId, ChannelId)> =
            posts.iter().map(|p| (p.tenant_id, p.channel_id)).collect();
        let channels = self.channels(&keys).await;
        // A channel that cannot be read gets cap 1; its posts fail with the
        // read error when attempted.
        let caps: HashMap<ChannelId, usize> = keys
            .iter()
            .map(|key| {
                let cap = channels
                    .get(key)
                    .map_or(1, |c| self.config.concurrency.channel_cap(&c.platform));
                (key.1, cap)
            })
            .collect();
        let mut round_robin: HashMap<_, usize> = HashMap::new();
        let keyed: Vec<((nexiom_core::ChannelId, usize), ScheduledPost)> = posts
            .into_iter()
            .map(|post| {
                let cap = caps.get(&post.channel_id).copied().unwrap_or(1);
                let rr = round_robin.entry(post.channel_id).or_default();
                let group = post.series_id.map(|s| s.as_uuid().as_u128());
                ((post.channel_id, sub_lane(cap, group, rr)), post)
            })
            .collect();
        lanes(keyed, |(key, _)| *key)
            .into_iter()
            .map(|lane| lane.into_iter().map(|(_, post)| post).collect())
            .collect()
    }

    /// Starts every run requested while the previous statement ran, in one
    /// statement, and answers each request.
    async fn run_writer(&self, mut rx: mpsc::UnboundedReceiver<RunRequest>) {
        let mut waiting = Vec::new();
        while rx.recv_many(&mut waiting, WRITE_CHUNK).await > 0 {
            let (news, answers): (Vec<_>, Vec<_>) = waiting.drain(..).unzip();
            let now = self.clock.now();
            match self
                .store
                .insert_post_runs(&self.config.worker_id, &news, now)
                .await
            {
                Ok(started) => {
                    for (run, answer) in started.into_iter().zip(answers) {
                        let _ = answer.send(Ok(run));
                    }
                }
                Err(err) => {
                    warn!(error = %err, runs = news.len(), "starting a batch of runs failed");
                    for answer in answers {
                        let _ = answer.send(Err(shared(&err).into()));
                    }
                }
            }
        }
    }

    /// Writes every settlement that arrived while the previous statement ran,
    /// in one statement, and counts the outcomes: a post whose lease moved on
    /// was not written and counts as skipped.
    async fn settle_writer(
        &self,
        mut rx: mpsc::UnboundedReceiver<Step>,
        report: &Mutex<QueueReport>,
    ) {
        let mut waiting = Vec::new();
        while rx.recv_many(&mut waiting, WRITE_CHUNK).await > 0 {
            let mut settlements = Vec::new();
            let mut outcomes = Vec::new();
            for step in waiting.drain(..) {
                match step {
                    Step::Done(outcome) => add(report, &outcome),
                    Step::Settle(settlement, outcome) => {
                        settlements.push(super::checked::settlement(settlement));
                        outcomes.push(outcome);
                    }
                }
            }
            if settlements.is_empty() {
                continue;
            }
            match self
                .store
                .settle_posts(&self.config.worker_id, &settlements, self.clock.now())
                .await
            {
                Ok(written) => {
                    let written: std::collections::HashSet<PostId> = written.into_iter().collect();
                    for (settlement, outcome) in settlements.iter().zip(outcomes) {
                        let outcome = if written.contains(&settlement.post_id) {
                            outcome
                        } else {
                            PostOutcome::LeaseLost
                        };
                        add(report, &Ok(outcome));
                    }
                }
                Err(err) => {
                    // The leases lapse and the posts are taken over later; a
                    // started run is then settled by a lookup.
                    warn!(error = %err, posts = settlements.len(), "settling a batch failed");
                    for _ in &settlements {
                        add(report, &Err(shared(&err).into()));
                    }
                }
            }
        }
    }
}

/// The channels held back in a batch, and until when.
type Holds = Mutex<HashMap<ChannelId, DateTime<Utc>>>;

fn held_until(holds: &Holds, channel: ChannelId) -> Option<DateTime<Utc>> {
    holds
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&channel)
        .copied()
}

fn hold_back(holds: &Holds, channel: ChannelId, until: DateTime<Utc>) {
    let mut holds = holds
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let held = holds.entry(channel).or_insert(until);
    *held = (*held).max(until);
}

/// The same failure for each item of a failed statement.
fn shared(err: &StorageError) -> StorageError {
    match err {
        StorageError::Unavailable { message, .. } if err.is_timeout() => {
            StorageError::timed_out(message.clone())
        }
        StorageError::Unavailable { message, .. } => StorageError::Unavailable {
            message: message.clone(),
            source: None,
        },
        other => StorageError::Backend {
            message: other.to_string(),
            source: None,
        },
    }
}

fn add(report: &Mutex<QueueReport>, outcome: &Result<PostOutcome>) {
    if let Err(err) = outcome {
        warn!(error = %err, "publishing a claimed post failed in storage");
    }
    report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .add(outcome);
}
