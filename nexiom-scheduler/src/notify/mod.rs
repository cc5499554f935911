//! Notifications to people: the outbox's deliveries (see
//! [`nexiom_storage::OutboxStore`] for what writes a notification) sent by a
//! [`NotificationDispatcher`] through [`Notifier`]s, with retries and a dead
//! state; signed webhooks ([`sign`], [`verify`]) and Slack incoming webhooks
//! built in. A tenant writes its endpoints' URLs, so the built-in notifiers
//! deliver to public addresses only unless the application allows the local
//! network ([`NotificationDispatcher::allow_local_network`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use chrono::Utc;
//! use nexiom_core::{EndpointKind, NewNotificationEndpoint, NotificationKind, SecretString,
//!     SystemClock, TenantId};
//! use nexiom_scheduler::notify::{DeliverNotificationsWorker, NotificationDispatcher};
//! use nexiom_storage::{MemoryStore, OutboxStore, Store};
//!
//! # async fn demo(tenant: TenantId) -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! store.create_notification_endpoint(NewNotificationEndpoint {
//!     tenant_id: tenant,
//!     name: "on-call".into(),
//!     kind: EndpointKind::Webhook,
//!     url: "https://ops.example.com/nexiom".into(),
//!     secret: Some(SecretString::new("a-long-random-secret")),
//!     kinds: vec![NotificationKind::ItemEscalated, NotificationKind::PostFailed],
//!     created_at: Utc::now(),
//! }).await?;
//! let worker = DeliverNotificationsWorker::new(
//!     NotificationDispatcher::new(store, Arc::new(SystemClock)),
//! );
//! # let _ = worker; Ok(()) }
//! ```

mod delivery;
mod egress;
mod notifier;
mod signature;

pub use delivery::{
    DELIVER_NOTIFICATIONS, DeliverNotificationsWorker, DeliveryReport, NotificationDispatcher,
    RetryPolicy,
};
pub use egress::{LocalNetworkRefused, is_local_network};
pub use notifier::{
    Notifier, NotifyError, SlackNotifier, WebhookNotifier, slack_text, webhook_body,
};
pub use signature::{
    EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, sign,
    verify,
};
