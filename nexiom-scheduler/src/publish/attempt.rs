//! One claimed post through the publishing rules: the attempt, its outcome,
//! and the settlement that records it (written in a batch by the caller), or,
//! on the rare paths (a worker that stopped mid-attempt, an ambiguous answer,
//! a refused token), the writes made at once.

use chrono::{DateTime, Utc};
use nexiom_core::{
    Channel, NewPostRun, Platform, PostPatch, PostRun, PostRunStatus, PostSettlement, PostStatus,
    ScheduledPost,
};
use nexiom_storage::StorageError;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::checked;
use super::gateway::{PublishFailure, PublishGateway};
use super::queue::{AWAITING_RECONNECTION, OUTCOME_UNKNOWN, PostOutcome, PublishQueue};
use crate::error::Result;
use crate::tokens::{RefreshOutcome, TokenError};

/// How the error of an ambiguous attempt's run starts when the lookup made
/// right after it did not find the post (first, so that no cut of a long
/// message loses it); the next attempt looks the post up again before
/// publishing (see `ambiguous_since`).
pub(super) const NOT_FOUND_AFTER_AMBIGUOUS: &str =
    "not found among the account's recent posts (yet) after an ambiguous attempt";

/// The refresh of a channel through the gateway, in the keeper's terms.
pub(super) async fn gateway_refresh(
    gateway: &dyn PublishGateway,
    channel: &Channel,
) -> RefreshOutcome {
    match gateway.refresh_credentials(channel).await {
        Ok(credentials) => RefreshOutcome::Granted(credentials),
        Err(PublishFailure::NeedsReauth(reason)) => RefreshOutcome::Refused(reason),
        Err(failure) => RefreshOutcome::Failed {
            retry_after: failure.retry_after(),
            message: failure.to_string(),
        },
    }
}

/// A request to start a run, answered by the batch's run writer.
pub(super) type RunRequest = (NewPostRun, oneshot::Sender<Result<Option<PostRun>>>);

/// How runs are started: one statement per post, or through the batch's
/// writer, which starts every run requested meanwhile in one statement.
pub(super) enum Runs<'a> {
    /// `insert_post_runs` with one run.
    Direct,
    /// The batch's run writer.
    Batched(&'a mpsc::UnboundedSender<RunRequest>),
}

/// What became of one claimed post.
#[derive(Debug)]
pub(super) enum Step {
    /// The post's final write, still to be made (in a batch).
    Settle(PostSettlement, PostOutcome),
    /// Already written, or nothing to write.
    Done(Result<PostOutcome>),
}

/// A [`Step`] and, when the platform asked to wait, until when the channel is
/// held back (the rest of its lane is handed back, not attempted).
pub(super) struct Attempted {
    pub(super) step: Step,
    pub(super) hold: Option<DateTime<Utc>>,
}

impl From<Step> for Attempted {
    fn from(step: Step) -> Self {
        Attempted { step, hold: None }
    }
}

/// `at + wait`, or the latest representable time when that overflows (a
/// connector answering an absurd Retry-After).
pub(super) fn later(at: DateTime<Utc>, wait: chrono::Duration) -> DateTime<Utc> {
    at.checked_add_signed(wait)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl PublishQueue {
    async fn start_run(&self, runs: &Runs<'_>, new: NewPostRun) -> Result<Option<PostRun>> {
        let direct = |new: NewPostRun| async move {
            Ok(self
                .store
                .insert_post_runs(&self.config.worker_id, &[new], self.clock.now())
                .await?
                .pop()
                .flatten())
        };
        match runs {
            Runs::Direct => direct(new).await,
            Runs::Batched(tx) => {
                let (answer, wait) = oneshot::channel();
                if tx.send((new.clone(), answer)).is_err() {
                    return direct(new).await;
                }
                match wait.await {
                    Ok(result) => result,
                    Err(_) => direct(new).await,
                }
            }
        }
    }

    /// Takes a claimed (non-template) post through one or more attempts.
    pub(super) async fn attempt(&self, post: &ScheduledPost, runs: &Runs<'_>) -> Attempted {
        match self.try_attempt(post, runs).await {
            Ok(attempted) => attempted,
            Err(err) => Step::Done(Err(err)).into(),
        }
    }

    async fn try_attempt(&self, post: &ScheduledPost, runs: &Runs<'_>) -> Result<Attempted> {
        let channel = self.channel(post.tenant_id, post.channel_id).await?;
        // An occurrence whose series was stopped after it was first claimed
        // (it came back to `queued`) is cancelled with no call (a broadcast
        // between two recipients), unless an earlier attempt may have
        // published it: then it is looked up below first.
        let stopped = self.series_stopped(post).await?;
        if stopped && let Some(step) = self.stop_at_once(post, &channel).await? {
            return Ok(step.into());
        }
        // A token valid for a while yet, refreshed ahead of expiry under the
        // channel's lease; a paused channel's post waits, queued, with no call.
        let gateway = &self.gateway;
        let fresh = self
            .tokens
            .fresh(&channel, |c| async move {
                gateway_refresh(gateway.as_ref(), &c).await
            })
            .await;
        let mut channel = match fresh {
            Ok(fresh) => {
                if fresh.credentials != channel.credentials {
                    self.remember_channel(&fresh);
                }
                fresh
            }
            Err(err) => return self.waiting(post, err),
        };
        if channel.platform == Platform::WhatsApp {
            return self.broadcast(post, &channel).await;
        }
        // (A stopped occurrence is not published: its content is not
        // checked.)
        if !stopped && let Some(reason) = self.gateway.refusal(&channel, &post.content) {
            let error = format!("the channel can never publish this content: {reason}");
            return Ok(self.failed(post, None, error).into());
        }
        let reference = post.id.to_string();
        // An earlier attempt may have published the post after all (its
        // answer was ambiguous and the lookup right after it found nothing:
        // the platform may still have been creating it): looked up again
        // before publishing once more.
        let max = self.config.retry.max_attempts.max(1);
        let ambiguous = self.ambiguous_since(post, &channel).await?;
        if let Some(since) = ambiguous {
            match checked::looked_up(
                self.gateway
                    .lookup(&channel, &post.content, &reference, since)
                    .await,
            ) {
                Ok(Some(published)) => {
                    return Ok(self
                        .published(post, None, post.retry_count, published)
                        .into());
                }
                Ok(None) => {}
                // The lookup failed (throttled, a 5xx, inconclusive): this
                // counts as an attempt and is made again after the backoff
                // (the earlier attempt's run still says it was ambiguous);
                // with no attempt left, a person checks the account.
                Err(failure) => {
                    let attempt = post.retry_count + 1;
                    // A throttled lookup holds the channel as a throttled
                    // publish does: its other posts would meet it too.
                    let delay = self
                        .config
                        .retry
                        .delay_after(attempt, failure.retry_after());
                    let hold = self.hold_channel(post, &failure, delay).await;
                    let step = if attempt >= max {
                        let error = format!(
                            "{OUTCOME_UNKNOWN}: an earlier attempt may have published the post \
                             and the lookup before publishing again failed: {failure}; check the \
                             account before publishing again"
                        );
                        self.failed(post, None, error)
                    } else {
                        let error = format!(
                            "an earlier attempt may have published the post and the lookup \
                             before publishing again failed ({failure}); looked up again later"
                        );
                        let wait = failure.retry_after();
                        self.retry_later(post, None, attempt, error, wait)
                    };
                    return Ok(Attempted {
                        step: Step::Done(self.write_now(step).await),
                        hold,
                    });
                }
            }
        }
        if stopped {
            let looked_up = ambiguous.is_some();
            return self.stop_occurrence(post, &channel, looked_up).await;
        }
        let mut attempt = post.retry_count + 1;
        let mut refreshed = false;
        // A post that waited for its channel's reconnection gets an attempt
        // after it, even when the refused one was its last.
        let reconnected = post
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with(AWAITING_RECONNECTION));
        loop {
            // The call right after a token refresh belongs to the attempt
            // the expired token spoiled, even when that was the last.
            if attempt > max && !refreshed && !(reconnected && attempt == post.retry_count + 1) {
                let last = post
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("no attempt left ({max} made)"));
                return Ok(self.failed(post, None, last).into());
            }
            let new = NewPostRun {
                tenant_id: post.tenant_id,
                post_id: post.id,
                attempt,
                started_at: self.clock.now(),
            };
            let Some(run) = self.start_run(runs, new).await? else {
                let recovered = self.recover(post, &channel, attempt, false).await;
                return Ok(Step::Done(recovered).into());
            };
            let answer = checked::published(
                self.gateway
                    .publish(&channel, &post.content, &reference)
                    .await,
            );
            let failure = match answer {
                checked::Published::Post(published) => {
                    return Ok(self.published(post, Some(&run), attempt, published).into());
                }
                checked::Published::Unstorable(why) => {
                    // Created, says the platform: never looked up (a lookup
                    // that misses it would publish it again) nor recorded
                    // under an id the store refuses.
                    let error = format!(
                        "{OUTCOME_UNKNOWN}: the platform answered that it published the post \
                         under an id that cannot be stored ({why}); check the account before \
                         publishing again"
                    );
                    return Ok(self.failed(post, Some((&run, attempt)), error).into());
                }
                checked::Published::Failed(failure) => failure,
            };
            match failure {
                PublishFailure::Ambiguous(message) => {
                    return Ok(self
                        .settle_ambiguous(post, &channel, &run, attempt, &message)
                        .await);
                }
                PublishFailure::PublishedWithoutId(message) => {
                    return Ok(self
                        .settle_published_without_id(post, &channel, &run, attempt, &message)
                        .await);
                }
                PublishFailure::NeedsReauth(reason) => {
                    // The platform refuses the channel's tokens for good:
                    // the channel is paused and the post waits for it.
                    let error = format!("the channel needs re-authorization: {reason}");
                    self.finish_run(post, &run, PostRunStatus::Failed, Some(error))
                        .await?;
                    let err = match self
                        .tokens
                        .refuse(
                            post.tenant_id,
                            post.channel_id,
                            channel.credentials.access_token.as_ref(),
                            &reason,
                        )
                        .await
                    {
                        Ok(stored) => {
                            // The batch's other posts of the channel read
                            // it paused and make no call with the refused
                            // token.
                            self.remember_channel(&stored);
                            TokenError::Refused {
                                channel: post.channel_id,
                                reason,
                            }
                        }
                        Err(err) => err,
                    };
                    let outcome = self.write_now(self.paused(post, attempt, &err)).await;
                    return Ok(Step::Done(outcome).into());
                }
                PublishFailure::Permanent(_) | PublishFailure::SenderRefused(_) => {
                    return Ok(self
                        .failed(post, Some((&run, attempt)), failure.to_string())
                        .into());
                }
                PublishFailure::Unauthorized(_) => {
                    let error = failure.to_string();
                    if refreshed {
                        let error = format!("{error} (again after refreshing the token)");
                        return Ok(self.failed(post, Some((&run, attempt)), error).into());
                    }
                    // Record the attempt, refresh once, and go again at once.
                    let patch = PostPatch {
                        retry_count: Some(attempt),
                        error_message: Some(Some(error.clone())),
                        ..self.guard()
                    };
                    if self.update(post, patch).await?.is_none() {
                        return Ok(Step::Done(Ok(PostOutcome::LeaseLost)).into());
                    }
                    self.finish_run(post, &run, PostRunStatus::Failed, Some(error.clone()))
                        .await?;
                    refreshed = true;
                    // Under the channel's lease: the token another worker
                    // stored meanwhile, else one refreshed now.
                    let gateway = &self.gateway;
                    let renewed = self
                        .tokens
                        .after_unauthorized(
                            &channel,
                            channel.credentials.access_token.as_ref(),
                            |c| async move { gateway_refresh(gateway.as_ref(), &c).await },
                        )
                        .await;
                    match renewed {
                        Ok(stored) => {
                            self.remember_channel(&stored);
                            channel = stored;
                        }
                        Err(err) if err.is_paused() => {
                            // The attempt is recorded; the post waits for the
                            // channel to be reconnected. The channel is read
                            // again by the batch's other posts (paused: no
                            // call with the refused token).
                            self.forget_channel(post.tenant_id, post.channel_id);
                            let outcome = self.write_now(self.paused(post, attempt, &err)).await;
                            return Ok(Step::Done(outcome).into());
                        }
                        Err(TokenError::Failed {
                            message,
                            retry_after,
                            ..
                        }) => {
                            // The refresh failed for now (network, 5xx,
                            // throttled): the attempt is counted and the
                            // post tried again after the backoff, failed
                            // only when no attempt is left.
                            let error = format!(
                                "{error}; refreshing the token failed, to be tried again: {message}"
                            );
                            let step = self.retry_later(post, None, attempt, error, retry_after);
                            // The channel's other posts would meet the same
                            // rejected token: held back as `waiting` does.
                            let wait = retry_after.unwrap_or(chrono::Duration::minutes(1));
                            return Ok(Attempted {
                                step: Step::Done(self.write_now(step).await),
                                hold: Some(later(self.clock.now(), wait)),
                            });
                        }
                        Err(err) => {
                            let error = format!("token refresh failed: {err}");
                            let outcome = self.write_now(self.failed(post, None, error)).await;
                            return Ok(Step::Done(outcome).into());
                        }
                    }
                    attempt += 1;
                }
                PublishFailure::RateLimited { .. } | PublishFailure::Transient { .. } => {
                    let error = failure.to_string();
                    let delay = self
                        .config
                        .retry
                        .delay_after(attempt, failure.retry_after());
                    let hold = self.hold_channel(post, &failure, delay).await;
                    if attempt >= max {
                        let step = self.failed(post, Some((&run, attempt)), error);
                        return Ok(Attempted { step, hold });
                    }
                    let next_attempt_at = later(self.clock.now(), delay);
                    let step = self.retrying(post, &run, attempt, next_attempt_at, error);
                    return Ok(Attempted { step, hold });
                }
            }
        }
    }

    /// Holds the post's channel back after `failure`, when the platform asked
    /// it to wait, or throttled it without saying for how long (Meta's
    /// throttling codes come without Retry-After; then for `delay`, the
    /// post's backoff): here and from every worker's claims (also when the
    /// post has no attempt left), so the channel's other posts do not each
    /// spend an attempt on the throttle. Returns until when.
    pub(super) async fn hold_channel(
        &self,
        post: &ScheduledPost,
        failure: &PublishFailure,
        delay: chrono::Duration,
    ) -> Option<DateTime<Utc>> {
        let wait = match failure {
            PublishFailure::RateLimited { retry_after, .. } => Some(retry_after.unwrap_or(delay)),
            _ => failure.retry_after(),
        };
        let hold = wait.map(|wait| later(self.clock.now(), wait));
        if let Some(until) = hold
            && let Err(err) = self
                .store
                .throttle_channel(post.tenant_id, post.channel_id, until)
                .await
        {
            warn!(error = %err, "could not record the channel's hold");
        }
        hold
    }

    /// Writes one settlement at once; `LeaseLost` when the claim moved on.
    pub(super) async fn write_now(&self, step: Step) -> Result<PostOutcome> {
        match step {
            Step::Done(outcome) => outcome,
            Step::Settle(settlement, outcome) => {
                let settlement = checked::settlement(settlement);
                let written = self
                    .store
                    .settle_posts(&self.config.worker_id, &[settlement], self.clock.now())
                    .await?;
                Ok(if written.is_empty() {
                    PostOutcome::LeaseLost
                } else {
                    outcome
                })
            }
        }
    }

    pub(super) fn guard(&self) -> PostPatch {
        PostPatch {
            expect_status: Some(PostStatus::Publishing),
            expect_lease_owner: Some(self.config.worker_id.clone()),
            ..PostPatch::default()
        }
    }

    /// Applies a lease-guarded patch; `None` when the guard failed.
    pub(super) async fn update(
        &self,
        post: &ScheduledPost,
        patch: PostPatch,
    ) -> Result<Option<ScheduledPost>> {
        match self
            .store
            .update_post(post.tenant_id, post.id, patch, self.clock.now())
            .await
        {
            Ok(updated) => Ok(Some(updated)),
            Err(StorageError::Precondition { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    pub(super) async fn finish_run(
        &self,
        post: &ScheduledPost,
        run: &PostRun,
        status: PostRunStatus,
        error: Option<String>,
    ) -> Result<()> {
        self.store
            .finish_post_run(post.tenant_id, run.id, status, error, self.clock.now())
            .await?;
        Ok(())
    }
}
