//! The supertrait bundling every aggregate's store.

use super::{
    CommentStore, ConversationStore, EventStore, KpiStore, MissionStore, PostStore, RuleStore,
    SettingsStore, TenantStore, TopicStore, WorkerStore,
};
use crate::reply_queue::ReplyQueueStore;

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
