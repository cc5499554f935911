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
//! [`TenantId`]: nexiom_core::TenantId
//! [`Inserted`]: nexiom_core::Inserted

mod comment;
mod conversation;
mod event;
mod kpi;
mod mission;
mod post;
mod rule;
mod settings;
mod store;
mod tenant;
mod topic;
mod worker;

pub use comment::CommentStore;
pub use conversation::ConversationStore;
pub use event::EventStore;
pub use kpi::KpiStore;
pub use mission::MissionStore;
pub use post::PostStore;
pub use rule::RuleStore;
pub use settings::SettingsStore;
pub use store::Store;
pub use tenant::TenantStore;
pub use topic::TopicStore;
pub use worker::WorkerStore;
