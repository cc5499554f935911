//! The writer of a polling pass: the checks that finished while the previous
//! write ran go to the store in one batch
//! ([`PollBatchStore::finish_polls`](nexiom_storage::PollBatchStore::finish_polls)),
//! each guarded by its post's claim, and are counted.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use nexiom_core::Clock;
use nexiom_storage::{ClaimedPoll, PollResult, Store};
use tokio::sync::mpsc;
use tracing::warn;

use super::report::{PollFailure, PollReport};

/// At most this many posts per write.
const WRITE_CHUNK: usize = 1_000;

/// What the lanes and the writer of one pass share.
#[derive(Default)]
pub(super) struct Pass {
    pub(super) report: PollReport,
    /// The creation time of the oldest comment stored in the pass.
    pub(super) oldest_new: Option<DateTime<Utc>>,
}

/// One post's check, to write back.
pub(super) struct Write {
    pub(super) result: PollResult,
    /// Its counts (all but `comments_stored`, known once written).
    pub(super) tally: PollReport,
    /// Whether it counts in the report (a post handed back does not).
    pub(super) counted: bool,
}

impl Write {
    /// A claimed post not checked (the pass is stopping): due again as it was.
    pub(super) fn hand_back(claim: &ClaimedPoll) -> Write {
        Write {
            result: PollResult {
                tenant_id: claim.post.tenant_id,
                post_id: claim.post.id,
                lease_until: claim.lease_until,
                comments: Vec::new(),
                checkpoint: None,
                last_check_at: None,
                next_check_at: Some(claim.due_at),
                poll_failures: claim.post.poll_failures,
            },
            tally: PollReport::default(),
            counted: false,
        }
    }
}

/// Writes every check that arrived while the previous write ran, in one
/// batch, and counts them in `pass`: a post whose claim moved on was not
/// written and counts in `posts_lease_lost` (with the pages it read and its
/// failures, not as polled); when the write fails, each of its posts is a
/// failure (nothing of it is stored; its claim lapses and it is checked
/// again then).
pub(super) async fn write_checks(
    store: &dyn Store,
    clock: &dyn Clock,
    mut rx: mpsc::UnboundedReceiver<Write>,
    pass: &Mutex<Pass>,
) {
    let mut waiting = Vec::new();
    while rx.recv_many(&mut waiting, WRITE_CHUNK).await > 0 {
        let (results, tallies): (Vec<PollResult>, Vec<(PollReport, bool)>) = waiting
            .drain(..)
            .map(|w| (w.result, (w.tally, w.counted)))
            .unzip();
        let answer = store.finish_polls(&results, clock.now()).await;
        let mut pass = pass.lock().unwrap_or_else(PoisonError::into_inner);
        match answer {
            Ok(written) => {
                for ((result, (mut tally, counted)), written) in
                    results.iter().zip(tallies).zip(written)
                {
                    if !counted {
                        continue;
                    }
                    if !written.written {
                        warn!(tenant_id = %result.tenant_id, post_id = %result.post_id, "comment check not written: the post's claim moved on");
                        pass.report.posts_lease_lost += 1;
                        pass.report.pages_read += tally.pages_read;
                        pass.report.failures.append(&mut tally.failures);
                        continue;
                    }
                    for (comment, created) in result.comments.iter().zip(&written.created) {
                        if *created {
                            tally.comments_stored += 1;
                            pass.oldest_new = Some(
                                pass.oldest_new
                                    .map_or(comment.created_at, |t| t.min(comment.created_at)),
                            );
                        }
                    }
                    pass.report.merge(tally);
                }
            }
            Err(err) => {
                warn!(error = %err, posts = results.len(), "writing a batch of comment checks failed");
                for (result, (mut tally, counted)) in results.iter().zip(tallies) {
                    if !counted {
                        continue;
                    }
                    pass.report.pages_read += tally.pages_read;
                    pass.report.failures.append(&mut tally.failures);
                    pass.report.failures.push(PollFailure {
                        tenant_id: result.tenant_id,
                        post_id: result.post_id,
                        error: err.to_string(),
                    });
                }
            }
        }
    }
}
