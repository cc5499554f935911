//! Ingestion: webhooks verified, then stored once; one bad event is
//! dead-lettered without losing its neighbours.

use std::future::Future;
use std::sync::Arc;

use nexiom_connectors::{
    META_SIGNATURE_HEADER, MOCK_WEBHOOK_SECRET, MetaWebhookVerifier, MockConnector,
    NormalizedEvent, WebhookHeaders,
};
use nexiom_core::*;
use nexiom_scheduler::inbound::{InboundError, IngestReport};
use nexiom_storage::conformance::TestStore;
use nexiom_triage::TemplateGenerator;
use serde_json::json;

use super::fixture;
use super::support::{drain, pipeline};

pub async fn webhooks_are_verified_then_stored_once<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    let mock = MockConnector::new(Platform::WhatsApp);
    let event = |id: &str, account: &str| NormalizedEvent {
        platform: Platform::WhatsApp,
        account_id: Some(account.into()),
        event_id: id.into(),
        kind: EventKind::Message,
        sender_id: Some("33611111111".into()),
        sender_name: Some("Léa".into()),
        text: Some("Bonjour".into()),
        has_media: false,
        delivery_status: None,
        message_id: None,
        thread_id: None,
        post_id: None,
        parent_id: None,
        occurred_at: clock.now(),
        payload: json!({"id": id}),
    };
    let body = serde_json::to_vec(&vec![
        event("wamid.w1", "pn-fixture"),
        event("wamid.w2", "pn-fixture"),
        event("wamid.w3", "pn-nobody"),
    ])
    .unwrap();
    let signed = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(MOCK_WEBHOOK_SECRET), &body),
    );

    // A wrong signature: refused, nothing stored.
    let forged = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new("not-the-secret"), &body),
    );
    assert!(matches!(
        p.ingest_webhook(&mock, &forged, &body).await,
        Err(InboundError::Webhook(_))
    ));
    assert!(
        store
            .list_unrouted_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let first = p.ingest_webhook(&mock, &signed, &body).await.unwrap();
    assert_eq!(
        first,
        IngestReport {
            events: 3,
            stored: 2,
            unknown_account: 1,
            dead_lettered: 0,
        }
    );
    // A redelivery stores nothing new.
    let again = p.ingest_webhook(&mock, &signed, &body).await.unwrap();
    assert_eq!(again.stored, 0);
    // The event for the unknown account is kept once, as a dead letter
    // without a tenant.
    let letters = store.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].tenant_id, None);
    assert!(letters[0].reason.contains("no channel is connected"));
    let unrouted = store.list_unrouted_events(None, 10).await.unwrap();
    assert_eq!(unrouted.len(), 2);
    assert!(
        unrouted
            .iter()
            .all(|e| e.channel_id == s.whatsapp.id && e.received_at == clock.now())
    );
    assert_eq!(drain(&p, 10).await.messages_created, 2);
    ts.cleanup().await;
}

fn whatsapp_message(id: &str, timestamp: Option<&str>, text: &str) -> serde_json::Value {
    let mut m = json!({"from": "33611111111", "id": id, "type": "text", "text": {"body": text}});
    if let Some(t) = timestamp {
        m["timestamp"] = json!(t);
    }
    m
}

fn whatsapp_body(messages: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA",
        "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "pn-fixture"},
        "messages": messages}}]}]}),
    )
    .unwrap()
}

/// A signed body good / bad / good, for each kind of bad event (one the store
/// refuses: a NUL in the text, a 256-byte id, a control character in the id;
/// one the connector cannot read: no timestamp, a negative timestamp): both
/// good events are stored, the bad one is dead-lettered with its reason and
/// tenant, the answer is `Ok` (200), and a redelivery changes nothing.
pub async fn one_bad_event_never_loses_its_neighbours<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    let secret = "ingest-app-secret";
    let wa = nexiom_connectors::WhatsAppConnector::builder()
        .with_app_secret(secret)
        .build()
        .unwrap();
    let now = clock.now().timestamp().to_string();
    let long_id = "w".repeat(256);
    let bad_events = [
        (
            "NUL in text",
            whatsapp_message("wamid.bad-nul", Some(&now), "a\u{0}b"),
            "text",
        ),
        (
            "256-byte id",
            whatsapp_message(&long_id, Some(&now), "x"),
            "event_id",
        ),
        (
            "control character in id",
            whatsapp_message("wamid.bad\u{7}bell", Some(&now), "x"),
            "event_id",
        ),
        (
            "missing timestamp",
            whatsapp_message("wamid.bad-notime", None, "x"),
            "without a valid timestamp",
        ),
        (
            "negative timestamp",
            whatsapp_message("wamid.bad-neg", Some("-1"), "x"),
            "implausible",
        ),
    ];
    for (case, (name, bad, reason)) in bad_events.into_iter().enumerate() {
        let good =
            |n: u32| whatsapp_message(&format!("wamid.good-{case}-{n}"), Some(&now), "hello");
        let expected = bad.clone();
        let body = whatsapp_body(vec![good(1), bad, good(2)]);
        let headers = WebhookHeaders::new().with(
            META_SIGNATURE_HEADER,
            MetaWebhookVerifier::sign(&SecretString::new(secret), &body),
        );
        let letters_before = store.list_dead_letters(None, 100).await.unwrap().len();
        let unrouted_before = store.list_unrouted_events(None, 100).await.unwrap().len();
        let first = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
        assert_eq!(
            first,
            IngestReport {
                events: 3,
                stored: 2,
                unknown_account: 0,
                dead_lettered: 1
            },
            "{name}"
        );
        for n in [1, 2] {
            let id = format!("wamid.good-{case}-{n}");
            assert!(
                store
                    .find_event(s.tenant.id, &Platform::WhatsApp, &id)
                    .await
                    .unwrap()
                    .is_some(),
                "{name}: {id} stored"
            );
        }
        let letters = store.list_dead_letters(None, 100).await.unwrap();
        assert_eq!(letters.len(), letters_before + 1, "{name}");
        let letter = &letters[0];
        assert!(letter.reason.contains(reason), "{name}: {}", letter.reason);
        assert_eq!(letter.tenant_id, Some(s.tenant.id), "{name}");
        assert_eq!(letter.channel_id, Some(s.whatsapp.id), "{name}");
        assert_eq!(letter.platform, Platform::WhatsApp);
        assert_eq!(letter.received_at, clock.now());
        // The letter keeps the event's own JSON, not its neighbours' (the
        // payload of an event the store refused is read again from the body).
        let own: serde_json::Value = serde_json::from_str(&letter.excerpt)
            .unwrap_or_else(|e| panic!("{name}: the excerpt is the event's JSON: {e}"));
        assert_eq!(own, expected, "{name}");

        // Redelivered: the same answer, no new event, no new dead letter.
        let again = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
        assert_eq!(again.stored, 0, "{name}");
        assert_eq!(again.dead_lettered, 1, "{name}");
        assert_eq!(
            store.list_dead_letters(None, 100).await.unwrap(),
            letters,
            "{name}"
        );
        assert_eq!(
            store.list_unrouted_events(None, 100).await.unwrap().len(),
            unrouted_before + 2,
            "{name}"
        );
    }

    // A verified body that is not a payload at all: dead-lettered whole, once.
    let junk = br#"{"object":"nothing"}"#;
    let headers = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(secret), junk),
    );
    for _ in 0..2 {
        let report = p.ingest_webhook(&wa, &headers, junk).await.unwrap();
        assert_eq!(report.dead_lettered, 1);
    }
    let letters = store.list_dead_letters(None, 100).await.unwrap();
    assert_eq!(letters.len(), 6);
    assert_eq!(letters[0].excerpt, r#"{"object":"nothing"}"#);
    assert_eq!(letters[0].tenant_id, None);
    // Not signed: refused, nothing dead-lettered.
    assert!(matches!(
        p.ingest_webhook(&wa, &WebhookHeaders::new(), junk).await,
        Err(InboundError::Webhook(_))
    ));
    assert_eq!(store.list_dead_letters(None, 100).await.unwrap().len(), 6);
    ts.cleanup().await;
}

/// Two Pages of two tenants each receive a feed change without a value (the
/// same JSON, `{"field":"feed"}`) beside a good comment: each tenant keeps
/// its own dead letter (the account is part of the letter's key; before,
/// the second was taken for a redelivery of the first and never kept), and
/// a redelivery adds none.
pub async fn the_same_refused_json_is_kept_for_each_account<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let (p, clock) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    let secret = "ingest-app-secret";
    let fb = nexiom_connectors::FacebookConnector::builder()
        .with_app_secret(secret)
        .build()
        .unwrap();
    let mut tenants = Vec::new();
    for page in ["page-a", "page-b"] {
        let tenant = store
            .create_tenant(NewTenant::new(page, clock.now()))
            .await
            .unwrap();
        store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: page.into(),
                name: page.into(),
                credentials: Credentials::default(),
                created_at: clock.now(),
            })
            .await
            .unwrap();
        tenants.push((tenant.id, page));
    }
    for (tenant, page) in &tenants {
        let body = serde_json::to_vec(&json!({"object": "page", "entry": [{
            "id": page, "time": clock.now().timestamp(), "changes": [
                {"field": "feed"},
                {"field": "feed", "value": {"item": "comment", "verb": "add",
                    "comment_id": format!("{page}_c1"), "post_id": format!("{page}_p1"),
                    "from": {"id": "fan", "name": "Fan"}, "message": "hi",
                    "created_time": clock.now().timestamp()}}]}]}))
        .unwrap();
        let headers = WebhookHeaders::new().with(
            META_SIGNATURE_HEADER,
            MetaWebhookVerifier::sign(&SecretString::new(secret), &body),
        );
        for _ in 0..2 {
            let report = p.ingest_webhook(&fb, &headers, &body).await.unwrap();
            assert_eq!((report.events, report.dead_lettered), (2, 1), "{page}");
        }
        let letters = store.list_dead_letters(Some(*tenant), 10).await.unwrap();
        assert_eq!(letters.len(), 1, "{page} keeps its own letter, once");
        assert!(letters[0].reason.contains("without a value"));
    }
    ts.cleanup().await;
}
