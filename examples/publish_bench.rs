//! Benchmark: publishing on PostgreSQL with 2 worker processes, side by side
//! in one run.
//!
//! - **floor**: what the database allows for this shape of work, measured the
//!   same way: 2 connections each loop over a bare `UPDATE … FOR UPDATE SKIP
//!   LOCKED … RETURNING` claim of one batch, one inserted row per item and
//!   one state update per batch, over the same number of rows.
//! - **floor on the posts table**: the same bare claim, run insert and
//!   settlement, on the same seeded `scheduled_posts` and `post_runs` (their
//!   indexes and row widths), with no channel holds, lease guards or platform
//!   calls: the ratio to it is the queue's own overhead.
//! - **lean floor**: the same with the settlement also ending the runs, on
//!   a posts table stripped before the clock starts of its foreign keys and
//!   of every index but the primary key and those publishing itself needs
//!   (due posts, leases, platform ids, polling): the issue's writes with no
//!   queue overhead, on this table's shape.
//! - **db-bound**: 20,000 due posts over 500 channels, 2 worker processes
//!   with the in-process `MockConnector` (no latency).
//! - **latency-bound**: 20,000 posts over 500 Facebook Pages, 2 worker
//!   processes with the real Facebook connector against a local fake Graph
//!   API answering each publish in 100 ms. One Page answers 429 with
//!   `Retry-After: 30`: its posts must stay queued (held back) while every
//!   other Page finishes. The fake records the most calls ever in flight on
//!   one Page; the bench fails if it exceeds the per-channel cap (1).
//! - **backlog** (only when named in `SCENARIOS`): `BACKLOG` (1,000) posts
//!   due on one Page and one post of another Page due just after them,
//!   `BACKLOG_IDLE` (0) more Pages with one post due the next day each, one
//!   worker process, `LATENCY_MS` per call: when the other Page's post is
//!   published (`publish_bench/backlog.rs`). With `BACKLOG_LATE_SECS` (0)
//!   the other Page's post falls due that many seconds after the backlog,
//!   while its first batch runs.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release --example publish_bench
//! ```
//!
//! Optional: `POSTS` (default 20000), `CHANNELS` (500), `BATCH` (250, so that each of the 2 workers holds half the channels),
//! `LATENCY_MS` (100), `SCENARIOS` (`floor,floor-posts,floor-lean,db,latency,sequential`). Each scenario uses a
//! fresh schema, dropped afterwards.
#![allow(clippy::unwrap_used)]

#[path = "publish_bench/backlog.rs"]
mod backlog;
#[path = "../tests/support/fake_graph.rs"]
mod fake_graph;
#[path = "../tests/support/publish_worker.rs"]
mod publish_worker;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use fake_graph::{FakeGraph, FakeGraphConfig};
use publish_worker::{BoxError, WORKER_ENV, WorkerOptions};

/// The sealing key the bench and its worker processes share (tokens are
/// stored encrypted; the workers read it from `NEXIOM_SECRET_KEYS`).
const BENCH_KEYS: &str = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

const WORKERS: usize = 2;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Ok(json) = std::env::var(WORKER_ENV) {
        return runtime.block_on(publish_worker::run(WorkerOptions::from_json(&json)?));
    }
    runtime.block_on(bench())
}

#[derive(Clone)]
struct Params {
    url: String,
    posts: u64,
    channels: u64,
    batch: u64,
    latency_ms: u64,
}

async fn bench() -> Result<(), BoxError> {
    let params = Params {
        url: std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?,
        posts: env_number("POSTS", 20_000),
        channels: env_number("CHANNELS", 500),
        batch: env_number("BATCH", 250),
        latency_ms: env_number("LATENCY_MS", 100),
    };
    let scenarios = std::env::var("SCENARIOS")
        .unwrap_or_else(|_| "floor,floor-posts,floor-lean,db,latency,sequential".into());
    println!(
        "{} posts, {} channels, batch {}, {WORKERS} worker processes, {} cores",
        params.posts,
        params.channels,
        params.batch,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let mut floor = None;
    let mut floor_posts = None;
    let mut latency = None;
    for scenario in scenarios.split(',') {
        match scenario.trim() {
            "floor" => {
                let rate = floor_run(&params).await?;
                println!("floor (bare claim + insert + update, 2 connections): {rate:.0} rows/s");
                floor = Some(rate);
            }
            "floor-posts" => {
                let rate = floor_posts_run(&params, false).await?;
                println!(
                    "floor on the posts table (bare claim + run insert + settle, 2 connections): {rate:.0} posts/s"
                );
                floor_posts = Some(rate);
            }
            "floor-lean" => {
                let rate = floor_posts_run(&params, true).await?;
                let ratio =
                    floor.map_or(String::new(), |f| format!(" ({:.2}x the floor)", rate / f));
                println!(
                    "lean floor (bare claim + run insert + settle ending the runs, posts table \
                     stripped to the queue's own indexes, 2 connections): {rate:.0} posts/s{ratio}"
                );
            }
            "db" => {
                let rate = publish_run(&params, "mock", None, 1_024).await?;
                let ratio =
                    floor.map_or(String::new(), |f| format!(" ({:.2}x the floor)", rate / f));
                let posts_ratio = floor_posts.map_or(String::new(), |f| {
                    format!(" ({:.2}x the floor on the posts table)", rate / f)
                });
                println!("db-bound (MockConnector): {rate:.0} posts/s{ratio}{posts_ratio}");
            }
            "latency" => {
                let rate = publish_run(&params, "graph", Some(params.latency_ms), 1_024).await?;
                println!(
                    "latency-bound (Facebook connector, {} ms per call): {rate:.0} posts/s",
                    params.latency_ms
                );
                latency = Some(rate);
            }
            "sequential" => {
                // The baseline: one call at a time per worker, as before
                // concurrency; fewer posts, it is slow.
                let small = Params {
                    posts: params.channels,
                    ..params.clone()
                };
                let rate = publish_run(&small, "graph", Some(params.latency_ms), 1).await?;
                let ratio = latency.map_or(String::new(), |l| {
                    format!("; concurrent is {:.1}x", l / rate)
                });
                println!(
                    "latency-bound, one call at a time per worker ({} posts): {rate:.1} posts/s{ratio}",
                    small.posts
                );
            }
            "backlog" => {
                let posts = env_number("BACKLOG", 1_000);
                let idle = env_number("BACKLOG_IDLE", 0);
                let late_secs = env_number("BACKLOG_LATE_SECS", 0);
                let (late, last) = backlog::run(&params, posts, idle, late_secs).await?;
                println!(
                    "backlog ({posts} posts due on one Page, one post of another Page due \
                     {late_secs} s after, {idle} more Pages with a post due tomorrow, {} ms per \
                     call, 1 worker process): the other Page's post published {late:.2} s after \
                     its due time, the backlog's last {last:.2} s after its due time",
                    params.latency_ms
                );
            }
            other => return Err(format!("unknown scenario {other}").into()),
        }
    }
    Ok(())
}

/// A fresh schema with the migrations applied; returns its options and an
/// admin pool to drop it with.
async fn schema(url: &str) -> Result<(String, PgConnectOptions, PgPool), BoxError> {
    let base = PgConnectOptions::from_str(url)?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(base.clone())
        .await?;
    let name = format!("nx_bench_{:016x}", fastrand::u64(..));
    admin
        .execute(format!("CREATE SCHEMA \"{name}\"").as_str())
        .await?;
    let scoped = base.options([("search_path", name.as_str())]);
    let store = nexiom_storage::PgStore::connect_with(scoped.clone(), 2).await?;
    store.migrate().await?;
    store.pool().close().await;
    Ok((name, scoped, admin))
}

async fn drop_schema(admin: &PgPool, name: &str) -> Result<(), BoxError> {
    admin
        .execute(format!("DROP SCHEMA \"{name}\" CASCADE").as_str())
        .await?;
    admin.close().await;
    Ok(())
}

async fn floor_run(params: &Params) -> Result<f64, BoxError> {
    let (name, scoped, admin) = schema(&params.url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(scoped)
        .await?;
    pool.execute(
        "CREATE TABLE floor_items (id BIGINT PRIMARY KEY, due TIMESTAMPTZ NOT NULL, \
             status TEXT NOT NULL, owner TEXT, lease TIMESTAMPTZ); \
         CREATE INDEX ON floor_items (status, due); \
         CREATE TABLE floor_runs (id BIGSERIAL PRIMARY KEY, item BIGINT NOT NULL, \
             started TIMESTAMPTZ NOT NULL)",
    )
    .await?;
    sqlx::query(
        "INSERT INTO floor_items SELECT n, now() - make_interval(secs => n), 'queued' \
         FROM generate_series(1, $1) AS n",
    )
    .bind(i64::try_from(params.posts)?)
    .execute(&pool)
    .await?;
    pool.execute("ANALYZE floor_items").await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let pool = pool.clone();
        let batch = i64::try_from(params.batch)?;
        tasks.push(tokio::spawn(async move {
            let owner = format!("floor-{w}");
            let mut done = 0u64;
            loop {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE floor_items SET status = 'working', owner = $1, \
                         lease = now() + interval '5 minutes' \
                     WHERE id = ANY(ARRAY(SELECT id FROM floor_items WHERE status = 'queued' \
                         AND due <= now() ORDER BY due LIMIT $2 FOR UPDATE SKIP LOCKED)) \
                     RETURNING id",
                )
                .bind(&owner)
                .bind(batch)
                .fetch_all(&pool)
                .await?;
                if ids.is_empty() {
                    return Ok::<u64, sqlx::Error>(done);
                }
                sqlx::query(
                    "INSERT INTO floor_runs (item, started) SELECT unnest($1::int8[]), now()",
                )
                .bind(&ids)
                .execute(&pool)
                .await?;
                sqlx::query(
                    "UPDATE floor_items SET status = 'done', owner = NULL, lease = NULL \
                     WHERE id = ANY($1) AND owner = $2",
                )
                .bind(&ids)
                .bind(&owner)
                .execute(&pool)
                .await?;
                done += ids.len() as u64;
            }
        }));
    }
    finish_floor(tasks, started, params, pool, admin, &name).await
}

/// The floor on the posts table itself: the same seeded posts, 2
/// connections each looping over a bare claim (`UPDATE … FOR UPDATE SKIP
/// LOCKED … RETURNING` of one batch, setting what a claim sets), one
/// `post_runs` row per item, and one settlement per batch (setting what a
/// published post holds: platform id, publication time, next poll), with no
/// channel holds, lease checks, budgets or platform calls. It pays the same
/// indexes and row widths as publishing, so the ratio to it measures the
/// queue's own overhead.
///
/// `lean`: the issue's writes with no queue overhead, on a leaner posts
/// table. The settlement also ends the runs (in the same statement: no run
/// may stay `running`), and before the clock starts the table loses every
/// foreign key and the indexes only the product's other reads use (the
/// tenant and channel listings, the composite key other tables' foreign keys
/// reference, the external-post and series keys): the primary key stays,
/// with the indexes publishing itself reads (due posts for the claim, leases
/// for taking over a stopped worker's posts, platform ids for routing
/// comments, polling), and `post_runs` keeps the (post, attempt) key the run
/// ends are found by. The claim still rewrites each row through those
/// indexes (it changes the status and the lease); a schema whose claim is a
/// HOT update would do better (see BENCHMARKS.md).
async fn floor_posts_run(params: &Params, lean: bool) -> Result<f64, BoxError> {
    let (name, scoped, admin) = schema(&params.url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(scoped.clone())
        .await?;
    seed(&scoped, &pool, params, Utc::now()).await?;
    if lean {
        strip_posts(&pool).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let pool = pool.clone();
        let batch = i64::try_from(params.batch)?;
        tasks.push(tokio::spawn(async move {
            let owner = format!("floor-{w}");
            let mut done = 0u64;
            loop {
                let claimed: Vec<(sqlx::types::Uuid, sqlx::types::Uuid)> = sqlx::query_as(
                    "UPDATE scheduled_posts SET status = 'publishing', lease_owner = $1, \
                         lease_expires_at = now() + interval '1 minute', updated_at = now() \
                     WHERE id = ANY(ARRAY(SELECT id FROM scheduled_posts \
                         WHERE status = 'queued' AND publish_at <= now() \
                         ORDER BY publish_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
                     RETURNING id, tenant_id",
                )
                .bind(&owner)
                .bind(batch)
                .fetch_all(&pool)
                .await?;
                if claimed.is_empty() {
                    return Ok::<u64, sqlx::Error>(done);
                }
                let ids: Vec<sqlx::types::Uuid> = claimed.iter().map(|c| c.0).collect();
                let tenants: Vec<sqlx::types::Uuid> = claimed.iter().map(|c| c.1).collect();
                sqlx::query(
                    "INSERT INTO post_runs (id, tenant_id, post_id, attempt, started_at, status) \
                     SELECT gen_random_uuid(), t, p, 1, now(), 'running' \
                     FROM UNNEST($1::uuid[], $2::uuid[]) AS u(p, t)",
                )
                .bind(&ids)
                .bind(&tenants)
                .execute(&pool)
                .await?;
                let settled = sqlx::query(if lean { LEAN_SETTLE } else { SETTLE })
                    .bind(&ids)
                    .bind(&owner)
                    .execute(&pool)
                    .await?;
                // The lean settlement reports the runs it ended.
                if lean && settled.rows_affected() != ids.len() as u64 {
                    return Err(sqlx::Error::Protocol(format!(
                        "the lean settlement ended {} runs of {}",
                        settled.rows_affected(),
                        ids.len()
                    )));
                }
                done += ids.len() as u64;
            }
        }));
    }
    finish_floor(tasks, started, params, pool, admin, &name).await
}

/// The floors' settlement: what a published post holds.
const SETTLE: &str = "UPDATE scheduled_posts SET status = 'published', \
         platform_post_id = 'floor-' || id, published_at = now(), \
         next_check_at = now() + interval '5 minutes', \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
     WHERE id = ANY($1) AND lease_owner = $2";

/// The lean floor's settlement: the same, and the runs ended.
const LEAN_SETTLE: &str = "WITH settled AS ( \
         UPDATE scheduled_posts SET status = 'published', \
             platform_post_id = 'floor-' || id, published_at = now(), \
             next_check_at = now() + interval '5 minutes', \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
         WHERE id = ANY($1) AND lease_owner = $2 RETURNING id) \
     UPDATE post_runs SET status = 'success', finished_at = now() \
     WHERE post_id IN (SELECT id FROM settled) AND status = 'running'";

/// Drops from the posts table every foreign key (its own and those naming
/// it) and the indexes only the product's other reads use.
async fn strip_posts(pool: &PgPool) -> Result<(), BoxError> {
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint \
         WHERE contype = 'f' AND (conrelid = 'scheduled_posts'::regclass \
             OR confrelid = 'scheduled_posts'::regclass)",
    )
    .fetch_all(pool)
    .await?;
    for (table, key) in keys {
        pool.execute(format!("ALTER TABLE {table} DROP CONSTRAINT \"{key}\"").as_str())
            .await?;
    }
    pool.execute(
        "ALTER TABLE scheduled_posts DROP CONSTRAINT uq_scheduled_posts_tenant_id; \
         DROP INDEX ix_scheduled_posts_channel, ix_scheduled_posts_tenant, \
             uq_scheduled_posts_external, uq_scheduled_posts_occurrence; \
         ANALYZE scheduled_posts",
    )
    .await?;
    Ok(())
}

/// Waits for a floor's connections, checks they handled every row, drops
/// the schema and returns the rate.
async fn finish_floor(
    tasks: Vec<tokio::task::JoinHandle<Result<u64, sqlx::Error>>>,
    started: Instant,
    params: &Params,
    pool: PgPool,
    admin: PgPool,
    name: &str,
) -> Result<f64, BoxError> {
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if done != params.posts {
        return Err(format!("floor handled {done} of {}", params.posts).into());
    }
    pool.close().await;
    drop_schema(&admin, name).await?;
    Ok(params.posts as f64 / elapsed)
}

/// Seeds `posts` posts over `channels` channels, all due at `due`.
async fn seed(
    scoped: &PgConnectOptions,
    pool: &PgPool,
    params: &Params,
    due: DateTime<Utc>,
) -> Result<Vec<String>, BoxError> {
    use nexiom_core::{Credentials, NewChannel, NewTenant, Platform, SecretString};
    use nexiom_storage::{PgStore, TenantStore};
    let keys = nexiom_storage::secrets::EnvKeyProvider::parse(BENCH_KEYS)?;
    let store = PgStore::connect_with(scoped.clone(), 2)
        .await?
        .with_keys(std::sync::Arc::new(keys));
    let now = Utc::now();
    let tenant = store.create_tenant(NewTenant::new("bench", now)).await?;
    let mut pages = Vec::new();
    for c in 0..params.channels {
        let page = format!("page-{c:05}");
        store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: page.clone(),
                name: page.clone(),
                credentials: Credentials {
                    access_token: Some(SecretString::new(format!("token-{c}"))),
                    ..Credentials::default()
                },
                created_at: now,
            })
            .await?;
        pages.push(page);
    }
    store.pool().close().await;
    // Post n goes to channel n mod channels; all are due at `due`, in order of
    // n (a microsecond apart), channels interleaved.
    sqlx::query(
        "WITH ch AS (SELECT id, row_number() OVER (ORDER BY external_account_id) - 1 AS k \
                     FROM channels WHERE tenant_id = $1) \
         INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, status, \
             retry_count, created_at, updated_at) \
         SELECT gen_random_uuid(), $1, ch.id, jsonb_build_object('text', 'bench post ' || n), \
             $2 - make_interval(secs => ($4 - n) / 1000000.0), 'queued', 0, $3, $3 \
         FROM generate_series(0, $4 - 1) AS n JOIN ch ON ch.k = n % $5",
    )
    .bind(tenant.id.as_uuid())
    .bind(due)
    .bind(now)
    .bind(i64::try_from(params.posts)?)
    .bind(i64::try_from(params.channels)?)
    .execute(pool)
    .await?;
    pool.execute("ANALYZE").await?;
    Ok(pages)
}

async fn publish_run(
    params: &Params,
    connector: &str,
    latency: Option<u64>,
    max_in_flight: usize,
) -> Result<f64, BoxError> {
    let (name, scoped, admin) = schema(&params.url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(scoped.clone())
        .await?;
    // The posts fall due a few seconds after seeding, once the workers are up.
    let due = Utc::now() + Duration::seconds(8);
    let pages = seed(&scoped, &pool, params, due).await?;
    // One Page answers 429 (only in the concurrent latency-bound run).
    let throttled = latency
        .filter(|_| max_in_flight > 1)
        .map(|_| pages[pages.len() / 2].clone());
    let fake = FakeGraph::start(FakeGraphConfig {
        latency_ms: latency.map_or((0, 0), |l| (l, l)),
        throttled: throttled.iter().cloned().collect::<HashSet<_>>(),
        retry_after_secs: 30,
        ..FakeGraphConfig::default()
    })
    .await;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for w in 0..WORKERS {
        let options = WorkerOptions {
            database_url: params.url.clone(),
            schema: name.clone(),
            graph_url: fake.base_url(),
            worker_id: format!("bench-{w}"),
            batch_size: u32::try_from(params.batch)?,
            max_in_flight,
            lease_secs: 60,
            retry_base_secs: 60,
            max_attempts: 3,
            pool: 8,
            connector: connector.to_owned(),
        };
        children.push(
            options
                .command(&exe, &[])
                .env(
                    nexiom_storage::secrets::EnvKeyProvider::VARIABLE,
                    BENCH_KEYS,
                )
                .spawn()?,
        );
    }
    let per_channel = params.posts / params.channels;
    let expected = i64::try_from(params.posts - if throttled.is_some() { per_channel } else { 0 })?;
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    let started = Instant::now();
    let deadline = started + StdDuration::from_secs(600);
    // The clock stops at the last settlement's timestamp (`updated_at`, the
    // worker's clock when it wrote the batch), not when this loop notices: the
    // count is a scan of the table, so it runs every 100 ms, not every few ms
    // beside the workers it measures.
    loop {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        let published: i64 =
            sqlx::query_scalar("SELECT count(*) FROM scheduled_posts WHERE status = 'published'")
                .fetch_one(&pool)
                .await?;
        if published >= expected || Instant::now() > deadline {
            break;
        }
    }
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(updated_at) FROM scheduled_posts WHERE status = 'published'",
    )
    .fetch_one(&pool)
    .await?;
    let elapsed = last
        .and_then(|last| (last - due).to_std().ok())
        .map_or_else(|| started.elapsed().as_secs_f64(), |d| d.as_secs_f64());
    for child in &mut children {
        child.kill()?;
        child.wait()?;
    }
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE status = 'published') AS published, \
                count(*) FILTER (WHERE status = 'failed') AS failed \
         FROM scheduled_posts",
    )
    .fetch_one(&pool)
    .await?;
    let (published, failed): (i64, i64) = (row.get("published"), row.get("failed"));
    let (calls, throttled_calls, _) = fake.counts();
    if published < expected || failed > 0 {
        return Err(format!("published {published} of {expected}, {failed} failed").into());
    }
    if connector == "graph" {
        let peak = fake.peak_in_flight_per_page();
        println!(
            "  fake Graph: {calls} publish calls, {throttled_calls} answered 429, \
             at most {peak} in flight on one Page"
        );
        if peak > 1 {
            return Err(format!("{peak} calls in flight on one Page (cap 1)").into());
        }
        if !fake.duplicates().is_empty() {
            return Err("a post was created twice".into());
        }
    }
    if let Some(page) = &throttled {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE p.status = 'queued') AS queued, count(*) AS total \
             FROM scheduled_posts p JOIN channels c ON c.id = p.channel_id \
             WHERE c.external_account_id = $1",
        )
        .bind(page)
        .fetch_one(&pool)
        .await?;
        let (queued, total): (i64, i64) = (row.get("queued"), row.get("total"));
        println!(
            "  throttled Page {page}: {queued} of {total} posts still queued (held back 30 s); \
             every other Page done in {elapsed:.2} s"
        );
        if queued != total {
            return Err("the throttled Page's posts were not held back".into());
        }
    }
    pool.close().await;
    drop_schema(&admin, &name).await?;
    Ok(expected as f64 / elapsed)
}
