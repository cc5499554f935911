//! Comment polling: the comments of published posts, fetched every 5 minutes
//! (by default) for 7 days after publication.
//!
//! [`CommentPoller::poll_due`] is what the [`PollCommentsWorker`] runs: the
//! posts due by `next_check_at` (`next_check_at <= now`, the window not
//! read to its end: `last_check_at < stop_at`), claimed
//! for a lease, each read from its stored cursor through every page; each
//! comment stored once per `(post, platform_comment_id)` with its thread
//! parent, in the same atomic write as the checkpoint after the pages read
//! and `last_check_at = now`, `next_check_at = now + interval` (or
//! `stop_at`, `published_at + 7 days`, when that comes first: the last
//! check reads the window to its end, tried again for up to
//! [`PollingConfig::last_check_grace`] when it cannot read; after it
//! `next_check_at` is cleared for good). The writes of many posts go to
//! the store together, each guarded by its post's claim. New comments then go through the inbound steps that already
//! triage and answer webhook comments
//! ([`InboundPipeline::triage_new_items`](crate::inbound::InboundPipeline::triage_new_items),
//! [`InboundPipeline::auto_reply_recent_inbound`](crate::inbound::InboundPipeline::auto_reply_recent_inbound)),
//! so a comment seen by the webhook and by polling is stored, triaged and
//! answered once. The due posts of a pass are polled concurrently, a post's
//! pages one after another, under [`PollingConfig::concurrency`] (4 posts per
//! channel and 64 per worker by default). [`CommentPoller::hide_comment`]
//! hides (or shows) a comment on the platform and records it.

mod check;
mod config;
mod discovery;
mod error;
mod poller;
mod report;
mod worker;
mod writer;

pub use config::{DEFAULT_POLLS_PER_CHANNEL, PollingConfig};
pub use error::PollingError;
pub use poller::CommentPoller;
pub use report::{DiscoveryFailure, PollFailure, PollReport};
pub use worker::{POLL_COMMENTS, PollCommentsWorker};
