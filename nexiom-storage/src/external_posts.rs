//! [`ExternalPostStore`]: posts of a connected channel made elsewhere, and the
//! per-channel discovery that lists them.
//!
//! An external post is a [`ScheduledPost`] of origin
//! [`PostOrigin::External`](nexiom_core::PostOrigin::External): `published`,
//! with its platform id, never claimed by the publish queue nor counted against
//! a channel's daily cap. It exists once per `(tenant, channel, platform post
//! id)` whichever path records it first (routing a comment event, a discovery
//! run, [`ExternalPostStore::insert_external_post`]); on PostgreSQL a unique
//! index holds that under concurrent routers and pollers. A post published
//! here is never duplicated as an external one: a platform id a stored post
//! of the channel already has is that post.
//!
//! Comments on an external post are stored, triaged and answered like any
//! other comment (they reference the post by its id).
//!
//! One race is left as it is: a comment routed while a post published here
//! is still waiting for the platform's answer (its id not stored yet) records
//! an external post for that id; once the publish settles, the channel has two
//! posts with the id, and later comments go to the earlier created (the one
//! published here), while the first comments stay on the external post.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, DiscoveredPost, DiscoveryOutcome, DiscoveryRun, Inserted, PostDiscovery,
    ScheduledPost, TenantId,
};

use crate::error::Result;

/// External posts and post discovery.
#[async_trait]
pub trait ExternalPostStore: Send + Sync {
    /// The channel's post with this platform id, if any: the earliest created
    /// when several share it (the one routing attaches comments to).
    async fn find_post_by_platform_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        platform_post_id: &str,
    ) -> Result<Option<ScheduledPost>>;

    /// Records a post made elsewhere: the channel's stored post with that
    /// platform id when there is one (`created: false`, unchanged), else a new
    /// external post, `published` at the post's time (or `at`), not polled.
    /// `UnknownReference("channel")` unless the channel is the tenant's.
    async fn insert_external_post(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        post: DiscoveredPost,
        at: DateTime<Utc>,
    ) -> Result<Inserted<ScheduledPost>>;

    /// Switches post discovery on for the channel (or changes how many recent
    /// posts it lists), due at `at`. `recent_posts` must be 1 to
    /// [`MAX_DISCOVERY_POSTS`](nexiom_core::MAX_DISCOVERY_POSTS);
    /// `UnknownReference("channel")` unless the channel is the tenant's.
    async fn set_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recent_posts: u32,
        at: DateTime<Utc>,
    ) -> Result<PostDiscovery>;

    /// The channel's post discovery, when it is switched on.
    async fn get_post_discovery(
        &self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Option<PostDiscovery>>;

    /// Switches the channel's post discovery off; `true` when it was on. The
    /// external posts already recorded stay, and are polled to the end of
    /// their window.
    async fn clear_post_discovery(&self, tenant: TenantId, channel: ChannelId) -> Result<bool>;

    /// Worker work, across tenants: claims up to `limit` discoveries due at
    /// `now` (`next_run_at <= now`, oldest first; a channel held back by
    /// [`PostStore::throttle_channel`](crate::PostStore::throttle_channel)
    /// waits for its hold to end) by moving their
    /// `next_run_at` to `now + lease`, so a concurrent caller skips them and
    /// a run that never finishes is due again then. Returns them as claimed.
    async fn claim_post_discoveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<PostDiscovery>>;

    /// Records one discovery run, atomically:
    ///
    /// - each listed post no stored post of the channel has becomes an
    ///   external post (once per platform id, whatever runs concurrently),
    ///   `published` at its listed time (or the run's), polled from the run's
    ///   time to [`DiscoveryRun::stop_at`] when that is still ahead;
    /// - an external post known from a comment only (never polled, no
    ///   polling end) that the listing names gets its listed time and URL
    ///   when it had none, and is polled the same way;
    /// - the channel's discovery (when still on) gets `next_run_at`,
    ///   `last_run_at = at` and `last_error = error`.
    ///
    /// Posts published here, and external posts polled already, are left as
    /// they are. `UnknownReference("channel")` unless the channel is the
    /// tenant's.
    async fn record_discovery(&self, run: DiscoveryRun) -> Result<DiscoveryOutcome>;
}
