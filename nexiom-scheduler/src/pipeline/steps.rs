//! The library's own pipeline steps: routing, triage and auto-replies of an
//! [`InboundPipeline`], due schedules of a [`PublishQueue`] (the KPI step is
//! [`KpiWorker`](crate::KpiWorker)'s own implementation).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PipelineStep;
use crate::error::Result;
use crate::inbound::InboundPipeline;
use crate::publish::PublishQueue;
use crate::worker::BatchConfig;

/// Routes at most `limit` unrouted events of every tenant
/// ([`InboundPipeline::route_unrouted_events`]); the count is the events
/// routed.
#[derive(Clone)]
pub struct RouteStep(InboundPipeline);

impl std::fmt::Debug for RouteStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteStep")
    }
}

impl RouteStep {
    /// The step over `inbound`.
    pub fn new(inbound: InboundPipeline) -> Self {
        RouteStep(inbound)
    }
}

#[async_trait]
impl PipelineStep for RouteStep {
    async fn run(&self, _since: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(self.0.route_unrouted_events(None, limit).await?.processed)
    }
}

/// Triages at most `limit` new messages and comments
/// ([`InboundPipeline::triage_new_items`]); the count is the items that got
/// their decision.
#[derive(Clone)]
pub struct TriageStep(InboundPipeline);

impl std::fmt::Debug for TriageStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TriageStep")
    }
}

impl TriageStep {
    /// The step over `inbound`.
    pub fn new(inbound: InboundPipeline) -> Self {
        TriageStep(inbound)
    }
}

#[async_trait]
impl PipelineStep for TriageStep {
    async fn run(&self, _since: DateTime<Utc>, limit: u32) -> Result<u64> {
        let report = self.0.triage_new_items(limit).await?;
        Ok(report.messages.saturating_add(report.comments))
    }
}

/// Takes the pending auto-replies too old for `since` out of the queue
/// ([`InboundPipeline::expire_stale_replies`]: escalated to a person), then
/// sends at most `limit` pending auto-replies to items received since
/// `since` ([`InboundPipeline::auto_reply_recent_inbound`]); the count is
/// the replies sent.
#[derive(Clone)]
pub struct AutoReplyStep(InboundPipeline);

impl std::fmt::Debug for AutoReplyStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AutoReplyStep")
    }
}

impl AutoReplyStep {
    /// The step over `inbound`.
    pub fn new(inbound: InboundPipeline) -> Self {
        AutoReplyStep(inbound)
    }
}

#[async_trait]
impl PipelineStep for AutoReplyStep {
    async fn run(&self, since: DateTime<Utc>, limit: u32) -> Result<u64> {
        // A failure there leaves the old items for the next run: the
        // replies due now still go out.
        if let Err(error) = self.0.expire_stale_replies(since, limit).await {
            tracing::warn!(%error, "taking the replies too old to send out of the queue failed");
        }
        Ok(self.0.auto_reply_recent_inbound(since, limit).await?.sent)
    }
}

/// Running due schedules is the publish queue's [`PublishQueue::run_due`]
/// with `limit` as batch size (one batch, plus those series made due): the
/// count is the posts claimed.
#[async_trait]
impl PipelineStep for PublishQueue {
    async fn run(&self, _since: DateTime<Utc>, limit: u32) -> Result<u64> {
        let batch = BatchConfig {
            batch_size: limit,
            max_batches: 1,
            ..BatchConfig::default()
        };
        Ok(self.run_due(&batch, None).await?.claimed)
    }
}
