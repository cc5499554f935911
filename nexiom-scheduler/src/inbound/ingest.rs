//! Ingestion: a webhook POST verified, normalized and stored, event by event,
//! before anything else happens to it.

use nexiom_connectors::{PlatformConnector, PlatformConnectorExt, WebhookHeaders};
use serde::{Deserialize, Serialize};

use super::{InboundError, InboundPipeline};

/// What one webhook POST brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Events the body held.
    pub events: u64,
    /// Of those, events stored for the first time (the rest were redeliveries:
    /// `(platform, event_id)` was stored already, and nothing changed).
    pub stored: u64,
    /// Events addressed to an account no channel is connected for (not
    /// stored: they have no tenant).
    pub unknown_account: u64,
}

impl InboundPipeline {
    /// Verifies the signature of a webhook POST over its exact raw body, reads
    /// it into events and stores each one (insert-if-absent on `(platform,
    /// event_id)`) under the channel connected for its account. Nothing is
    /// routed here: routing reads the stored events later, so an event is
    /// never lost between receipt and routing.
    ///
    /// A body whose signature does not verify, or that is not a payload of the
    /// platform, is refused with `InboundError::Webhook` and nothing from it is
    /// stored.
    #[tracing::instrument(name = "ingest_webhook", skip_all, fields(connector = connector.name(), bytes = body.len()))]
    pub async fn ingest_webhook(
        &self,
        connector: &dyn PlatformConnector,
        headers: &WebhookHeaders,
        body: &[u8],
    ) -> Result<IngestReport, InboundError> {
        let events = connector.verify_and_handle(headers, body)?;
        let now = self.clock.now();
        let mut report = IngestReport::default();
        for event in events {
            report.events += 1;
            let channel = match &event.account_id {
                Some(account) => {
                    self.store
                        .find_channel_by_account(&event.platform, account)
                        .await?
                }
                None => None,
            };
            let Some(channel) = channel else {
                tracing::warn!(platform = %event.platform, event_id = %event.event_id, "webhook event for an unknown account");
                report.unknown_account += 1;
                continue;
            };
            let stored = self
                .store
                .insert_event(event.to_new_webhook_event(channel.tenant_id, channel.id, now))
                .await?;
            report.stored += u64::from(stored.created);
        }
        Ok(report)
    }
}
