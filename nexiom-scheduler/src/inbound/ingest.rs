//! Ingestion: a webhook POST verified, then read and stored event by event,
//! before anything else happens to it.

use std::collections::{BTreeMap, HashSet};

use nexiom_connectors::{
    NormalizedEvent, PlatformConnector, RejectedEvent, WebhookError, WebhookHeaders,
    hmac_sha256_hex,
};
use nexiom_core::{NewDeadLetter, Platform};
use nexiom_storage::{EventWrite, StorageError};
use serde::{Deserialize, Serialize};

use super::channels::{ChannelDirectory, ChannelRef};
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

/// The dead-letter key of one event's raw JSON, addressed to `account`: the
/// account is part of it, so that the same JSON refused for two accounts
/// (a change without a value is `{"field":"comments"}` for every account)
/// is kept for each, not only for the first.
fn event_letter_key(account: Option<&str>, raw: &[u8]) -> String {
    match account {
        Some(account) => {
            let mut keyed = Vec::with_capacity(account.len() + 1 + raw.len());
            keyed.extend_from_slice(account.as_bytes());
            keyed.push(0);
            keyed.extend_from_slice(raw);
            dead_letter_key(&keyed)
        }
        None => dead_letter_key(raw),
    }
}

impl InboundPipeline {
    /// Verifies the signature of a webhook POST over its exact raw body, reads
    /// it event by event and stores every event (insert-if-absent on
    /// `(platform, event_id)`) under the channel connected for its account:
    /// the body's events go in one statement, committed together with the
    /// events of other requests arriving at the same moment (group commit,
    /// see [`GroupCommitConfig`](super::GroupCommitConfig)), and the call
    /// returns only once that commit is done. Channels are looked up by
    /// account through a cache (see
    /// [`InboundPipeline::channel_changed`](super::InboundPipeline::channel_changed)).
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
    /// A body's dead letters are written together once its events are
    /// committed ([`DeadLetterStore::insert_dead_letters`](nexiom_storage::DeadLetterStore::insert_dead_letters)),
    /// and an account found with no channel is looked up once per body.
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
        // Each event's payload is moved into the row to store, not copied:
        // `read` keeps the event without it, with its position in the body.
        let mut read: Vec<(usize, NormalizedEvent)> = Vec::new();
        let mut new_events = Vec::new();
        // The body's dead letters, written together at the end.
        let mut letters = Vec::new();
        let mut lookups = Lookups::new(&self.channels);
        for (position, item) in items.into_iter().enumerate() {
            report.events += 1;
            match item {
                Ok(mut event) => match lookups
                    .of(&event.platform, event.account_id.as_deref())
                    .await?
                {
                    Some(target) => {
                        let payload = std::mem::take(&mut event.payload);
                        let mut row =
                            event.to_new_webhook_event(target.tenant_id, target.channel_id, now);
                        row.payload = payload;
                        new_events.push(row);
                        read.push((position, event));
                    }
                    None => letters.push(unknown_account(&event, now, &mut report)),
                },
                Err(rejected) => {
                    letters.push(letter(rejected, now, &mut lookups).await?);
                    report.dead_lettered += 1;
                }
            }
        }
        // Every event of the body in one statement, committed with the
        // other requests' of the same moment.
        let answers = self.writer.write(new_events).await?;
        all_answered(&answers, read.len())?;
        let mut payloads = Payloads::default();
        // Events whose cached channel is gone, stored again together once
        // their accounts are looked up afresh.
        let mut again = Vec::new();
        for ((position, mut event), answer) in read.into_iter().zip(answers) {
            match answer {
                EventWrite::Created => report.stored += 1,
                EventWrite::Existing => {}
                // The channel kept for the account is not there any more:
                // looked up again below.
                EventWrite::Refused(StorageError::UnknownReference { .. }) => {
                    if let Some(account) = &event.account_id {
                        lookups.forget(&event.platform, account);
                    }
                    event.payload = payloads.take(connector, body, now, position, &event);
                    again.push(event);
                }
                EventWrite::Refused(e) => {
                    event.payload = payloads.take(connector, body, now, position, &event);
                    let rejected = RejectedEvent::of(&event, format!("refused by the store: {e}"));
                    letters.push(letter(rejected, now, &mut lookups).await?);
                    report.dead_lettered += 1;
                }
            }
        }
        if !again.is_empty() {
            self.ingest_again(again, now, &mut report, &mut lookups, &mut letters)
                .await?;
        }
        if !letters.is_empty() {
            self.write_letters(&letters).await?;
        }
        record(connector, &report);
        Ok(report)
    }

    /// The events whose cached channel was gone when they were written:
    /// their accounts looked up again (once each), and those found connected
    /// (a channel connected anew for the account) stored together in one
    /// more write; the others become dead letters, to be written with the
    /// body's (no channel for the account any more, or the store refuses
    /// the event, a channel removed again included).
    async fn ingest_again(
        &self,
        events: Vec<NormalizedEvent>,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut IngestReport,
        lookups: &mut Lookups<'_>,
        letters: &mut Vec<NewDeadLetter>,
    ) -> Result<(), StorageError> {
        let mut found = Vec::with_capacity(events.len());
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            match lookups
                .of(&event.platform, event.account_id.as_deref())
                .await?
            {
                Some(target) => {
                    rows.push(event.to_new_webhook_event(target.tenant_id, target.channel_id, now));
                    found.push((event, target));
                }
                None => letters.push(unknown_account(&event, now, report)),
            }
        }
        let answers = self.writer.write(rows).await?;
        all_answered(&answers, found.len())?;
        for ((event, target), answer) in found.into_iter().zip(answers) {
            match answer {
                EventWrite::Created => report.stored += 1,
                EventWrite::Existing => {}
                EventWrite::Refused(e) => {
                    let rejected = RejectedEvent::of(&event, format!("refused by the store: {e}"));
                    report.dead_lettered += 1;
                    letters.push(letter_of(rejected, now, Some(target)));
                }
            }
        }
        Ok(())
    }

    /// The body's dead letters in one call (one statement per tenant). When
    /// the store refuses them for a reference (a channel kept for an account
    /// was removed meanwhile), they are written again one call per channel,
    /// and the letters of a channel that is gone are kept without a tenant:
    /// never lost.
    async fn write_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StorageError> {
        match self.store.insert_dead_letters(letters).await {
            Err(StorageError::UnknownReference { .. }) => {}
            other => return other.map(|_| ()),
        }
        let mut by_channel: BTreeMap<_, Vec<NewDeadLetter>> = BTreeMap::new();
        for letter in letters {
            by_channel
                .entry((letter.tenant_id, letter.channel_id))
                .or_default()
                .push(letter.clone());
        }
        for (_, group) in by_channel {
            match self.store.insert_dead_letters(&group).await {
                Err(e @ StorageError::UnknownReference { .. }) => {
                    tracing::warn!(error = %e, letters = group.len(), "dead letters kept without a tenant: their tenant or channel is gone");
                    let orphans: Vec<NewDeadLetter> = group
                        .into_iter()
                        .map(|letter| NewDeadLetter {
                            tenant_id: None,
                            channel_id: None,
                            ..letter
                        })
                        .collect();
                    self.store.insert_dead_letters(&orphans).await?;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

/// Never acknowledge an event the store did not answer for: an error (so
/// 5xx, and the platform delivers again) unless there is one answer per
/// event written.
fn all_answered(answers: &[EventWrite], written: usize) -> Result<(), StorageError> {
    if answers.len() == written {
        return Ok(());
    }
    Err(StorageError::backend(format!(
        "the store answered {} of {written} events: deliver the webhook again",
        answers.len()
    )))
}

/// The dead letter of an event of an account no channel is connected for
/// (the lookup found none): without a tenant.
fn unknown_account(
    event: &NormalizedEvent,
    now: chrono::DateTime<chrono::Utc>,
    report: &mut IngestReport,
) -> NewDeadLetter {
    tracing::warn!(platform = %event.platform, event_id = %event.event_id, "webhook event for an unknown account: dead-lettered without a tenant");
    report.unknown_account += 1;
    let reason = match &event.account_id {
        Some(account) => format!("no channel is connected for account {account}"),
        None => "the event names no account".to_owned(),
    };
    letter_of(RejectedEvent::of(event, reason), now, None)
}

/// The dead letter of a refused event, under its channel's tenant when its
/// account is connected (without a tenant otherwise).
async fn letter(
    rejected: RejectedEvent,
    now: chrono::DateTime<chrono::Utc>,
    lookups: &mut Lookups<'_>,
) -> Result<NewDeadLetter, StorageError> {
    let target = lookups
        .of(&rejected.platform, rejected.account_id.as_deref())
        .await?;
    Ok(letter_of(rejected, now, target))
}

/// A rejected event as a dead letter, keyed by a hash of its raw JSON.
fn letter_of(
    rejected: RejectedEvent,
    now: chrono::DateTime<chrono::Utc>,
    target: Option<ChannelRef>,
) -> NewDeadLetter {
    tracing::warn!(platform = %rejected.platform, reason = %rejected.reason, "webhook event dead-lettered");
    let raw = serde_json::to_vec(&rejected.payload).unwrap_or_default();
    let letter = NewDeadLetter::new(
        rejected.platform.clone(),
        event_letter_key(rejected.account_id.as_deref(), &raw),
        &raw,
        &rejected.reason,
        now,
    );
    match target {
        Some(target) => letter.for_channel(target.tenant_id, target.channel_id),
        None => letter,
    }
}

/// One body's channel lookups: the directory's (which keeps found channels
/// only), and the accounts found unconnected earlier in the same body, so
/// that a body of 2,700 events of an unknown account costs one lookup, not
/// 2,700. Not kept beyond the body: a channel connected a moment later gets
/// its events at once.
struct Lookups<'a> {
    channels: &'a ChannelDirectory,
    unconnected: HashSet<(Platform, String)>,
    forgotten: HashSet<(Platform, String)>,
}

impl<'a> Lookups<'a> {
    fn new(channels: &'a ChannelDirectory) -> Self {
        Lookups {
            channels,
            unconnected: HashSet::new(),
            forgotten: HashSet::new(),
        }
    }

    /// Drops the directory's entry for `(platform, account)` (the store
    /// found its channel gone), once per body: the next lookup asks the
    /// store again and its answer is kept as usual.
    fn forget(&mut self, platform: &Platform, account: &str) {
        if self
            .forgotten
            .insert((platform.clone(), account.to_owned()))
        {
            self.channels.forget(platform, account);
        }
    }

    /// The channel connected for `(platform, account)`, if any.
    async fn of(
        &mut self,
        platform: &Platform,
        account: Option<&str>,
    ) -> Result<Option<ChannelRef>, StorageError> {
        let Some(account) = account else {
            return Ok(None);
        };
        if !self.unconnected.is_empty()
            && self
                .unconnected
                .contains(&(platform.clone(), account.to_owned()))
        {
            return Ok(None);
        }
        let found = self.channels.lookup(platform, Some(account)).await?;
        if found.is_none() {
            self.unconnected
                .insert((platform.clone(), account.to_owned()));
        }
        Ok(found)
    }
}

/// The payloads of a body's events, read again from the body only when an
/// event the store refused needs its own back (its payload was moved into
/// the row written). Normalization of the same body at the same time gives
/// the same events in the same order; a connector whose reading is not
/// repeatable is still answered right: the payload is matched by position and
/// event id, else looked for by event id, else replaced by a note naming the
/// event (so two such events never share a dead letter's key).
#[derive(Default)]
struct Payloads(Option<Vec<(Option<String>, serde_json::Value)>>);

impl Payloads {
    fn take(
        &mut self,
        connector: &dyn PlatformConnector,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
        position: usize,
        event: &NormalizedEvent,
    ) -> serde_json::Value {
        let all = self.0.get_or_insert_with(|| {
            connector
                .handle_webhook_events(body, now)
                .map(|items| {
                    items
                        .into_iter()
                        .map(|item| match item {
                            Ok(event) => (Some(event.event_id), event.payload),
                            Err(rejected) => (rejected.event_id, rejected.payload),
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let mine = |(id, _): &&mut (Option<String>, serde_json::Value)| {
            id.as_deref() == Some(event.event_id.as_str())
        };
        let found = match all.get_mut(position).filter(|item| mine(item)) {
            Some(item) => Some(item),
            None => all.iter_mut().find(|item| mine(item)),
        };
        match found {
            Some((_, payload)) => std::mem::take(payload),
            None => {
                tracing::warn!(platform = %event.platform, event_id = %event.event_id,
                    "the body read again does not hold this event: its dead letter keeps a note instead of its JSON");
                serde_json::json!({
                    "event_id": event.event_id,
                    "note": "the event's JSON could not be read again from its body",
                })
            }
        }
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
