//! Attempts whose outcome is not known: the lookup made after an ambiguous
//! answer, or after a worker stopped during an attempt, decides between
//! `published`, a new attempt and `outcome_unknown`, never publishing blindly.

use chrono::{DateTime, Utc};
use nexiom_core::{Channel, PostRun, PostRunStatus, ScheduledPost};
use nexiom_storage::STALE_RUN_ERROR;
use tracing::warn;

use super::attempt::{Attempted, NOT_FOUND_AFTER_AMBIGUOUS, Step};
use super::checked;
use super::gateway::{PublishFailure, PublishedPost};
use super::queue::{OUTCOME_UNKNOWN, PostOutcome, PublishQueue};
use crate::error::Result;

impl PublishQueue {
    /// When an earlier attempt of `post` ended ambiguous and was not found by
    /// the lookup made then ([`NOT_FOUND_AFTER_AMBIGUOUS`] in its run's
    /// error, or its worker stopped during it: [`STALE_RUN_ERROR`]), the
    /// start of the earliest such attempt: the next attempt
    /// looks the post up from then before publishing. `None` for a first
    /// attempt (no run is read) or where the platform offers no lookup.
    pub(super) async fn ambiguous_since(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
    ) -> Result<Option<DateTime<Utc>>> {
        if post.retry_count == 0 || !self.gateway.can_lookup(channel) {
            return Ok(None);
        }
        let runs = self.store.list_post_runs(post.tenant_id, post.id).await?;
        // A run closed because its worker stopped (its lease ran out) was
        // ambiguous too, whatever the lookup after it said (that answer was
        // written on the post only, the run being closed already).
        Ok(runs
            .iter()
            .filter(|r| {
                r.error.as_deref().is_some_and(|e| {
                    e.starts_with(NOT_FOUND_AFTER_AMBIGUOUS) || e.starts_with(STALE_RUN_ERROR)
                })
            })
            .map(|r| r.started_at)
            .min())
    }

    /// An attempt under number `attempt` was already started by a worker that
    /// stopped before recording its outcome: find out by lookup, never by
    /// publishing again. For an occurrence of a `stopped` series, not
    /// found means cancelled.
    pub(super) async fn recover(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        attempt: u32,
        stopped: bool,
    ) -> Result<PostOutcome> {
        let runs = self.store.list_post_runs(post.tenant_id, post.id).await?;
        let orphan = runs.into_iter().find(|r| r.attempt == attempt);
        if orphan.is_none() {
            // Nothing was started under this number: the run was refused
            // because this worker's claim had lapsed. Nothing to settle.
            return Ok(PostOutcome::LeaseLost);
        }
        warn!(
            attempt,
            "a previous worker stopped during this attempt; checking the platform"
        );
        let attempted_at = orphan.as_ref().map_or(post.publish_at, |r| r.started_at);
        let looked = self.look_up(post, channel, attempted_at).await;
        let can_lookup = looked.is_some();
        let found = looked.unwrap_or(Ok(None));
        // Found: the orphan attempt succeeded, even if it was closed as stale.
        if let Ok(Some(published)) = found {
            return self
                .write_now(self.published(post, orphan.as_ref(), attempt, published))
                .await;
        }
        let running = orphan.filter(|r| r.status == PostRunStatus::Running);
        if stopped && matches!(found, Ok(None)) && can_lookup {
            return self.cancel_stopped(post, running.as_ref(), None).await;
        }
        let step = match found {
            Ok(None) if can_lookup => {
                let error = format!(
                    "{NOT_FOUND_AFTER_AMBIGUOUS}: a worker stopped during attempt {attempt} \
                     after it may have been sent"
                );
                self.retry_later(post, running.as_ref(), attempt, error, None)
            }
            // The lookup was throttled or failed transiently: looked up
            // again after the wait, never published before that.
            Err(failure) if retried_lookup(&failure, attempt, &self.config.retry) => {
                let why = format!(
                    "a worker stopped during attempt {attempt} after it may have been sent"
                );
                self.look_again_later(post, running.as_ref(), attempt, &failure, &why)
                    .await
                    .0
            }
            outcome => {
                let why = match outcome {
                    Err(failure) => format!("; the lookup failed: {failure}"),
                    _ => "; the platform offers no lookup".into(),
                };
                let error = format!(
                    "{OUTCOME_UNKNOWN}: a worker stopped during attempt {attempt} after it may \
                     have been sent{why}; check the account before publishing again"
                );
                self.failed(post, running.as_ref().map(|r| (r, attempt)), error)
            }
        };
        self.write_now(step).await
    }

    pub(super) async fn settle_ambiguous(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        run: &PostRun,
        attempt: u32,
        message: &str,
    ) -> Attempted {
        let why = match self.look_up(post, channel, run.started_at).await {
            Some(Ok(Some(published))) => {
                let step = self.published(post, Some(run), attempt, published);
                return Step::Done(self.write_now(step).await).into();
            }
            Some(Ok(None)) => {
                let error = format!(
                    "{NOT_FOUND_AFTER_AMBIGUOUS}: no answer after the request was sent \
                     ({message})"
                );
                let step = self.retry_later(post, Some(run), attempt, error, None);
                return Step::Done(self.write_now(step).await).into();
            }
            // The lookup got no answer either (throttled, a 5xx): the
            // post is looked up again after the wait, before any new
            // publish (its run says it was ambiguous), and the channel
            // is held as a throttled publish holds it.
            Some(Err(failure)) if retried_lookup(&failure, attempt, &self.config.retry) => {
                let why = format!("no answer after the request was sent ({message})");
                let (step, hold) = self
                    .look_again_later(post, Some(run), attempt, &failure, &why)
                    .await;
                return Attempted {
                    step: Step::Done(self.write_now(step).await),
                    hold,
                };
            }
            Some(Err(failure)) => format!("the lookup failed: {failure}"),
            None => "the platform offers no lookup".to_owned(),
        };
        let error = format!(
            "{OUTCOME_UNKNOWN}: no answer after the request was sent ({message}); {why}; \
             check the account before publishing again"
        );
        let step = self.failed(post, Some((run, attempt)), error);
        Step::Done(self.write_now(step).await).into()
    }

    /// The platform says the attempt published the post but gave no id
    /// ([`PublishFailure::PublishedWithoutId`]): the post is looked up once
    /// for its id and never published again. Found: `published`; not found,
    /// or the lookup failed or is not offered: `outcome_unknown` at once (a
    /// later lookup that missed it would publish it a second time).
    pub(super) async fn settle_published_without_id(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        run: &PostRun,
        attempt: u32,
        message: &str,
    ) -> Attempted {
        let why = match self.look_up(post, channel, run.started_at).await {
            Some(Ok(Some(published))) => {
                let step = self.published(post, Some(run), attempt, published);
                return Step::Done(self.write_now(step).await).into();
            }
            Some(Ok(None)) => "the lookup did not find it".to_owned(),
            Some(Err(failure)) => format!("the lookup failed: {failure}"),
            None => "the platform offers no lookup".to_owned(),
        };
        let error = format!(
            "{OUTCOME_UNKNOWN}: the platform says the post was published, but not under which \
             id ({message}); {why}; it is not published again: find it on the account"
        );
        let step = self.failed(post, Some((run, attempt)), error);
        Step::Done(self.write_now(step).await).into()
    }

    /// Looks `post` up on `channel` among what was published from `since`,
    /// the id found checked storable. `None` where the platform offers no
    /// lookup.
    async fn look_up(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        since: DateTime<Utc>,
    ) -> Option<std::result::Result<Option<PublishedPost>, PublishFailure>> {
        if !self.gateway.can_lookup(channel) {
            return None;
        }
        let found = self
            .gateway
            .lookup(channel, &post.content, &post.id.to_string(), since)
            .await;
        Some(checked::looked_up(found))
    }

    /// A lookup made after an ambiguous attempt got no answer either
    /// (throttled, a 5xx): the channel is held as a throttled publish holds
    /// it, and the post is looked up again after the wait, before any new
    /// publish (its run says it was ambiguous). Returns the step and the hold.
    async fn look_again_later(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        attempt: u32,
        failure: &PublishFailure,
        why: &str,
    ) -> (Step, Option<DateTime<Utc>>) {
        let delay = self
            .config
            .retry
            .delay_after(attempt, failure.retry_after());
        let hold = self.hold_channel(post, failure, delay).await;
        let error = format!(
            "{NOT_FOUND_AFTER_AMBIGUOUS}: {why}, and the lookup failed ({failure}); looked up \
             again before publishing again"
        );
        let step = self.retry_later(post, run, attempt, error, failure.retry_after());
        (step, hold)
    }
}

/// Whether a failed lookup after an ambiguous attempt is made again later
/// (throttled or transient, with an attempt left) rather than ending the
/// post `outcome_unknown`.
pub(super) fn retried_lookup(
    failure: &PublishFailure,
    attempt: u32,
    retry: &crate::RetryPolicy,
) -> bool {
    matches!(
        failure,
        PublishFailure::RateLimited { .. } | PublishFailure::Transient { .. }
    ) && attempt < retry.max_attempts.max(1)
}
