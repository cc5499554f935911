//! [`MemoryStore`]: the in-memory backend.
//!
//! All state lives in plain maps inside one [`Inner`] behind one [`Mutex`]. Each
//! trait method takes the lock once, runs its checks (validation, references,
//! guards), and only then writes; so every call is atomic and concurrent callers
//! (threads or tasks) never see a half-applied state. Nothing inside the lock
//! awaits: the async trait methods are thin wrappers over synchronous methods of
//! [`Inner`], one file per aggregate.
//!
//! Unique keys are kept in small index maps next to the rows so that the
//! insert-if-absent paths (events, messages, comments, occurrences…) stay O(log n)
//! instead of scanning every row.

mod agent_reply;
mod api_key;
mod broadcast;
mod broadcast_delivery;
mod comment;
mod conversation;
mod credentials;
mod dead_letter;
mod early_status;
mod event;
mod external_post;
mod inbox;
mod kpi;
mod mission;
mod ops;
mod outbox;
mod poll_batch;
mod post;
mod post_batch;
mod post_replace;
mod reply_batch;
mod reply_queue;
mod retention;
mod routing;
mod rule;
mod settings;
mod tenant;
mod tenant_settings;
mod topic;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use nexiom_core::{
    AiControl, AiDecision, AiRule, AppSetting, Channel, ChannelId, Comment, CommentCheckpoint,
    CommentId, CommentReply, Contact, ContactChannel, ContactChannelId, ContactId, ContentJob,
    ContentJobId, Conversation, ConversationId, DecisionId, DecisionSubject, ExecutionId,
    IgnoreExample, IgnoreExampleId, ItemEmbedding, Kpi2h, Message, MessageId, Mission, MissionId,
    MissionIntelligenceReport, Platform, PostId, PostRun, PostRunId, ReportId, RuleId,
    ScheduledPost, TaskExecutionLog, Tenant, TenantId, Topic, TopicId, TopicScope, TopicSubject,
    WebhookEvent, WebhookEventId, WorkerFlag,
};

use crate::error::{Result, StorageError};

/// Thread-safe in-memory store implementing every storage trait (hence
/// [`Store`](crate::Store)).
///
/// It keeps the same contract as the PostgreSQL backend (tenant scoping,
/// validation before writing, insert-if-absent on unique keys, atomic
/// operations, documented list orders) and is checked by the same conformance
/// suite. Use it for tests, examples and small embedded deployments; nothing is
/// persisted, and dropping the store drops the data.
///
/// ```
/// use chrono::Utc;
/// use nexiom_core::NewTenant;
/// use nexiom_storage::{MemoryStore, TenantStore};
///
/// # tokio_test_block(async {
/// let store = MemoryStore::new();
/// let tenant = store.create_tenant(NewTenant::new("Acme", Utc::now())).await.unwrap();
/// assert_eq!(store.list_tenants().await.unwrap(), vec![tenant]);
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Per-channel refresh leases ([`crate::CredentialStore`]).
    refresh_leases: credentials::Leases,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            refresh_leases: credentials::Leases::default(),
        }
    }

    /// The state, locked. A panic while the lock was held cannot have left a
    /// half-written state (every method checks everything before its first
    /// write), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("tenants", &inner.tenants.len())
            .field("channels", &inner.channels.len())
            .field("events", &inner.events.len())
            .field("messages", &inner.messages.len())
            .field("posts", &inner.posts.len())
            .field("comments", &inner.comments.len())
            .finish_non_exhaustive()
    }
}

/// Everything the store holds. Rows are keyed by id (UUID v7, so map order is
/// creation order); the `*_by_*` maps index the unique keys.
#[derive(Default)]
struct Inner {
    tenants: BTreeMap<TenantId, Tenant>,
    channels: BTreeMap<ChannelId, Channel>,
    /// `(platform, external_account_id)` → channel, across tenants.
    channel_by_account: HashMap<(Platform, String), ChannelId>,

    events: BTreeMap<WebhookEventId, WebhookEvent>,
    /// `(platform, event_id)` → event, across tenants.
    event_by_key: HashMap<(Platform, String), WebhookEventId>,
    /// The events not routed yet, in routing order `(received_at, id)`: a
    /// routing batch reads these, not every event held.
    unrouted_events: BTreeSet<(DateTime<Utc>, WebhookEventId)>,
    contacts: BTreeMap<ContactId, Contact>,
    contact_channels: BTreeMap<ContactChannelId, ContactChannel>,
    /// `(tenant, platform, external_handle)` → contact channel.
    contact_channel_by_key: HashMap<(TenantId, Platform, String), ContactChannelId>,

    conversations: BTreeMap<ConversationId, Conversation>,
    /// `(contact, channel)` → its open conversation (removed on close).
    open_conversation: HashMap<(ContactId, ChannelId), ConversationId>,
    messages: BTreeMap<MessageId, Message>,
    /// `(channel, provider_message_id)` → message.
    message_by_provider: HashMap<(ChannelId, String), MessageId>,
    /// `(channel, provider_message_id)` → a status kept for a message not
    /// recorded yet.
    early_statuses: HashMap<(ChannelId, String), early_status::EarlyStatus>,
    /// Inbound message → the outbound reply to it.
    reply_by_inbound: HashMap<MessageId, MessageId>,

    posts: BTreeMap<PostId, ScheduledPost>,
    /// `(series_id, occurrence_at)` → occurrence.
    occurrence_by_key: HashMap<(PostId, DateTime<Utc>), PostId>,
    post_runs: BTreeMap<PostRunId, PostRun>,
    /// `(post, attempt)` of every run.
    post_run_keys: HashSet<(PostId, u32)>,
    /// Channel → claims hold its posts back until then.
    channel_throttles: HashMap<ChannelId, DateTime<Utc>>,
    /// Channel → its post discovery, while switched on.
    post_discovery: BTreeMap<ChannelId, nexiom_core::PostDiscovery>,

    comments: BTreeMap<CommentId, Comment>,
    /// `(post, platform_comment_id)` → comment.
    comment_by_key: HashMap<(PostId, String), CommentId>,
    /// When the latest moderation routed for a comment happened.
    comment_moderated_at: HashMap<CommentId, DateTime<Utc>>,
    checkpoints: HashMap<PostId, CommentCheckpoint>,
    /// Comment → its automatic reply (the unique key of a reply).
    comment_replies: HashMap<CommentId, CommentReply>,

    rules: BTreeMap<RuleId, AiRule>,
    ignore_examples: BTreeMap<IgnoreExampleId, IgnoreExample>,
    decisions: BTreeMap<DecisionId, AiDecision>,
    /// Subject → its decision.
    decision_by_subject: HashMap<DecisionSubject, DecisionId>,
    ai_controls: HashMap<TenantId, AiControl>,

    /// Keyed by `(tenant, window_start)`, the unique key.
    kpis: BTreeMap<(TenantId, DateTime<Utc>), Kpi2h>,

    missions: BTreeMap<MissionId, Mission>,
    content_jobs: BTreeMap<ContentJobId, ContentJob>,
    reports: BTreeMap<ReportId, MissionIntelligenceReport>,

    settings: BTreeMap<String, AppSetting>,
    tenant_settings: BTreeMap<TenantId, nexiom_core::TenantSettings>,
    tenant_secrets: BTreeMap<(TenantId, String), nexiom_core::SecretString>,
    worker_flags: BTreeMap<String, WorkerFlag>,
    executions: BTreeMap<ExecutionId, TaskExecutionLog>,
    /// Claimed slots of wall-clock schedules: `(worker, slot)`.
    worker_slots: BTreeSet<(String, DateTime<Utc>)>,

    api_keys: BTreeMap<nexiom_core::ApiKeyId, api_key::StoredApiKey>,
    /// `(tenant, prefix)` → the keys with that prefix (random prefixes may
    /// collide).
    api_keys_by_prefix: HashMap<(TenantId, String), Vec<nexiom_core::ApiKeyId>>,

    dead_letters: BTreeMap<nexiom_core::DeadLetterId, nexiom_core::DeadLetter>,
    /// `(platform, key)` → dead letter.
    dead_letter_by_key: HashMap<(Platform, String), nexiom_core::DeadLetterId>,
    /// `(subject, model)` → its vector.
    embeddings: HashMap<(TopicSubject, String), ItemEmbedding>,
    topics: BTreeMap<TopicId, Topic>,
    /// `(tenant, scope, subject)` → its topic in that scope (one at most).
    topic_members: BTreeMap<(TenantId, TopicScope, TopicSubject), topic::Membership>,
    /// `(topic, day)` → the topic's size that day.
    topic_days: BTreeMap<(TopicId, chrono::NaiveDate), i64>,

    /// WhatsApp contacts' opt-in, audiences, posts' audiences and deliveries.
    broadcasts: broadcast::Broadcasts,

    /// Notification endpoints, notifications and their deliveries.
    outbox: outbox::Outbox,
    /// Replies written by agents.
    agent_replies: agent_reply::AgentReplies,
    /// People's state of the inbox items, notes and canned replies.
    inbox: inbox::Inbox,
}

impl Inner {
    /// `UnknownReference("tenant")` unless the tenant exists.
    fn require_tenant(&self, tenant: TenantId) -> Result<()> {
        if self.tenants.contains_key(&tenant) {
            Ok(())
        } else {
            Err(StorageError::unknown("tenant", tenant))
        }
    }
}

/// A row that belongs to one tenant.
trait Owned {
    fn owner(&self) -> TenantId;
}

macro_rules! owned {
    ($($t:ty),+ $(,)?) => {$(
        impl Owned for $t {
            fn owner(&self) -> TenantId {
                self.tenant_id
            }
        }
    )+};
}

owned!(
    Channel,
    WebhookEvent,
    Contact,
    ContactChannel,
    Conversation,
    Message,
    ScheduledPost,
    PostRun,
    Comment,
    AiRule,
    IgnoreExample,
    AiDecision,
    Mission,
    ContentJob,
    MissionIntelligenceReport,
);

/// The row `id` if it is `tenant`'s.
fn scoped<'a, K: Ord, V: Owned>(
    map: &'a BTreeMap<K, V>,
    tenant: TenantId,
    id: &K,
) -> Option<&'a V> {
    map.get(id).filter(|v| v.owner() == tenant)
}

/// The row `id` of `tenant`, or `NotFound(entity)`.
fn get_scoped<'a, K: Ord + fmt::Display, V: Owned>(
    map: &'a BTreeMap<K, V>,
    tenant: TenantId,
    id: &K,
    entity: &'static str,
) -> Result<&'a V> {
    scoped(map, tenant, id).ok_or_else(|| StorageError::not_found(entity, id))
}

/// The row `id` of `tenant`, mutably, or `NotFound(entity)`.
fn get_scoped_mut<'a, K: Ord + fmt::Display, V: Owned>(
    map: &'a mut BTreeMap<K, V>,
    tenant: TenantId,
    id: &K,
    entity: &'static str,
) -> Result<&'a mut V> {
    match map.get_mut(id) {
        Some(v) if v.owner() == tenant => Ok(v),
        _ => Err(StorageError::not_found(entity, id)),
    }
}

/// `UnknownReference(entity)` unless the row `id` is `tenant`'s.
fn require_ref<K: Ord + fmt::Display, V: Owned>(
    map: &BTreeMap<K, V>,
    tenant: TenantId,
    id: &K,
    entity: &'static str,
) -> Result<()> {
    if scoped(map, tenant, id).is_some() {
        Ok(())
    } else {
        Err(StorageError::unknown(entity, id))
    }
}

/// `Some(id)` must be `tenant`'s row; `None` passes.
fn require_opt_ref<K: Ord + fmt::Display, V: Owned>(
    map: &BTreeMap<K, V>,
    tenant: TenantId,
    id: Option<&K>,
    entity: &'static str,
) -> Result<()> {
    id.map_or(Ok(()), |id| require_ref(map, tenant, id, entity))
}

/// `limit` as a length (`u32` always fits on the targets we build for; saturate
/// otherwise).
fn limit_len(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// Keeps at most `limit` items (`None`: all).
fn truncate_opt<T>(items: &mut Vec<T>, limit: Option<u32>) {
    if let Some(limit) = limit {
        items.truncate(limit_len(limit));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use chrono::{Duration, TimeZone, Utc};
    use nexiom_core::*;

    use super::MemoryStore;
    use crate::{ConversationStore, EventStore, PostStore, StorageError, TenantStore};

    fn t0() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    async fn tenant_and_channel(store: &MemoryStore, account: &str) -> (Tenant, Channel) {
        let tenant = store
            .create_tenant(NewTenant::new("Acme", t0()))
            .await
            .expect("tenant");
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_account_id: account.to_owned(),
                name: "Main line".to_owned(),
                credentials: Credentials::default(),
                created_at: t0(),
            })
            .await
            .expect("channel");
        (tenant, channel)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_get_distinct_posts() {
        let store = Arc::new(MemoryStore::new());
        let (tenant, channel) = tenant_and_channel(&store, "pn-1").await;
        for i in 0..60 {
            let post = NewScheduledPost::one_off(
                tenant.id,
                channel.id,
                Content::text(format!("post {i}")),
                t0() + Duration::seconds(i),
                t0(),
            );
            store.insert_post(post).await.expect("post");
        }
        let now = t0() + Duration::hours(1);
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let owner = format!("worker-{worker}");
                let mut claimed = Vec::new();
                loop {
                    let batch = store
                        .claim_due_posts(now, 3, &owner, Duration::minutes(5))
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        break claimed;
                    }
                    for post in batch {
                        assert_eq!(post.status, PostStatus::Publishing);
                        assert_eq!(post.lease_owner.as_deref(), Some(owner.as_str()));
                        assert_eq!(post.lease_expires_at, Some(now + Duration::minutes(5)));
                        claimed.push(post.id);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("task"));
        }
        let distinct: HashSet<_> = all.iter().copied().collect();
        assert_eq!(all.len(), 60);
        assert_eq!(distinct.len(), 60);

        // Leases lapse: everything is queued again, and claimable again.
        let later = now + Duration::minutes(6);
        assert_eq!(
            store.release_stale_leases(later).await.expect("release"),
            60
        );
        let again = store
            .claim_due_posts(later, 100, "w", Duration::minutes(5))
            .await
            .expect("claim");
        assert_eq!(again.len(), 60);
        let mut sorted = again.clone();
        sorted.sort_by_key(|p| (p.publish_at, p.id));
        assert_eq!(again, sorted, "oldest publish_at first");
    }

    #[tokio::test]
    async fn delivery_status_only_moves_forward() {
        let store = MemoryStore::new();
        let (tenant, channel) = tenant_and_channel(&store, "pn-2").await;
        let contact = store
            .insert_contact_channel(NewContactChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_handle: "33600000000".to_owned(),
                display_name: None,
                created_at: t0(),
            })
            .await
            .expect("contact")
            .record;
        let conv = store
            .insert_open_conversation(tenant.id, contact.contact_id, channel.id, t0())
            .await
            .expect("conversation")
            .record;
        let new_message = |direction, pid: &str| NewMessage {
            tenant_id: tenant.id,
            conversation_id: conv.id,
            direction,
            text: "hi".to_owned(),
            has_media: false,
            provider_message_id: Some(pid.to_owned()),
            in_reply_to: None,
            delivery_status: None,
            created_at: t0(),
            stored_at: t0(),
        };
        store
            .insert_message(new_message(MessageDirection::Outbound, "wamid.out"))
            .await
            .expect("outbound");
        store
            .insert_message(new_message(MessageDirection::Inbound, "wamid.in"))
            .await
            .expect("inbound");

        let apply =
            |status| store.update_delivery_status(tenant.id, channel.id, "wamid.out", status);
        let status_of = |m: Option<Message>| m.and_then(|m| m.delivery_status);
        use DeliveryStatus::*;
        assert_eq!(status_of(apply(Read).await.expect("read")), Some(Read));
        assert_eq!(status_of(apply(Delivered).await.expect("late")), Some(Read));
        assert_eq!(
            status_of(apply(Failed).await.expect("failed")),
            Some(Failed)
        );
        assert_eq!(status_of(apply(Read).await.expect("after")), Some(Failed));

        let inbound = store
            .update_delivery_status(tenant.id, channel.id, "wamid.in", Sent)
            .await
            .expect("inbound");
        assert_eq!(inbound, None, "inbound messages have no delivery status");
        let other_tenant = store
            .update_delivery_status(TenantId::generate(), channel.id, "wamid.out", Read)
            .await
            .expect("other tenant");
        assert_eq!(other_tenant, None);
    }

    #[tokio::test]
    async fn occurrences_are_inserted_once_and_guards_write_nothing() {
        let store = MemoryStore::new();
        let (tenant, channel) = tenant_and_channel(&store, "pn-3").await;
        let series = store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                channel.id,
                Content::text("weekly"),
                t0(),
                t0(),
            ))
            .await
            .expect("series")
            .record;
        let occurrence = NewScheduledPost {
            series_id: Some(series.id),
            occurrence_at: Some(t0() + Duration::days(7)),
            publish_at: t0() + Duration::days(7),
            ..NewScheduledPost::one_off(tenant.id, channel.id, Content::text("w1"), t0(), t0())
        };
        let first = store.insert_post(occurrence.clone()).await.expect("first");
        let second = store.insert_post(occurrence.clone()).await.expect("second");
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.record, second.record);
        let listed = store
            .list_posts(
                tenant.id,
                PostFilter {
                    series_id: Some(series.id),
                    ..PostFilter::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(listed, vec![first.record.clone()]);

        // A series of another tenant is an unknown reference.
        let (other, other_channel) = tenant_and_channel(&store, "pn-4").await;
        let foreign = NewScheduledPost {
            tenant_id: other.id,
            channel_id: other_channel.id,
            ..occurrence
        };
        assert!(matches!(
            store.insert_post(foreign).await,
            Err(StorageError::UnknownReference { entity: "post", .. })
        ));

        // A failing guard writes nothing, not even the other fields.
        let patch = PostPatch {
            status: Some(PostStatus::Published),
            error_message: Some(Some("boom".to_owned())),
            expect_lease_owner: Some("worker-1".to_owned()),
            ..PostPatch::default()
        };
        let refused = store
            .update_post(tenant.id, first.record.id, patch, t0() + Duration::hours(1))
            .await;
        assert!(matches!(refused, Err(StorageError::Precondition { .. })));
        assert_eq!(
            store
                .get_post(tenant.id, first.record.id)
                .await
                .expect("get"),
            first.record
        );
    }
}
