//! The production worker: every background job of Nexiom on its cadence, with
//! structured logs, Prometheus metrics and a clean stop on Ctrl-C.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom cargo run --example worker
//! curl -s 127.0.0.1:9464/metrics
//! ```
//!
//! Workers (each behind its flag in `worker_flags`, each run written to the
//! execution log):
//!
//! | worker | cadence | what it does |
//! | --- | --- | --- |
//! | `enqueue_due_posts` | 1 min | claims due posts (and due series occurrences) and publishes them through the real connectors |
//! | `release_stale_leases` | 1 min | hands posts of a dead worker back to the queue |
//! | `cleanup_execution_logs` | Sunday 02:00 Europe/Paris | drops execution logs older than 30 days |
//! | `pipeline` | 15 s | routes stored webhook events, triages new messages and comments, sends auto-replies (only while the tenant's AI control is ON) |
//! | `poll_comments` | 5 min | reads new comments of posts published in the last 7 days (every page from the stored cursor), stores each once, then triages and auto-replies them |
//! | `aggregate_kpis` | 30 min | recomputes the 2-hour KPI windows of the last 48 h that changed since the previous run |
//! | `token_refresh` | 10 min | renews channel tokens expiring within 24 h |
//! | `deliver_notifications` | 15 s | sends the outbox's notifications (escalations, failed posts, …) to the tenants' webhook and Slack endpoints, retried with backoff |
//! | `sla_breaches` | 1 min | notifies items waiting longer than their tenant's first-response target, once per wait |
//!
//! Environment:
//! - `DATABASE_URL` (required): Postgres; migrations run on start.
//! - `NEXIOM_METRICS_PORT`: port of `GET /metrics` on 127.0.0.1 (default 9464).
//! - `NEXIOM_WORKER_ID`: the lease owner name, unique per process (default
//!   `worker-<pid>-<random>`: in containers every replica may be pid 1).
//! - `RUST_LOG` (default `info`); `NEXIOM_LOG_FORMAT=json` for JSON lines.
//! - The reply generator is the OpenAI-compatible one when the settings store
//!   holds `OPENROUTER_API_KEY` and `NEXIOM_DEFAULT_CHAT_MODEL`, else a template
//!   (`NEXIOM_REPLY_TEMPLATE`, with `{name}` and `{message}` placeholders).
//! - `NEXIOM_GRAPH_BASE_URL`, `NEXIOM_LINKEDIN_BASE_URL`: point the connectors
//!   elsewhere (a staging proxy, a fake platform).
//! - `NEXIOM_NOTIFY_LOCAL_NETWORK=1`: let notifications reach endpoints in the
//!   local network (this machine, private addresses); off by default, since a
//!   tenant writes its endpoints' URLs.
//!
//! Metrics: every metric the library records (`nexiom_scheduler::telemetry`
//! lists them with their labels), exported by `metrics-exporter-prometheus`
//! on `GET /metrics`. Health on the same port: `GET /healthz` (liveness: no
//! worker stalled) and `GET /readyz` (readiness: database reachable, schema
//! current, every worker on time), each answering 200 or 503 with the
//! report as JSON.

use std::sync::Arc;

use chrono::Duration;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use nexiom::connectors::{
    ConnectorRegistry, FacebookConnector, InstagramConnector, LinkedInConnector, WhatsAppConnector,
};
use nexiom::core::{Clock, SystemClock};
use nexiom::scheduler::inbound::{InboundPipeline, openai_config_from_settings};
use nexiom::scheduler::inbox::{SlaMonitor, SlaWorker};
use nexiom::scheduler::notify::{DeliverNotificationsWorker, NotificationDispatcher};
use nexiom::scheduler::{
    AutoReplyStep, ChannelTokens, CleanupExecutionLogsWorker, CommentPoller, ConnectorGateway,
    EnqueueDuePostsWorker, HealthCheck, KpiWorker, PipelineRunner, PipelineWorker,
    PollCommentsWorker, PublishConfig, PublishQueue, ReauthListener, ReleaseStaleLeasesWorker,
    RouteStep, TokenRefreshWorker, TriageStep, Worker, WorkerRuntime, shutdown_channel,
};
use nexiom::storage::{PgStore, Store};
use nexiom::triage::{OpenAiCompatibleGenerator, ReplyGenerator, TemplateGenerator};

// ---------------------------------------------------------------- setup

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
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
    let mut wa = WhatsAppConnector::builder();
    let mut ig = InstagramConnector::builder();
    let mut fb = FacebookConnector::builder();
    if let Some(url) = env("NEXIOM_GRAPH_BASE_URL") {
        wa = wa.with_base_url(url.as_str());
        ig = ig.with_base_url(url.as_str());
        fb = fb.with_base_url(url.as_str());
    }
    if let Some(s) = env("META_APP_SECRET") {
        wa = wa.with_app_secret(s.as_str());
        ig = ig.with_app_secret(s.as_str());
        fb = fb.with_app_secret(s.as_str());
    }
    let mut li = LinkedInConnector::builder();
    if let Some(url) = env("NEXIOM_LINKEDIN_BASE_URL") {
        li = li.with_base_url(url);
    }
    if let Some(s) = env("LINKEDIN_CLIENT_SECRET") {
        li = li.with_client_secret(s);
    }
    Ok(ConnectorRegistry::new()
        .with(Arc::new(wa.build()?))
        .with(Arc::new(ig.build()?))
        .with(Arc::new(fb.build()?))
        .with(Arc::new(li.build()?)))
}

/// The exporter's handle, with histograms (not summaries) for the durations.
fn install_metrics() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
        )?
        .install_recorder()
        .inspect(|_| nexiom::scheduler::telemetry::describe())?)
}

/// `/metrics`, `/healthz` and `/readyz` on 127.0.0.1:`port`.
async fn serve_ops(
    metrics: PrometheusHandle,
    health: HealthCheck,
    port: u16,
    shutdown: nexiom::scheduler::Shutdown,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    let verdict = |ok: bool| {
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let live = health.clone();
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move || {
                let health = live.clone();
                async move {
                    let report = health.check().await;
                    (verdict(report.live()), axum::Json(report.to_json()))
                }
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || {
                let health = health.clone();
                async move {
                    let report = health.check().await;
                    (verdict(report.ready()), axum::Json(report.to_json()))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "/metrics, /healthz and /readyz");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logs();
    let url = env("DATABASE_URL").ok_or("DATABASE_URL is not set: the worker needs Postgres")?;
    let pg = PgStore::connect(&url).await?;
    pg.migrate().await?;
    tracing::info!("connected to Postgres, migrations applied");
    let store: Arc<dyn Store> = Arc::new(pg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = install_metrics()?;
    let registry = connectors()?;

    let generator: Arc<dyn ReplyGenerator> =
        match openai_config_from_settings(store.as_ref()).await? {
            Some(config) => {
                tracing::info!(
                    model = config.model.as_str(),
                    "replies drafted by the chat model"
                );
                Arc::new(OpenAiCompatibleGenerator::new(config)?)
            }
            None => {
                tracing::info!("no chat model configured: replies from templates");
                Arc::new(TemplateGenerator::new().with_default_template(
                    env("NEXIOM_REPLY_TEMPLATE").unwrap_or_else(|| {
                        "Hello {name}, thank you for your message! We will get back to you shortly."
                            .to_owned()
                    }),
                ))
            }
        };
    // One token keeper for every call path: tokens are refreshed ahead of
    // expiry, once per channel across processes; a refused refresh pauses the
    // channel's work until it is reconnected.
    let tokens = ChannelTokens::new(Arc::clone(&store), Arc::clone(&clock))
        .with_listener(Arc::new(LogReauth));
    let pipeline = InboundPipeline::new(Arc::clone(&store), Arc::clone(&clock), generator)
        .with_connectors(registry.clone())
        .with_tokens(tokens.clone());
    let registry_for_queue = registry.clone();

    // Unique per process even where every replica is pid 1 (containers):
    // leases, holds and settlements are told apart by this name.
    let worker_id = env("NEXIOM_WORKER_ID")
        .unwrap_or_else(|| format!("worker-{}-{:016x}", std::process::id(), fastrand::u64(..)));
    let queue = PublishQueue::new(
        Arc::clone(&store),
        Arc::new(ConnectorGateway::new(registry_for_queue)),
        Arc::clone(&clock),
        PublishConfig::for_worker(worker_id.clone()),
    )
    .with_tokens(tokens.clone());

    let workers: Vec<Arc<dyn Worker>> = vec![
        Arc::new(EnqueueDuePostsWorker::new(queue)),
        Arc::new(ReleaseStaleLeasesWorker::new(Arc::clone(&store))),
        Arc::new(CleanupExecutionLogsWorker::new(Arc::clone(&store))),
        // Route → triage → auto-reply every 15 s, up to 1,000 items per step;
        // replies to items triaged in the last day (older unanswered
        // AUTO_REPLY items need a person).
        Arc::new(
            PipelineWorker::new(
                PipelineRunner::new()
                    .with_router(RouteStep::new(pipeline.clone()))
                    .with_triage(TriageStep::new(pipeline.clone()))
                    .with_auto_reply(AutoReplyStep::new(pipeline.clone())),
            )
            .on(Duration::seconds(15))
            .with_window(Duration::days(1), 1000),
        ),
        Arc::new(PollCommentsWorker::new(
            CommentPoller::new(Arc::clone(&store), Arc::clone(&clock), registry.clone())
                .with_inbound(pipeline.clone())
                .with_tokens(tokens.clone()),
        )),
        // Renews tokens expiring within 24 hours, every 10 minutes.
        Arc::new(TokenRefreshWorker::new(tokens.clone(), registry.clone())),
        Arc::new(KpiWorker::new(Arc::clone(&store), Arc::clone(&clock))),
        // The outbox's notifications to the tenants' endpoints, and the
        // first-response SLA's breaches.
        Arc::new(DeliverNotificationsWorker::new({
            let dispatcher = NotificationDispatcher::new(Arc::clone(&store), Arc::clone(&clock));
            if env("NEXIOM_NOTIFY_LOCAL_NETWORK").as_deref() == Some("1") {
                dispatcher.allow_local_network()
            } else {
                dispatcher
            }
        })),
        Arc::new(SlaWorker::new(SlaMonitor::new(
            Arc::clone(&store),
            Arc::clone(&clock),
        ))),
    ];
    let mut runtime = WorkerRuntime::new(Arc::clone(&store), Arc::clone(&clock));
    for worker in workers {
        tracing::info!(
            worker = worker.name(),
            cadence = %worker.cadence(),
            "registered"
        );
        runtime.register(worker);
    }
    let health = HealthCheck::new(Arc::clone(&store), Arc::clone(&clock), &runtime);

    let (trigger, shutdown) = shutdown_channel();
    tokio::spawn(trigger.trigger_on_signal());
    let port: u16 = env("NEXIOM_METRICS_PORT")
        .map(|p| p.parse())
        .transpose()
        .map_err(|e| format!("NEXIOM_METRICS_PORT is not a port number: {e}"))?
        .unwrap_or(9464);
    let metrics_server = tokio::spawn(serve_ops(metrics, health, port, shutdown.clone()));

    tracing::info!(worker_id, "worker running; Ctrl-C to stop");
    runtime.run(shutdown).await;
    tracing::info!("shutdown: runs finished, stopping the metrics endpoint");
    metrics_server.await??;
    tracing::info!("worker stopped");
    Ok(())
}

/// Tells the operators (here: the log) that a channel must be reconnected.
struct LogReauth;

impl ReauthListener for LogReauth {
    fn channel_needs_reauth(&self, channel: &nexiom::core::Channel) {
        tracing::error!(
            tenant = %channel.tenant_id,
            channel = %channel.id,
            reason = channel.status_reason.as_deref().unwrap_or(""),
            "channel needs re-authorization: its work is paused until it is reconnected"
        );
    }
}
