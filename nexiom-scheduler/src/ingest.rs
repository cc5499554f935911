//! Webhook ingestion: one signed POST body in, raw events stored, counts out.
//!
//! [`ingest_webhook`] is what a webhook receiver calls on its request path and
//! the only thing it calls: it verifies the signature over the exact raw body
//! (a body that does not verify stores nothing), normalizes the body with the
//! connector, finds each event's channel with
//! `find_channel_by_account(platform, account_id)`, and stores each event with
//! `insert_event`, which deduplicates on `(platform, event_id)` so a
//! redelivery is counted as a duplicate and stored once. Routing, triage and
//! replies happen later, in the worker.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nexiom_connectors::{ConnectorError, PlatformConnector, WebhookError, WebhookHeaders};
use nexiom_core::Channel;
use nexiom_storage::{StorageError, Store};
use thiserror::Error;

/// What one webhook delivery did to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events in the body (after normalization).
    pub events: usize,
    /// Events stored by this call.
    pub stored: usize,
    /// Events stored already (a redelivery): nothing was written for them.
    pub duplicates: usize,
    /// Events addressed to an account no channel is connected for (or with no
    /// account id at all): dropped, nothing stored.
    pub unknown_accounts: usize,
}

/// Why a webhook delivery was refused or could not be stored.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The signature is missing, malformed or does not match the body, or no
    /// secret is configured to check it: nothing was read or stored. Answer
    /// 401/403 so the platform (or an attacker) learns nothing more.
    #[error("webhook refused: {0}")]
    Unauthenticated(ConnectorError),
    /// The body verified but is not a payload the connector understands.
    /// Answer 400; the platform will not fix it by retrying.
    #[error("webhook body not understood: {0}")]
    InvalidPayload(ConnectorError),
    /// The store failed; some events of the body may be stored already (a
    /// redelivery stores the rest once). Answer 5xx so the platform retries.
    #[error("could not store the webhook events: {0}")]
    Storage(#[from] StorageError),
}

impl IngestError {
    /// Whether the caller should answer with a client error that a retry will
    /// not fix (signature or payload), as opposed to a server error.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, IngestError::Storage(_))
    }
}

/// Verifies, normalizes and stores one webhook delivery (see the module doc).
///
/// `received_at` is stamped on every stored event (take it from the clock).
/// Events are stored one by one in body order; channel look-ups are made once
/// per account of the body.
pub async fn ingest_webhook(
    store: &dyn Store,
    connector: &dyn PlatformConnector,
    headers: &WebhookHeaders,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<IngestReport, IngestError> {
    connector
        .verify_webhook(headers, body)
        .map_err(IngestError::Unauthenticated)?;
    let events = connector.handle_webhook(body).map_err(|e| match e {
        ConnectorError::Webhook(
            WebhookError::MissingSignature { .. }
            | WebhookError::MalformedSignature { .. }
            | WebhookError::SignatureMismatch { .. }
            | WebhookError::NotConfigured { .. },
        ) => IngestError::Unauthenticated(e),
        other => IngestError::InvalidPayload(other),
    })?;

    let mut report = IngestReport {
        events: events.len(),
        ..IngestReport::default()
    };
    let mut channels: HashMap<String, Option<Channel>> = HashMap::new();
    for event in &events {
        let Some(account) = event.account_id.as_deref() else {
            report.unknown_accounts += 1;
            continue;
        };
        let channel = match channels.get(account) {
            Some(found) => found.clone(),
            None => {
                let found = store
                    .find_channel_by_account(&event.platform, account)
                    .await?;
                channels.insert(account.to_owned(), found.clone());
                found
            }
        };
        let Some(channel) = channel else {
            tracing::debug!(
                platform = %event.platform,
                account,
                event_id = %event.event_id,
                "webhook event for an unknown account dropped"
            );
            report.unknown_accounts += 1;
            continue;
        };
        let inserted = store
            .insert_event(event.to_new_webhook_event(channel.tenant_id, channel.id, received_at))
            .await?;
        if inserted.created {
            report.stored += 1;
        } else {
            report.duplicates += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use nexiom_connectors::{MetaWebhookVerifier, WhatsAppConnector};
    use nexiom_core::{Credentials, NewChannel, NewTenant, Platform, SecretString};
    use nexiom_storage::{MemoryStore, TenantStore};

    use super::*;

    const SECRET: &str = "app-secret";

    fn body(account: &str, wamid: &str) -> Vec<u8> {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"waba","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550000000","phone_number_id":"{account}"}},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"33600000001"}}],"messages":[{{"from":"33600000001","id":"{wamid}","timestamp":"1763780000","type":"text","text":{{"body":"hello"}}}}]}}}}]}}]}}"#
        )
        .into_bytes()
    }

    fn signed(body: &[u8]) -> WebhookHeaders {
        WebhookHeaders::new().with(
            "X-Hub-Signature-256",
            MetaWebhookVerifier::sign(&SecretString::new(SECRET), body),
        )
    }

    async fn setup() -> (Arc<MemoryStore>, WhatsAppConnector, DateTime<Utc>) {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let store = Arc::new(MemoryStore::new());
        let tenant = store
            .create_tenant(NewTenant::new("Acme", now))
            .await
            .unwrap();
        store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_account_id: "phone-1".into(),
                name: "Acme WhatsApp".into(),
                credentials: Credentials::default(),
                created_at: now,
            })
            .await
            .unwrap();
        let connector = WhatsAppConnector::builder()
            .with_app_secret(SECRET)
            .build()
            .unwrap();
        (store, connector, now)
    }

    #[tokio::test]
    async fn stores_once_and_counts_duplicates_and_unknown_accounts() {
        let (store, wa, now) = setup().await;
        let b = body("phone-1", "wamid.1");
        let first = ingest_webhook(store.as_ref(), &wa, &signed(&b), &b, now)
            .await
            .unwrap();
        assert_eq!((first.events, first.stored, first.duplicates), (1, 1, 0));
        let again = ingest_webhook(store.as_ref(), &wa, &signed(&b), &b, now)
            .await
            .unwrap();
        assert_eq!((again.stored, again.duplicates), (0, 1));
        let other = body("phone-unknown", "wamid.2");
        let unknown = ingest_webhook(store.as_ref(), &wa, &signed(&other), &other, now)
            .await
            .unwrap();
        assert_eq!((unknown.stored, unknown.unknown_accounts), (0, 1));
    }

    #[tokio::test]
    async fn a_bad_signature_stores_nothing() {
        let (store, wa, now) = setup().await;
        let b = body("phone-1", "wamid.1");
        let mut tampered = b.clone();
        tampered.extend_from_slice(b" ");
        let err = ingest_webhook(store.as_ref(), &wa, &signed(&b), &tampered, now)
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Unauthenticated(_)), "{err}");
        let err = ingest_webhook(store.as_ref(), &wa, &WebhookHeaders::new(), &b, now)
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Unauthenticated(_)), "{err}");
        // Nothing stored: a later valid delivery of the same body is new.
        let ok = ingest_webhook(store.as_ref(), &wa, &signed(&b), &b, now)
            .await
            .unwrap();
        assert_eq!(ok.stored, 1);
    }
}
