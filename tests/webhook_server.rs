//! The webhook receiver of `examples/webhook_server`, driven over real HTTP on
//! loopback, on the memory store and on Postgres (when `DATABASE_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/webhook_server/app.rs"]
mod app;
#[path = "../examples/webhook_server/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        Server::start_with(store, serve::ConnLimits::default(), Duration::from_secs(30)).await
    }

    async fn start_with(
        store: Arc<dyn Store>,
        limits: serve::ConnLimits,
        body_read_timeout: Duration,
    ) -> Server {
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
        let state = app::AppState::new(Arc::clone(&store), registry, clock)
            .with_body_limit(LIMIT)
            .with_body_read_timeout(body_read_timeout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve::serve(listener, app::app(state), limits, async {
                let _ = stopped.await;
            })
            .await;
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

    // Verified but not a WhatsApp payload: dead-lettered whole, 200 (a
    // redelivery would not make it readable).
    let junk = br#"{"object":"nothing"}"#.to_vec();
    assert_eq!(
        s.post("/webhooks/whatsapp", Some(sign(&junk)), junk.clone())
            .await,
        200
    );
    assert_eq!(s.unrouted().await, 1);
    let letters = s.store.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].excerpt, r#"{"object":"nothing"}"#);

    // Good / bad (a NUL in the text) / good in one signed body: both good
    // events stored, the bad one dead-lettered, 200; a redelivery changes nothing.
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{PHONE_ID}"}},"messages":[
            {{"from":"1","id":"wamid.g1","timestamp":"1763800000","type":"text","text":{{"body":"a"}}}},
            {{"from":"1","id":"wamid.nul","timestamp":"1763800000","type":"text","text":{{"body":"a\u0000b"}}}},
            {{"from":"1","id":"wamid.g2","timestamp":"1763800000","type":"text","text":{{"body":"b"}}}}]}}}}]}}]}}"#
    )
    .into_bytes();
    for _ in 0..2 {
        assert_eq!(
            s.post("/webhooks/whatsapp", Some(sign(&body)), body.clone())
                .await,
            200
        );
        assert!(s.stored("wamid.g1").await && s.stored("wamid.g2").await);
        assert!(!s.stored("wamid.nul").await);
        assert_eq!(s.unrouted().await, 3);
        assert_eq!(s.store.list_dead_letters(None, 10).await.unwrap().len(), 2);
    }
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
    assert_eq!(s.unrouted().await, 3);
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
    assert_eq!(s.unrouted().await, 4, "the LinkedIn comment, stored once");
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

/// Reads until the server closes the connection; returns what it sent and
/// how long that took. Panics when it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            within.saturating_sub(start.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection is still open after {within:?}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

fn short_limits() -> serve::ConnLimits {
    serve::ConnLimits {
        header_read_timeout: Duration::from_millis(600),
        max_connections: 16,
    }
}

/// A stalled body cannot hold a connection: `Content-Length: 10^12` with 10
/// bytes sent is refused (413) and the connection closed at once; a body
/// within the limit that stops after 10 bytes is answered 408 and closed at
/// the body read timeout (here 500 ms).
#[tokio::test]
async fn stalled_bodies_are_cut_at_the_read_timeout() {
    let ts = memory_test_store().await.unwrap();
    let s = Server::start_with(ts.store(), short_limits(), Duration::from_millis(500)).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    for (length, expect_status, min) in [
        ("1000000000000", "413", Duration::ZERO),
        ("1000", "408", Duration::from_millis(450)),
    ] {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n0123456789"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let (answer, took) = read_until_closed(&mut c, Duration::from_secs(3)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expect_status}")),
            "{length}: {answer}"
        );
        assert!(took >= min, "{length}: closed after {took:?}");
        assert!(
            took < Duration::from_millis(1500),
            "{length}: closed after {took:?}"
        );
    }
    assert_eq!(s.unrouted().await, 0);
    s.stop().await;
}

/// Headers that never finish, or that trickle in a byte at a time, are cut at
/// the header read timeout (here 600 ms): the trickle does not extend it.
#[tokio::test]
async fn slow_headers_are_cut_at_the_header_read_timeout() {
    let ts = memory_test_store().await.unwrap();
    let s = Server::start_with(ts.store(), short_limits(), Duration::from_secs(5)).await;
    let addr = s.base.trim_start_matches("http://").to_owned();

    let mut never = TcpStream::connect(&addr).await.unwrap();
    never
        .write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut never, Duration::from_secs(3)).await;
    assert!(took < Duration::from_millis(1500), "closed after {took:?}");

    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    let start = Instant::now();
    let mut closed_at = None;
    for byte in
        b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    {
        if trickle.write_all(&[*byte]).await.is_err() {
            closed_at = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(100), trickle.read(&mut buf)).await
        {
            closed_at = Some(start.elapsed());
            break;
        }
    }
    let closed_at = closed_at.expect("the trickling client was never cut");
    assert!(
        closed_at < Duration::from_millis(1500),
        "cut after {closed_at:?}"
    );
    s.stop().await;
}

/// Connections beyond the cap wait (they are not refused): with a cap of one
/// and one idle connection open, a request waits; once that connection
/// closes, it is served.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_slot() {
    let ts = memory_test_store().await.unwrap();
    let limits = serve::ConnLimits {
        header_read_timeout: Duration::from_secs(10),
        max_connections: 1,
    };
    let s = Server::start_with(ts.store(), limits, Duration::from_secs(5)).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let holder = TcpStream::connect(&addr).await.unwrap();
    // Let the server accept the holder (taking the only slot).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("{}/healthz", s.base);
    let waiting = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served beyond the cap");
    drop(holder);
    let status = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    s.stop().await;
}
