//! [`BroadcastStore`]: WhatsApp contacts' opt-in, stored audiences, a post's
//! audience and template, and one delivery record per (post, recipient).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, AudienceId, BroadcastAudience, BroadcastContact, BroadcastCounts, BroadcastDelivery,
    BroadcastDeliveryId, BroadcastTemplate, ChannelId, ClaimedDelivery, DeliveryOutcome,
    DeliveryStatus, NewAudience, NewScheduledPost, OptChange, PostBroadcast, PostId, ScheduledPost,
    TenantId,
};

use crate::error::Result;

/// The error a delivery left `sending` by a claim that ended (a worker that
/// stopped during the send) is failed with: the message may have gone out, so
/// it is never sent again. A failed delivery whose error begins with
/// [`OUTCOME_UNKNOWN_PREFIX`](crate::OUTCOME_UNKNOWN_PREFIX) (this one, or a
/// send that got no answer) is in doubt: a recorded send or a status webhook
/// saying the message went out makes it `sent`.
pub const DELIVERY_OUTCOME_UNKNOWN: &str = "outcome_unknown: the worker stopped during the send; \
     the message may have been delivered and is not sent again";

/// The error of a delivery still `pending` when its post was cancelled
/// ([`BroadcastStore::close_cancelled_deliveries`]): never sent.
pub const BROADCAST_CANCELLED: &str =
    "cancelled: the broadcast was cancelled before this recipient was sent to";

/// The error of a delivery skipped because its contact opted out.
pub const OPTED_OUT: &str = "the contact opted out of marketing messages";

/// WhatsApp broadcasts (see [`PostBroadcast`]).
///
/// # Deliveries
///
/// A broadcast post is sent under its publish claim (the post `publishing`
/// under the worker's unexpired lease):
/// [`prepare_deliveries`](Self::prepare_deliveries) makes one `pending`
/// delivery per resolved recipient (insert-if-absent on `(post, recipient)`),
/// then each delivery is
/// claimed on its own ([`claim_next_delivery`](Self::claim_next_delivery):
/// `sending`, attempt counted) just before its send and finished after it
/// ([`finish_delivery`](Self::finish_delivery)). At most one delivery per
/// worker is ever in doubt: a delivery still `sending` when the post is
/// prepared again (its worker stopped) is failed with
/// [`DELIVERY_OUTCOME_UNKNOWN`] and never sent again, unless a status webhook
/// matched it meanwhile ([`apply_delivery_status`](Self::apply_delivery_status)).
#[async_trait]
pub trait BroadcastStore: Send + Sync {
    /// Applies an opt-in or opt-out to the channel's contact (created at its
    /// first change). A change older than the contact's last applied change
    /// leaves it as it is. `UnknownReference` for a channel that is not the
    /// tenant's.
    async fn apply_opt_change(&self, change: OptChange) -> Result<BroadcastContact>;
    /// The channel's contact with this recipient (with or without `+`), if known.
    async fn get_broadcast_contact(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recipient: &str,
    ) -> Result<Option<BroadcastContact>>;

    /// Creates an audience; `Conflict` when the channel has one of that name.
    async fn create_audience(&self, new: NewAudience) -> Result<Audience>;
    /// Adds the channel's contacts with these recipients to the audience
    /// (members already there stay); returns how many were added. `Invalid`
    /// (nothing added) when one of them is not a contact of the audience's
    /// channel currently opted in. `NotFound` for an audience that is not the
    /// tenant's.
    async fn add_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
        recipients: &[String],
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// The audience's members (opted out or not), by recipient.
    async fn list_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
    ) -> Result<Vec<BroadcastContact>>;

    /// Creates a `queued` post (one-off, or a series template whose
    /// occurrences use its audience) with its audience and template in one
    /// atomic step, so the post is never claimable without them. `Invalid`
    /// for an occurrence (`series_id` set); otherwise refused as
    /// [`PostStore::insert_post`](crate::PostStore::insert_post) and
    /// [`set_post_broadcast`](Self::set_post_broadcast) refuse, with nothing
    /// written.
    async fn insert_broadcast_post(
        &self,
        new: NewScheduledPost,
        audience: BroadcastAudience,
        template: Option<BroadcastTemplate>,
    ) -> Result<(ScheduledPost, PostBroadcast)>;
    /// Sets (or replaces) the post's audience and template; the recipients
    /// are read at the post's first claim (see
    /// [`prepare_deliveries`](Self::prepare_deliveries)), so a change after
    /// that reaches no one new. `UnknownReference`
    /// for a post, or a stored audience, that is not the tenant's, or an
    /// audience of another channel than the post's.
    async fn set_post_broadcast(&self, broadcast: PostBroadcast) -> Result<PostBroadcast>;
    /// The post's audience and template, if set (an occurrence of a series
    /// without its own uses the series template's, which this does not read).
    async fn get_post_broadcast(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<PostBroadcast>>;

    /// Under the post's claim (`publishing` under `lease_owner`'s lease
    /// unexpired at `now`), in one atomic step: when the post has no
    /// delivery yet (its first claim), creates the deliveries of its
    /// recipients (its broadcast's, or for an occurrence without one its
    /// series template's: explicit recipients, or the stored audience's
    /// members opted in at that moment; members added later are not sent
    /// this post), `pending`, or `failed` with [`OPTED_OUT`] for an
    /// opted-out contact; and fails with
    /// [`DELIVERY_OUTCOME_UNKNOWN`] every delivery still `sending` (left by a
    /// claim that ended). Returns the counts, or `None` (nothing written) when
    /// the claim is not held or the post has no broadcast.
    async fn prepare_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BroadcastCounts>>;
    /// Under the post's claim, claims its next due `pending` delivery (oldest
    /// first; `next_attempt_at` unset or `<= now`): `sending`, attempts + 1.
    /// A delivery whose contact has opted out meanwhile is failed with
    /// [`OPTED_OUT`] instead and the next one is taken. `None` when none is
    /// due or the claim is not held.
    async fn claim_next_delivery(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedDelivery>>;
    /// Records how a claimed delivery's send ended, if it is still `sending`
    /// (whatever became of the post's lease: a message that went out is
    /// always recorded, also over a failure in doubt); returns whether it was
    /// written. A send recorded over a failure in doubt after the post was
    /// settled settles the post again in the same atomic step, as
    /// [`apply_delivery_status`](Self::apply_delivery_status) does.
    async fn finish_delivery(
        &self,
        tenant: TenantId,
        delivery: BroadcastDeliveryId,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// When `post` is `cancelled`, settles its deliveries not yet settled,
    /// at `at`, in one atomic step: `pending` ones become `failed` with
    /// [`BROADCAST_CANCELLED`] (never sent), `sending` ones (a claim that
    /// ended mid-send) `failed` with [`DELIVERY_OUTCOME_UNKNOWN`] (a recorded
    /// send or a status saying it went out still makes such a one `sent`).
    /// Returns how many were settled: 0 for a post that is not cancelled,
    /// whose deliveries are left as they are. `NotFound` for a post that is
    /// not the tenant's.
    async fn close_cancelled_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// The post's deliveries, by recipient.
    async fn list_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Vec<BroadcastDelivery>>;
    /// The counts of the post's deliveries.
    async fn broadcast_counts(&self, tenant: TenantId, post: PostId) -> Result<BroadcastCounts>;
    /// A status webhook about a delivery of the channel, named by the
    /// platform's message id or by the delivery id it echoes: the status
    /// advances monotonically (see [`DeliveryStatus::can_advance_to`]); a
    /// delivery still `sending` or failed as unknown becomes `sent` (with the
    /// message id) when the platform reports it sent, delivered or read.
    /// Returns the delivery, or `None` when no delivery matches.
    ///
    /// When such a delivery's post is already settled for good and every
    /// delivery of it is settled, the post takes the account again in the
    /// same atomic step: `failed` (nobody received it) becomes `published`
    /// now, with [`broadcast_platform_post_id`](nexiom_core::broadcast_platform_post_id)
    /// and [`BroadcastCounts::summary`] when some failed, and its content
    /// job, `failed` with this post, becomes `published`; a published
    /// post's summary is brought up to date. Routing applies statuses the
    /// same way.
    async fn apply_delivery_status(
        &self,
        tenant: TenantId,
        provider_message_id: &str,
        reference: Option<BroadcastDeliveryId>,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> Result<Option<BroadcastDelivery>>;
}
