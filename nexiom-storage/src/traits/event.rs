//! Webhook events and the routing data they produce.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Webhook events and the routing data they produce (contacts and their handles).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event unless `(platform, event_id)` is already stored, in which
    /// case the stored event is returned unchanged with `created == false`.
    /// `UnknownReference` when the channel is not the tenant's, or its platform
    /// differs from the event's. `Conflict` when another tenant holds that key
    /// (its event is never returned).
    async fn insert_event(&self, new: NewWebhookEvent) -> Result<Inserted<WebhookEvent>>;
    /// The event, or `NotFound`.
    async fn get_event(&self, tenant: TenantId, id: WebhookEventId) -> Result<WebhookEvent>;
    /// The tenant's event stored under `(platform, event_id)`, if any.
    async fn find_event(
        &self,
        tenant: TenantId,
        platform: &Platform,
        event_id: &str,
    ) -> Result<Option<WebhookEvent>>;
    /// Up to `limit` unrouted events of every tenant, optionally of one platform,
    /// oldest `received_at` first (worker queue read).
    async fn list_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>>;
    /// Marks the event routed at `routed_at`, with the conversation it went to.
    /// Marking an already routed event keeps its first `routed_at` and
    /// conversation.
    async fn mark_event_routed(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        conversation_id: Option<ConversationId>,
        routed_at: DateTime<Utc>,
    ) -> Result<WebhookEvent>;

    /// Routes up to `limit` unrouted events of every tenant (optionally of one
    /// platform), oldest `received_at` first, marking each routed at `at`
    /// (worker queue operation). Per event kind:
    ///
    /// - **message**: resolves or creates the contact channel `(tenant,
    ///   platform, sender_id)` and its contact (named after the sender), reuses
    ///   the open conversation of `(contact, event channel)` or opens one at `at`,
    ///   inserts the inbound message keyed by `(channel, provider_message_id =
    ///   event_id)` with `created_at = occurred_at`, moves the conversation's
    ///   `last_message_at` to the later of its value and the message time, and
    ///   marks the event with that conversation. When the message already exists
    ///   nothing else is written: the event is marked with the message's
    ///   conversation. A message event without a sender is marked routed with
    ///   no conversation.
    /// - **status**: applies `delivery_status` to the outbound message `(event
    ///   channel, target_id)` monotonically, as
    ///   [`ConversationStore::update_delivery_status`] does, and marks the event
    ///   with that message's conversation. A status for a message that is not
    ///   stored (not sent through this library) is marked routed and changes
    ///   nothing.
    /// - **comment / comment_reply**: inserts the comment (keyed by `(post,
    ///   platform_comment_id = event_id)`, parent `parent_id`, author
    ///   `sender_id` / `sender_name`) on the post of the event's channel whose
    ///   `platform_post_id` is `target_id`. When no such post is stored (a post
    ///   not published through this library, or one whose id is not recorded
    ///   yet) the event is marked routed with no comment: the raw event stays
    ///   stored, and comment polling of a post this library published fetches
    ///   its comments anyway. Keeping such events unrouted would fill the head
    ///   of the queue with events that can never route.
    /// - **moderation** (a comment hidden, shown again or removed on the
    ///   platform): the stored comment `parent_id` on the channel's posts
    ///   with `platform_post_id = target_id` takes `hidden` (`text` `hide` or
    ///   `remove`: hidden; `unhide`: shown), after the batch's comments are
    ///   inserted; the latest moderation by `occurred_at` wins, also across
    ///   calls (one older than the comment's last changes nothing); a
    ///   comment not stored changes nothing.
    /// - **other**: marked routed, nothing else.
    ///
    /// Every write is insert-if-absent on its unique key (a moderation, an
    /// update, is applied only when it happened after the comment's last
    /// one), so routing is idempotent, and concurrent callers (tasks, processes on one Postgres)
    /// never route one event twice nor create a second message, contact,
    /// conversation or comment: on Postgres each call takes its events with
    /// `FOR UPDATE SKIP LOCKED` (at most 10,000 per call) and routes the
    /// message events in one statement, set-based, whatever the batch size
    /// (statuses, comments and preferences take a few more). Returns what this
    /// call did.
    ///
    /// [`ConversationStore::update_delivery_status`]: crate::ConversationStore::update_delivery_status
    async fn route_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<RoutingReport>;

    /// Routes one event exactly as [`route_unrouted_events`] would, and returns
    /// it as stored afterwards. An event already routed is returned unchanged
    /// (`NotFound` when it is not the tenant's).
    ///
    /// [`route_unrouted_events`]: EventStore::route_unrouted_events
    async fn route_event(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        at: DateTime<Utc>,
    ) -> Result<WebhookEvent>;

    /// Resolves the contact channel `(tenant, platform, external_handle)`, creating
    /// it and a new contact when absent (`created == true`).
    async fn insert_contact_channel(
        &self,
        new: NewContactChannel,
    ) -> Result<Inserted<ContactChannel>>;
    /// The contact, or `NotFound`.
    async fn get_contact(&self, tenant: TenantId, id: ContactId) -> Result<Contact>;
    /// The contact's channels, oldest first.
    async fn list_contact_channels(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Vec<ContactChannel>>;
}
