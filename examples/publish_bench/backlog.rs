//! The **backlog** scenario: one Page with `BACKLOG` posts due at once
//! (published one call at a time, `LATENCY_MS` per call), a microsecond
//! apart, and one post of another Page due right after the backlog's last,
//! published by one worker process
//! (the embedded default); `idle` more Pages hold a post due the next day
//! each (a shared claim walks every channel with a queued post). Reports when the other Page's post was
//! published: claims taken oldest first left it behind the whole backlog.
//! With `late_secs`, the other Page's post falls due that long after the
//! backlog, while the worker publishes the backlog's first batch: it waited
//! for that whole batch before `PublishConfig::batch_time`.

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgPoolOptions;

use super::fake_graph::{FakeGraph, FakeGraphConfig};
use super::publish_worker::{BoxError, WorkerOptions};
use super::{BENCH_KEYS, Params, drop_schema, schema, seed};

/// Runs the scenario; returns the seconds from the posts' due time to the
/// other Page's post's publication, and to the backlog's last.
pub async fn run(
    params: &Params,
    backlog: u64,
    idle: u64,
    late_secs: u64,
) -> Result<(f64, f64), BoxError> {
    let (name, scoped, admin) = schema(&params.url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(scoped.clone())
        .await?;
    let due = Utc::now() + Duration::seconds(6);
    let pages_only = Params {
        posts: 0,
        channels: 2 + idle,
        ..params.clone()
    };
    let pages = seed(&scoped, &pool, &pages_only, due).await?;
    sqlx::query(
        "INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, status, \
             retry_count, created_at, updated_at) \
         SELECT gen_random_uuid(), c.tenant_id, c.id, jsonb_build_object('text', 'post ' || n), \
             $2 - make_interval(secs => ($3 - n) / 1000000.0), 'queued', 0, now(), now() \
         FROM generate_series(0, $3 - 1) AS n, channels c WHERE c.external_account_id = $1 \
         UNION ALL \
         SELECT gen_random_uuid(), c.tenant_id, c.id, jsonb_build_object('text', 'late'), \
             $2 + $5::float8 * interval '1 second', 'queued', 0, now(), now() \
         FROM channels c WHERE c.external_account_id = $4 \
         UNION ALL \
         SELECT gen_random_uuid(), c.tenant_id, c.id, jsonb_build_object('text', 'tomorrow'), \
             $2 + interval '1 day', 'queued', 0, now(), now() \
         FROM channels c WHERE c.external_account_id NOT IN ($1, $4)",
    )
    .bind(&pages[0])
    .bind(due)
    .bind(i64::try_from(backlog)?)
    .bind(&pages[1])
    .bind(i64::try_from(late_secs)?)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE scheduled_posts")
        .execute(&pool)
        .await?;
    let fake = FakeGraph::start(FakeGraphConfig {
        latency_ms: (params.latency_ms, params.latency_ms),
        throttled: HashSet::new(),
        retry_after_secs: 30,
        ..FakeGraphConfig::default()
    })
    .await;
    let options = WorkerOptions {
        database_url: params.url.clone(),
        schema: name.clone(),
        graph_url: fake.base_url(),
        worker_id: "backlog-0".into(),
        batch_size: u32::try_from(params.batch)?,
        max_in_flight: 1_024,
        lease_secs: 60,
        retry_base_secs: 60,
        max_attempts: 3,
        pool: 8,
        connector: "graph".into(),
    };
    let mut child = options
        .command(&std::env::current_exe()?, &[])
        .env(
            nexiom_storage::secrets::EnvKeyProvider::VARIABLE,
            BENCH_KEYS,
        )
        .spawn()?;
    let deadline = Instant::now() + StdDuration::from_secs(900);
    let total = i64::try_from(backlog + 1)?;
    loop {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        let published: i64 =
            sqlx::query_scalar("SELECT count(*) FROM scheduled_posts WHERE status = 'published'")
                .fetch_one(&pool)
                .await?;
        if published >= total || Instant::now() > deadline {
            break;
        }
    }
    child.kill()?;
    child.wait()?;
    // The worker's clock when it settled each post.
    let times: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT c.external_account_id, max(p.updated_at) FILTER (WHERE p.status = 'published') \
         FROM scheduled_posts p JOIN channels c ON c.id = p.channel_id \
         GROUP BY c.external_account_id",
    )
    .fetch_all(&pool)
    .await?;
    let since = |page: &str, due: DateTime<Utc>| {
        times
            .iter()
            .find(|(p, _)| p == page)
            .and_then(|(_, at)| *at)
            .map(|at| (at - due).num_milliseconds() as f64 / 1_000.0)
    };
    let late_due = due + Duration::seconds(i64::try_from(late_secs)?);
    let (Some(late), Some(last)) = (since(&pages[1], late_due), since(&pages[0], due)) else {
        return Err("a Page's posts were not all published".into());
    };
    let (calls, _, _) = fake.counts();
    if fake.peak_in_flight_per_page() > 1 || !fake.duplicates().is_empty() {
        return Err("more than one call in flight on a Page, or a post created twice".into());
    }
    println!("  fake Graph: {calls} publish calls");
    pool.close().await;
    drop_schema(&admin, &name).await?;
    Ok((late, last))
}
