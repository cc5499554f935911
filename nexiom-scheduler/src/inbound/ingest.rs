//! Ingestion: a webhook POST verified, then read and stored event by event,
//! before anything else happens to it.

use nexiom_connectors::{
    NormalizedEvent, PlatformConnector, RejectedEvent, WebhookError, WebhookHeaders,
    hmac_sha256_hex,
};
use nexiom_core::{Channel, NewDeadLetter, Platform};
use nexiom_storage::StorageError;
use serde::{Deserialize, Serialize};

use super::{InboundError, InboundPipeline};

/// What one webhook POST brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Events the body held (a body that is not a payload at all counts as one).
    pub events: u64,
    /// Of those, events stored for the first time (the rest were redeliveries:
    /// `(platform, event_id)` was stored already, and nothing changed).
    pub stored: u64,
    /// Events addressed to an account no channel is connected for: not
    /// stored as events (they have no tenant) but kept as dead letters without
    /// a tenant, so a person can see what arrived (not counted in
    /// `dead_lettered`).
    pub unknown_account: u64,
    /// Events kept as dead letters: they could not be read (a missing id, an
    /// implausible timestamp, a body that is not a payload) or the store
    /// refused them (a NUL in the text, an over-long or control-character id).
    /// Counted on redelivery too, though no second row is written.
    #[serde(default)]
    pub dead_lettered: u64,
}

/// The dead-letter key of raw bytes: stable across redeliveries.
fn dead_letter_key(raw: &[u8]) -> String {
    hmac_sha256_hex(b"nexiom-dead-letter", raw)
}

impl InboundPipeline {
    /// Verifies the signature of a webhook POST over its exact raw body, reads
    /// it event by event and stores each one on its own (insert-if-absent on
    /// `(platform, event_id)`) under the channel connected for its account.
    /// Nothing is routed here: routing reads the stored events later, so an
    /// event is never lost between receipt and routing.
    ///
    /// An event that cannot be read (the connector refuses it: a missing id, an
    /// implausible timestamp) or that the store refuses
    /// ([`StorageError::is_refusal`]: a NUL in the text, an over-long id…) is
    /// kept as a dead letter (its raw JSON, the reason, its tenant and channel
    /// when known) and its neighbours are stored as usual; a verified body that
    /// is not a payload of the platform at all is dead-lettered whole. Dead
    /// letters are keyed by a hash of the raw event, so a redelivery adds none.
    /// So `Ok` means every event is stored or dead-lettered: answer 200.
    ///
    /// Errors: `InboundError::Webhook` when the signature does not verify
    /// (nothing read, nothing stored); `InboundError::Storage` when the store
    /// is unavailable or fails otherwise (not a refusal of the input): answer
    /// 5xx so that the platform delivers again; what was stored before stays,
    /// and the redelivery stores the rest.
    #[tracing::instrument(name = "ingest_webhook", skip_all, fields(connector = connector.name(), bytes = body.len()))]
    pub async fn ingest_webhook(
        &self,
        connector: &dyn PlatformConnector,
        headers: &WebhookHeaders,
        body: &[u8],
    ) -> Result<IngestReport, InboundError> {
        let now = self.clock.now();
        connector.verify_webhook(headers, body)?;
        let mut report = IngestReport::default();
        let items = match connector.handle_webhook_events(body, now) {
            Ok(items) => items,
            Err(e) => {
                let reason = match &e {
                    nexiom_connectors::ConnectorError::Webhook(
                        w @ WebhookError::InvalidPayload { .. },
                    ) => w.to_string(),
                    other => format!("not read: {other}"),
                };
                tracing::warn!(error = %e, "verified webhook body is not a payload: dead-lettered whole");
                let letter = NewDeadLetter::new(
                    connector.platform(),
                    dead_letter_key(body),
                    body,
                    &reason,
                    now,
                );
                self.store.insert_dead_letter(letter).await?;
                report.events = 1;
                report.dead_lettered = 1;
                record(connector, &report);
                return Ok(report);
            }
        };
        for item in items {
            report.events += 1;
            match item {
                Ok(event) => self.ingest_event(event, now, &mut report).await?,
                Err(rejected) => {
                    self.dead_letter(rejected, now).await?;
                    report.dead_lettered += 1;
                }
            }
        }
        record(connector, &report);
        Ok(report)
    }

    async fn channel_for(
        &self,
        platform: &Platform,
        account: Option<&str>,
    ) -> Result<Option<Channel>, StorageError> {
        match account {
            // An account id the store refuses as a key cannot be connected.
            Some(account) => match self.store.find_channel_by_account(platform, account).await {
                Err(e) if e.is_refusal() => Ok(None),
                other => other,
            },
            None => Ok(None),
        }
    }

    async fn ingest_event(
        &self,
        event: NormalizedEvent,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut IngestReport,
    ) -> Result<(), StorageError> {
        let Some(channel) = self
            .channel_for(&event.platform, event.account_id.as_deref())
            .await?
        else {
            tracing::warn!(platform = %event.platform, event_id = %event.event_id, "webhook event for an unknown account: dead-lettered without a tenant");
            report.unknown_account += 1;
            let reason = match &event.account_id {
                Some(account) => format!("no channel is connected for account {account}"),
                None => "the event names no account".to_owned(),
            };
            return self
                .dead_letter(RejectedEvent::of(&event, reason), now)
                .await;
        };
        match self
            .store
            .insert_event(event.to_new_webhook_event(channel.tenant_id, channel.id, now))
            .await
        {
            Ok(stored) => {
                report.stored += u64::from(stored.created);
                Ok(())
            }
            Err(e) if e.is_refusal() => {
                let rejected = RejectedEvent::of(&event, format!("refused by the store: {e}"));
                self.dead_letter(rejected, now).await?;
                report.dead_lettered += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps a refused event as a dead letter, under its channel's tenant when
    /// its account is connected (without a tenant otherwise).
    async fn dead_letter(
        &self,
        rejected: RejectedEvent,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StorageError> {
        tracing::warn!(platform = %rejected.platform, reason = %rejected.reason, "webhook event dead-lettered");
        let raw = serde_json::to_vec(&rejected.payload).unwrap_or_default();
        let mut letter = NewDeadLetter::new(
            rejected.platform.clone(),
            dead_letter_key(&raw),
            &raw,
            &rejected.reason,
            now,
        );
        if let Some(channel) = self
            .channel_for(&rejected.platform, rejected.account_id.as_deref())
            .await?
        {
            letter = letter.for_channel(channel.tenant_id, channel.id);
        }
        self.store.insert_dead_letter(letter).await?;
        Ok(())
    }
}

/// The body's counts as metrics: an event of an unconnected account is
/// dead-lettered too; what is neither stored nor dead-lettered was stored
/// already (a redelivery).
fn record(connector: &dyn PlatformConnector, report: &IngestReport) {
    let dead = report.dead_lettered.saturating_add(report.unknown_account);
    crate::telemetry::ingested(
        connector.platform().as_str(),
        report.stored,
        report
            .events
            .saturating_sub(report.stored)
            .saturating_sub(dead),
        dead,
    );
}
