//! A claimed post on a WhatsApp channel: a broadcast, fanned out to one
//! delivery per recipient (see [`nexiom_storage::BroadcastStore`]).
//!
//! Under the post's claim, the deliveries are made (once per recipient), then
//! claimed, sent and finished one at a time, so at most one is ever in doubt
//! if the worker stops, and that one is never sent again. Each recipient
//! follows the posts' retry rules on its own: transient failures and rate
//! limits are retried with the same backoff and attempt limit (a platform's
//! Retry-After, a throttle naming no wait, or a refused token pauses the
//! whole fan-out; a Retry-After or a throttle also holds the channel back
//! for every worker, for the wait or the delivery's backoff; WhatsApp's pair
//! rate limit, about one recipient, holds nothing), a refusal
//! fails the recipient at once, but a refusal of the sender or the template
//! (for every recipient: a permission, the account locked or unpaid, a
//! template paused or disabled) stops the fan-out for
//! [`SENDER_REFUSAL_WAIT`] and says so on the post (after `max_attempts`
//! such refusals the post fails, its other recipients unsent), an answer lost after sending fails it as
//! unknown (never sent blindly again). Free-form content goes only to
//! recipients inside their 24-hour window; the others get the post's
//! template, or are refused before any call when it has none. The post is
//! `published` once every recipient is sent or failed for good (`failed` when
//! nobody received it), and `queued` again for the earliest retry otherwise.
//! One claim sends to a bounded share of the audience
//! ([`PublishConfig::broadcast_pass`], or about a minute) and hands the post
//! back due at once, so a large audience never holds a worker for hours.
//!
//! [`PublishConfig::broadcast_pass`]: super::PublishConfig::broadcast_pass

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    BroadcastCounts, Channel, ClaimedDelivery, DeliveryOutcome, PostBroadcast, PostSettlement,
    PostStatus, PublishedFields, ScheduledPost, broadcast_platform_post_id,
};

use super::attempt::{Attempted, Step, gateway_refresh, later};
use super::gateway::{PublishFailure, PublishedPost, RecipientMessage};
use super::queue::{OUTCOME_UNKNOWN, PostOutcome, PublishQueue};
use crate::error::Result;

/// WhatsApp's customer-service window: free-form messages only within this
/// long after the recipient's last message.
const MESSAGING_WINDOW: Duration = Duration::hours(24);

/// How long a broadcast waits after the platform refused its sender or its
/// template for every recipient (a permission, the account, a template
/// paused or disabled) before it tries again: a paused template comes back
/// within hours, the others need a person. The recipient tried spends an
/// attempt each time; the post counts such passes in a row (its
/// `retry_count`) and fails after `max_attempts` of them (its other
/// recipients left unsent), so a refusal that never lifts ends the
/// broadcast rather than holding it for ever.
pub const SENDER_REFUSAL_WAIT: Duration = Duration::hours(2);

/// How long one claim of a broadcast sends before handing the post back
/// (with [`super::PublishConfig::broadcast_pass`], whichever comes first).
const PASS_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// How one recipient's send ended, and whether the fan-out must pause.
struct Sent {
    outcome: DeliveryOutcome,
    /// The platform asked to wait (Retry-After), throttled the channel, or
    /// refused the token: the other recipients wait too, until then.
    hold: Option<DateTime<Utc>>,
    /// The wait is the platform's or a throttle's: the channel is held back
    /// for every worker.
    throttle: bool,
    /// The platform refused the token: it is renewed (or the channel paused)
    /// before the next recipient's attempt.
    unauthorized: bool,
    /// The platform refused the sender or the template for every
    /// recipient: why (the post says it while it waits).
    refused: Option<String>,
}

impl PublishQueue {
    /// Takes a claimed post on a broadcast channel through its fan-out.
    pub(super) async fn broadcast(
        &self,
        post: &ScheduledPost,
        channel: &Channel,
    ) -> Result<Attempted> {
        let (tenant, owner) = (post.tenant_id, self.config.worker_id.as_str());
        // Its own audience, or (an occurrence) its series template's.
        let own = self.store.get_post_broadcast(tenant, post.id).await?;
        let spec = match (own, post.series_id) {
            (Some(spec), _) => Some(spec),
            (None, Some(series)) => self.store.get_post_broadcast(tenant, series).await?,
            (None, None) => None,
        };
        let Some(spec) = spec else {
            let error = "a WhatsApp post needs an audience (explicit recipients or a stored \
                         audience) before it can be sent"
                .to_owned();
            return Ok(self.failed(post, None, error).into());
        };
        if spec.template.is_none()
            && let Some(reason) = self.gateway.refusal(channel, &post.content)
        {
            let error = format!("the channel can never send this content: {reason}");
            return Ok(self.failed(post, None, error).into());
        }
        if self
            .store
            .prepare_deliveries(tenant, post.id, owner, self.clock.now())
            .await?
            .is_none()
        {
            return Ok(Step::Done(Ok(PostOutcome::LeaseLost)).into());
        }
        let mut hold = None;
        let mut refused = None;
        // A pass is bounded: past its share, the post goes back to the queue
        // due at once and the next claim goes on (see
        // `PublishConfig::broadcast_pass`).
        let started = std::time::Instant::now();
        let mut sent_in_pass = 0usize;
        let mut pass_full = false;
        while let Some(claimed) = self
            .store
            .claim_next_delivery(tenant, post.id, owner, self.clock.now())
            .await?
        {
            let sent = self.send_one(channel, post, &spec, &claimed).await;
            let outcome = super::checked::delivery(sent.outcome);
            self.store
                .finish_delivery(tenant, claimed.delivery.id, outcome, self.clock.now())
                .await?;
            if sent.unauthorized {
                // The token another worker stored, a new one, or (refused)
                // the channel paused: the next attempt finds out.
                let gateway = &self.gateway;
                if let Err(err) = self
                    .tokens
                    .after_unauthorized(
                        channel,
                        channel.credentials.access_token.as_ref(),
                        |c| async move { gateway_refresh(gateway.as_ref(), &c).await },
                    )
                    .await
                {
                    tracing::warn!(error = %err, "no new token after a refused one");
                }
            }
            if let Some(until) = sent.hold {
                refused = sent.refused;
                if sent.throttle
                    && let Err(err) = self
                        .store
                        .throttle_channel(tenant, post.channel_id, until)
                        .await
                {
                    tracing::warn!(error = %err, "could not record the channel's hold");
                }
                hold = Some(until);
                break;
            }
            sent_in_pass += 1;
            if sent_in_pass >= self.config.broadcast_pass.max(1) || started.elapsed() >= PASS_TIME {
                pass_full = true;
                break;
            }
        }
        let counts = self.store.broadcast_counts(tenant, post.id).await?;
        // Passes ended by a refusal of the sender in a row, counted on the
        // post (its `retry_count`; a pass without one starts again at 0).
        let max = self.config.retry.max_attempts.max(1);
        let refusals = refused.as_ref().map(|_| post.retry_count.saturating_add(1));
        if let (Some(why), Some(n)) = (&refused, refusals)
            && n >= max
            && counts.pending > 0
        {
            // The same refusal pass after pass: the post fails, its pending
            // recipients left unsent, rather than one recipient failing per
            // few hours for as long as the audience lasts.
            let error = format!(
                "{}; the platform refused every recipient at {n} tries in a row, {} hours \
                 apart ({why}): the {} recipients left were not sent",
                counts.summary(),
                SENDER_REFUSAL_WAIT.num_hours(),
                counts.pending,
            );
            let mut step = self.failed(post, None, error);
            if let Step::Settle(settlement, _) = &mut step {
                settlement.retry_count = Some(n);
            }
            return Ok(Attempted { step, hold: None });
        }
        let mut step = self.broadcast_settlement(post, counts, hold, pass_full);
        if let Step::Settle(settlement, outcome) = &mut step {
            match (refused, refusals) {
                (Some(why), Some(n)) => {
                    settlement.retry_count = Some(n);
                    if let PostOutcome::Retrying {
                        error, attempts, ..
                    } = outcome
                    {
                        // What the post waits for, not only its counts.
                        let told = format!(
                            "{error}; the platform refuses every recipient for now ({n} of \
                             {max} tries): {why}"
                        );
                        settlement.error_message = Some(told.clone());
                        *error = told;
                        *attempts = n;
                    }
                }
                _ if post.retry_count > 0 => settlement.retry_count = Some(0),
                _ => {}
            }
        }
        Ok(Attempted { step, hold })
    }

    async fn send_one(
        &self,
        channel: &Channel,
        post: &ScheduledPost,
        spec: &PostBroadcast,
        claimed: &ClaimedDelivery,
    ) -> Sent {
        let now = self.clock.now();
        let delivery = &claimed.delivery;
        let inside = claimed
            .last_inbound_at
            .is_some_and(|at| now - at <= MESSAGING_WINDOW);
        let template = match (&spec.template, inside) {
            (_, true) => None,
            (Some(t), false) => Some(t),
            (None, false) => {
                let why = match claimed.last_inbound_at {
                    Some(at) => format!("last wrote at {at}"),
                    None => "never wrote to the channel".to_owned(),
                };
                return Sent {
                    outcome: DeliveryOutcome::Failed {
                        error: format!(
                            "outside the recipient's 24-hour window ({why}) and the post has no \
                             approved template: refused before any call"
                        ),
                    },
                    hold: None,
                    throttle: false,
                    unauthorized: false,
                    refused: None,
                };
            }
        };
        let reference = delivery.id.to_string();
        let message = RecipientMessage {
            recipient: &delivery.recipient,
            content: &post.content,
            template,
            reference: &reference,
            last_inbound_at: claimed.last_inbound_at,
        };
        let failure = match self.gateway.send_to_recipient(channel, message).await {
            Ok(provider_message_id) => {
                return Sent {
                    outcome: DeliveryOutcome::Sent {
                        provider_message_id,
                    },
                    hold: None,
                    throttle: false,
                    unauthorized: false,
                    refused: None,
                };
            }
            Err(failure) => failure,
        };
        let error = failure.to_string();
        let max = self.config.retry.max_attempts.max(1);
        let attempt = delivery.attempts;
        match failure {
            PublishFailure::Permanent(_) => Sent {
                outcome: DeliveryOutcome::Failed { error },
                hold: None,
                throttle: false,
                unauthorized: false,
                refused: None,
            },
            // Every other recipient would be refused the same way: the
            // fan-out stops and tries again later (this recipient's attempt
            // counts), rather than failing the whole audience in minutes.
            PublishFailure::SenderRefused(why) => {
                let hold = later(now, SENDER_REFUSAL_WAIT);
                let outcome = if attempt >= max {
                    DeliveryOutcome::Failed {
                        error: format!("{error}; no attempt left ({max} made)"),
                    }
                } else {
                    DeliveryOutcome::Retry {
                        error,
                        next_attempt_at: hold,
                    }
                };
                Sent {
                    outcome,
                    hold: Some(hold),
                    throttle: false,
                    unauthorized: false,
                    refused: Some(why),
                }
            }
            PublishFailure::Ambiguous(_) | PublishFailure::PublishedWithoutId(_) => Sent {
                outcome: DeliveryOutcome::Failed {
                    error: format!(
                        "{OUTCOME_UNKNOWN}: {error}; the message may have been delivered and is \
                         not sent again (a status webhook will tell)"
                    ),
                },
                hold: None,
                throttle: false,
                unauthorized: false,
                refused: None,
            },
            PublishFailure::RateLimited { .. }
            | PublishFailure::Transient { .. }
            | PublishFailure::Unauthorized(_)
            | PublishFailure::NeedsReauth(_) => {
                let next_attempt_at = later(
                    now,
                    self.config
                        .retry
                        .delay_after(attempt, failure.retry_after()),
                );
                // A wait the platform asked for, a throttle, or a refused
                // token concerns the whole channel: the others wait too (no
                // stream of refused calls). A throttle that names no wait
                // (Meta's channel-wide codes 4, 80007, 130429, 131048 often
                // come so) holds it for the delivery's backoff; a throttle
                // holds the channel back for every worker, as for posts, and
                // also when this recipient has no attempt left. (WhatsApp's
                // pair rate limit is about one recipient: `Transient`.)
                let platform_wait = failure.retry_after().map(|wait| later(now, wait));
                let throttled = matches!(failure, PublishFailure::RateLimited { .. });
                let hold = match failure {
                    PublishFailure::Unauthorized(_) | PublishFailure::NeedsReauth(_) => {
                        Some(next_attempt_at)
                    }
                    PublishFailure::RateLimited { .. } => platform_wait.or(Some(next_attempt_at)),
                    _ => platform_wait,
                };
                let throttle = throttled || platform_wait.is_some();
                if attempt >= max {
                    return Sent {
                        outcome: DeliveryOutcome::Failed {
                            error: format!("{error}; no attempt left ({max} made)"),
                        },
                        hold: hold.filter(|_| throttle),
                        throttle,
                        unauthorized: false,
                        refused: None,
                    };
                }
                Sent {
                    outcome: DeliveryOutcome::Retry {
                        error,
                        next_attempt_at,
                    },
                    hold,
                    throttle,
                    unauthorized: matches!(failure, PublishFailure::Unauthorized(_)),
                    refused: None,
                }
            }
        }
    }

    /// The post's state after a pass over its deliveries.
    pub(super) fn broadcast_settlement(
        &self,
        post: &ScheduledPost,
        counts: BroadcastCounts,
        hold: Option<DateTime<Utc>>,
        pass_full: bool,
    ) -> Step {
        let now = self.clock.now();
        let summary = counts.summary();
        if !counts.is_settled() {
            let next = match (counts.next_attempt_at, hold) {
                // The pass ended with recipients still to try now.
                _ if pass_full => Some(now),
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let error = if pass_full {
                format!(
                    "{summary}, {} still to send in the next pass",
                    counts.pending
                )
            } else {
                format!("{summary}, {} waiting for a retry", counts.pending)
            };
            let settlement = PostSettlement {
                tenant_id: post.tenant_id,
                post_id: post.id,
                status: PostStatus::Queued,
                retry_count: None,
                error_message: Some(error.clone()),
                next_attempt_at: next,
                published: None,
                run: None,
            };
            return Step::Settle(
                settlement,
                PostOutcome::Retrying {
                    attempts: post.retry_count,
                    next_attempt_at: next.unwrap_or(now),
                    error,
                },
            );
        }
        if counts.sent == 0 {
            let error = format!("no recipient received it: {summary} (see the deliveries)");
            return self.failed(post, None, error);
        }
        let published = PublishedPost {
            platform_post_id: broadcast_platform_post_id(post.id),
            url: None,
        };
        let settlement = PostSettlement {
            tenant_id: post.tenant_id,
            post_id: post.id,
            status: PostStatus::Published,
            retry_count: None,
            // Recipients that failed are reported; all sent clears it.
            error_message: (counts.failed > 0).then_some(summary),
            next_attempt_at: None,
            published: Some(PublishedFields {
                platform_post_id: published.platform_post_id.clone(),
                url: None,
                published_at: now,
                // A broadcast has no comments to poll.
                next_check_at: None,
                stop_at: Some(now),
            }),
            run: None,
        };
        Step::Settle(settlement, PostOutcome::Published(published))
    }
}
