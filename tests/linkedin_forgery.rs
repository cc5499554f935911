//! LinkedIn's challenge endpoint must not sign attacker-chosen text: its
//! answer, `HMAC(client secret, challengeCode)`, is the same MAC that
//! authenticates notification bodies. Driven through the webhook receiver of
//! `examples/webhook_server` over real HTTP, on the memory store and on
//! Postgres (when `DATABASE_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/webhook_server/app.rs"]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use nexiom::connectors::{ConnectorRegistry, LinkedInConnector};
use nexiom::core::{Clock, Credentials, ManualClock, NewChannel, NewTenant, Platform};
use nexiom::storage::conformance::{TestStore, memory_test_store, postgres_test_store};

const LINKEDIN_SECRET: &str = "linkedin-client-secret";
const ORG: &str = "urn:li:organization:2414183";

/// A comment notification for the channel's organization, short enough
/// (under 256 bytes) to pass as a challenge code before the fix.
const FORGED: &str = r#"{"notificationId":9,"action":"COMMENT","organizationalEntity":"urn:li:organization:2414183","generatedActivity":"urn:li:comment:(urn:li:activity:1,2)","decoratedGeneratedActivity":{"comment":{"text":"forged"}},"lastModifiedAt":1763800000000}"#;

async fn run(test_store: Option<TestStore>) {
    let Some(test_store) = test_store else { return };
    let store = test_store.store();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    ));
    let tenant = store
        .create_tenant(NewTenant::new("Acme", clock.now()))
        .await
        .unwrap();
    store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::LinkedIn,
            external_account_id: ORG.into(),
            name: "Acme LinkedIn".into(),
            credentials: Credentials::default(),
            created_at: clock.now(),
        })
        .await
        .unwrap();
    let registry = ConnectorRegistry::new().with(Arc::new(
        LinkedInConnector::builder()
            .with_client_secret(LINKEDIN_SECRET)
            .build()
            .unwrap(),
    ));
    let state = app::AppState::new(Arc::clone(&store), registry, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app::app(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let base = format!("http://{addr}/webhooks/linkedin");
    let http = reqwest::Client::new();

    // 1. Ask the challenge endpoint to "sign" the notification.
    let challenge = http
        .get(&base)
        .query(&[("challengeCode", FORGED)])
        .send()
        .await
        .unwrap();
    let challenge_status = challenge.status().as_u16();
    let signature = if challenge_status == 200 {
        let json: serde_json::Value = challenge.json().await.unwrap();
        json["challengeResponse"].as_str().unwrap().to_owned()
    } else {
        // Refused: the attacker has no signature; try a made-up one.
        "0".repeat(64)
    };

    // 2. Present that as the signature of the same body.
    let post = http
        .post(&base)
        .header("X-LI-Signature", signature)
        .body(FORGED)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let stored = store
        .find_event(
            tenant.id,
            &Platform::LinkedIn,
            "urn:li:comment:(urn:li:activity:1,2)",
        )
        .await
        .unwrap();
    assert!(
        stored.is_none(),
        "a notification signed by the challenge endpoint was stored (POST answered {post})"
    );
    assert_eq!(post, 401, "the forged notification is refused");
    assert_eq!(challenge_status, 403, "the challenge code is refused");
    assert!(
        store
            .list_unrouted_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A genuine (UUID) challenge is still answered.
    let code = "890e4665-4dfe-4ab2-a7b6-4a5c1e0d7a2f";
    let genuine = http
        .get(&base)
        .query(&[("challengeCode", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status().as_u16(), 200);

    // 3. Its answer is the MAC of the code: presented as the signature of a
    // body that is the code, it is refused, and nothing is kept (before,
    // each such pair of requests wrote a dead letter).
    let json: serde_json::Value = genuine.json().await.unwrap();
    let mac = json["challengeResponse"].as_str().unwrap().to_owned();
    let post = http
        .post(&base)
        .header("X-LI-Signature", mac)
        .body(code)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(
        post, 401,
        "a challenge code signed by its answer is refused"
    );
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());

    let _ = stop.send(());
    task.await.unwrap();
    test_store.cleanup().await;
}

#[tokio::test]
async fn linkedin_challenge_cannot_forge_a_notification_on_memory() {
    run(memory_test_store().await).await;
}

#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn linkedin_challenge_cannot_forge_a_notification_on_postgres() {
    run(postgres_test_store().await).await;
}
