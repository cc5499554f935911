//! # Nexiom
//!
//! Social-media automation for teams that run marketing and customer conversations
//! on WhatsApp, Instagram, Facebook and LinkedIn: connectors, idempotent webhook
//! ingestion, triage (ignore / escalate / auto-reply under a human-controlled AI
//! switch), scheduled and recurring publishing, comment polling, KPI windows and a
//! mission orchestrator.
//!
//! This crate is the facade: it re-exports the family so that a downstream team
//! adds one dependency.
//!
//! | module | crate | what it holds |
//! | --- | --- | --- |
//! | [`core`] | `nexiom-core` | domain types, ids, enums, `Clock`, secrets, errors |
//! | [`storage`] | `nexiom-storage` | storage traits (API keys included), `MemoryStore`, `PgStore` |
//! | [`connectors`] | `nexiom-connectors` | platform connectors |
//! | [`triage`] | `nexiom-triage` | the triage engine |
//! | [`scheduler`] | `nexiom-scheduler` | publishing, polling, KPIs, orchestration |
//! | [`topics`] | `nexiom-topics` | embeddings, topic clustering, labels, the evaluation set |
//!
//! ```
//! use std::sync::Arc;
//! use nexiom::prelude::*;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(chrono::Utc::now());
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let tenant = store.create_tenant(NewTenant::new("Acme", clock.now())).await?;
//! assert_eq!(store.list_tenants().await?.len(), 1);
//! assert_eq!(tenant.time_zone, nexiom::core::DEFAULT_TIME_ZONE);
//! # Ok::<(), StorageError>(())
//! # }).unwrap();
//! ```
//!
//! The store also keeps API keys, for a downstream API to authenticate a
//! tenant's applications ([`storage::ApiKeyStore`]): the token is shown once,
//! only its SHA-256 is stored.
//!
//! ```
//! use std::sync::Arc;
//! use nexiom::prelude::*;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let now = chrono::Utc::now();
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let tenant = store.create_tenant(NewTenant::new("Acme", now)).await?;
//! let issued = store.create_api_key(NewApiKey::new(tenant.id, "billing app", now)).await?;
//! let key = store.verify_api_key(issued.secret.expose(), now).await?;
//! assert_eq!(key.map(|k| k.id), Some(issued.key.id));
//! assert_eq!(store.verify_api_key("nxk_guess", now).await?, None);
//! # Ok::<(), StorageError>(())
//! # }).unwrap();
//! ```
//!
//! People stay in the loop: escalations, failed posts and SLA breaches are
//! written to an outbox with the change that causes them
//! ([`storage::OutboxStore`]) and delivered to the tenant's signed webhooks
//! or Slack ([`scheduler::notify`]); agents answer under the platforms'
//! messaging rules ([`scheduler::inbox::AgentReplies`]) and work from an
//! inbox of assignees, statuses, labels, notes and canned replies
//! ([`storage::InboxStore`]) with a first-response target
//! ([`scheduler::inbox::SlaWorker`]).
#![forbid(unsafe_code)]

pub use nexiom_connectors as connectors;
pub use nexiom_core as core;
pub use nexiom_scheduler as scheduler;
pub use nexiom_storage as storage;
pub use nexiom_topics as topics;
pub use nexiom_triage as triage;

/// The names most programs need, in one import: `use nexiom::prelude::*;`.
pub mod prelude {
    pub use nexiom_core::*;
    pub use nexiom_storage::{MemoryStore, PgStore, StorageError, Store};
    pub use nexiom_topics::{Embedder, LocalEmbedder, TopicRunner};
}
