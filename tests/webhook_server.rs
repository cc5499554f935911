//! The webhook receiver of `examples/webhook_server`, driven over real HTTP on
//! loopback, on the memory store and on Postgres (when `DATABASE_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/webhook_server/app.rs"]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use nexiom::connectors::{
    ConnectorRegistry, LinkedInConnector, LinkedInWebhookVerifier, MetaWebhookVerifier,
    WhatsAppConnector, hmac_sha256_hex,
};
use nexiom::core::{
    Clock, Credentials, ManualClock, NewChannel, NewTenant, Platform, SecretString, TenantId,
};
use nexiom::storage::Store;
use nexiom::storage::conformance::{TestStore, memory_test_store, postgres_test_store};

const APP_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "verify-me";
const LINKEDIN_SECRET: &str = "linkedin-client-secret";
const PHONE_ID: &str = "106540352242922";
const LIMIT: usize = 8 * 1024;

fn whatsapp_body(wamid: &str, text: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],"messages":[{{"from":"16505551234","id":"{wamid}","timestamp":"1749416383","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    MetaWebhookVerifier::sign(&SecretString::new(APP_SECRET), body)
}

struct Server {
    base: String,
    store: Arc<dyn Store>,
    tenant: TenantId,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(store: Arc<dyn Store>) -> Server {
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
                platform: Platform::WhatsApp,
                external_account_id: PHONE_ID.into(),
                name: "Acme WhatsApp".into(),
                credentials: Credentials::default(),
                created_at: clock.now(),
            })
            .await
            .unwrap();
        store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::LinkedIn,
                external_account_id: "urn:li:organization:2414183".into(),
                name: "Acme LinkedIn".into(),
                credentials: Credentials::default(),
                created_at: clock.now(),
            })
            .await
            .unwrap();
        let registry = ConnectorRegistry::new()
            .with(Arc::new(
                WhatsAppConnector::builder()
                    .with_app_secret(APP_SECRET)
                    .with_verify_token(VERIFY_TOKEN)
                    .build()
                    .unwrap(),
            ))
            .with(Arc::new(
                LinkedInConnector::builder()
                    .with_client_secret(LINKEDIN_SECRET)
                    .build()
                    .unwrap(),
            ));
        let state = app::AppState::new(Arc::clone(&store), registry, clock).with_body_limit(LIMIT);
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
        Server {
            base: format!("http://{addr}"),
            store,
            tenant: tenant.id,
            http: reqwest::Client::new(),
            stop,
            task,
        }
    }

    async fn post(&self, path: &str, signature: Option<String>, body: Vec<u8>) -> u16 {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("X-Hub-Signature-256", sig);
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn stored(&self, wamid: &str) -> bool {
        self.store
            .find_event(self.tenant, &Platform::WhatsApp, wamid)
            .await
            .unwrap()
            .is_some()
    }

    async fn unrouted(&self) -> usize {
        self.store
            .list_unrouted_events(None, 1000)
            .await
            .unwrap()
            .len()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn handshakes(s: &Server) {
    let ok = s
        .http
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");

    let wrong = s
        .http
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);

    let li = s
        .http
        .get(format!(
            "{}/webhooks/linkedin?challengeCode=890e4665-4dfe-4ab2-a7b6-4a5c1e0d7a2f",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(li.status().as_u16(), 200);
    let json: serde_json::Value = li.json().await.unwrap();
    assert_eq!(
        json["challengeResponse"],
        hmac_sha256_hex(
            LINKEDIN_SECRET.as_bytes(),
            b"890e4665-4dfe-4ab2-a7b6-4a5c1e0d7a2f"
        )
    );

    let unknown = s
        .http
        .get(format!("{}/webhooks/myspace?hub.mode=subscribe", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

async fn signed_tampered_oversized_replayed(s: &Server) {
    // A valid signed body: stored before the 200, not routed (the worker routes).
    let body = whatsapp_body("wamid.valid", "hello");
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&body)), body.clone())
            .await,
        200
    );
    assert!(s.stored("wamid.valid").await);
    assert_eq!(s.unrouted().await, 1);

    // A replay of the same delivery: 200 again, stored once.
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&body)), body.clone())
            .await,
        200
    );
    assert_eq!(s.unrouted().await, 1);

    // Tampered: signed for one body, another one sent.
    let original = whatsapp_body("wamid.tampered", "pay 10");
    let tampered = whatsapp_body("wamid.tampered", "pay 99");
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&original)), tampered)
            .await,
        401
    );
    // Unsigned.
    assert_eq!(
        s.post(
            "/webhooks/whatsapp",
            None,
            whatsapp_body("wamid.unsigned", "x")
        )
        .await,
        401
    );
    assert!(!s.stored("wamid.tampered").await);
    assert!(!s.stored("wamid.unsigned").await);

    // Oversized (correctly signed): 413, nothing stored.
    let big = whatsapp_body("wamid.big", &"a".repeat(LIMIT + 1));
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&big)), big.clone())
            .await,
        413
    );
    assert!(!s.stored("wamid.big").await);

    // Verified but not a WhatsApp payload: 400.
    let junk = br#"{"object":"nothing"}"#.to_vec();
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&junk)), junk.clone())
            .await,
        400
    );
    assert_eq!(s.unrouted().await, 1);
}

async fn linkedin_signed_and_tampered(s: &Server) {
    let body =
        include_bytes!("../nexiom-connectors/tests/fixtures/linkedin_comment_notification.json")
            .to_vec();
    let signature = LinkedInWebhookVerifier::sign(&SecretString::new(LINKEDIN_SECRET), &body);
    let post = |sig: String, body: Vec<u8>| {
        s.http
            .post(format!("{}/webhooks/linkedin", s.base))
            .header("X-LI-Signature", sig)
            .body(body)
            .send()
    };
    let mut tampered = body.clone();
    tampered.extend_from_slice(b"\n");
    assert_eq!(
        post(signature.clone(), tampered)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(s.unrouted().await, 1);
    for _ in 0..2 {
        assert_eq!(
            post(signature.clone(), body.clone())
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
    assert_eq!(s.unrouted().await, 2, "the LinkedIn comment, stored once");
}

async fn run(test_store: Option<TestStore>) {
    let Some(test_store) = test_store else { return };
    let server = Server::start(test_store.store()).await;
    handshakes(&server).await;
    signed_tampered_oversized_replayed(&server).await;
    linkedin_signed_and_tampered(&server).await;
    server.stop().await;
    test_store.cleanup().await;
}

#[tokio::test]
async fn webhook_server_on_memory() {
    run(memory_test_store().await).await;
}

#[tokio::test]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn webhook_server_on_postgres() {
    run(postgres_test_store().await).await;
}
