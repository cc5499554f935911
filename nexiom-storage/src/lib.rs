//! Storage for the Nexiom family: one trait per aggregate, [`Store`] bundling them,
//! and two backends that behave the same, checked by one conformance suite:
//!
//! - [`MemoryStore`]: thread-safe, in process; for tests, examples and small
//!   embedded use.
//! - [`PgStore`]: PostgreSQL through sqlx, with embedded migrations; many worker
//!   processes may share one database.
//!
//! The contract every backend keeps (tenant scoping, validation before writing,
//! insert-if-absent on unique keys, atomic operations) is written on the
//! [`traits`](crate::Store) module's items.
//!
//! ```
//! use std::sync::Arc;
//! use chrono::Utc;
//! use nexiom_core::NewTenant;
//! use nexiom_storage::{MemoryStore, Store};
//!
//! # tokio_test_block(async {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let tenant = store.create_tenant(NewTenant::new("Acme", Utc::now())).await.unwrap();
//! assert_eq!(store.get_tenant(tenant.id).await.unwrap().name, "Acme");
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
#![forbid(unsafe_code)]

mod agent_reply;
mod api_keys;
mod broadcast;
mod checks;
mod credentials;
mod dead_letters;
mod error;
mod event_batch;
mod external_posts;
mod fair_claim;
mod inbox;
mod memory;
mod ops;
mod outbox;
mod poll_batch;
mod postgres;
mod reply_batch;
mod reply_queue;
mod retention;
pub mod secrets;
mod tenant_settings;
mod traits;

#[cfg(feature = "testing")]
pub mod conformance;

pub use agent_reply::{
    ABANDONED_AGENT_REPLY_ERROR, AgentReplyClaim, AgentReplyContext, AgentReplyStore,
};
pub use api_keys::ApiKeyStore;
pub use broadcast::{BROADCAST_CANCELLED, BroadcastStore, DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT};
pub use credentials::{CredentialLease, CredentialStore};
pub use dead_letters::DeadLetterStore;
pub use error::{Result, StorageError};
pub use event_batch::{EventBatchStore, EventWrite};
pub use external_posts::ExternalPostStore;
pub use inbox::InboxStore;
pub use memory::MemoryStore;
pub use ops::{OpsStore, QueueStats, SchemaStatus, expected_schema_version};
pub use outbox::{MAX_CLAIM_PER_ENDPOINT, OUTCOME_UNKNOWN_PREFIX, OutboxStore};
pub use poll_batch::{ClaimedPoll, PollBatchStore, PollResult, PollWritten};
pub use postgres::{PgStore, RotationReport, UnreadableSecret};
pub use reply_batch::{
    ReplyAnswer, ReplyBatchStore, ReplyClaim, ReplyClaimed, ReplyContext, ReplySettlement,
};
pub use reply_queue::{ReplyQueueStore, STALE_RUN_ERROR};
pub use retention::{Retained, RetentionPolicy, RetentionStore};
pub use tenant_settings::TenantSettingsStore;
pub use traits::{
    CommentStore, ConversationStore, EventStore, KpiStore, MissionStore, PostStore, RuleStore,
    SettingsStore, Store, TenantStore, TopicStore, WorkerStore,
};
