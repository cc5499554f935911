//! [`PollCommentsWorker`]: comment polling on the worker runtime.

use async_trait::async_trait;
use chrono::Duration;

use super::poller::CommentPoller;
use crate::error::Result;
use crate::worker::{WorkReport, Worker, WorkerContext};

/// Name (and flag) of [`PollCommentsWorker`].
pub const POLL_COMMENTS: &str = "poll_comments";

/// Every 5 minutes (the poller's interval): polls the comments of the posts
/// due, in batches of the runtime's batch size, up to its batch count
/// ([`CommentPoller::poll_due`]).
#[derive(Debug, Clone)]
pub struct PollCommentsWorker {
    poller: CommentPoller,
    cadence: Duration,
}

impl PollCommentsWorker {
    /// The worker over `poller`, running every polling interval.
    pub fn new(poller: CommentPoller) -> Self {
        let cadence = poller.config().interval;
        PollCommentsWorker { poller, cadence }
    }

    /// The same worker with another cadence.
    pub fn every(mut self, cadence: Duration) -> Self {
        self.cadence = cadence;
        self
    }
}

#[async_trait]
impl Worker for PollCommentsWorker {
    fn name(&self) -> &str {
        POLL_COMMENTS
    }

    fn cadence(&self) -> crate::worker::Cadence {
        crate::worker::Cadence::Every(self.cadence)
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport> {
        // Every post a batch claims is rescheduled, stopped or handed back,
        // so the next batch claims other posts; stop when a batch was not
        // full (whatever came of its posts: one that only finished windows
        // or lost claims was full too).
        let mut total = super::PollReport::default();
        for _ in 0..ctx.batch.max_batches.max(1) {
            if ctx.shutdown.is_triggered() {
                break;
            }
            let report = self
                .poller
                .poll_due(ctx.batch.batch_size, Some(&ctx.shutdown))
                .await?;
            let claimed = report.posts_claimed;
            total.merge(report);
            if claimed < u64::from(ctx.batch.batch_size) {
                break;
            }
        }
        let failed = u64::try_from(total.failures.len()).unwrap_or(u64::MAX);
        Ok(WorkReport {
            items_processed: i64::try_from(
                total.posts_polled + total.posts_rate_limited + total.posts_unsupported + failed,
            )
            .unwrap_or(i64::MAX),
            items_failed: i64::try_from(failed).unwrap_or(i64::MAX),
            results: total.to_json(),
        })
    }
}
