//! Benchmark: due posts claimed and published per second on PostgreSQL, with 1,
//! 2 and 4 workers (each with its own pool) through a no-latency `MockConnector`,
//! 20,000 posts per run; side by side, the same posts claimed one at a time
//! (a claim of 1 per post, no batching).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom \
//!   cargo run --release -p nexiom-scheduler --example publish_throughput
//! ```
//!
//! Optional: `POSTS=5000` to change the number of posts, `BATCH=100` the batch
//! size. Each run uses a fresh schema, dropped afterwards.

use std::error::Error;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use nexiom_connectors::{MockConnector, MockOp};
use nexiom_core::{Clock, Credentials, ManualClock, NewChannel, NewTenant, Platform};
use nexiom_scheduler::{BatchConfig, ConnectorGateway, PublishConfig, PublishQueue};
use nexiom_storage::{PgStore, Store, TenantStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

type BoxError = Box<dyn Error + Send + Sync>;

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(
    options: &PgConnectOptions,
    posts: u32,
    workers: u32,
    batch_size: u32,
) -> Result<f64, BoxError> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let schema = format!("nx_bench_{}", uuid_like());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await?;
    let scoped = options.clone().options([("search_path", schema.as_str())]);
    let setup = PgStore::connect_with(scoped.clone(), 2).await?;
    setup.migrate().await?;
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .ok_or("time")?,
    ));
    let tenant = setup
        .create_tenant(NewTenant::new("bench", clock.now()))
        .await?;
    let channel = setup
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: "bench-page".into(),
            name: "bench".into(),
            credentials: Credentials::default(),
            created_at: clock.now(),
        })
        .await?;
    // Setup only: the posts are inserted in one statement.
    sqlx::query(
        "INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, status, \
             retry_count, created_at, updated_at) \
         SELECT gen_random_uuid(), $1, $2, jsonb_build_object('text', 'post ' || n), \
             $3 - make_interval(secs => n), 'queued', 0, $3, $3 \
         FROM generate_series(1, $4) AS n",
    )
    .bind(tenant.id.as_uuid())
    .bind(channel.id.as_uuid())
    .bind(clock.now())
    .bind(i64::from(posts))
    .execute(setup.pool())
    .await?;
    sqlx::query("ANALYZE scheduled_posts")
        .execute(setup.pool())
        .await?;

    let mock = MockConnector::new(Platform::Facebook);
    let gateway = Arc::new(ConnectorGateway::single(Arc::new(mock.clone())));
    let mut queues = Vec::new();
    for w in 0..workers {
        let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(scoped.clone(), 2).await?);
        queues.push(PublishQueue::new(
            store,
            gateway.clone(),
            clock.clone(),
            PublishConfig::for_worker(format!("bench-{w}")),
        ));
    }
    let batch = BatchConfig {
        batch_size,
        max_batches: u32::MAX,
        ..BatchConfig::default()
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for queue in queues {
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let mut published = 0u64;
            loop {
                let report = queue.run_due(&batch, None).await?;
                published += report.published;
                if report.claimed == 0 {
                    return Ok::<u64, BoxError>(published);
                }
            }
        }));
    }
    let mut published = 0;
    for task in tasks {
        published += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if published != u64::from(posts) || mock.calls_of(MockOp::Publish).len() != posts as usize {
        return Err(format!("published {published} of {posts}").into());
    }
    setup.pool().close().await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&admin)
        .await?;
    Ok(f64::from(posts) / elapsed)
}

fn uuid_like() -> String {
    format!("{:016x}", unique_u64())
}

fn unique_u64() -> u64 {
    // Nanoseconds since the epoch are unique enough for a schema name here.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), BoxError> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let options = PgConnectOptions::from_str(&url)?;
    let posts = env_number("POSTS", 20_000);
    let batch = env_number("BATCH", 100);
    println!("{posts} due posts, no-latency MockConnector, batch size {batch}");
    println!(
        "{:>8} {:>18} {:>18} {:>8}",
        "workers", "batched posts/s", "one-at-a-time/s", "ratio"
    );
    for workers in [1, 2, 4] {
        let batched = run(&options, posts, workers, batch).await?;
        let single = run(&options, posts, workers, 1).await?;
        println!(
            "{workers:>8} {batched:>18.0} {single:>18.0} {:>7.2}x",
            batched / single
        );
    }
    Ok(())
}
