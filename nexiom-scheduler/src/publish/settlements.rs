//! The settlements a claimed post's attempt ends with: published, retried
//! after a backoff, failed, handed back untouched or waiting for its channel.
//! Pure constructors: the caller writes them (in a batch, or at once).

use chrono::{DateTime, Utc};
use nexiom_core::{
    PostRun, PostRunStatus, PostSettlement, PostStatus, PublishedFields, RunEnd, ScheduledPost,
};
use tracing::warn;

use super::attempt::{Attempted, Step, later};
use super::gateway::PublishedPost;
use super::queue::{AWAITING_RECONNECTION, PostOutcome, PublishQueue};
use crate::error::Result;
use crate::tokens::TokenError;

impl PublishQueue {
    /// Attempt `attempt` did not publish the post, as far as is known (the
    /// lookup after an ambiguous answer found no post, or the token could
    /// not be refreshed for now): a new attempt after the backoff (never
    /// sooner than `retry_after`), or failed when no attempt is left.
    pub(super) fn retry_later(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        attempt: u32,
        error: String,
        retry_after: Option<chrono::Duration>,
    ) -> Step {
        let max = self.config.retry.max_attempts.max(1);
        if attempt >= max {
            let error = format!("{error}; no attempt left ({max} made)");
            let mut settlement = self.failed_settlement(post, run, error.clone());
            settlement.retry_count = Some(attempt);
            return Step::Settle(settlement, PostOutcome::Failed(error));
        }
        let next_attempt_at = later(
            self.clock.now(),
            self.config.retry.delay_after(attempt, retry_after),
        );
        match run {
            Some(run) => self.retrying(post, run, attempt, next_attempt_at, error),
            None => {
                let settlement = PostSettlement {
                    status: PostStatus::Queued,
                    retry_count: Some(attempt),
                    error_message: Some(error.clone()),
                    next_attempt_at: Some(next_attempt_at),
                    ..self.failed_settlement(post, None, error.clone())
                };
                Step::Settle(
                    settlement,
                    PostOutcome::Retrying {
                        attempts: attempt,
                        next_attempt_at,
                        error,
                    },
                )
            }
        }
    }

    pub(super) fn retrying(
        &self,
        post: &ScheduledPost,
        run: &PostRun,
        attempt: u32,
        next_attempt_at: DateTime<Utc>,
        error: String,
    ) -> Step {
        let settlement = PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Queued,
            retry_count: Some(attempt),
            error_message: Some(error.clone()),
            next_attempt_at: Some(next_attempt_at),
            published: None,
            run: Some(RunEnd {
                run_id: run.id,
                status: PostRunStatus::Failed,
                error: Some(error.clone()),
            }),
        };
        Step::Settle(
            settlement,
            PostOutcome::Retrying {
                attempts: attempt,
                next_attempt_at,
                error,
            },
        )
    }

    pub(super) fn published(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        attempt: u32,
        published: PublishedPost,
    ) -> Step {
        let now = self.clock.now();
        let settlement = PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Published,
            retry_count: Some(attempt),
            error_message: None,
            next_attempt_at: None,
            published: Some(PublishedFields {
                platform_post_id: published.platform_post_id.clone(),
                url: published.url.clone(),
                published_at: now,
                next_check_at: Some(now),
                stop_at: now.checked_add_signed(self.config.polling_window),
            }),
            run: run.map(|run| RunEnd {
                run_id: run.id,
                status: PostRunStatus::Success,
                error: None,
            }),
        };
        Step::Settle(settlement, PostOutcome::Published(published))
    }

    pub(super) fn failed_settlement(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        error: String,
    ) -> PostSettlement {
        PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Failed,
            retry_count: None,
            error_message: Some(error.clone()),
            next_attempt_at: None,
            published: None,
            run: run.map(|run| RunEnd {
                run_id: run.id,
                status: PostRunStatus::Failed,
                error: Some(error),
            }),
        }
    }

    /// `failed` for good; with the attempt's run, the attempt counts.
    pub(super) fn failed(
        &self,
        post: &ScheduledPost,
        run: Option<(&PostRun, u32)>,
        error: String,
    ) -> Step {
        let mut settlement = self.failed_settlement(post, run.map(|(r, _)| r), error.clone());
        settlement.retry_count = run.map(|(_, attempt)| attempt);
        Step::Settle(settlement, PostOutcome::Failed(error))
    }

    /// A post whose channel cannot get a token now: handed back untouched
    /// (no attempt counted). A paused channel's post waits, queued (the
    /// claims skip the channel until it is reconnected); after a refresh that
    /// failed for now, not before the platform's wait (or a minute).
    pub(super) fn waiting(&self, post: &ScheduledPost, err: TokenError) -> Result<Attempted> {
        match err {
            TokenError::Storage(e) => Err(e.into()),
            TokenError::Failed { retry_after, .. } => {
                let wait = retry_after.unwrap_or(chrono::Duration::minutes(1));
                let hold = later(self.clock.now(), wait);
                Ok(Attempted {
                    step: self.handed_back(post, Some(hold)),
                    hold: Some(hold),
                })
            }
            paused => {
                warn!(post = %post.id, error = %paused, "post waits: its channel is paused");
                Ok(self.handed_back(post, None).into())
            }
        }
    }

    /// After a refused refresh: `attempt` counted, the post `queued` again
    /// with the reason (after [`AWAITING_RECONNECTION`]), waiting for the
    /// channel to be reconnected.
    pub(super) fn paused(&self, post: &ScheduledPost, attempt: u32, err: &TokenError) -> Step {
        let settlement = PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Queued,
            retry_count: Some(attempt),
            error_message: Some(format!("{AWAITING_RECONNECTION}: {err}")),
            next_attempt_at: None,
            published: None,
            run: None,
        };
        Step::Settle(
            settlement,
            PostOutcome::AwaitingReconnection { attempts: attempt },
        )
    }

    /// The claim handed back untouched (`queued`, lease released), not before
    /// `hold` when the channel is held back.
    pub(super) fn handed_back(&self, post: &ScheduledPost, hold: Option<DateTime<Utc>>) -> Step {
        let next_attempt_at = match (post.next_attempt_at, hold) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let settlement = PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Queued,
            retry_count: None,
            error_message: post.error_message.clone(),
            next_attempt_at,
            published: None,
            run: None,
        };
        Step::Settle(settlement, PostOutcome::Released)
    }
}
