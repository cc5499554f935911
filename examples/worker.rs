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
//! | `inbound` | 15 s | routes stored webhook events, triages new messages and comments, sends auto-replies (only while the tenant's AI control is ON) |
//! | `poll_comments` | 5 min | reads new comments of posts published in the last 7 days (every page from the stored cursor), stores each once, then triages and auto-replies them |
//! | `aggregate_kpis` | 30 min | recomputes every tenant's 2-hour KPI windows of the last 48 h |
//!
//! Environment:
//! - `DATABASE_URL` (required): Postgres; migrations run on start.
//! - `NEXIOM_METRICS_PORT`: port of `GET /metrics` on 127.0.0.1 (default 9464).
//! - `NEXIOM_WORKER_ID`: the lease owner name (default `worker-<pid>`).
//! - `RUST_LOG` (default `info`); `NEXIOM_LOG_FORMAT=json` for JSON lines.
//! - The reply generator is the OpenAI-compatible one when the settings store
//!   holds `OPENROUTER_API_KEY` and `NEXIOM_DEFAULT_CHAT_MODEL`, else a template
//!   (`NEXIOM_REPLY_TEMPLATE`, with `{name}` and `{message}` placeholders).
//! - `NEXIOM_GRAPH_BASE_URL`, `NEXIOM_LINKEDIN_BASE_URL`: point the connectors
//!   elsewhere (a staging proxy, a fake platform).
//!
//! Metrics: `nexiom_posts_published_total`, `nexiom_posts_failed_total`,
//! `nexiom_posts_retrying_total`, `nexiom_events_routed_total`,
//! `nexiom_triaged_items_total{item}`, `nexiom_triage_decisions_total{triage}`
//! (ignore / escalate / auto_reply), `nexiom_triage_escalated_on_error_total`,
//! `nexiom_auto_replies_total{result}`, `nexiom_inbound_lag_seconds` (age of the
//! oldest unrouted event when the inbound worker starts: how far behind routing
//! is), `nexiom_poll_lag_seconds` (how long the most overdue post has waited for
//! its comment check), `nexiom_comments_polled_total`,
//! `nexiom_kpi_rows_upserted_total`, `nexiom_worker_runs_total{worker,status}`,
//! `nexiom_worker_run_duration_seconds_{sum,count,max}{worker}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use chrono::Duration;
use nexiom::connectors::{
    ConnectorRegistry, FacebookConnector, InstagramConnector, LinkedInConnector, WhatsAppConnector,
};
use nexiom::core::{Clock, SystemClock};
use nexiom::scheduler::inbound::{InboundPipeline, openai_config_from_settings};
use nexiom::scheduler::{
    AGGREGATE_KPIS, Cadence, CleanupExecutionLogsWorker, CommentPoller, ConnectorGateway,
    EnqueueDuePostsWorker, KpiWorker, POLL_COMMENTS, PollCommentsWorker, PublishConfig,
    PublishQueue, ReleaseStaleLeasesWorker, SchedulerError, WorkReport, Worker, WorkerContext,
    WorkerRuntime, shutdown_channel,
};
use nexiom::storage::{PgStore, Store};
use nexiom::triage::{OpenAiCompatibleGenerator, ReplyGenerator, TemplateGenerator};

// ---------------------------------------------------------------- metrics

/// Counters and gauges in the Prometheus text format, keyed by the full
/// series (`name{labels}`), kept sorted so the exposition is stable.
#[derive(Default)]
struct Metrics {
    series: Mutex<BTreeMap<String, f64>>,
}

impl Metrics {
    fn add(&self, series: &str, by: f64) {
        if let Ok(mut s) = self.series.lock() {
            *s.entry(series.to_owned()).or_insert(0.0) += by;
        }
    }

    fn set(&self, series: &str, value: f64) {
        if let Ok(mut s) = self.series.lock() {
            s.insert(series.to_owned(), value);
        }
    }

    fn max(&self, series: &str, value: f64) {
        if let Ok(mut s) = self.series.lock() {
            let v = s.entry(series.to_owned()).or_insert(value);
            *v = v.max(value);
        }
    }

    fn render(&self) -> String {
        let Ok(s) = self.series.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let mut last_name = "";
        for (series, value) in s.iter() {
            let name = series.split('{').next().unwrap_or(series);
            if name != last_name {
                let kind = if name.ends_with("_total")
                    || name.ends_with("_count")
                    || name.ends_with("_sum")
                {
                    "counter"
                } else {
                    "gauge"
                };
                out.push_str(&format!("# TYPE {name} {kind}\n"));
                last_name = name;
            }
            out.push_str(&format!("{series} {value}\n"));
        }
        out
    }
}

fn count(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

/// Any worker, timed and counted.
struct Metered {
    inner: Arc<dyn Worker>,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
}

#[async_trait]
impl Worker for Metered {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn cadence(&self) -> Cadence {
        self.inner.cadence()
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport, SchedulerError> {
        if self.inner.name() == POLL_COMMENTS {
            // Poll lag: how long the most overdue post has waited for its check.
            let lag = match self
                .store
                .list_posts_due_for_polling(ctx.now, 1)
                .await?
                .first()
            {
                Some(post) => post
                    .next_check_at
                    .map_or(0.0, |at| (ctx.now - at).num_milliseconds() as f64 / 1e3),
                None => 0.0,
            };
            self.metrics.set("nexiom_poll_lag_seconds", lag.max(0.0));
        }
        let started = Instant::now();
        let result = self.inner.run(ctx).await;
        let secs = started.elapsed().as_secs_f64();
        let name = self.inner.name();
        let m = &self.metrics;
        m.add(
            &format!("nexiom_worker_run_duration_seconds_sum{{worker=\"{name}\"}}"),
            secs,
        );
        m.add(
            &format!("nexiom_worker_run_duration_seconds_count{{worker=\"{name}\"}}"),
            1.0,
        );
        m.max(
            &format!("nexiom_worker_run_duration_seconds_max{{worker=\"{name}\"}}"),
            secs,
        );
        let status = if result.is_ok() {
            "completed"
        } else {
            "failed"
        };
        m.add(
            &format!("nexiom_worker_runs_total{{worker=\"{name}\",status=\"{status}\"}}"),
            1.0,
        );
        if let Ok(report) = &result {
            if name == nexiom::scheduler::ENQUEUE_DUE_POSTS {
                m.add(
                    "nexiom_posts_published_total",
                    count(&report.results, "published"),
                );
                m.add(
                    "nexiom_posts_failed_total",
                    count(&report.results, "failed"),
                );
                m.add(
                    "nexiom_posts_retrying_total",
                    count(&report.results, "retrying"),
                );
            }
            if name == POLL_COMMENTS {
                m.add(
                    "nexiom_comments_polled_total",
                    count(&report.results, "comments_stored"),
                );
            }
            if name == AGGREGATE_KPIS {
                m.add(
                    "nexiom_kpi_rows_upserted_total",
                    count(&report.results, "rows_upserted"),
                );
            }
            tracing::info!(
                worker = name,
                items_processed = report.items_processed,
                items_failed = report.items_failed,
                duration_ms = (secs * 1e3) as u64,
                results = %report.results,
                "worker run"
            );
        }
        result
    }
}

// ---------------------------------------------------------------- workers

/// Route → triage → auto-reply, in one run so an item goes through in one pass.
struct InboundWorker {
    pipeline: InboundPipeline,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl Worker for InboundWorker {
    fn name(&self) -> &str {
        "inbound"
    }

    fn cadence(&self) -> Cadence {
        Cadence::Every(Duration::seconds(15))
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<WorkReport, SchedulerError> {
        let m = &self.metrics;
        let lag = match self.store.list_unrouted_events(None, 1).await?.first() {
            Some(oldest) => (self.clock.now() - oldest.received_at).num_milliseconds() as f64 / 1e3,
            None => 0.0,
        };
        m.set("nexiom_inbound_lag_seconds", lag.max(0.0));

        let limit = ctx.batch.batch_size;
        let mut routed = 0u64;
        for _ in 0..ctx.batch.max_batches {
            if ctx.shutdown.is_triggered() {
                break;
            }
            let report = self
                .pipeline
                .route_unrouted_events(None, limit)
                .await
                .map_err(SchedulerError::from)?;
            routed += report.processed;
            if report.processed < u64::from(limit) {
                break;
            }
        }
        m.add("nexiom_events_routed_total", routed as f64);

        let triage = self
            .pipeline
            .triage_new_items(limit)
            .await
            .map_err(SchedulerError::from)?;
        m.add(
            "nexiom_triaged_items_total{item=\"message\"}",
            triage.messages as f64,
        );
        m.add(
            "nexiom_triaged_items_total{item=\"comment\"}",
            triage.comments as f64,
        );
        if triage.messages + triage.comments > 0 {
            // Decisions of this run by outcome: each tenant's newest decisions
            // made since the run started (a run decides at most 2 × limit items
            // per tenant).
            for tenant in self.store.list_tenants().await? {
                for d in self
                    .store
                    .list_decisions(tenant.id, None, limit.saturating_mul(2))
                    .await?
                    .into_iter()
                    .take_while(|d| d.created_at >= ctx.now)
                {
                    m.add(
                        &format!("nexiom_triage_decisions_total{{triage=\"{}\"}}", d.triage),
                        1.0,
                    );
                }
            }
        }
        m.add(
            "nexiom_triage_escalated_on_error_total",
            triage.escalated_on_error as f64,
        );

        // The next `limit` items of the reply queue triaged in the last day
        // (older AUTO_REPLY items that are still unanswered need a person);
        // failed attempts are retried by later runs, then escalated.
        let since = ctx.now - Duration::days(1);
        let replies = self
            .pipeline
            .auto_reply_recent_inbound(since, limit)
            .await
            .map_err(SchedulerError::from)?;
        m.add(
            "nexiom_auto_replies_total{result=\"sent\"}",
            replies.sent as f64,
        );
        m.add(
            "nexiom_auto_replies_total{result=\"failed\"}",
            replies.failed as f64,
        );

        Ok(WorkReport {
            items_processed: (routed + triage.messages + triage.comments + replies.sent) as i64,
            items_failed: replies.failed as i64,
            results: serde_json::json!({
                "routed": routed,
                "triaged_messages": triage.messages,
                "triaged_comments": triage.comments,
                "escalated_on_error": triage.escalated_on_error,
                "replies_sent": replies.sent,
                "replies_failed": replies.failed,
                "replies_skipped_ai_off": replies.skipped_ai_off,
                "replies_retried_later": replies.retried_later,
                "replies_given_up": replies.given_up,
                "replies_held_back": replies.held_back,
                "lag_seconds": lag,
            }),
        })
    }
}

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

async fn serve_metrics(
    metrics: Arc<Metrics>,
    port: u16,
    shutdown: nexiom::scheduler::Shutdown,
) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
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
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
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
    let metrics = Arc::new(Metrics::default());
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
    let pipeline = InboundPipeline::new(Arc::clone(&store), Arc::clone(&clock), generator)
        .with_connectors(registry.clone());
    let registry_for_queue = registry.clone();

    let worker_id =
        env("NEXIOM_WORKER_ID").unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let queue = PublishQueue::new(
        Arc::clone(&store),
        Arc::new(ConnectorGateway::new(registry_for_queue)),
        Arc::clone(&clock),
        PublishConfig::for_worker(worker_id.clone()),
    );

    let workers: Vec<Arc<dyn Worker>> = vec![
        Arc::new(EnqueueDuePostsWorker::new(queue)),
        Arc::new(ReleaseStaleLeasesWorker::new(Arc::clone(&store))),
        Arc::new(CleanupExecutionLogsWorker::new(Arc::clone(&store))),
        Arc::new(InboundWorker {
            pipeline: pipeline.clone(),
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            metrics: Arc::clone(&metrics),
        }),
        Arc::new(PollCommentsWorker::new(
            CommentPoller::new(Arc::clone(&store), Arc::clone(&clock), registry.clone())
                .with_inbound(pipeline.clone()),
        )),
        Arc::new(KpiWorker::new(Arc::clone(&store), Arc::clone(&clock))),
    ];
    let mut runtime = WorkerRuntime::new(Arc::clone(&store), Arc::clone(&clock));
    for worker in workers {
        tracing::info!(
            worker = worker.name(),
            cadence = %worker.cadence(),
            "registered"
        );
        runtime.register(Arc::new(Metered {
            inner: worker,
            metrics: Arc::clone(&metrics),
            store: Arc::clone(&store),
        }));
    }

    let (trigger, shutdown) = shutdown_channel();
    tokio::spawn(trigger.trigger_on_signal());
    let port: u16 = env("NEXIOM_METRICS_PORT")
        .map(|p| p.parse())
        .transpose()
        .map_err(|e| format!("NEXIOM_METRICS_PORT is not a port number: {e}"))?
        .unwrap_or(9464);
    let metrics_server = tokio::spawn(serve_metrics(Arc::clone(&metrics), port, shutdown.clone()));

    tracing::info!(worker_id, "worker running; Ctrl-C to stop");
    runtime.run(shutdown).await;
    tracing::info!("shutdown: runs finished, stopping the metrics endpoint");
    metrics_server.await??;
    tracing::info!("worker stopped");
    Ok(())
}
