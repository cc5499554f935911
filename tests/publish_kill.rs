//! Three worker processes publish 2,000 posts over 10 Facebook Pages through
//! the real Facebook connector to a local fake Graph API (0–100 ms per call,
//! 10% HTTP 500s, half of them after the post was created). One process is
//! killed with SIGKILL and restarted at random moments, at least 5 times. At
//! the end: no post created twice on the fake platform, none lost (each is
//! `published`, or `failed` with its reason), no lease left, no run left
//! `running`, never two calls in flight on one Page. Bounded to 2 minutes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fake_graph.rs"]
mod fake_graph;
#[path = "support/publish_worker.rs"]
mod publish_worker;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use fake_graph::{FakeGraph, FakeGraphConfig};
use nexiom::core::{
    Content, Credentials, NewChannel, NewScheduledPost, NewTenant, PostFilter, PostStatus,
    SecretString,
};
use nexiom::scheduler::OUTCOME_UNKNOWN;
use nexiom::storage::conformance::{postgres_test_store, postgres_test_url};
use nexiom::storage::secrets::EnvKeyProvider;
use nexiom::storage::{PgStore, PostStore, TenantStore};
use publish_worker::{WORKER_ENV, WorkerOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const POSTS: usize = 2_000;
const PAGES: usize = 10;
const WORKERS: usize = 3;
const MIN_KILLS: usize = 5;
const LEASE_SECS: i64 = 3;
const DEADLINE: StdDuration = StdDuration::from_secs(110);
/// The sealing key the test and its worker processes share (tokens are
/// stored encrypted; the workers read them from `NEXIOM_SECRET_KEYS`).
const SECRET_KEYS: &str = "kill-test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The entry point of a worker process; the kill test starts it with
/// [`WORKER_ENV`] set. Run without it, it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the SIGKILL test, started by it"]
async fn worker_process() {
    if let Ok(json) = std::env::var(WORKER_ENV) {
        publish_worker::run(WorkerOptions::from_json(&json).unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn three_worker_processes_survive_sigkill_without_duplicates_or_losses() {
    let Some(ts) = postgres_test_store().await else {
        return;
    };
    let schema = ts.schema().unwrap().to_owned();
    let url = postgres_test_url().await.unwrap();
    let setup_options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let keys = EnvKeyProvider::parse(SECRET_KEYS).unwrap();
    let store = PgStore::connect_with(setup_options, 2)
        .await
        .unwrap()
        .with_keys(Arc::new(keys));
    let now = Utc::now();

    let tenant = store
        .create_tenant(NewTenant::new("Kill test", now))
        .await
        .unwrap();
    let mut pages = Vec::new();
    for p in 0..PAGES {
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: nexiom::core::Platform::Facebook,
                external_account_id: format!("page-{p}"),
                name: format!("Page {p}"),
                credentials: Credentials {
                    access_token: Some(SecretString::new(format!("token-{p}"))),
                    ..Credentials::default()
                },
                created_at: now,
            })
            .await
            .unwrap();
        pages.push(channel.id);
    }
    for i in 0..POSTS {
        store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                pages[i % PAGES],
                Content::text(format!("kill-test post {i}")),
                now - Duration::milliseconds((POSTS - i) as i64),
                now,
            ))
            .await
            .unwrap();
    }

    let fake = FakeGraph::start(FakeGraphConfig {
        latency_ms: (0, 100),
        error_rate: 0.10,
        ..FakeGraphConfig::default()
    })
    .await;
    let exe = std::env::current_exe().unwrap();
    let args = ["worker_process", "--exact", "--ignored", "--nocapture"];
    let options = |slot: usize, generation: usize| WorkerOptions {
        database_url: url.clone(),
        schema: schema.clone(),
        graph_url: fake.base_url(),
        worker_id: format!("worker-{slot}-{generation}"),
        batch_size: 50,
        max_in_flight: 64,
        lease_secs: LEASE_SECS,
        retry_base_secs: 1,
        max_attempts: 6,
        pool: 4,
        connector: "graph".into(),
    };
    let mut children: Vec<std::process::Child> = (0..WORKERS)
        .map(|slot| {
            options(slot, 0)
                .command(&exe, &args)
                .env(EnvKeyProvider::VARIABLE, SECRET_KEYS)
                .env(EnvKeyProvider::VARIABLE, SECRET_KEYS)
                .spawn()
                .unwrap()
        })
        .collect();

    let pg = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pg)
        .await
        .unwrap();
    let started = Instant::now();
    let mut kills = 0;
    let mut generation = 0;
    let mut next_kill = started + StdDuration::from_millis(fastrand::u64(500..2_000));
    loop {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM scheduled_posts WHERE status IN ('queued', 'publishing')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{open} posts still open after {:?} ({kills} kills)",
            started.elapsed()
        );
        if Instant::now() >= next_kill {
            let slot = fastrand::usize(..WORKERS);
            children[slot].kill().unwrap(); // SIGKILL
            children[slot].wait().unwrap();
            kills += 1;
            generation += 1;
            children[slot] = options(slot, generation)
                .command(&exe, &args)
                .env(EnvKeyProvider::VARIABLE, SECRET_KEYS)
                .spawn()
                .unwrap();
            next_kill = Instant::now() + StdDuration::from_millis(fastrand::u64(500..2_000));
        }
    }
    let elapsed = started.elapsed();
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills before the posts were done in {elapsed:?}: the test proved too little"
    );

    // Nothing lost: each post published, or failed with its reason.
    let posts = store
        .list_posts(tenant.id, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), POSTS);
    let mut by_status: HashMap<PostStatus, usize> = HashMap::new();
    for p in &posts {
        *by_status.entry(p.status).or_default() += 1;
        match p.status {
            PostStatus::Published => assert!(p.platform_post_id.is_some()),
            PostStatus::Failed => assert!(p.error_message.is_some(), "{p:?}"),
            other => panic!("post {} left {other}", p.id),
        }
        assert_eq!((p.lease_owner.as_deref(), p.lease_expires_at), (None, None));
    }
    // No post created twice, and every post the platform has is known to us:
    // published, or failed as an unknown outcome that a person checks.
    assert_eq!(
        fake.duplicates(),
        Vec::<String>::new(),
        "posts created twice"
    );
    let created: HashSet<String> = fake.created().into_iter().map(|(_, m)| m).collect();
    for p in &posts {
        let text = &p.content.text;
        match p.status {
            PostStatus::Published => assert!(
                created.contains(text),
                "published but not on the platform: {text}"
            ),
            _ => {
                let unknown = p
                    .error_message
                    .as_deref()
                    .unwrap_or("")
                    .starts_with(OUTCOME_UNKNOWN);
                assert!(
                    unknown || !created.contains(text),
                    "failed yet on the platform: {p:?}"
                );
            }
        }
    }
    // No run left running, no lease stuck.
    let running: i64 =
        sqlx::query_scalar("SELECT count(*) FROM post_runs WHERE status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(running, 0, "runs left running");
    assert!(
        fake.peak_in_flight_per_page() <= 1,
        "{} calls in flight on one Page",
        fake.peak_in_flight_per_page()
    );
    let (calls, _, errors) = fake.counts();
    eprintln!(
        "{POSTS} posts, {WORKERS} processes, {kills} SIGKILLs, {elapsed:?}; {by_status:?}; \
         {calls} publish calls, {errors} answered 500"
    );
    pool.close().await;
    ts.cleanup().await;
}
