//! Series templates: a claimed template creates its due occurrence as a post
//! of its own and moves to its next occurrence, or, under
//! [`PublishConfig::series_max_lateness`](super::PublishConfig::series_max_lateness),
//! skips the occurrences that fell due too long ago; an occurrence of a
//! series stopped on request is cancelled when claimed.

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    Channel, NewScheduledPost, Platform, PostPatch, PostRun, PostRunStatus, PostSettlement,
    PostStatus, ScheduledPost,
};
use nexiom_storage::STALE_RUN_ERROR;
use tracing::warn;

use super::attempt::{Attempted, NOT_FOUND_AFTER_AMBIGUOUS, Runs, Step};
use super::queue::{PostOutcome, PublishQueue};
use crate::error::Result;
use crate::schedule::RecurrenceRule;

/// Occurrences one advance skips at most; a template still too late after
/// them is due again at once, and the next claim goes on.
const MAX_SKIPPED_PER_ADVANCE: u32 = 1_000;

impl PublishQueue {
    /// Takes a claimed series template one step: creates its occurrence (or
    /// skips the late ones) and moves it to the next occurrence, or retires
    /// it when the rule has none. A template without a rule is published as
    /// a post.
    pub(super) async fn advance_series(&self, template: &ScheduledPost) -> Result<PostOutcome> {
        let Some(recurrence) = template.recurrence.clone() else {
            return self
                .write_now(self.attempt(template, &Runs::Direct).await.step)
                .await;
        };
        let occurrence_at = template.publish_at;
        let stepped =
            RecurrenceRule::new(recurrence).and_then(|r| Ok((r.next_after(occurrence_at)?, r)));
        let (next, rule) = match stepped {
            Ok(stepped) => stepped,
            Err(err) => return self.fail_series(template, &err).await,
        };
        let now = self.clock.now();
        if let Some(max) = self.config.series_max_lateness.map(lateness_limit)
            && too_late(occurrence_at, now, max)
        {
            return self
                .skip_late_occurrences(template, &rule, next, now, max)
                .await;
        }
        self.store
            .insert_post(NewScheduledPost {
                tenant_id: template.tenant_id,
                channel_id: template.channel_id,
                content: template.content.clone(),
                publish_at: occurrence_at,
                recurrence: None,
                series_id: Some(template.id),
                occurrence_at: Some(occurrence_at),
                mission_id: template.mission_id,
                content_job_id: template.content_job_id,
                created_at: now,
            })
            .await?;
        match self.move_template(template, next).await? {
            true => Ok(PostOutcome::SeriesAdvanced {
                occurrence_at,
                next,
            }),
            false => Ok(PostOutcome::LeaseLost),
        }
    }

    /// The template's occurrence is more than `max` late: it and the
    /// following ones up to the first within `max` of `now` (or to come) are
    /// not created; the template moves to that one.
    async fn skip_late_occurrences(
        &self,
        template: &ScheduledPost,
        rule: &RecurrenceRule,
        mut next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        max: Duration,
    ) -> Result<PostOutcome> {
        let first = template.publish_at;
        let mut skipped = 1;
        while let Some(at) = next
            && too_late(at, now, max)
            && skipped < MAX_SKIPPED_PER_ADVANCE
        {
            skipped += 1;
            next = match rule.next_after(at) {
                Ok(next) => next,
                Err(err) => return self.fail_series(template, &err).await,
            };
        }
        warn!(
            tenant = %template.tenant_id,
            series = %template.id,
            %first,
            skipped,
            ?next,
            "series occurrences skipped: they fell due longer ago than series_max_lateness"
        );
        match self.move_template(template, next).await? {
            true => Ok(PostOutcome::OccurrencesSkipped {
                first,
                skipped,
                next,
            }),
            false => Ok(PostOutcome::LeaseLost),
        }
    }

    /// Moves the template to `next` (queued again) or retires it
    /// (`cancelled`) when the rule has no more; `false` when its lease moved
    /// on.
    async fn move_template(
        &self,
        template: &ScheduledPost,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let patch = match next {
            Some(next) => PostPatch {
                status: Some(PostStatus::Queued),
                publish_at: Some(next),
                release_lease: true,
                ..self.guard()
            },
            None => PostPatch {
                status: Some(PostStatus::Cancelled),
                release_lease: true,
                ..self.guard()
            },
        };
        Ok(self.update(template, patch).await?.is_some())
    }

    /// Whether `post` is an occurrence of a series stopped on request.
    pub(super) async fn series_stopped(&self, post: &ScheduledPost) -> Result<bool> {
        let Some(series) = post.series_id else {
            return Ok(false);
        };
        let template = self.store.get_post(post.tenant_id, series).await?;
        Ok(template.is_stopped_series())
    }

    /// An occurrence of a stopped series settled before any token refresh
    /// or call: cancelled, unless an earlier attempt's outcome is unknown
    /// (an ambiguous answer, a worker stopped during it). Then, where the
    /// platform offers a lookup, `None`: the attempt looks it up first;
    /// where it does not, it is settled as any such attempt is
    /// (`outcome_unknown`). A broadcast stops between two recipients, as
    /// cancelling a queued broadcast does (the recipients not sent get
    /// nothing; the message says how far it went); one with every recipient
    /// settled already (its worker stopped before recording the post) is
    /// recorded as its pass would have.
    pub(super) async fn stop_at_once(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
    ) -> Result<Option<Step>> {
        if channel.platform == Platform::WhatsApp {
            let counts = self.store.broadcast_counts(post.tenant_id, post.id).await?;
            if counts.total() > 0 && counts.is_settled() {
                return Ok(Some(self.broadcast_settlement(post, counts, None, false)));
            }
            let note = (counts.total() > 0).then(|| {
                format!(
                    "its broadcast stopped at {}, {} in doubt, {} not sent",
                    counts.summary(),
                    counts.sending,
                    counts.pending
                )
            });
            let cancelled = self.cancel_stopped(post, None, note).await;
            return Ok(Some(Step::Done(cancelled)));
        }
        let next = post.retry_count + 1;
        let runs = self.store.list_post_runs(post.tenant_id, post.id).await?;
        // A run of the next attempt left open, or closed as stale: its
        // worker stopped during the call. An ambiguous answer not found.
        let unknown = runs.iter().any(|r| {
            let error = r.error.as_deref().unwrap_or_default();
            (r.attempt == next && r.status == PostRunStatus::Running)
                || error.starts_with(NOT_FOUND_AFTER_AMBIGUOUS)
                || error.starts_with(STALE_RUN_ERROR)
        });
        if !unknown {
            let cancelled = self.cancel_stopped(post, None, None).await;
            return Ok(Some(Step::Done(cancelled)));
        }
        if self.gateway.can_lookup(channel) {
            return Ok(None);
        }
        let orphan = runs.iter().any(|r| r.attempt == next);
        let settled = if orphan {
            self.recover(post, channel, next, true).await
        } else {
            // An earlier attempt whose worker stopped, and no lookup can
            // tell whether it was published: nothing more is sent.
            let note = "an earlier attempt may have published it (the platform offers no \
                        lookup): check the account"
                .to_owned();
            self.cancel_stopped(post, None, Some(note)).await
        };
        Ok(Some(Step::Done(settled)))
    }

    /// An occurrence of a stopped series whose earlier attempts were not
    /// found on the platform (`looked_up`: by the lookup just made):
    /// cancelled. An attempt a stopped worker began and no lookup covered
    /// yet is settled by lookup first (cancelled if not found).
    pub(super) async fn stop_occurrence(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
        looked_up: bool,
    ) -> Result<Attempted> {
        let attempt = post.retry_count + 1;
        let runs = self.store.list_post_runs(post.tenant_id, post.id).await?;
        let orphan = runs.into_iter().find(|r| r.attempt == attempt);
        let outcome = match orphan {
            Some(_) if !looked_up => self.recover(post, channel, attempt, true).await,
            orphan => {
                let running = orphan.filter(|r| r.status == PostRunStatus::Running);
                self.cancel_stopped(post, running.as_ref(), None).await
            }
        };
        Ok(Step::Done(outcome).into())
    }

    /// `cancelled` under the claim, and `run` (an attempt found not to have
    /// published) closed; `LeaseLost` when the claim moved on. `note` says
    /// what had gone out (a broadcast stopped part way).
    pub(super) async fn cancel_stopped(
        &self,
        post: &ScheduledPost,
        run: Option<&PostRun>,
        note: Option<String>,
    ) -> Result<PostOutcome> {
        let error = match note {
            Some(note) => {
                format!("cancelled: its series was stopped (cancelled or replaced); {note}")
            }
            None => "cancelled: its series was stopped (cancelled or replaced) before this \
                     occurrence was published"
                .to_owned(),
        };
        let patch = PostPatch {
            status: Some(PostStatus::Cancelled),
            error_message: Some(Some(error.clone())),
            next_attempt_at: Some(None),
            release_lease: true,
            ..self.guard()
        };
        if self.update(post, patch).await?.is_none() {
            return Ok(PostOutcome::LeaseLost);
        }
        let (tenant, now) = (post.tenant_id, self.clock.now());
        crate::schedule::close_deliveries(self.store.as_ref(), tenant, post.id, now).await;
        if let Some(run) = run {
            let why = format!("{error}; not found on the platform");
            self.finish_run(post, run, PostRunStatus::Failed, Some(why))
                .await?;
        }
        Ok(PostOutcome::Cancelled)
    }

    /// A template whose rule cannot be read or stepped fails for good.
    async fn fail_series(
        &self,
        template: &ScheduledPost,
        err: &crate::error::SchedulerError,
    ) -> Result<PostOutcome> {
        let failed = PostSettlement {
            tenant_id: template.tenant_id,
            post_id: template.id,
            status: PostStatus::Failed,
            retry_count: None,
            error_message: Some(err.to_string()),
            next_attempt_at: None,
            published: None,
            run: None,
        };
        self.write_now(Step::Settle(failed, PostOutcome::Failed(err.to_string())))
            .await
    }
}

/// The least [`PublishConfig::series_max_lateness`] counts as: a due
/// occurrence is always somewhat late when a worker claims it (the publish
/// worker runs every minute, and a claim may wait for earlier batches), so
/// a limit of zero (or a negative one) would skip them all.
///
/// [`PublishConfig::series_max_lateness`]: super::PublishConfig::series_max_lateness
pub(super) const MIN_SERIES_LATENESS: Duration = Duration::minutes(5);

/// `max`, raised to [`MIN_SERIES_LATENESS`].
fn lateness_limit(max: Duration) -> Duration {
    max.max(MIN_SERIES_LATENESS)
}

/// Whether an occurrence at `at` is more than `max` late at `now`.
fn too_late(at: DateTime<Utc>, now: DateTime<Utc>, max: Duration) -> bool {
    now.signed_duration_since(at) > max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lateness_limit_under_five_minutes_counts_as_five() {
        assert_eq!(lateness_limit(Duration::zero()), MIN_SERIES_LATENESS);
        assert_eq!(lateness_limit(Duration::hours(-2)), MIN_SERIES_LATENESS);
        assert_eq!(lateness_limit(Duration::hours(3)), Duration::hours(3));
        let at = Utc::now();
        assert!(!too_late(
            at,
            at + Duration::seconds(20),
            lateness_limit(Duration::zero())
        ));
    }
}
