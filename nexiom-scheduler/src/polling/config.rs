//! [`PollingConfig`]: how often, how long and how many at once comments are
//! polled.

use chrono::Duration;

use crate::concurrency::ConcurrencyConfig;

/// Posts polled at once per channel by default: reads are idempotent and
/// cheap for the platform, a post's pages stay one after another, and a
/// rate-limited channel is left alone until its Retry-After.
pub const DEFAULT_POLLS_PER_CHANNEL: usize = 4;

/// How comments are polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    /// Time between two checks of a post (default 5 minutes).
    pub interval: Duration,
    /// How long after publication a post is polled when it has no `stop_at`
    /// (default 7 days; publishing sets `stop_at = published_at + 7 days`).
    pub window: Duration,
    /// Pages read per post and pass at most (default 100), so that a platform
    /// that keeps handing out cursors cannot hold the pass; the rest is read
    /// at the next check, from the saved cursor.
    pub max_pages: u32,
    /// How long a pass holds the posts it claimed (default 10 minutes): a
    /// claimed post's `next_check_at` is moved to the end of the lease, so
    /// another poller skips it and a poller that stops leaves it due again
    /// then. A check written back after its lease ended (another poller
    /// claimed the post meanwhile) is not written, and counted in
    /// [`PollReport::posts_lease_lost`](crate::PollReport::posts_lease_lost).
    pub lease: Duration,
    /// Items per tenant the follow-up triage and auto-reply steps handle per
    /// pass (default 500).
    pub follow_up_limit: u32,
    /// How old an item may be for the follow-up to auto-reply to it
    /// (default 1 day, measured back from the pass): a comment a pass stores
    /// with an older time (on a post discovered late, or a platform's odd
    /// timestamp) is triaged but not auto-answered days late; it is left to
    /// a person, or to the reply worker's own window.
    pub follow_up_max_age: Duration,
    /// Time between two runs of a channel's post discovery (default 15
    /// minutes): each run lists the channel's latest posts and records those
    /// made elsewhere as external posts, polled within [`window`](Self::window)
    /// after their publication. A failed run is retried after the same time.
    pub discovery_interval: Duration,
    /// Channels whose post discovery a pass runs at most (default 50), before
    /// it polls comments.
    pub discoveries_per_pass: u32,
    /// Posts polled at once: `max_in_flight` per worker (default 64) and
    /// `per_channel` per channel (default [`DEFAULT_POLLS_PER_CHANNEL`], 4;
    /// `per_platform` overrides it). A post's pages are always read one after
    /// another; [`ConcurrencyConfig::sequential`] polls one post at a time.
    pub concurrency: ConcurrencyConfig,
    /// How often the comments of a post are read again from the first page
    /// (default 1 hour), when its connector may list a new comment before
    /// the last page's cursor
    /// ([`new_comments_may_precede_the_cursor`](nexiom_connectors::PlatformConnector::new_comments_may_precede_the_cursor):
    /// Instagram's and LinkedIn's replies, listed under their comment). Every
    /// other check reads on from the saved cursor, as for any post; a check
    /// crossing one of these periods (counted from the post's publication)
    /// reads from the start. Zero or less: never.
    pub reread_every: Duration,
    /// How long after a post's `stop_at` its last check, the one that reads
    /// the window to its end, may still be made (default 1 day): tried again
    /// when it could not read (a rate limit, an error, a paused channel), or
    /// made late after no worker ran. After that, polling ends without it,
    /// with no call.
    pub last_check_grace: Duration,
    /// The longest wait between two checks of a post the platform keeps
    /// refusing (`Permanent` or `Forbidden` answers; default 1 hour). The
    /// first refusal waits the [`interval`](Self::interval), each refusal in
    /// a row after it twice as long as the one before, up to this; a check
    /// that reads (to the last page or to its page limit) goes back to the
    /// interval. A deleted post, whose comments the platform refuses until
    /// its window ends, costs a call an hour instead of one every 5 minutes.
    /// Other failures (an outage, a store failure) and rate limits (the
    /// channel waits for its Retry-After) are not counted. Past the window's
    /// end the wait never skips the
    /// [`last_check_grace`](Self::last_check_grace)'s last retries.
    pub failure_backoff_max: Duration,
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            interval: Duration::minutes(5),
            window: Duration::days(7),
            max_pages: 100,
            lease: Duration::minutes(10),
            follow_up_limit: 500,
            follow_up_max_age: Duration::days(1),
            discovery_interval: Duration::minutes(15),
            discoveries_per_pass: 50,
            concurrency: ConcurrencyConfig {
                per_channel: DEFAULT_POLLS_PER_CHANNEL,
                ..ConcurrencyConfig::default()
            },
            reread_every: Duration::hours(1),
            last_check_grace: Duration::days(1),
            failure_backoff_max: Duration::hours(1),
        }
    }
}
