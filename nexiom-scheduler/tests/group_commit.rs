//! The receiver's group commit end to end, on memory and on PostgreSQL:
//! many concurrent signed WhatsApp bodies (redeliveries among them, one bad
//! event, another tenant's key, an unknown account) through
//! `InboundPipeline::ingest_webhook`; and one body mostly of an unknown
//! account.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod group_commit {
    pub mod routing_faults;
}

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::{as_admin, on_postgres};
use nexiom_connectors::{
    META_SIGNATURE_HEADER, MetaWebhookVerifier, WebhookHeaders, WhatsAppConnector,
};
use nexiom_core::*;
use nexiom_scheduler::inbound::{GroupCommitConfig, InboundPipeline, IngestReport};
use nexiom_storage::conformance::TestStore;
use serde_json::json;

const SECRET: &str = "group-commit-secret";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap()
}

fn message(id: &str, text: &str) -> serde_json::Value {
    json!({"from": "33611111111", "id": id, "timestamp": t0().timestamp().to_string(),
           "type": "text", "text": {"body": text}})
}

fn body(account: &str, messages: Vec<serde_json::Value>) -> (Vec<u8>, WebhookHeaders) {
    signed(account, "messages", messages)
}

/// A signed WhatsApp body for `account` whose change value holds `items`
/// under `key` (`messages`, `statuses`).
fn signed(account: &str, key: &str, items: Vec<serde_json::Value>) -> (Vec<u8>, WebhookHeaders) {
    let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": account}, key: items}}]}]}))
    .unwrap();
    let headers = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(SECRET), &body),
    );
    (body, headers)
}

async fn channel(store: &dyn nexiom_storage::Store, name: &str, account: &str) -> Channel {
    let tenant = store
        .create_tenant(NewTenant::new(name, t0()))
        .await
        .unwrap();
    store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: account.into(),
            name: account.into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap()
}

/// 64 requests at once (every 4th a redelivery of the one before; one body
/// with a NUL in an event; one with another tenant's key; one for an
/// unknown account): each call returns only once its events can be read,
/// each answer counts exactly its own events, and every distinct event is
/// stored once.
async fn concurrent_requests_are_stored_once_and_answered_after_commit<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-gc-a").await;
    let beta = channel(&*store, "Beta", "pn-gc-b").await;
    // Beta holds the key `wamid.shared` already.
    let (shared, headers) = body("pn-gc-b", vec![message("wamid.shared", "hello")]);
    let clock = Arc::new(ManualClock::new(t0()));
    let p = InboundPipeline::new(
        Arc::clone(&store),
        clock.clone(),
        Arc::new(nexiom_triage::TemplateGenerator::new()),
    )
    .with_group_commit(GroupCommitConfig {
        max_flushes: 2,
        ..GroupCommitConfig::default()
    });
    let wa = Arc::new(
        WhatsAppConnector::builder()
            .with_app_secret(SECRET)
            .build()
            .unwrap(),
    );
    p.ingest_webhook(wa.as_ref(), &headers, &shared)
        .await
        .unwrap();

    let request = |r: usize| -> (Vec<u8>, WebhookHeaders, IngestReport) {
        // Every 4th request redelivers the one before it.
        let n = if r % 4 == 3 { r - 1 } else { r };
        let mut messages: Vec<_> = (0..3)
            .map(|i| message(&format!("wamid.gc.{n}.{i}"), "Bonjour"))
            .collect();
        let mut expected = IngestReport {
            events: 3,
            stored: if r % 4 == 3 { 0 } else { 3 },
            unknown_account: 0,
            dead_lettered: 0,
        };
        let mut account = "pn-gc-a";
        match r {
            10 => {
                messages.push(message("wamid.gc.nul", "a\u{0}b"));
                expected.events = 4;
                expected.dead_lettered = 1;
            }
            20 => {
                messages.push(message("wamid.shared", "taken"));
                expected.events = 4;
                expected.dead_lettered = 1;
            }
            29 => {
                account = "pn-gc-nobody";
                expected.stored = 0;
                expected.unknown_account = 3;
            }
            _ => {}
        }
        let (body, headers) = body(account, messages);
        (body, headers, expected)
    };
    // Redeliveries must follow their original: request r - 1 completes
    // first, so the pairs run in order inside one task.
    let mut tasks = Vec::new();
    for pair in 0..16 {
        let p = p.clone();
        let wa = Arc::clone(&wa);
        let store = Arc::clone(&store);
        let work: Vec<_> = (pair * 4..pair * 4 + 4).map(request).collect();
        let tenant = acme.tenant_id;
        tasks.push(tokio::spawn(async move {
            let mut reports = Vec::new();
            for (r, (body, headers, expected)) in (pair * 4..).zip(work) {
                let report = p
                    .ingest_webhook(wa.as_ref(), &headers, &body)
                    .await
                    .unwrap();
                assert_eq!(report, expected, "request {r}");
                // Answered after the commit: the events can be read.
                if expected.stored > 0 {
                    let n = if r % 4 == 3 { r - 1 } else { r };
                    for i in 0..3 {
                        let id = format!("wamid.gc.{n}.{i}");
                        assert!(
                            store
                                .find_event(tenant, &Platform::WhatsApp, &id)
                                .await
                                .unwrap()
                                .is_some(),
                            "{id} readable when request {r} is answered"
                        );
                    }
                }
                reports.push(report);
            }
            reports
        }));
    }
    let mut stored = 0;
    for task in tasks {
        stored += task.await.unwrap().iter().map(|r| r.stored).sum::<u64>();
    }
    let events = store.list_unrouted_events(None, 1_000).await.unwrap();
    let ids: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "no event stored twice");
    // 48 originals of 3 events, minus the unknown account's; plus Beta's.
    assert_eq!(stored, 47 * 3);
    assert_eq!(events.len(), 47 * 3 + 1);
    assert!(
        events
            .iter()
            .filter(|e| e.event_id != "wamid.shared")
            .all(|e| e.channel_id == acme.id)
    );
    let shared = events
        .iter()
        .find(|e| e.event_id == "wamid.shared")
        .unwrap();
    assert_eq!(shared.channel_id, beta.id);
    // The NUL event, the taken key and the unknown account's three events.
    let letters = store.list_dead_letters(None, 100).await.unwrap();
    assert_eq!(letters.len(), 5);
    assert_eq!(letters.iter().filter(|l| l.tenant_id.is_none()).count(), 3);
    ts.cleanup().await;
}

/// A pipeline with the default writer at `t0`, and its WhatsApp connector.
fn receiver(store: &Arc<dyn nexiom_storage::Store>) -> (InboundPipeline, WhatsAppConnector) {
    let p = InboundPipeline::new(
        Arc::clone(store),
        Arc::new(ManualClock::new(t0())),
        Arc::new(nexiom_triage::TemplateGenerator::new()),
    );
    let wa = WhatsAppConnector::builder()
        .with_app_secret(SECRET)
        .build()
        .unwrap();
    (p, wa)
}

/// One body of two accounts, one of them connected to no channel: its 40
/// events, an unreadable one and one the store refuses are kept as dead
/// letters, the good ones stored; a
/// redelivery adds nothing.
async fn a_body_of_an_unknown_account_is_dead_lettered_whole<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-dl-a").await;
    let (p, wa) = receiver(&store);
    let mut unreadable = message("unused", "no id");
    unreadable.as_object_mut().unwrap().remove("id");
    let known = vec![
        message("wamid.dl.1", "Bonjour"),
        message("wamid.dl.nul", "a\u{0}b"),
        unreadable,
        message("wamid.dl.2", "Merci"),
    ];
    let unknown: Vec<_> = (0..40)
        .map(|i| message(&format!("wamid.dl.x{i}"), "hello"))
        .collect();
    let change = |account: &str, messages: Vec<serde_json::Value>| {
        json!({"field": "messages", "value": {
            "metadata": {"phone_number_id": account}, "messages": messages}})
    };
    let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA", "changes": [change("pn-dl-a", known), change("pn-dl-nobody", unknown)]}]}))
    .unwrap();
    let headers = WebhookHeaders::new().with(
        META_SIGNATURE_HEADER,
        MetaWebhookVerifier::sign(&SecretString::new(SECRET), &body),
    );
    let expected = IngestReport {
        events: 44,
        stored: 2,
        unknown_account: 40,
        dead_lettered: 2,
    };
    let report = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
    assert_eq!(report, expected);
    let letters = store.list_dead_letters(None, 100).await.unwrap();
    assert_eq!(letters.len(), 42);
    let of_acme: Vec<_> = letters.iter().filter(|l| l.tenant_id.is_some()).collect();
    assert_eq!(of_acme.len(), 2, "the unreadable and the refused event");
    assert!(of_acme.iter().all(|l| l.channel_id == Some(acme.id)));
    assert!(
        letters
            .iter()
            .filter(|l| l.tenant_id.is_none())
            .all(|l| l.reason == "no channel is connected for account pn-dl-nobody")
    );
    let events = store.list_unrouted_events(None, 100).await.unwrap();
    assert_eq!(events.len(), 2);

    // A redelivery: the same counts, nothing stored or kept again.
    let again = p.ingest_webhook(&wa, &headers, &body).await.unwrap();
    assert_eq!(
        again,
        IngestReport {
            stored: 0,
            ..expected
        }
    );
    assert_eq!(store.list_dead_letters(None, 100).await.unwrap().len(), 42);
    assert_eq!(
        store.list_unrouted_events(None, 100).await.unwrap().len(),
        2
    );
    ts.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    concurrent_requests_are_stored_once_and_answered_after_commit(
        nexiom_storage::conformance::memory_test_store,
    )
    .await;
    a_body_of_an_unknown_account_is_dead_lettered_whole(
        nexiom_storage::conformance::memory_test_store,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn postgres() {
    concurrent_requests_are_stored_once_and_answered_after_commit(
        nexiom_storage::conformance::postgres_test_store,
    )
    .await;
    a_body_of_an_unknown_account_is_dead_lettered_whole(
        nexiom_storage::conformance::postgres_test_store,
    )
    .await;
}

/// A channel the receiver has cached is deleted behind its back (by hand:
/// the library removes none): the next body of its account loses nothing.
/// Its good event, its unreadable event and the event the store refuses are
/// all kept as dead letters without a tenant, and the answer is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_channel_removed_while_cached_loses_no_event() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let gone = channel(&*store, "Gone", "pn-gone").await;
    let (p, wa) = receiver(&store);
    // Cached by a first body.
    let (first, headers) = body("pn-gone", vec![message("wamid.gone.0", "hi")]);
    p.ingest_webhook(&wa, &headers, &first).await.unwrap();
    delete_channel(&url, &ts, &gone).await;

    let mut unreadable = message("unused", "no id");
    unreadable.as_object_mut().unwrap().remove("id");
    let (second, headers) = body(
        "pn-gone",
        // The refused event first: its dead letter is made while the
        // removed channel is still cached.
        vec![
            message("wamid.gone.nul", "a\u{0}b"),
            message("wamid.gone.1", "hello"),
            unreadable,
        ],
    );
    let report = p.ingest_webhook(&wa, &headers, &second).await.unwrap();
    assert_eq!(
        report,
        IngestReport {
            events: 3,
            stored: 0,
            unknown_account: 1,
            dead_lettered: 2,
        }
    );
    let letters = store.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 3);
    assert!(
        letters
            .iter()
            .all(|l| l.tenant_id.is_none() && l.channel_id.is_none())
    );
    // The account is unknown from now on: a redelivery keeps nothing new.
    let again = p.ingest_webhook(&wa, &headers, &second).await.unwrap();
    assert_eq!(
        again,
        IngestReport {
            events: 3,
            stored: 0,
            unknown_account: 2,
            dead_lettered: 1,
        }
    );
    assert_eq!(store.list_dead_letters(None, 10).await.unwrap().len(), 3);
    ts.cleanup().await;
}

/// Deletes `channel` behind the store's back, as an administrator would by
/// hand (the library removes no channel).
async fn delete_channel(url: &str, ts: &TestStore, channel: &Channel) {
    let deleted = as_admin(url, ts, "DELETE FROM channels WHERE id = $1", Some(channel)).await;
    assert_eq!(deleted, 1, "the channel is deleted");
}

/// The account of a cached channel is connected anew (its channel deleted,
/// another created for it, maybe by another tenant) while the receiver still
/// holds the old one: the next body's events are all stored under the new
/// channel, in one more write, and the event the store refuses is kept as a
/// dead letter of the new channel's tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_channel_reconnected_while_cached_gets_the_next_body() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let old = channel(&*store, "Old", "pn-back").await;
    let (p, wa) = receiver(&store);
    let (first, headers) = body("pn-back", vec![message("wamid.back.0", "hi")]);
    p.ingest_webhook(&wa, &headers, &first).await.unwrap();
    delete_channel(&url, &ts, &old).await;
    let new = channel(&*store, "New", "pn-back").await;

    let ids: Vec<String> = (1..=50).map(|i| format!("wamid.back.{i}")).collect();
    let mut messages: Vec<_> = ids.iter().map(|id| message(id, "hello")).collect();
    messages.push(message("wamid.back.nul", "a\u{0}b"));
    let (second, headers) = body("pn-back", messages);
    let report = p.ingest_webhook(&wa, &headers, &second).await.unwrap();
    assert_eq!(
        report,
        IngestReport {
            events: 51,
            stored: 50,
            unknown_account: 0,
            dead_lettered: 1,
        }
    );
    let stored = store.list_unrouted_events(None, 100).await.unwrap();
    let stored: HashSet<_> = stored
        .iter()
        .filter(|e| e.event_id != "wamid.back.0")
        .map(|e| (e.channel_id, e.event_id.as_str()))
        .collect();
    let expected: HashSet<_> = ids.iter().map(|id| (new.id, id.as_str())).collect();
    assert_eq!(stored, expected, "every event under the new channel, once");
    let letters = store
        .list_dead_letters(Some(new.tenant_id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].channel_id, Some(new.id));
    // A redelivery stores nothing new and keeps no second letter.
    let again = p.ingest_webhook(&wa, &headers, &second).await.unwrap();
    assert_eq!(again.stored, 0);
    assert_eq!(again.dead_lettered, 1);
    assert_eq!(
        store
            .list_dead_letters(Some(new.tenant_id), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    ts.cleanup().await;
}
