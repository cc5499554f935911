//! Post discovery: the latest posts of the channels that switched it on
//! ([`ExternalPostStore::set_post_discovery`](nexiom_storage::ExternalPostStore::set_post_discovery)),
//! listed through the platform, so that the posts made elsewhere (in the
//! platform's app, before the channel was connected) are recorded as external
//! posts and their comments polled like the others.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use nexiom_connectors::{ConnectorError, RecentPost};
use nexiom_core::{DiscoveredPost, DiscoveryRun, PostDiscovery};
use tracing::warn;

use super::error::PollingError;
use super::poller::CommentPoller;
use super::report::{DiscoveryFailure, PollReport};
use crate::error::Result;
use crate::tokens::connector_refresh;

/// How one channel's listing ended.
enum Listed {
    /// The posts listed.
    Posts(Vec<DiscoveredPost>),
    /// Not asked: the channel is rate-limited (or paused, needing
    /// re-authorization) until then.
    Deferred(DateTime<Utc>),
}

/// What one channel's discovery did.
#[derive(Default)]
struct Discovered {
    /// The channel's posts were listed.
    listed: bool,
    /// External posts recorded for the first time.
    posts_created: u64,
    /// The listing's and the recording's failures.
    failures: Vec<DiscoveryFailure>,
}

impl CommentPoller {
    /// Runs the post discovery of at most `limit` channels due now, claimed
    /// for [`PollingConfig::lease`](crate::PollingConfig::lease)
    /// ([`ExternalPostStore::claim_post_discoveries`](nexiom_storage::ExternalPostStore::claim_post_discoveries)),
    /// concurrently (at most [`PollingConfig::concurrency`](crate::PollingConfig::concurrency)'s
    /// `max_in_flight` channels at once):
    ///
    /// - the channel's `recent_posts` latest posts are listed
    ///   ([`list_recent_posts`](nexiom_connectors::PlatformConnector::list_recent_posts));
    /// - each one no stored post of the channel has becomes an external post,
    ///   once whatever runs concurrently, polled for comments from now until
    ///   its publication plus [`PollingConfig::window`](crate::PollingConfig::window)
    ///   (a post listed without a time counts from now; one older than the
    ///   window is recorded, not polled); an external post known only from a
    ///   webhook comment starts being polled the same way; posts published
    ///   here are left as they are
    ///   ([`ExternalPostStore::record_discovery`](nexiom_storage::ExternalPostStore::record_discovery));
    /// - the next run is due after
    ///   [`PollingConfig::discovery_interval`](crate::PollingConfig::discovery_interval).
    ///
    /// A channel whose listing fails (the platform refuses, lists no posts,
    /// the channel has no token) is recorded in
    /// [`PollReport::discovery_failures`] and on its discovery (`last_error`),
    /// and runs again after the interval; a rate limit holds the channel (its
    /// comment polls too) until the platform's Retry-After. A token the
    /// platform refuses is renewed once (the token another process stored,
    /// or a new one) and the listing made again; a refused renewal pauses
    /// the channel (`needs_reauth`, the tenant told) and defers its
    /// discovery until it is reconnected. One channel never
    /// stops another. Fails only when the due discoveries cannot be claimed.
    pub async fn discover_posts(&self, limit: u32) -> Result<PollReport> {
        let mut report = PollReport::default();
        if limit == 0 {
            return Ok(report);
        }
        let now = self.clock.now();
        let due = self
            .store
            .claim_post_discoveries(now, limit, self.config.lease)
            .await?;
        // Each discovery is a channel of its own: they are listed
        // concurrently, at most the worker's cap at once (one call per
        // channel, so the per-channel cap holds).
        let outcomes: Vec<Discovered> = stream::iter(due)
            .map(|discovery| self.discover_channel(discovery, now))
            .buffer_unordered(self.config.concurrency.worker_cap())
            .collect()
            .await;
        for outcome in outcomes {
            report.channels_discovered += u64::from(outcome.listed);
            report.external_posts_found += outcome.posts_created;
            report.discovery_failures.extend(outcome.failures);
        }
        Ok(report)
    }

    /// One channel's discovery: listed, then recorded.
    async fn discover_channel(&self, discovery: PostDiscovery, now: DateTime<Utc>) -> Discovered {
        let mut outcome = Discovered::default();
        let listed = self.list_channel(&discovery).await;
        let next_run = now
            .checked_add_signed(self.config.discovery_interval)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut run = DiscoveryRun {
            tenant_id: discovery.tenant_id,
            channel_id: discovery.channel_id,
            posts: Vec::new(),
            poll_window: self.config.window,
            next_run_at: next_run,
            error: None,
            at: now,
        };
        let failure = |error: String| DiscoveryFailure {
            tenant_id: discovery.tenant_id,
            channel_id: discovery.channel_id,
            error,
        };
        match listed {
            Ok(Listed::Posts(posts)) => {
                run.posts = posts;
                outcome.listed = true;
            }
            Ok(Listed::Deferred(until)) => run.next_run_at = until.max(next_run),
            Err(err) => {
                warn!(tenant_id = %discovery.tenant_id, channel_id = %discovery.channel_id,
                    error = %err, "post discovery failed");
                run.error = Some(crate::publish::checked::storable_text(&err.to_string()));
                if let PollingError::Connector(e) = &err {
                    self.hold_if_rate_limited(discovery.tenant_id, discovery.channel_id, e)
                        .await;
                    if let Some(until) = self.channel_not_before(discovery.channel_id) {
                        run.next_run_at = until.max(next_run);
                    }
                }
                outcome.failures.push(failure(err.to_string()));
            }
        }
        match self.store.record_discovery(run).await {
            Ok(recorded) => outcome.posts_created = recorded.posts_created,
            Err(err) => {
                warn!(tenant_id = %discovery.tenant_id, channel_id = %discovery.channel_id,
                    error = %err, "recording a post discovery failed");
                outcome.failures.push(failure(err.to_string()));
            }
        }
        outcome
    }

    /// Lists the channel's latest posts, as the store records them (a post
    /// whose id the store would refuse, an empty one, is left out; a text
    /// it would refuse is cleaned, see [`discovered`]).
    async fn list_channel(&self, discovery: &PostDiscovery) -> Result<Listed, PollingError> {
        if let Some(until) = self.channel_not_before(discovery.channel_id) {
            return Ok(Listed::Deferred(until));
        }
        let channel = self
            .store
            .get_channel(discovery.tenant_id, discovery.channel_id)
            .await?;
        let connector = self.connectors.get(channel.platform.as_str())?;
        let ctx = match self.tokens.context(connector.as_ref(), &channel).await {
            Ok(ctx) => ctx,
            Err(err) if err.is_paused() => {
                return Ok(Listed::Deferred(
                    self.clock.now() + self.config.discovery_interval,
                ));
            }
            Err(err) => return Err(err.into()),
        };
        let limit = usize::try_from(discovery.recent_posts).unwrap_or(usize::MAX);
        let posts = match connector.list_recent_posts(&ctx, limit).await {
            Err(ConnectorError::Unauthorized { .. }) => {
                // Once: the token another holder stored, or a new one; a
                // refused refresh pauses the channel (and tells the tenant),
                // as for comment checks. Before, the listing failed at every
                // run and the channel looked healthy.
                let used = ctx.access_token.clone();
                let connector_ref = connector.as_ref();
                let renewed = self
                    .tokens
                    .after_unauthorized(&channel, Some(&used), |c| async move {
                        connector_refresh(connector_ref, &c).await
                    })
                    .await;
                let ctx = match renewed {
                    Ok(fresh) => crate::publish::channel_context(&fresh),
                    Err(err) if err.is_paused() => {
                        return Ok(Listed::Deferred(
                            self.clock.now() + self.config.discovery_interval,
                        ));
                    }
                    Err(err) => return Err(err.into()),
                };
                connector.list_recent_posts(&ctx, limit).await?
            }
            listed => listed?,
        };
        Ok(Listed::Posts(
            posts
                .into_iter()
                .map(discovered)
                .filter(|p| p.validate().is_ok())
                .collect(),
        ))
    }
}

/// A listed post as the store takes it: its text made storable (NUL
/// replaced, cut to a text column's size) and a URL it would refuse dropped,
/// since only its id matters for polling; a post whose id it would refuse
/// is left out by the caller.
fn discovered(post: RecentPost) -> DiscoveredPost {
    let url = post
        .url
        .filter(|u| nexiom_core::validate::opt_text("url", Some(u)).is_ok());
    DiscoveredPost {
        platform_post_id: post.id,
        url,
        text: post
            .text
            .map(|t| crate::publish::checked::storable_text(&t)),
        published_at: post.created_at,
    }
}
