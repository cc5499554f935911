//! Connectors of the Nexiom family: one [`PlatformConnector`] trait, a shared HTTP
//! core, webhook verification, and clients for WhatsApp, Instagram, Facebook Pages
//! and LinkedIn, plus a scriptable [`MockConnector`] and (feature `testing`) the
//! reusable contract suite every connector passes.
//!
//! # Shape
//!
//! - [`PlatformConnector`] is the small, object-safe contract (its `# Contract`
//!   section lists the guarantees); [`PlatformConnectorExt`] adds conveniences.
//!   Connectors are held as `Arc<dyn PlatformConnector>` in a [`ConnectorRegistry`].
//! - **Credentials travel with each call** in a [`ChannelContext`] (account id,
//!   access and refresh tokens as [`SecretString`](nexiom_core::SecretString)s). A
//!   connector holds only app-level settings (base URL, API version, app secret),
//!   so one instance serves every channel of every tenant, a refreshed token is
//!   used by the next call without rebuilding anything, and tokens live in exactly
//!   one place: the channel's storage row. [`TokenKeeper`] refreshes them ahead of
//!   expiry, one refresh per channel at a time.
//! - Every failure is a [`ConnectorError`] whose variant says what to do next
//!   ([`ConnectorError::action`]): wait (`RateLimited`, `Transient`, `CircuitOpen`),
//!   refresh (`Unauthorized`), ask a person (`Forbidden`, `NeedsReauth`,
//!   `OutcomeUnknown`) or fail (`Permanent`, validation, policy).
//! - The HTTP core ([`HttpCore`]) is shared: timeouts, retries of idempotent reads
//!   only, a per-channel circuit breaker and rate-budget pause ([`ChannelGuard`]),
//!   secrets redacted from every message. The three Meta connectors share one
//!   Graph client; each platform lives in its own module.
//! - Webhooks: [`MetaWebhookVerifier`] (`hub.*` handshake, `X-Hub-Signature-256`)
//!   and [`LinkedInWebhookVerifier`] (`challengeCode`, `X-LI-Signature`), both
//!   constant-time over the exact raw body; `handle_webhook` turns a body into
//!   [`NormalizedEvent`]s keyed by the platform's ids.
//!
//! ```
//! use std::sync::Arc;
//! use nexiom_connectors::{
//!     ConnectorRegistry, FacebookConnector, MockConnector, PlatformConnector, WebhookHeaders,
//!     MetaWebhookVerifier,
//! };
//! use nexiom_core::{Platform, SecretString};
//!
//! let facebook = FacebookConnector::builder()
//!     .with_base_url("http://127.0.0.1:8080") // a local server; defaults to graph.facebook.com
//!     .with_version("v25.0")
//!     .with_app_secret("app-secret")
//!     .build()?;
//! let registry = ConnectorRegistry::new()
//!     .with(Arc::new(facebook))
//!     .with(Arc::new(MockConnector::new(Platform::WhatsApp)));
//!
//! // A Messenger webhook, verified then normalized.
//! let body = br#"{"object":"page","entry":[{"id":"1","time":1458692752478,"messaging":[
//!   {"sender":{"id":"42"},"recipient":{"id":"1"},"timestamp":1458692752478,
//!    "message":{"mid":"mid.1","text":"hello"}}]}]}"#;
//! let headers = WebhookHeaders::new().with(
//!     "X-Hub-Signature-256",
//!     MetaWebhookVerifier::sign(&SecretString::new("app-secret"), body),
//! );
//! let fb = registry.get("facebook")?;
//! fb.verify_webhook(&headers, body)?;
//! let events = fb.handle_webhook(body)?;
//! assert_eq!(events[0].event_id, "mid.1");
//! assert_eq!(events[0].text.as_deref(), Some("hello"));
//! assert!(registry.get("myspace").is_err());
//! # Ok::<(), nexiom_connectors::ConnectorError>(())
//! ```
#![forbid(unsafe_code)]
// `WebhookItem = Result<NormalizedEvent, RejectedEvent>`: the refusal is smaller
// than the event it stands for, so boxing it would save nothing.
#![allow(clippy::result_large_err)]

mod capabilities;
mod connector;
mod error;
mod facebook;
mod graph;
mod http;
mod instagram;
mod linkedin;
pub mod lookup;
mod mock;
mod policy;
mod recent;
mod registry;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod token;
mod types;
mod webhook;
mod whatsapp;

pub use capabilities::Capabilities;
pub use connector::{PlatformConnector, PlatformConnectorExt};
pub use error::{
    ApiError, ConnectorError, ErrorAction, PolicyError, ValidationError, WHATSAPP_PAIR_RATE_LIMIT,
    WebhookError, redact,
};
pub use facebook::{FacebookBuilder, FacebookConnector};
pub use graph::{DEFAULT_GRAPH_BASE_URL, DEFAULT_GRAPH_VERSION, GraphConfig};
pub use http::{
    Backoff, BreakerConfig, ChannelGuard, DEFAULT_MAX_RESPONSE_BYTES, HttpConfig, HttpCore,
};
pub use instagram::{InstagramBuilder, InstagramConnector};
pub use linkedin::{
    DEFAULT_LINKEDIN_BASE_URL, DEFAULT_LINKEDIN_OAUTH_URL, DEFAULT_LINKEDIN_VERSION,
    LinkedInBuilder, LinkedInConnector, escape_little_text,
};
pub use lookup::{FoundPost, LookupOutcome, LookupQuery};
pub use mock::{MOCK_VERIFY_TOKEN, MOCK_WEBHOOK_SECRET, MockCall, MockConnector, MockOp};
pub use recent::{MAX_RECENT_POSTS, RecentPost};
pub use registry::ConnectorRegistry;
pub use time::{
    EARLIEST_EVENT_TIME, MAX_EVENT_TIME_AHEAD, check_event_time, is_plausible_event_time,
};
pub use token::TokenKeeper;
pub use types::{
    ChallengeResponse, ChannelContext, CommentPage, MessageBody, NormalizedEvent, OutboundMessage,
    PrivateReply, PublishRequest, Published, RejectedEvent, RemoteComment, SentMessage, Template,
    TokenGrant, WebhookItem, WebhookSetup,
};
pub use webhook::{
    LINKEDIN_SIGNATURE_HEADER, LinkedInWebhookVerifier, META_SIGNATURE_HEADER, MetaWebhookVerifier,
    WebhookHeaders, hmac_sha256_hex,
};
pub use whatsapp::{WhatsAppBuilder, WhatsAppConnector};
