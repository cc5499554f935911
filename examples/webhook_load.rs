//! Load check of the webhook receiver on Postgres: 20,000 signed WhatsApp
//! webhook POSTs from 32 concurrent connections on loopback, then a count check
//! that every event is stored exactly once.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom \
//!   cargo run --release --example webhook_load
//! ```
//!
//! The receiver (`examples/webhook_server/app.rs`) runs in-process on
//! 127.0.0.1, over a fresh schema of the database (dropped at the end). One
//! request in 20 is a redelivery of an earlier body (Meta retries), so the
//! check is `stored events == distinct event ids` with no event twice.
//! `NEXIOM_LOAD_REQUESTS` / `NEXIOM_LOAD_CONNECTIONS` change the figures.
//! Prints requests/s and p50/p99/max latency; exits non-zero when a request
//! failed or the count is off.

#[path = "webhook_server/app.rs"]
mod app;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexiom::connectors::{ConnectorRegistry, MetaWebhookVerifier, WhatsAppConnector};
use nexiom::core::{Credentials, NewChannel, NewTenant, Platform, SecretString, SystemClock};
use nexiom::storage::conformance::postgres_test_store;

const APP_SECRET: &str = "load-app-secret";
const PHONE_ID: &str = "106540352242922";

fn body(n: usize) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Customer {n}"}},"wa_id":"3360{n:07}"}}],"messages":[{{"from":"3360{n:07}","id":"wamid.load.{n}","timestamp":"1763780000","type":"text","text":{{"body":"Hello, is order {n} ready?"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|e| format!("{name} is not a number: {e}")),
        Err(_) => Ok(default),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = env_usize("NEXIOM_LOAD_REQUESTS", 20_000)?;
    let connections = env_usize("NEXIOM_LOAD_CONNECTIONS", 32)?.max(1);
    if std::env::var("DATABASE_URL").is_err() {
        return Err("set DATABASE_URL to a Postgres database (a fresh schema is used)".into());
    }
    let test_store = postgres_test_store()
        .await
        .ok_or("cannot reach DATABASE_URL")?;
    let store = test_store.store();
    let now = chrono::Utc::now();
    let tenant = store.create_tenant(NewTenant::new("Load", now)).await?;
    store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: PHONE_ID.into(),
            name: "Load WhatsApp".into(),
            credentials: Credentials::default(),
            created_at: now,
        })
        .await?;
    let registry = ConnectorRegistry::new().with(Arc::new(
        WhatsAppConnector::builder()
            .with_app_secret(APP_SECRET)
            .build()?,
    ));
    let state = app::AppState::new(Arc::clone(&store), registry, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app::app(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    // Request i sends event i, except every 20th which redelivers event i - 10.
    let event_of = |i: usize| if i % 20 == 19 { i - 10 } else { i };
    let distinct: HashSet<usize> = (0..requests).map(event_of).collect();
    let secret = SecretString::new(APP_SECRET);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;

    println!("webhook load: {requests} signed WhatsApp POSTs, {connections} connections, Postgres");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let client = client.clone();
        let url = url.clone();
        let secret = secret.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / connections + 1);
            let mut failures = 0usize;
            for i in (c..requests).step_by(connections) {
                let body = body(event_of(i));
                let signature = MetaWebhookVerifier::sign(&secret, &body);
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Hub-Signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                latencies.push(t.elapsed());
                if !ok {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();

    let events = store
        .list_unrouted_events(Some(&Platform::WhatsApp), (requests + 1000) as u32)
        .await?;
    let mut seen = HashSet::new();
    let twice = events
        .iter()
        .filter(|e| !seen.insert(e.event_id.clone()))
        .count();

    println!("requests/s  {:.0}", requests as f64 / elapsed.as_secs_f64());
    println!("elapsed     {:.2} s", elapsed.as_secs_f64());
    println!(
        "p50         {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3
    );
    println!(
        "p99         {:.2} ms",
        percentile(&latencies, 99.0).as_secs_f64() * 1e3
    );
    println!(
        "max         {:.2} ms",
        percentile(&latencies, 100.0).as_secs_f64() * 1e3
    );
    println!("failed      {failures}");
    println!(
        "stored      {} events for {} distinct ids ({} redeliveries sent, {} stored twice)",
        events.len(),
        distinct.len(),
        requests - distinct.len(),
        twice
    );

    let _ = stop.send(());
    server.await??;
    test_store.cleanup().await;

    if failures > 0 || twice > 0 || events.len() != distinct.len() {
        eprintln!("FAILED: every event must be stored exactly once and every request answered 200");
        std::process::exit(1);
    }
    println!("OK: every event stored exactly once");
    Ok(())
}
