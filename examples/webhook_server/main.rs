//! The webhook receiver you would deploy: verifies, stores raw events once, and
//! answers 200. Routing, triage and replies run in `examples/worker.rs`.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom \
//! META_APP_SECRET=... META_VERIFY_TOKEN=... LINKEDIN_CLIENT_SECRET=... \
//! cargo run --example webhook_server
//! ```
//!
//! Environment:
//! - `DATABASE_URL`: Postgres (migrated on start); unset = an in-memory store
//!   (for a try-out: events are lost on exit).
//! - `NEXIOM_WEBHOOK_PORT`: the port on 127.0.0.1 (default 8080; put a TLS
//!   proxy in front).
//! - `META_APP_SECRET`, `META_VERIFY_TOKEN`: WhatsApp, Instagram and Facebook
//!   signatures and the `hub.*` handshake.
//! - `LINKEDIN_CLIENT_SECRET`: LinkedIn signatures and `challengeCode`.
//! - `NEXIOM_WEBHOOK_BODY_LIMIT`: largest body in bytes (default 4194304:
//!   WhatsApp payloads can reach 3 MB, and a body refused is refused on
//!   every redelivery).
//! - `NEXIOM_WEBHOOK_HEADER_TIMEOUT_SECS`: time allowed for a request's line
//!   and headers (default 10; platforms send them in one write, so only a
//!   stalled or hostile client takes longer).
//! - `NEXIOM_WEBHOOK_BODY_TIMEOUT_SECS`: time allowed for the whole body
//!   (default 30; 4 MiB takes seconds on a slow link); 408 and the
//!   connection closed after it.
//! - `NEXIOM_WEBHOOK_MAX_CONNECTIONS`: connections served at once (default
//!   512, below the usual 1024 file descriptors); more wait in the listen
//!   backlog until one closes (they are not refused).
//! - `RUST_LOG`: log filter (default `info`); `NEXIOM_LOG_FORMAT=json` for JSON.
//!
//! Paths: `GET|POST /webhooks/{whatsapp,instagram,facebook,linkedin}`,
//! `GET /healthz`. Answers: 200 once every event is stored or dead-lettered (a
//! redelivery too; an event that cannot be read or stored, and a verified body
//! that is not a payload at all, are kept as dead letters, listed with
//! `list_dead_letters`), 401 for a missing or wrong signature, 413 above the
//! body limit, 403 for a refused handshake, 404 for an unknown platform, 503
//! when the store is unavailable (the platform retries). Stops cleanly on
//! Ctrl-C (in-flight requests finish).

mod app;
mod serve;

use std::sync::Arc;

use nexiom::connectors::{
    ConnectorRegistry, FacebookConnector, InstagramConnector, LinkedInConnector, WhatsAppConnector,
};
use nexiom::core::SystemClock;
use nexiom::storage::{MemoryStore, PgStore, Store};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_number(name: &str) -> Result<Option<u64>, String> {
    env(name)
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|e| format!("{name} is not a whole number: {e}"))
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if env("NEXIOM_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn connectors() -> Result<ConnectorRegistry, Box<dyn std::error::Error>> {
    let meta_secret = env("META_APP_SECRET");
    let verify_token = env("META_VERIFY_TOKEN");
    if meta_secret.is_none() {
        tracing::warn!("META_APP_SECRET is not set: Meta webhooks will be refused (401)");
    }
    let mut wa = WhatsAppConnector::builder();
    let mut ig = InstagramConnector::builder();
    let mut fb = FacebookConnector::builder();
    if let Some(s) = &meta_secret {
        wa = wa.with_app_secret(s.as_str());
        ig = ig.with_app_secret(s.as_str());
        fb = fb.with_app_secret(s.as_str());
    }
    if let Some(t) = &verify_token {
        wa = wa.with_verify_token(t.as_str());
        ig = ig.with_verify_token(t.as_str());
        fb = fb.with_verify_token(t.as_str());
    }
    let mut li = LinkedInConnector::builder();
    if let Some(s) = env("LINKEDIN_CLIENT_SECRET") {
        li = li.with_client_secret(s);
    }
    Ok(ConnectorRegistry::new()
        .with(Arc::new(wa.build()?))
        .with(Arc::new(ig.build()?))
        .with(Arc::new(fb.build()?))
        .with(Arc::new(li.build()?)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logs();
    let store: Arc<dyn Store> = match env("DATABASE_URL") {
        Some(url) => {
            let store = PgStore::connect(&url).await?;
            store.migrate().await?;
            tracing::info!("connected to Postgres, migrations applied");
            Arc::new(store)
        }
        None => {
            tracing::warn!("DATABASE_URL is not set: using an in-memory store");
            Arc::new(MemoryStore::new())
        }
    };
    let port: u16 = env("NEXIOM_WEBHOOK_PORT")
        .map(|p| p.parse())
        .transpose()
        .map_err(|e| format!("NEXIOM_WEBHOOK_PORT is not a port number: {e}"))?
        .unwrap_or(8080);
    let mut state = app::AppState::new(store, connectors()?, Arc::new(SystemClock));
    if let Some(limit) = env("NEXIOM_WEBHOOK_BODY_LIMIT") {
        state = state.with_body_limit(
            limit
                .parse()
                .map_err(|e| format!("NEXIOM_WEBHOOK_BODY_LIMIT is not a byte count: {e}"))?,
        );
    }

    if let Some(secs) = env_number("NEXIOM_WEBHOOK_BODY_TIMEOUT_SECS")? {
        state = state.with_body_read_timeout(std::time::Duration::from_secs(secs));
    }
    let mut limits = serve::ConnLimits::default();
    if let Some(secs) = env_number("NEXIOM_WEBHOOK_HEADER_TIMEOUT_SECS")? {
        limits.header_read_timeout = std::time::Duration::from_secs(secs);
    }
    if let Some(n) = env_number("NEXIOM_WEBHOOK_MAX_CONNECTIONS")? {
        limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, ?limits, "webhook server listening");
    serve::serve(listener, app::app(state), limits, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: finishing in-flight requests");
    })
    .await;
    tracing::info!("webhook server stopped");
    Ok(())
}
