//! [`OutboxStore`]: notifications written with the change that causes them,
//! and their deliveries to the tenant's endpoints.
//!
//! # What writes a notification
//!
//! - **`item_escalated`**: a message or comment whose triage becomes
//!   `escalate` (by [`set_message_triage`], [`set_comment_triage`], or an
//!   automatic reply given up), in the same atomic write. Key
//!   `item_escalated:<message|comment>:<id>`, dated by the item's decision
//!   (the item's own time when it has none). Not for an item a person
//!   answered first (reply state `superseded`): one has seen it.
//! - **`post_failed`** / **`publish_outcome_unknown`**: a claimed
//!   (`publishing`) post settled `failed`, by [`settle_posts`] or a guarded
//!   [`update_post`], in the same atomic write; `publish_outcome_unknown` when
//!   its error starts with `outcome_unknown`. Key `<kind>:<post id>:<retry
//!   count>`, dated by the settlement.
//! - Anything else (`channel_needs_reauth`, `worker_failing`, `sla_breached`)
//!   through [`OutboxStore::enqueue_notification`].
//!
//! On Postgres the first two are triggers of migration 0025, so every
//! statement that makes the change writes the notification in its
//! transaction; in memory the same write happens under the store's lock, the
//! notification first, so a refused notification leaves the change unwritten.
//!
//! [`set_message_triage`]: crate::ConversationStore::set_message_triage
//! [`set_comment_triage`]: crate::CommentStore::set_comment_triage
//! [`settle_posts`]: crate::PostStore::settle_posts
//! [`update_post`]: crate::PostStore::update_post

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedNotification, DeliveryAttempt, EndpointId, Inserted, NewNotification,
    NewNotificationEndpoint, Notification, NotificationDelivery, NotificationDeliveryId,
    NotificationEndpoint, NotificationId, NotificationKind, SecretString, TenantId,
};

use crate::error::Result;

/// The prefix of a post's error that makes its failure
/// `publish_outcome_unknown` (the publish queue's `OUTCOME_UNKNOWN`).
pub const OUTCOME_UNKNOWN_PREFIX: &str = "outcome_unknown";

/// The most deliveries of one endpoint a claim takes
/// ([`OutboxStore::claim_notification_deliveries`]).
pub const MAX_CLAIM_PER_ENDPOINT: u32 = 10;

/// The outbox: endpoints, notifications and their deliveries.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Creates an endpoint (enabled, its kinds sorted). `Conflict` when the
    /// tenant has one of that name; `UnknownReference` for an unknown tenant.
    async fn create_notification_endpoint(
        &self,
        new: NewNotificationEndpoint,
    ) -> Result<NotificationEndpoint>;
    /// The tenant's endpoints, by name. An endpoint whose sealed secret or
    /// Slack URL this store's keys cannot open is listed all the same, with
    /// the reason in [`NotificationEndpoint::unreadable`] (its secret unset,
    /// a sealed URL empty), so it can be mended with
    /// [`set_notification_endpoint_target`](Self::set_notification_endpoint_target).
    async fn list_notification_endpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<NotificationEndpoint>>;
    /// Enables or disables an endpoint. A disabled endpoint gets no new
    /// deliveries and its pending ones are not claimed until it is enabled
    /// again.
    async fn set_notification_endpoint_enabled(
        &self,
        tenant: TenantId,
        id: EndpointId,
        enabled: bool,
    ) -> Result<NotificationEndpoint>;
    /// Points the endpoint at `url` with `secret`, checked as a new
    /// endpoint's are ([`nexiom_core::validate_endpoint_target`]): to rotate
    /// a webhook's signing secret, move the endpoint, or mend one whose
    /// sealed values this store's keys cannot open (the old values are not
    /// opened). Its pending deliveries go to the new target; those waiting
    /// for a process able to open the old values are due at once. `NotFound`
    /// when the endpoint is not the tenant's; `Invalid` as at creation.
    async fn set_notification_endpoint_target(
        &self,
        tenant: TenantId,
        id: EndpointId,
        url: String,
        secret: Option<SecretString>,
    ) -> Result<NotificationEndpoint>;

    /// Enqueues the notification unless the tenant has one with its key (then
    /// the stored one is returned with `created == false` and nothing is
    /// written), with a `pending` delivery to each enabled endpoint of the
    /// tenant subscribed to its kind, in one atomic write.
    async fn enqueue_notification(&self, new: NewNotification) -> Result<Inserted<Notification>>;
    /// Enqueues, for every tenant with an enabled endpoint subscribed to
    /// `kind`, the notification `(kind, key, payload, occurred_at)` as
    /// [`enqueue_notification`](OutboxStore::enqueue_notification) would (a
    /// cross-tenant operation, for events of the whole deployment such as a
    /// worker failing). Returns how many notifications were created.
    async fn notify_subscribers(
        &self,
        kind: NotificationKind,
        key: &str,
        payload: serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Result<u64>;
    /// The tenant's notifications, optionally of one kind, oldest
    /// `occurred_at` first (then by id), at most `limit`.
    async fn list_notifications(
        &self,
        tenant: TenantId,
        kind: Option<NotificationKind>,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// The notification's deliveries, by id. `NotFound` for a notification
    /// that is not the tenant's.
    async fn list_notification_deliveries(
        &self,
        tenant: TenantId,
        notification: NotificationId,
    ) -> Result<Vec<NotificationDelivery>>;

    /// Claims up to `limit` deliveries of every tenant (a worker-queue
    /// operation): `pending`, due (`next_attempt_at` unset or `<= now`), not
    /// held by an unexpired claim, to an enabled endpoint; at most
    /// [`MAX_CLAIM_PER_ENDPOINT`] of one endpoint (the oldest of each), so
    /// an endpoint with a backlog, or one that hangs, leaves the rest of
    /// every batch to the others; by id (oldest first). Each is held until
    /// `now + lease`. Concurrent claimers never get the same delivery; a
    /// claimer that stops lets its deliveries be claimed again once the
    /// lease expires (so delivery is at least once).
    async fn claim_notification_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedNotification>>;
    /// Records an attempt of a claimed delivery: `delivered` at `at`, or one
    /// more attempt counted with its error, `pending` again until `retry_at`
    /// or `dead` without one. Written only while the delivery is `pending`
    /// and still held by the claim that returned `lease_until`; otherwise
    /// nothing is written and the answer is `None` (another claim took it
    /// over). `NotFound` for a delivery that is not the tenant's.
    async fn finish_notification_delivery(
        &self,
        tenant: TenantId,
        id: NotificationDeliveryId,
        lease_until: DateTime<Utc>,
        attempt: DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> Result<Option<NotificationDelivery>>;

    /// Extends to `expires_at` the claims of those of `ids` still `pending`
    /// under the claim `held_until` (the `lease_until` the caller's claim, or
    /// its last renewal, set): the heartbeat of a dispatcher whose sends are
    /// in flight (a worker-queue operation, across tenants), so that a slow
    /// endpoint's delivery is not claimed and sent again by another worker.
    /// A delivery recorded meanwhile, or claimed again by another worker after
    /// the claim lapsed (which set another `lease_until`), is left alone.
    /// Returns how many were extended.
    async fn renew_notification_leases(
        &self,
        ids: &[NotificationDeliveryId],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// The notification of a message or comment newly escalated (see the
/// [module docs](self)); the memory backend builds what migration 0025's
/// trigger builds.
pub(crate) fn escalated(
    tenant: TenantId,
    subject: &'static str,
    id: uuid::Uuid,
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> NewNotification {
    NewNotification {
        tenant_id: tenant,
        kind: NotificationKind::ItemEscalated,
        key: format!("item_escalated:{subject}:{id}"),
        payload,
        occurred_at: at,
    }
}

/// The notification of a claimed post settled `failed`.
pub(crate) fn post_failed(post: &nexiom_core::ScheduledPost) -> NewNotification {
    let kind = if post
        .error_message
        .as_deref()
        .is_some_and(|e| e.starts_with(OUTCOME_UNKNOWN_PREFIX))
    {
        NotificationKind::PublishOutcomeUnknown
    } else {
        NotificationKind::PostFailed
    };
    NewNotification {
        tenant_id: post.tenant_id,
        kind,
        key: format!("{kind}:{}:{}", post.id, post.retry_count),
        payload: serde_json::json!({
            "post_id": post.id,
            "channel_id": post.channel_id,
            "error": post.error_message,
            "retry_count": post.retry_count,
        }),
        occurred_at: post.updated_at,
    }
}
