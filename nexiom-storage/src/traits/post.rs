//! Scheduled posts and their publishing attempts.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Scheduled posts and their publishing attempts.
#[async_trait]
pub trait PostStore: Send + Sync {
    /// Creates a `queued` post. `UnknownReference` for a channel, mission or
    /// content job that is not the tenant's. When `series_id` and `occurrence_at`
    /// are set the post is an occurrence, unique by `(series_id, occurrence_at)`:
    /// a second call returns the stored occurrence with `created == false`.
    async fn insert_post(&self, new: NewScheduledPost) -> Result<Inserted<ScheduledPost>>;
    /// The post, or `NotFound`.
    async fn get_post(&self, tenant: TenantId, id: PostId) -> Result<ScheduledPost>;
    /// The tenant's posts matching `filter`, by `publish_at` then id.
    async fn list_posts(&self, tenant: TenantId, filter: PostFilter) -> Result<Vec<ScheduledPost>>;
    /// Counts the tenant's posts on `channel` with `publish_at` in `[from, to)` and
    /// a status among `statuses` (external posts, made elsewhere, are not
    /// counted).
    async fn count_posts(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        statuses: &[PostStatus],
    ) -> Result<u64>;
    /// Applies `patch` at `at` (`updated_at`). When a guard of the patch does not
    /// hold, nothing is written and the answer is `Precondition`.
    async fn update_post(
        &self,
        tenant: TenantId,
        id: PostId,
        patch: PostPatch,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost>;
    /// Replaces the queued series template `old` of `new.tenant_id` by `new`
    /// (a series template, `recurrence` set, `series_id` unset), in one atomic
    /// step: `old` becomes `cancelled` (its lease released, its
    /// `error_message` starting with [`SERIES_STOPPED`](nexiom_core::SERIES_STOPPED),
    /// so that an occurrence of it that was being published and comes back to
    /// `queued` is not published) with its `queued` occurrences, and `new` is created `queued` as
    /// [`insert_post`](Self::insert_post) creates it, with its audience and
    /// template when `broadcast` is set (as
    /// [`insert_broadcast_post`](crate::BroadcastStore::insert_broadcast_post)).
    /// Either all of it is written or none of it: a failure or a crash never
    /// leaves the old series cancelled without its replacement, nor both
    /// queued. `NotFound` when `old` is not the tenant's; `Precondition` when
    /// it is not a queued series template (cancelled or replaced meanwhile);
    /// `Invalid`, `UnknownReference` as the inserts refuse.
    async fn replace_series(
        &self,
        old: PostId,
        new: NewScheduledPost,
        broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost>;
    /// Claims up to `limit` due posts of every tenant: `queued`, `publish_at <= now`
    /// and `next_attempt_at` unset or `<= now`, oldest `publish_at` first. Each is
    /// set `publishing` with `lease_owner` and `lease_expires_at = now + lease`.
    ///
    /// When the oldest due posts fill the claim and give one channel more than 4
    /// of them (in a claim of 2 to 4 posts, all of them), the claim is shared
    /// among channels instead, so that one
    /// channel's backlog (published one call at a time) does not hold every
    /// other channel's posts behind it: the channels whose oldest due post is
    /// oldest take part, and take their posts round-robin (every channel's
    /// oldest, then every channel's second oldest, …), a channel with few posts
    /// leaving the rest of the claim to the others; within a channel, oldest
    /// first. The claimed posts come back oldest first.
    /// Concurrent claimers never receive the same post (on Postgres: `FOR UPDATE
    /// SKIP LOCKED`); they skip what another holds instead of waiting.
    ///
    /// Three kinds of channel are skipped: a channel that is not `active`
    /// (its posts wait, queued, until it is reconnected), a channel held back
    /// by [`PostStore::throttle_channel`] until after `now`, and a channel
    /// with a post `publishing` under another owner's unexpired lease. A channel is
    /// therefore published by one claimer at a time, which keeps a per-channel
    /// cap on calls in flight true across worker processes (on Postgres the
    /// claims are serialized by a transaction-level advisory lock so that two
    /// claimers never take the same channel at once).
    async fn claim_due_posts(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_owner: &str,
        lease: Duration,
    ) -> Result<Vec<ScheduledPost>>;
    /// Extends to `expires_at` the leases of those of `ids` that are still
    /// `publishing` under `lease_owner` (the heartbeat of a worker whose calls
    /// are in flight); returns how many were extended.
    async fn renew_post_leases(
        &self,
        lease_owner: &str,
        ids: &[PostId],
        expires_at: DateTime<Utc>,
    ) -> Result<u64>;
    /// Settles claimed posts in one atomic write (one statement on Postgres,
    /// and a second in its transaction when some are settled `failed`):
    /// each post still `publishing` under `lease_owner` takes the settlement's
    /// state, its lease is released and its run, if any, is ended at `at`. A
    /// post whose lease moved on is not written, nor is its run. Returns the ids
    /// written; the others were skipped.
    ///
    /// A post settled `published` or `failed` takes its content job along in
    /// the same atomic write, when that job is still `scheduled` with this
    /// post: the job becomes `published` with the post's `platform_post_id` and
    /// `published_at`, or `failed` with the post's `error_message` (and the
    /// other outcome fields cleared). A job in any other state (cancelled,
    /// already settled, or re-linked to another post) is left alone.
    ///
    /// A WhatsApp broadcast settled `failed` whose deliveries show one sent
    /// after all (a status routed between the publish queue's count and this
    /// write) is settled again in the same atomic write, as
    /// [`BroadcastStore::apply_delivery_status`](crate::BroadcastStore::apply_delivery_status)
    /// describes.
    ///
    /// A post settled `published` whose channel has an external post with
    /// the same platform id (recorded by a webhook comment or a discovery
    /// run while the publish's outcome was unclear) takes it over in the same
    /// write: that post's comments and checkpoint move to the post settled,
    /// and the external post's `next_check_at` is cleared, so the platform
    /// post is polled, and each comment stored and answered, once.
    async fn settle_posts(
        &self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>>;
    /// Holds `channel` back from claims until `until` (a platform's
    /// Retry-After or usage limit): its posts, its comment polls and post
    /// discovery, and its automatic replies. An existing later hold stays.
    async fn throttle_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        until: DateTime<Utc>,
    ) -> Result<()>;
    /// Returns `publishing` posts whose lease expired before `now` to `queued`
    /// (lease cleared) so that they can be claimed again; returns how many.
    /// In the same atomic step, every run of those posts still `running` (its
    /// worker stopped during the attempt) is closed: `failed`, `finished_at =
    /// now`, error [`STALE_RUN_ERROR`](crate::STALE_RUN_ERROR). Its attempt
    /// number stays taken, so the next claim settles the outcome by a lookup,
    /// never by publishing again.
    async fn release_stale_leases(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Up to `limit` `published` posts of every tenant with
    /// `next_check_at <= now` whose window is not read to its end yet
    /// (`last_check_at`, when set, before `stop_at`; no `stop_at`: no end),
    /// so that the last check, made at or after `stop_at`, is claimed as any
    /// other (and again after its lease, if its poller stopped), on a channel
    /// that is `active` (a paused channel's polls wait) and not held back
    /// ([`PostStore::throttle_channel`]: a throttled channel's polls wait for
    /// the hold to end, as its posts do), oldest `next_check_at` first.
    async fn list_posts_due_for_polling(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduledPost>>;

    /// Records the start of an attempt (`running`). `Conflict` when the post
    /// already has a run with that attempt number.
    async fn insert_post_run(&self, new: NewPostRun) -> Result<PostRun>;
    /// Records the end of an attempt.
    async fn finish_post_run(
        &self,
        tenant: TenantId,
        id: PostRunId,
        status: PostRunStatus,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<PostRun>;
    /// Starts several attempts of posts claimed by `lease_owner`, in one
    /// statement. The answer is aligned with `runs`: the started run, or `None`
    /// where nothing was written because the post already has a run with that
    /// attempt number, or is no longer `publishing` under `lease_owner`'s lease
    /// unexpired at `now` (a worker that lost its claim never starts an attempt).
    async fn insert_post_runs(
        &self,
        lease_owner: &str,
        runs: &[NewPostRun],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<PostRun>>>;
    /// The post's runs, by attempt.
    async fn list_post_runs(&self, tenant: TenantId, post: PostId) -> Result<Vec<PostRun>>;
}
