//! Load check of the webhook receiver on Postgres, beside the floor it must
//! beat, then one large body.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom \
//!   cargo run --release --example webhook_load
//! ```
//!
//! 0. **HTTP only**: the same client against a handler that reads the body
//!    and answers 200, with nothing stored: what the HTTP stack and the
//!    client do on this machine, a ceiling for any receiver here.
//! 1. **Floor**: the same client against a minimal handler that commits one
//!    single-row insert per request (no signature, no parsing; a pool of one
//!    connection per client connection). This is what PostgreSQL does here
//!    with one commit per request.
//! 2. **Receiver**: `examples/webhook_server/app.rs` in process on
//!    127.0.0.1 (the store's pool of 8), 20,000 signed WhatsApp POSTs from 32
//!    connections. One request in 20 is a redelivery of an earlier body (Meta
//!    retries), so the check is `stored events == distinct event ids` with no
//!    event twice.
//! 3. **Large bodies**: signed bodies of 2,700 events just under the
//!    256 KiB limit, sent one after another (`NEXIOM_LOAD_BIG_BODIES`, 5 by
//!    default, each with ids of its own), each timed from send to answer,
//!    then every event checked.
//! 4. **Bodies of an unknown account**: the same large bodies for a phone
//!    number no channel is connected for (a business whose channel was
//!    removed while its webhook subscription still runs), sent one after
//!    another (`NEXIOM_LOAD_UNKNOWN_BODIES`, 3 by default), each timed;
//!    every event must be kept as a dead letter without a tenant.
//!
//! The runs use a fresh schema of the database (dropped at the end).
//! `NEXIOM_LOAD_REQUESTS` / `NEXIOM_LOAD_CONNECTIONS` change the figures;
//! `NEXIOM_LOAD_LINGER_US` / `NEXIOM_LOAD_FLUSHES` the receiver's group
//! commit (`GroupCommitConfig::linger`, `max_flushes`).
//! Prints requests/s and p50/p99/max latency per run and the ratio; exits
//! non-zero when a request failed or a count is off.

#[path = "webhook_server/app.rs"]
mod app;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use nexiom::connectors::{ConnectorRegistry, MetaWebhookVerifier, WhatsAppConnector};
use nexiom::core::{Credentials, NewChannel, NewTenant, Platform, SecretString, SystemClock};
use nexiom::scheduler::inbound::GroupCommitConfig;
use nexiom::storage::conformance::postgres_test_store;

const APP_SECRET: &str = "load-app-secret";
const PHONE_ID: &str = "106540352242922";
const BIG_BODY_EVENTS: usize = 2_700;
/// A phone number id no channel is connected for.
const UNKNOWN_PHONE_ID: &str = "199999999999999";

fn body(n: usize) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_ID}"}},"contacts":[{{"profile":{{"name":"Customer {n}"}},"wa_id":"3360{n:07}"}}],"messages":[{{"from":"3360{n:07}","id":"wamid.load.{n}","timestamp":"1763780000","type":"text","text":{{"body":"Hello, is order {n} ready?"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

/// Senders of the large body.
const SENDERS: usize = 20;

/// One body of `events` messages from [`SENDERS`] senders (Meta batches many
/// messages of one phone number in one delivery), as compact as a real
/// payload can be so that 2,700 of them fit in 256 KiB.
fn big_body(events: usize, round: usize, phone_id: &str) -> Vec<u8> {
    // One letter per round keeps the ids distinct and the body the same size.
    let tag = char::from(b'b' + (round % 24) as u8);
    let contacts: Vec<String> = (0..SENDERS)
        .map(|s| format!(r#"{{"profile":{{"name":"C{s}"}},"wa_id":"3361{s:05}"}}"#))
        .collect();
    let messages: Vec<String> = (0..events)
        .map(|n| {
            format!(
                r#"{{"from":"3361{:05}","id":"w.{tag}.{n}","timestamp":"1763780000","type":"text","text":{{"body":"k"}}}}"#,
                n % SENDERS
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{phone_id}"}},"contacts":[{}],"messages":[{}]}}}}]}}]}}"#,
        contacts.join(","),
        messages.join(",")
    )
    .into_bytes()
}

/// Sends the large bodies of `rounds` for `phone_id`, one after another:
/// each one's time to answer (ms), and whether every answer was a success.
async fn send_bodies(
    client: &reqwest::Client,
    url: &str,
    secret: &SecretString,
    rounds: std::ops::Range<usize>,
    phone_id: &str,
) -> Result<(Vec<f64>, bool), reqwest::Error> {
    let (mut times, mut ok) = (Vec::with_capacity(rounds.len()), true);
    for round in rounds {
        let body = big_body(BIG_BODY_EVENTS, round, phone_id);
        let signature = MetaWebhookVerifier::sign(secret, &body);
        let t = Instant::now();
        let status = client
            .post(url)
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await?
            .status();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        ok &= status.is_success();
    }
    Ok((times, ok))
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

/// What one run measured.
struct Run {
    per_second: f64,
    latencies: Vec<Duration>,
    failures: usize,
}

impl Run {
    fn print(&self, name: &str) {
        let ms = |p| percentile(&self.latencies, p).as_secs_f64() * 1e3;
        println!(
            "{name:<10}{:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   failed {}",
            self.per_second,
            ms(50.0),
            ms(99.0),
            ms(100.0),
            self.failures
        );
    }
}

/// Request i sends event i, except every 20th which redelivers event i - 10.
fn event_of(i: usize) -> usize {
    if i % 20 == 19 { i - 10 } else { i }
}

/// `requests` signed POSTs of `event_of(i)`'s body to `url` from
/// `connections` keep-alive HTTP/1 connections (hyper's connection-level
/// client: no pool, no URL parsing per request, so the client takes as
/// little of the machine as it can).
async fn load(
    url: &str,
    requests: usize,
    connections: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let secret = SecretString::new(APP_SECRET);
    let uri: axum::http::Uri = url.parse()?;
    let authority = uri.authority().ok_or("no authority")?.clone();
    let addr: std::net::SocketAddr = authority.as_str().parse()?;
    // Bodies and signatures are made before the clock starts.
    let work: Arc<Vec<(axum::body::Bytes, String)>> = Arc::new(
        (0..requests)
            .map(|i| {
                let body = body(event_of(i));
                let signature = MetaWebhookVerifier::sign(&secret, &body);
                (axum::body::Bytes::from(body), signature)
            })
            .collect(),
    );
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        senders.push(sender);
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for (c, mut sender) in senders.into_iter().enumerate() {
        let work = Arc::clone(&work);
        let uri = uri.clone();
        let host = authority.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / connections + 1);
            let mut failures = 0usize;
            for i in (c..requests).step_by(connections) {
                let (body, signature) = &work[i];
                let t = Instant::now();
                let ok = post(&mut sender, &uri, &host, body.clone(), signature).await;
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
    let per_second = requests as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Run {
        per_second,
        latencies,
        failures,
    })
}

/// One signed POST on `sender`'s connection; whether it was answered 2xx.
async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<axum::body::Body>,
    uri: &axum::http::Uri,
    host: &str,
    body: axum::body::Bytes,
    signature: &str,
) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let Ok(request) = axum::http::Request::post(uri.path())
        .header("host", host)
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature)
        .body(axum::body::Body::from(body))
    else {
        return false;
    };
    match sender.send_request(request).await {
        Ok(response) => {
            let ok = response.status().is_success();
            // Read the answer in full so the connection can carry the next.
            let drained =
                axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20).await;
            ok && drained.is_ok()
        }
        Err(_) => false,
    }
}

/// Serves `router` on a loopback port until the returned sender is used.
async fn serve(
    router: axum::Router,
) -> Result<
    (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
    std::io::Error,
> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok((format!("http://{addr}/webhooks/whatsapp"), stop, server))
}

/// Transactions committed in the database so far (every session's).
async fn commits(pool: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
}

/// The floor's handler: one single-row insert, committed, per request.
async fn floor_handler(
    State(pool): State<sqlx::PgPool>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let inserted = sqlx::query("INSERT INTO load_floor (body) VALUES ($1)")
        .bind(String::from_utf8_lossy(&body).as_ref())
        .execute(&pool)
        .await;
    match inserted {
        Ok(_) => axum::http::StatusCode::OK,
        Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = env_usize("NEXIOM_LOAD_REQUESTS", 20_000)?;
    let connections = env_usize("NEXIOM_LOAD_CONNECTIONS", 32)?.max(1);
    let big_bodies = env_usize("NEXIOM_LOAD_BIG_BODIES", 5)?.clamp(1, 24);
    let unknown_bodies = env_usize("NEXIOM_LOAD_UNKNOWN_BODIES", 3)?.min(24 - big_bodies);
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Err("set DATABASE_URL to a Postgres database (a fresh schema is used)".into());
    };
    let test_store = postgres_test_store()
        .await
        .ok_or("cannot reach DATABASE_URL")?;
    let schema = test_store.schema().unwrap_or("public").to_owned();
    let store = test_store.store();
    println!("webhook load: {requests} signed WhatsApp POSTs, {connections} connections, Postgres");

    // 0. HTTP only: the ceiling.
    let empty_app = axum::Router::new().route(
        "/webhooks/whatsapp",
        axum::routing::post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body.len());
            axum::http::StatusCode::OK
        }),
    );
    let (empty_url, stop, server) = serve(empty_app).await?;
    let empty = load(&empty_url, requests, connections).await?;
    let _ = stop.send(());
    server.await??;

    // 1. The floor, in the same schema.
    let floor_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections as u32)
        .after_connect({
            let schema = schema.clone();
            move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    sqlx::query("SELECT set_config('search_path', $1, false)")
                        .bind(&schema)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }
        })
        .connect(&url)
        .await?;
    sqlx::query("CREATE TABLE load_floor (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&floor_pool)
        .await?;
    let floor_app = axum::Router::new()
        .route("/webhooks/whatsapp", axum::routing::post(floor_handler))
        .with_state(floor_pool.clone());
    let (floor_url, stop, server) = serve(floor_app).await?;
    let floor = load(&floor_url, requests, connections).await?;
    let _ = stop.send(());
    server.await??;
    let floor_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM load_floor")
        .fetch_one(&floor_pool)
        .await?;
    floor_pool.close().await;

    // 2. The receiver.
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
    let mut state = app::AppState::new(Arc::clone(&store), registry, Arc::new(SystemClock));
    let mut group_commit = GroupCommitConfig::default();
    if let Ok(us) = std::env::var("NEXIOM_LOAD_LINGER_US") {
        group_commit.linger = Duration::from_micros(us.parse()?);
    }
    if let Ok(n) = std::env::var("NEXIOM_LOAD_FLUSHES") {
        group_commit.max_flushes = n.parse()?;
    }
    println!(
        "group commit: linger {:?}, {} flush slots, batches up to {} events",
        group_commit.linger, group_commit.max_flushes, group_commit.max_batch
    );
    state.pipeline = state.pipeline.with_group_commit(group_commit);
    let (receiver_url, stop, server) = serve(app::app(state)).await?;
    let stats = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let before = commits(&stats).await?;
    let receiver = load(&receiver_url, requests, connections).await?;
    // Statistics reach the view within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver_commits = commits(&stats).await? - before;

    let distinct: HashSet<usize> = (0..requests).map(event_of).collect();
    let events = store
        .list_unrouted_events(Some(&Platform::WhatsApp), (requests + 1000) as u32)
        .await?;
    let mut seen = HashSet::new();
    let twice = events
        .iter()
        .filter(|e| !seen.insert(e.event_id.clone()))
        .count();

    // 3. Large bodies, one after another (each with ids of its own).
    let secret = SecretString::new(APP_SECRET);
    let client = reqwest::Client::new();
    let big = big_body(BIG_BODY_EVENTS, 0, PHONE_ID);
    let big_bytes = big.len();
    let (mut big_times, big_ok) =
        send_bodies(&client, &receiver_url, &secret, 0..big_bodies, PHONE_ID).await?;
    // 4. Large bodies of an unknown account (ids of their own: rounds after
    // the large bodies').
    let (mut unknown_times, unknown_ok) = send_bodies(
        &client,
        &receiver_url,
        &secret,
        big_bodies..big_bodies + unknown_bodies,
        UNKNOWN_PHONE_ID,
    )
    .await?;
    let unknown_kept = store
        .list_dead_letters(None, ((unknown_bodies + 1) * BIG_BODY_EVENTS) as u32)
        .await?
        .iter()
        .filter(|d| d.tenant_id.is_none())
        .count();

    let all = store
        .list_unrouted_events(
            Some(&Platform::WhatsApp),
            (requests + big_bodies * BIG_BODY_EVENTS + 1000) as u32,
        )
        .await?;
    let big_stored = all
        .iter()
        .filter(|e| {
            e.event_id
                .strip_prefix("w.")
                .is_some_and(|rest| rest.as_bytes().get(1) == Some(&b'.'))
        })
        .count();

    empty.print("http only");
    floor.print("floor");
    receiver.print("receiver");
    println!(
        "ratio     {:.2}x the floor ({floor_rows} floor rows committed), {:.2}x http only",
        receiver.per_second / floor.per_second,
        receiver.per_second / empty.per_second
    );
    println!(
        "commits   about {receiver_commits} for {requests} requests ({:.1} requests per commit; \
         every session of the database counted)",
        requests as f64 / receiver_commits.max(1) as f64
    );
    println!(
        "stored    {} events for {} distinct ids ({} redeliveries sent, {} stored twice)",
        events.len(),
        distinct.len(),
        requests - distinct.len(),
        twice
    );
    let times: Vec<String> = big_times.iter().map(|ms| format!("{ms:.1}")).collect();
    big_times.sort_by(f64::total_cmp);
    println!(
        "big body  {big_bodies} x {BIG_BODY_EVENTS} events, {:.0} KiB each: answered in {} ms \
         (median {:.1} ms), {big_stored} stored",
        big_bytes as f64 / 1024.0,
        times.join(" / "),
        big_times.get(big_times.len() / 2).copied().unwrap_or(0.0)
    );
    let times: Vec<String> = unknown_times.iter().map(|ms| format!("{ms:.1}")).collect();
    unknown_times.sort_by(f64::total_cmp);
    println!(
        "unknown   {unknown_bodies} x {BIG_BODY_EVENTS} events of an account with no channel: \
         answered in {} ms (median {:.1} ms), {unknown_kept} kept as dead letters",
        times.join(" / "),
        unknown_times
            .get(unknown_times.len() / 2)
            .copied()
            .unwrap_or(0.0)
    );

    let _ = stop.send(());
    server.await??;
    test_store.cleanup().await;

    let mut failed = Vec::new();
    if empty.failures > 0 {
        failed.push("the HTTP-only handler did not answer every request");
    }
    if floor.failures > 0 || floor_rows != requests as i64 {
        failed.push("the floor did not commit every request");
    }
    if receiver.failures > 0 || twice > 0 || events.len() != distinct.len() {
        failed.push("every event must be stored exactly once and every request answered 200");
    }
    if !big_ok || big_stored != big_bodies * BIG_BODY_EVENTS {
        failed.push("every large body must be answered 200 with every event stored");
    }
    if !unknown_ok || unknown_kept != unknown_bodies * BIG_BODY_EVENTS {
        failed.push("every body of an unknown account must be answered 200, each event kept");
    }
    if !failed.is_empty() {
        eprintln!("FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("OK: every event stored exactly once");
    Ok(())
}
