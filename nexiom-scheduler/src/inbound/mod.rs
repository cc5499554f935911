//! The inbound pipeline: webhook events → contacts, conversations, messages and
//! comments (routing) → one triage decision per item (triage) → automatic
//! replies under the tenant's AI control (auto-reply); plus a dry run of a
//! candidate rule set and the settings overview.
//!
//! Each step is a plain async method of [`InboundPipeline`] that processes one
//! bounded batch and returns counts, so a runner (`run_pipeline_once`, the
//! worker runtime) can call them on its cadence and log what they did. Every
//! step is idempotent: running it twice, or from several workers at once,
//! never routes an event twice, stores a second decision for an item, or
//! sends a second reply.

mod auto_reply;
mod channels;
mod dry_run;
mod error;
mod ingest;
mod reply_turn;
mod reply_writers;
mod routing;
mod routing_alone;
mod settings;
mod triage;
mod writer;

use std::fmt;
use std::sync::Arc;

use nexiom_connectors::ConnectorRegistry;
use nexiom_core::Clock;
use nexiom_storage::Store;
use nexiom_triage::{ReplyGenerator, TriageConfig};

use crate::tenant_config::TenantConfigs;

pub use auto_reply::{
    AutoReplyConfig, AutoReplyReport, DEFAULT_REPLIES_PER_CHANNEL, STALE_REPLY_AGE,
};
pub use channels::DEFAULT_CHANNEL_TTL;
pub use dry_run::{DecisionSummary, DryRunItem, DryRunReport};
pub use error::InboundError;
pub use ingest::IngestReport;
pub use settings::{
    KNOWN_SETTINGS, OPENROUTER_BASE_URL, SettingPresence, SettingsOverview,
    openai_config_from_settings,
};
pub use triage::{
    DEFAULT_TRIAGE_CONCURRENCY, REASON_ANSWERED_BY_PERSON, REASON_GENERATOR_ERROR,
    REASON_RULES_INVALID, TriageReport,
};
pub use writer::GroupCommitConfig;

/// What the inbound steps work with: the store, the clock, the reply
/// generator, the connectors and triage settings. Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct InboundPipeline {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    generator: Arc<dyn ReplyGenerator>,
    connectors: ConnectorRegistry,
    triage_config: TriageConfig,
    triage_concurrency: usize,
    configs: TenantConfigs,
    auto_reply: AutoReplyConfig,
    tokens: crate::tokens::ChannelTokens,
    channels: channels::ChannelDirectory,
    writer: writer::EventWriter,
    /// The routing batch size to try (see `route_unrouted_events`): lowered
    /// after a batch timed out, grown again as batches of that size pass;
    /// shared by clones.
    routing_size: Arc<std::sync::atomic::AtomicU32>,
}

impl InboundPipeline {
    /// A pipeline over `store`, reading the time from `clock` and drafting
    /// replies with `generator`; triage uses each tenant's settings
    /// ([`TenantConfigs`]), [`TriageConfig::default`] for a tenant that saved
    /// none.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        generator: Arc<dyn ReplyGenerator>,
    ) -> Self {
        let configs = TenantConfigs::new(Arc::clone(&store), Arc::clone(&clock));
        InboundPipeline {
            tokens: crate::tokens::ChannelTokens::new(Arc::clone(&store), Arc::clone(&clock)),
            channels: channels::ChannelDirectory::new(Arc::clone(&store), Arc::clone(&clock)),
            writer: writer::EventWriter::new(Arc::clone(&store), GroupCommitConfig::default()),
            store,
            clock,
            generator,
            connectors: ConnectorRegistry::new(),
            triage_config: TriageConfig::default(),
            triage_concurrency: DEFAULT_TRIAGE_CONCURRENCY,
            configs,
            auto_reply: AutoReplyConfig::default(),
            routing_size: Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX)),
        }
    }

    /// The connectors auto-replies go through, by platform name (an item whose
    /// platform has none fails its attempt before anything is claimed, and is
    /// retried later).
    pub fn with_connectors(mut self, connectors: ConnectorRegistry) -> Self {
        self.connectors = connectors;
        self
    }

    /// How many items of a tenant triage decides at once (default
    /// [`DEFAULT_TRIAGE_CONCURRENCY`]; at least 1): each may wait on the
    /// reply generator (an LLM call for an auto-reply candidate), so this is
    /// also the most generator calls triage makes at once. The items of one
    /// conversation (or comment thread) are still decided one after another,
    /// oldest first, so their replies are queued in order.
    pub fn with_triage_concurrency(mut self, items: usize) -> Self {
        self.triage_concurrency = items.max(1);
        self
    }

    /// Another triage configuration (similarity threshold, default outcome)
    /// for tenants that saved no settings of their own.
    pub fn with_triage_config(mut self, config: TriageConfig) -> Self {
        self.triage_config = config;
        let mut defaults = self.configs.defaults().clone();
        defaults.triage.similarity_threshold = config.similarity_threshold;
        defaults.triage.default_outcome = config.default_outcome;
        self.configs = self.configs.with_defaults(defaults);
        self
    }

    /// Per-tenant settings read through `configs` (shared with the
    /// application, so that its writes invalidate the same cache).
    pub fn with_tenant_configs(mut self, configs: TenantConfigs) -> Self {
        self.configs = configs;
        self
    }

    /// The per-tenant settings it reads.
    pub fn tenant_configs(&self) -> &TenantConfigs {
        &self.configs
    }

    /// Gets tokens through `tokens` (share the process's one keeper with
    /// the publish queue and the poller); by default the pipeline has its
    /// own over the same store.
    pub fn with_tokens(mut self, tokens: crate::tokens::ChannelTokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Another auto-reply configuration (claim lease, attempts and backoff).
    pub fn with_auto_reply_config(mut self, config: AutoReplyConfig) -> Self {
        self.auto_reply = config;
        self
    }

    /// Another grouping of the receiver's writes ([`GroupCommitConfig`]).
    pub fn with_group_commit(mut self, config: GroupCommitConfig) -> Self {
        self.writer = writer::EventWriter::new(Arc::clone(&self.store), config);
        self
    }

    /// How long a channel found by account is kept for the receiver
    /// ([`DEFAULT_CHANNEL_TTL`]; zero: looked up for every event).
    pub fn with_channel_ttl(mut self, ttl: chrono::Duration) -> Self {
        self.channels = self.channels.with_ttl(ttl);
        self
    }

    /// Tells the receiver that the channel connected for `(platform,
    /// account)` changed (connected elsewhere, reconnected): the next event
    /// of that account looks it up again. Channels are kept at most
    /// [`DEFAULT_CHANNEL_TTL`] anyway, and an account with no channel is
    /// never kept.
    pub fn channel_changed(&self, platform: &nexiom_core::Platform, account: &str) {
        self.channels.forget(platform, account);
    }

    /// [`InboundPipeline::channel_changed`] by channel id.
    pub fn channel_id_changed(&self, channel: nexiom_core::ChannelId) {
        self.channels.forget_channel(channel);
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

impl fmt::Debug for InboundPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundPipeline")
            .field("clock", &self.clock)
            .field("generator", &self.generator)
            .field("connectors", &self.connectors.names())
            .field("triage_config", &self.triage_config)
            .field("triage_concurrency", &self.triage_concurrency)
            .field("auto_reply", &self.auto_reply)
            .field("group_commit", &self.writer.config())
            .finish_non_exhaustive()
    }
}
