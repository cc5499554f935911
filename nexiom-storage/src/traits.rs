//! The storage traits: one per aggregate, and [`Store`] that bundles them.
//!
//! # Contract (every backend)
//!
//! - **Tenant scoping.** Every method that touches tenant data takes a
//!   [`TenantId`] and only ever reads or writes that tenant's rows. Asking for
//!   another tenant's row answers [`StorageError::NotFound`]; referring to another
//!   tenant's row in an input answers [`StorageError::UnknownReference`]. The few
//!   worker-queue operations that span tenants (`list_unrouted_events`,
//!   `route_unrouted_events`, `claim_due_posts`, `list_posts_due_for_polling`,
//!   …) say so.
//! - **Validation first.** Inputs are checked with [`nexiom_core::validate`]
//!   before anything is written; a refused input is [`StorageError::Invalid`] and
//!   leaves no partial write.
//! - **Unique keys.** Operations whose name starts with `insert_` (or that return
//!   [`Inserted`]) are insert-if-absent: a second call with the same key returns the
//!   stored row with `created == false` and changes nothing. `create_*` operations
//!   refuse a duplicate key with [`StorageError::Conflict`].
//! - **Atomicity.** Each method is atomic: it is applied whole or not at all, and
//!   concurrent callers (threads, tasks, processes on one Postgres) never observe
//!   or produce a half-applied state.
//! - **Ordering.** Lists are returned in the order each method documents, with the
//!   id (time-ordered UUID v7) as the final tie-breaker. Names and keys sort by
//!   bytes (as Rust sorts strings; `COLLATE "C"` on Postgres).
//! - **Keys in reads.** A key passed to a lookup (`find_*`, a setting key, a worker
//!   name) is validated like a key in an input: an empty one is `Invalid`, not
//!   `Ok(None)`.
//! - **References checked in a fixed order.** When an input names several missing
//!   rows, the tenant is reported first, then the references in the order the
//!   input type lists them, on every backend.
//!
//! [`StorageError::NotFound`]: crate::StorageError::NotFound
//! [`StorageError::UnknownReference`]: crate::StorageError::UnknownReference
//! [`StorageError::Invalid`]: crate::StorageError::Invalid
//! [`StorageError::Conflict`]: crate::StorageError::Conflict

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::*;

use crate::error::Result;
use crate::reply_queue::ReplyQueueStore;

/// Tenants and their channels (connected social accounts).
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant. The name must be a non-empty key.
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant>;
    /// The tenant, or `NotFound`.
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant>;
    /// Every tenant, oldest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Creates a channel. `UnknownReference` for an unknown tenant; `Conflict` when
    /// `(platform, external_account_id)` is already connected (to any tenant).
    async fn create_channel(&self, new: NewChannel) -> Result<Channel>;
    /// The channel, or `NotFound` (also when it belongs to another tenant).
    async fn get_channel(&self, tenant: TenantId, id: ChannelId) -> Result<Channel>;
    /// The tenant's channels among `ids`, in one read (order unspecified);
    /// ids that name no channel of the tenant are left out, and so is a
    /// channel that cannot be read (say a token that no longer unseals;
    /// `get_channel` returns its error). For callers that
    /// need many channels at once (a claimed batch of posts) instead of one
    /// [`get_channel`](TenantStore::get_channel) round trip each.
    async fn get_channels(&self, tenant: TenantId, ids: &[ChannelId]) -> Result<Vec<Channel>>;
    /// The channel connected for `(platform, external_account_id)`, whatever its
    /// tenant: this is how an incoming webhook finds its tenant.
    async fn find_channel_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<Channel>>;
    /// The tenant's channels, oldest first.
    async fn list_channels(&self, tenant: TenantId) -> Result<Vec<Channel>>;
    /// Replaces the channel's credentials.
    async fn update_channel_credentials(
        &self,
        tenant: TenantId,
        id: ChannelId,
        credentials: Credentials,
    ) -> Result<Channel>;
    /// Sets the channel's status.
    async fn set_channel_status(
        &self,
        tenant: TenantId,
        id: ChannelId,
        status: ChannelStatus,
    ) -> Result<Channel>;
}

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
    /// - **other**: marked routed, nothing else.
    ///
    /// Every write is insert-if-absent on its unique key, so routing is
    /// idempotent, and concurrent callers (tasks, processes on one Postgres)
    /// never route one event twice nor create a second message, contact,
    /// conversation or comment: on Postgres each call takes its events with
    /// `FOR UPDATE SKIP LOCKED` (at most 10,000 per call) and routes the
    /// message events in one statement, set-based, whatever the batch size
    /// (statuses, comments and preferences take a few more). Returns what this
    /// call did.
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

/// Conversations and their messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The open conversation of `(contact, channel)`, or a new open one created at
    /// `at` (`created == true`). Two concurrent calls yield the same conversation.
    async fn insert_open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        at: DateTime<Utc>,
    ) -> Result<Inserted<Conversation>>;
    /// The conversation, or `NotFound`.
    async fn get_conversation(&self, tenant: TenantId, id: ConversationId) -> Result<Conversation>;
    /// The tenant's conversations, optionally of one status, latest
    /// `last_message_at` first (never-messaged last), at most `limit`.
    async fn list_conversations(
        &self,
        tenant: TenantId,
        status: Option<ConversationStatus>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;
    /// Closes the conversation (a later inbound message opens a new one).
    async fn close_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation>;

    /// Stores a message unless `(channel, provider_message_id)` is already stored
    /// (messages without a provider id are always stored). In the same atomic step
    /// the conversation's `last_message_at` becomes the later of its value and the
    /// message's `created_at`. An outbound message with `in_reply_to` is unique by
    /// that inbound message too: a second reply to the same message returns the
    /// first one with `created == false`.
    async fn insert_message(&self, new: NewMessage) -> Result<Inserted<Message>>;
    /// The message, or `NotFound`.
    async fn get_message(&self, tenant: TenantId, id: MessageId) -> Result<Message>;
    /// The message stored under `(channel, provider_message_id)`, if any.
    async fn find_message_by_provider_id(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
    ) -> Result<Option<Message>>;
    /// Messages of a conversation, oldest `created_at` first, at most `limit`.
    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// The tenant's messages of `direction` created at or after `since`, oldest
    /// first, at most `limit`.
    async fn list_messages_since(
        &self,
        tenant: TenantId,
        direction: MessageDirection,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Applies a delivery status to the outbound message `(channel,
    /// provider_message_id)`, monotonically (see
    /// [`DeliveryStatus::can_advance_to`]): an older status never overwrites a
    /// newer one. Returns the message as stored after the call, or `None` when no
    /// such message exists.
    async fn update_delivery_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        provider_message_id: &str,
        status: DeliveryStatus,
    ) -> Result<Option<Message>>;
    /// The tenant's inbound messages that have no triage yet, oldest
    /// `created_at` first, at most `limit` (the triage queue).
    async fn list_untriaged_messages(&self, tenant: TenantId, limit: u32) -> Result<Vec<Message>>;
    /// The tenant's inbound messages triaged `triage` created at or after
    /// `since`, oldest first, at most `limit`.
    async fn list_messages_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Records what the platform answered to sending the outbound message `id`:
    /// its provider id (set only while the message has none; `None` keeps it)
    /// and its delivery status (applied monotonically, as
    /// [`update_delivery_status`](ConversationStore::update_delivery_status)
    /// does). `Conflict` when another message of the channel holds that
    /// provider id.
    async fn record_message_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        provider_message_id: Option<&str>,
        status: DeliveryStatus,
    ) -> Result<Message>;
    /// Records the message's triage, confidence and deciding decision. The decision
    /// id is not checked: decisions outlive the rules and rows they name.
    /// AUTO_REPLY puts an inbound message in the reply queue (its
    /// [`reply`](nexiom_core::Message::reply) becomes `pending`, due at once)
    /// unless it is there already; see [`ReplyQueueStore`].
    async fn set_message_triage(
        &self,
        tenant: TenantId,
        id: MessageId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Message>;
}

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
    /// Claims up to `limit` due posts of every tenant: `queued`, `publish_at <= now`
    /// and `next_attempt_at` unset or `<= now`, oldest `publish_at` first. Each is
    /// set `publishing` with `lease_owner` and `lease_expires_at = now + lease`.
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
    /// Settles claimed posts in one atomic write (one statement on Postgres):
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
    async fn settle_posts(
        &self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>>;
    /// Holds `channel`'s posts back from claims until `until` (a platform's
    /// Retry-After or usage limit). An existing later hold stays.
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
    /// `next_check_at <= now < stop_at` (no `stop_at`: no end), on a channel
    /// that is `active` (a paused channel's polls wait), oldest
    /// `next_check_at` first.
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

/// Comments on published posts and the polling checkpoints.
#[async_trait]
pub trait CommentStore: Send + Sync {
    /// Stores the comment unless `(post, platform_comment_id)` is stored already.
    async fn insert_comment(&self, new: NewComment) -> Result<Inserted<Comment>>;
    /// The comment, or `NotFound`.
    async fn get_comment(&self, tenant: TenantId, id: CommentId) -> Result<Comment>;
    /// The comment stored under `(post, platform_comment_id)`, if any.
    async fn find_comment(
        &self,
        tenant: TenantId,
        post: PostId,
        platform_comment_id: &str,
    ) -> Result<Option<Comment>>;
    /// The post's comments, oldest `created_at` first, at most `limit`.
    async fn list_comments(
        &self,
        tenant: TenantId,
        post: PostId,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// The tenant's comments created at or after `since`, oldest first.
    async fn list_comments_since(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// Records the comment's triage. AUTO_REPLY puts the comment in the reply
    /// queue (its [`reply`](nexiom_core::Comment::reply) becomes `pending`, due
    /// at once) unless it is there already; see [`ReplyQueueStore`].
    async fn set_comment_triage(
        &self,
        tenant: TenantId,
        id: CommentId,
        triage: Triage,
        confidence: f64,
        decision: Option<DecisionId>,
    ) -> Result<Comment>;
    /// The tenant's comments that have no triage yet, oldest `created_at` first,
    /// at most `limit` (the triage queue).
    async fn list_untriaged_comments(&self, tenant: TenantId, limit: u32) -> Result<Vec<Comment>>;
    /// The tenant's comments triaged `triage` created at or after `since`,
    /// oldest first, at most `limit`.
    async fn list_comments_by_triage(
        &self,
        tenant: TenantId,
        triage: Triage,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// Claims the automatic reply to a comment, `pending`, unless the comment
    /// has one already (then the stored reply is returned with `created ==
    /// false`). Written before the platform is called: the claim is what makes
    /// a second reply impossible. `UnknownReference` when the comment is not
    /// the tenant's.
    async fn insert_comment_reply(&self, new: NewCommentReply) -> Result<Inserted<CommentReply>>;
    /// Records the outcome of sending the comment's reply: its status, the
    /// platform's id of the reply and the error, at `at`. `NotFound` when the
    /// comment has no reply claimed.
    async fn finish_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
        status: DeliveryStatus,
        platform_comment_id: Option<&str>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<CommentReply>;
    /// The comment's reply, if one was claimed.
    async fn find_comment_reply(
        &self,
        tenant: TenantId,
        comment: CommentId,
    ) -> Result<Option<CommentReply>>;
    /// Records that the comment is hidden (or shown again) on the platform.
    async fn set_comment_hidden(
        &self,
        tenant: TenantId,
        id: CommentId,
        hidden: bool,
    ) -> Result<Comment>;

    /// The post's polling checkpoint, if any.
    async fn get_checkpoint(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<CommentCheckpoint>>;
    /// Creates or replaces the post's checkpoint.
    async fn save_checkpoint(&self, checkpoint: CommentCheckpoint) -> Result<CommentCheckpoint>;
}

/// Triage rules, ignore-examples, decisions and the AI-control switch.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Creates a rule. `Conflict` when the tenant has a rule of that name.
    async fn create_rule(&self, new: NewAiRule) -> Result<AiRule>;
    /// Replaces the rule's definition (name, type, keywords, …) keeping its id.
    async fn update_rule(&self, id: RuleId, new: NewAiRule) -> Result<AiRule>;
    /// Deletes the rule; `NotFound` when absent.
    async fn delete_rule(&self, tenant: TenantId, id: RuleId) -> Result<()>;
    /// The rule, or `NotFound`.
    async fn get_rule(&self, tenant: TenantId, id: RuleId) -> Result<AiRule>;
    /// The tenant's rules (only enabled ones when `enabled_only`), by priority,
    /// then type (deny, escalate, auto), then name.
    async fn list_rules(&self, tenant: TenantId, enabled_only: bool) -> Result<Vec<AiRule>>;

    /// Adds an ignore-example.
    async fn add_ignore_example(
        &self,
        tenant: TenantId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<IgnoreExample>;
    /// The tenant's ignore-examples, oldest first.
    async fn list_ignore_examples(&self, tenant: TenantId) -> Result<Vec<IgnoreExample>>;
    /// Deletes an ignore-example; `NotFound` when absent.
    async fn delete_ignore_example(&self, tenant: TenantId, id: IgnoreExampleId) -> Result<()>;

    /// Stores the decision unless the subject already has one (one decision per
    /// message or comment). `UnknownReference` when the subject is not the tenant's.
    async fn insert_decision(&self, new: NewAiDecision) -> Result<Inserted<AiDecision>>;
    /// The decision, or `NotFound`.
    async fn get_decision(&self, tenant: TenantId, id: DecisionId) -> Result<AiDecision>;
    /// The subject's decision, if any.
    async fn find_decision(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<Option<AiDecision>>;
    /// The tenant's decisions, optionally of one triage, newest first.
    async fn list_decisions(
        &self,
        tenant: TenantId,
        triage: Option<Triage>,
        limit: u32,
    ) -> Result<Vec<AiDecision>>;

    /// The tenant's AI-control switch (OFF when never set). `NotFound` for an
    /// unknown tenant.
    async fn get_ai_control(&self, tenant: TenantId) -> Result<AiControl>;
    /// Switches the tenant's AI control. `UnknownReference` for an unknown tenant.
    async fn set_ai_control(
        &self,
        tenant: TenantId,
        enabled: bool,
        by: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AiControl>;
}

/// 2-hour KPI rows.
#[async_trait]
pub trait KpiStore: Send + Sync {
    /// Inserts the row or replaces the one stored under `(tenant, window_start)`.
    async fn upsert_kpi(&self, row: Kpi2h) -> Result<Kpi2h>;
    /// Computes the tenant's rows for `windows` from its stored messages,
    /// comments and decisions, by the rules of [`nexiom_core::compute_kpis`]
    /// (which the result must equal, bit for bit), and upserts each on
    /// `(tenant, window_start)` stamped `computed_at`, in one atomic step.
    /// Returns the rows in the order of `windows`.
    ///
    /// Every window of the list gets a row, zeros and `None`s when nothing
    /// happened in it. Running it again over unchanged data writes the same
    /// values (only `computed_at` follows the call). `Invalid("windows")` unless
    /// the windows pass [`KpiWindow::validate_list`] (sorted, non-overlapping,
    /// each ending after it starts); `UnknownReference("tenant")` for an unknown
    /// tenant, even with no windows.
    ///
    /// On Postgres this is set-based SQL (one statement; `percentile_cont` for
    /// the median): no row is loaded into the process.
    async fn recompute_kpis(
        &self,
        tenant: TenantId,
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
    /// [`KpiStore::recompute_kpis`] for several tenants sharing the same
    /// windows (tenants of one time zone), in one atomic step: on Postgres one
    /// statement over all of them (a cross-tenant scan), which reads each
    /// table once instead of once per tenant. Returns the rows by tenant (in
    /// the order of `tenants`), then by window. `UnknownReference("tenant")`
    /// when one is unknown (nothing written).
    async fn recompute_kpis_for(
        &self,
        tenants: &[TenantId],
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
    /// When the tenant's KPI facts changed since `since`, as the starts of
    /// the quarter hours (UTC, `:00`, `:15`, `:30`, `:45`; every time zone's
    /// 2-hour windows are made of whole quarter hours) that hold the
    /// `created_at` of: a message or comment created at or after `since`; an
    /// item whose decision was made at or after `since`; the message that
    /// follows, in its conversation, a message created at or after `since`
    /// (its reply-time rule reads the one before it); and the inbound
    /// messages a reply created at or after `since` answers (those after the
    /// conversation's previous reply). Sorted, distinct. Recomputing every
    /// window that holds one of them (and no other) brings the KPI rows up to
    /// date for everything created at or after `since`.
    /// `UnknownReference("tenant")` for an unknown tenant.
    async fn kpi_activity(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>>;
    /// The tenant's rows with `from <= window_start < to`, newest first.
    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>>;
}

/// Missions, content jobs and mission intelligence reports.
#[async_trait]
pub trait MissionStore: Send + Sync {
    /// Creates a mission. `start_date <= end_date`; the channel must be the tenant's.
    async fn create_mission(&self, new: NewMission) -> Result<Mission>;
    /// The mission, or `NotFound`.
    async fn get_mission(&self, tenant: TenantId, id: MissionId) -> Result<Mission>;
    /// The tenant's missions matching `filter`, by start date then id.
    async fn list_missions(&self, tenant: TenantId, filter: MissionFilter) -> Result<Vec<Mission>>;
    /// Sets the mission's status.
    async fn set_mission_status(
        &self,
        tenant: TenantId,
        id: MissionId,
        status: MissionStatus,
    ) -> Result<Mission>;

    /// Creates a content job. A mission, when given, must be the tenant's and on
    /// the same channel.
    async fn create_content_job(&self, new: NewContentJob) -> Result<ContentJob>;
    /// The job, or `NotFound`.
    async fn get_content_job(&self, tenant: TenantId, id: ContentJobId) -> Result<ContentJob>;
    /// The tenant's jobs matching `filter`, oldest first.
    async fn list_content_jobs(
        &self,
        tenant: TenantId,
        filter: ContentJobFilter,
    ) -> Result<Vec<ContentJob>>;
    /// Sets the job's status and, when `Some`, its scheduled post. A status
    /// other than `published` / `failed` clears the outcome of its last post
    /// (`platform_post_id`, `published_at`, `error_message`).
    async fn update_content_job(
        &self,
        tenant: TenantId,
        id: ContentJobId,
        status: ContentJobStatus,
        scheduled_post: Option<PostId>,
        at: DateTime<Utc>,
    ) -> Result<ContentJob>;

    /// Adds an intelligence report to the mission.
    async fn add_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
        report: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<MissionIntelligenceReport>;
    /// The mission's latest report (its summary), if any.
    async fn latest_report(
        &self,
        tenant: TenantId,
        mission: MissionId,
    ) -> Result<Option<MissionIntelligenceReport>>;

    /// Everything the mission orchestrator plans from, read in one consistent
    /// step (see [`OrchestrationSnapshot`] for what each list holds and its
    /// order): the channel's missions overlapping the dates, the oldest
    /// `jobs_per_phase` ready jobs of each (mission, phase), and the channel's
    /// counted posts in `[from, to)`. Jobs without a mission are never returned.
    /// `Invalid` for a bad query; an unknown tenant or channel reads as empty.
    async fn orchestration_snapshot(
        &self,
        query: OrchestrationQuery,
    ) -> Result<OrchestrationSnapshot>;

    /// Applies one day's orchestration plan atomically, or nothing.
    ///
    /// Runs serialized with every other commit on the same `(tenant, channel)`
    /// (on Postgres a transaction-level advisory lock; in memory the store's
    /// lock), then checks, against the stored state at that moment:
    ///
    /// 1. the channel's counted posts ([`COUNTED_POST_STATUSES`]) with
    ///    `publish_at` in `[from, to)` are exactly `expected_posts`, and none of
    ///    them serves a mission of `entries`;
    /// 2. every entry's job is a `ready` job of the tenant, on the channel, of the
    ///    entry's mission.
    ///
    /// When both hold it creates one `queued` post per entry (the job's content,
    /// the entry's `publish_at`, linked to the mission and the job,
    /// `created_at = at`) and marks each job `scheduled` with its post, and
    /// answers [`CommitOutcome::Committed`] with the posts in entry order.
    /// Otherwise it writes nothing and answers [`CommitOutcome::Stale`] saying
    /// what changed. So however many callers race, a day never holds more than
    /// `max_posts_per_day` counted posts from commits, never two posts of one
    /// mission, and a job is never scheduled twice.
    ///
    /// `Invalid` (nothing read or written) when [`OrchestrationCommit::validate`]
    /// refuses the input, for example a plan that does not fit under the cap.
    async fn commit_orchestration(&self, commit: OrchestrationCommit) -> Result<CommitOutcome>;
}

/// Application settings (secret values).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The setting, if present.
    async fn get_setting(&self, key: &str) -> Result<Option<AppSetting>>;
    /// Creates or replaces the setting.
    async fn set_setting(
        &self,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<AppSetting>;
    /// Deletes the setting; returns whether it existed.
    async fn delete_setting(&self, key: &str) -> Result<bool>;
    /// Every setting key, sorted.
    async fn list_setting_keys(&self) -> Result<Vec<String>>;
}

/// Worker flags and execution logs.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// The worker's flag, if one was ever set.
    async fn get_worker_flag(&self, worker: &str) -> Result<Option<WorkerFlag>>;
    /// Creates or replaces the worker's flag.
    async fn set_worker_flag(
        &self,
        worker: &str,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<WorkerFlag>;
    /// Every flag, by worker name.
    async fn list_worker_flags(&self) -> Result<Vec<WorkerFlag>>;

    /// Records the start of a run (`running`).
    async fn start_execution(
        &self,
        worker: &str,
        started_at: DateTime<Utc>,
    ) -> Result<TaskExecutionLog>;
    /// Records the end of a run; `duration_ms` is computed from the two instants.
    async fn finish_execution(
        &self,
        id: ExecutionId,
        outcome: ExecutionOutcome,
    ) -> Result<TaskExecutionLog>;
    /// Runs, optionally of one worker, newest first.
    async fn list_executions(
        &self,
        worker: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TaskExecutionLog>>;
    /// Deletes runs started before `cutoff`; returns how many.
    async fn delete_executions_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// Topics: the texts to cluster, their stored vectors, and the topics, members
/// and daily sizes that runs write.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// The tenant's inbound messages and comments with non-empty text created
    /// in `[from, to)`, oldest first (then by id); with `post`, only that
    /// post's comments.
    async fn list_topic_items(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        post: Option<PostId>,
    ) -> Result<Vec<TopicItem>>;
    /// The tenant's posts with at least `min_comments` comments in all, of
    /// which at least one was created at or after `since`; by post id.
    async fn list_posts_with_comments(
        &self,
        tenant: TenantId,
        min_comments: u32,
        since: DateTime<Utc>,
    ) -> Result<Vec<PostId>>;

    /// Stores each vector (one per subject and model; a second one replaces
    /// the first). `UnknownReference` when a subject is not the tenant's
    /// message or comment; nothing is written then. Returns how many were
    /// written.
    async fn upsert_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<u64>;
    /// The stored vectors of `model` for these subjects (those that have one),
    /// in the order of `subjects`.
    async fn get_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        subjects: &[TopicSubject],
    ) -> Result<Vec<ItemEmbedding>>;

    /// The tenant's topics of `scope`, most recently seen first (then by id):
    /// what a run matches its clusters against.
    async fn list_topics(&self, tenant: TenantId, scope: TopicScope) -> Result<Vec<Topic>>;
    /// Writes one run atomically (see [`TopicRun`]): topics created or
    /// updated (a known id must be the tenant's topic of the same scope, else
    /// `UnknownReference`), memberships replaced, the day's sizes upserted.
    /// Returns the run's topics as stored, in the run's order.
    async fn save_topic_run(&self, run: TopicRun) -> Result<Vec<Topic>>;
    /// The tenant's topics of `scope` by their summed daily sizes over the
    /// days `[from, to]` (largest first, then by id), at most `limit`, each
    /// with its size on `to`, the day before and 7 days before. Topics of no
    /// size in the range are left out.
    async fn top_topics(
        &self,
        tenant: TenantId,
        scope: TopicScope,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<TopicSummary>>;
    /// The topics of a post's comments, largest (last run's size) first, then
    /// by id.
    async fn topics_for_post(&self, tenant: TenantId, post: PostId) -> Result<Vec<Topic>>;
    /// A page of a topic's members, newest first (`created_at`, then id, both
    /// descending), starting after `cursor`. `NotFound` for a topic that is
    /// not the tenant's.
    async fn messages_in_topic(
        &self,
        tenant: TenantId,
        topic: TopicId,
        cursor: Option<TopicCursor>,
        limit: u32,
    ) -> Result<TopicMembersPage>;
}

/// Every aggregate's store in one object: what the rest of the family holds, as
/// `Arc<dyn Store>`. Implemented automatically for any type that implements all
/// the aggregate traits.
pub trait Store:
    TenantStore
    + crate::ApiKeyStore
    + crate::BroadcastStore
    + EventStore
    + crate::EventBatchStore
    + crate::DeadLetterStore
    + crate::ExternalPostStore
    + ConversationStore
    + PostStore
    + CommentStore
    + RuleStore
    + KpiStore
    + MissionStore
    + SettingsStore
    + WorkerStore
    + ReplyQueueStore
    + crate::PollBatchStore
    + crate::ReplyBatchStore
    + TopicStore
    + crate::OpsStore
    + crate::TenantSettingsStore
    + crate::RetentionStore
    + crate::CredentialStore
    + crate::OutboxStore
    + crate::AgentReplyStore
    + crate::InboxStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: TenantStore
        + crate::ApiKeyStore
        + crate::BroadcastStore
        + EventStore
        + crate::EventBatchStore
        + crate::DeadLetterStore
        + crate::ExternalPostStore
        + ConversationStore
        + PostStore
        + CommentStore
        + RuleStore
        + KpiStore
        + MissionStore
        + SettingsStore
        + WorkerStore
        + ReplyQueueStore
        + crate::PollBatchStore
        + crate::ReplyBatchStore
        + TopicStore
        + crate::OpsStore
        + crate::TenantSettingsStore
        + crate::RetentionStore
        + crate::CredentialStore
        + crate::OutboxStore
        + crate::AgentReplyStore
        + crate::InboxStore
        + Send
        + Sync
{
}
