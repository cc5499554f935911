//! A publishing worker process for the multi-process tests and benchmarks: it
//! publishes through the real Facebook connector against a (fake) Graph base
//! URL, on PostgreSQL, until it is killed. The parent process starts it by
//! running its own executable again with [`WORKER_ENV`] set to the options as
//! JSON.
#![allow(dead_code)]

use std::error::Error;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{Backoff, BreakerConfig, FacebookConnector, HttpConfig, MockConnector};
use nexiom_core::{Platform, SystemClock};
use nexiom_scheduler::{
    BatchConfig, ConcurrencyConfig, ConnectorGateway, PublishConfig, PublishQueue, RetryPolicy,
};
use nexiom_storage::PgStore;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

/// The environment variable that turns the executable into a worker.
pub const WORKER_ENV: &str = "NEXIOM_PUBLISH_WORKER";

pub type BoxError = Box<dyn Error + Send + Sync>;

/// What a worker process is told.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub database_url: String,
    pub schema: String,
    pub graph_url: String,
    pub worker_id: String,
    pub batch_size: u32,
    pub max_in_flight: usize,
    pub lease_secs: i64,
    pub retry_base_secs: i64,
    pub max_attempts: u32,
    pub pool: u32,
    /// `graph`: the Facebook connector against `graph_url`; `mock`: the
    /// in-process `MockConnector` (no network, no latency).
    pub connector: String,
}

impl WorkerOptions {
    pub fn to_json(&self) -> String {
        json!({
            "database_url": self.database_url, "schema": self.schema,
            "graph_url": self.graph_url, "worker_id": self.worker_id,
            "batch_size": self.batch_size, "max_in_flight": self.max_in_flight,
            "lease_secs": self.lease_secs, "retry_base_secs": self.retry_base_secs,
            "max_attempts": self.max_attempts, "pool": self.pool,
            "connector": self.connector,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Result<WorkerOptions, BoxError> {
        let v: Value = serde_json::from_str(text)?;
        let s = |k: &str| -> Result<String, BoxError> {
            Ok(v[k].as_str().ok_or(format!("missing {k}"))?.to_owned())
        };
        let n =
            |k: &str| -> Result<u64, BoxError> { Ok(v[k].as_u64().ok_or(format!("missing {k}"))?) };
        Ok(WorkerOptions {
            database_url: s("database_url")?,
            schema: s("schema")?,
            graph_url: s("graph_url")?,
            worker_id: s("worker_id")?,
            batch_size: u32::try_from(n("batch_size")?)?,
            max_in_flight: usize::try_from(n("max_in_flight")?)?,
            lease_secs: i64::try_from(n("lease_secs")?)?,
            retry_base_secs: i64::try_from(n("retry_base_secs")?)?,
            max_attempts: u32::try_from(n("max_attempts")?)?,
            pool: u32::try_from(n("pool")?)?,
            connector: s("connector")?,
        })
    }

    /// A command that runs `exe` as a worker with these options (`args` are
    /// what the executable needs to reach the worker entry point).
    pub fn command(&self, exe: &std::path::Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(exe);
        cmd.args(args)
            .env(WORKER_ENV, self.to_json())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        cmd
    }
}

/// The Facebook connector against `graph_url`, with the circuit breaker off
/// (the fake fails on purpose) and one retry of idempotent reads.
pub fn connector(graph_url: &str) -> Result<FacebookConnector, BoxError> {
    Ok(FacebookConnector::builder()
        .with_base_url(graph_url)
        .with_version("v25.0")
        .with_app_secret("app-secret")
        .with_http_config(HttpConfig {
            timeout: std::time::Duration::from_secs(10),
            max_retries: 1,
            backoff: Backoff::none(),
            breaker: BreakerConfig {
                failure_threshold: 0,
                ..BreakerConfig::default()
            },
            ..HttpConfig::default()
        })
        .build()?)
}

/// Runs the worker until the process is killed.
pub async fn run(options: WorkerOptions) -> Result<(), BoxError> {
    let pg = PgConnectOptions::from_str(&options.database_url)?
        .options([("search_path", options.schema.as_str())]);
    let store = Arc::new(PgStore::connect_with(pg, options.pool).await?);
    let gateway = Arc::new(match options.connector.as_str() {
        "mock" => ConnectorGateway::single(Arc::new(MockConnector::new(Platform::Facebook))),
        _ => ConnectorGateway::single(Arc::new(connector(&options.graph_url)?)),
    });
    let config = PublishConfig {
        lease: Duration::seconds(options.lease_secs),
        retry: RetryPolicy {
            max_attempts: options.max_attempts,
            base: Duration::seconds(options.retry_base_secs),
            max_delay: Duration::seconds(options.retry_base_secs * 8),
            jitter: true,
        },
        concurrency: ConcurrencyConfig {
            max_in_flight: options.max_in_flight,
            ..ConcurrencyConfig::default()
        },
        ..PublishConfig::for_worker(options.worker_id.clone())
    };
    let queue = PublishQueue::new(store, gateway, Arc::new(SystemClock), config);
    let batch = BatchConfig {
        batch_size: options.batch_size,
        max_batches: 1,
        ..BatchConfig::default()
    };
    loop {
        queue.release_stale_leases().await?;
        let report = queue.run_due(&batch, None).await?;
        if report.claimed == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
