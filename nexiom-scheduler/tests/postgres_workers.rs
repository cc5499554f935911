//! Many workers on one Postgres: 4 worker tasks, each with its own connection
//! pool, publish 5,000 due posts over 8 channels through one `MockConnector`
//! (the platform, shared by the workers, behind `ConnectorGateway`). Every
//! post is published exactly once, ends `published`, and has one successful
//! run. A channel is published by one worker at a time, so the workers share
//! the channels, not the posts of one channel.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Duration;
use common::{Env, batch};
use nexiom_connectors::{MockConnector, MockOp};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::conformance::test_keys;
use nexiom_storage::{PgStore, Store};
use sqlx::postgres::PgConnectOptions;

const POSTS: usize = 5_000;
const WORKERS: usize = 4;
const CHANNELS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn four_workers_with_their_own_pools_publish_5000_posts_exactly_once() {
    let Some(ts) = nexiom_storage::conformance::postgres_test_store().await else {
        return;
    };
    let schema = ts.schema().unwrap().to_owned();
    let env = Env::new(ts.store()).await;
    let url = nexiom_storage::conformance::postgres_test_url()
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);

    let mut channels = vec![env.channel];
    for c in 1..CHANNELS {
        let channel = env
            .store
            .create_channel(NewChannel {
                tenant_id: env.tenant,
                platform: Platform::Facebook,
                external_account_id: format!("page-{c}"),
                name: format!("Page {c}"),
                credentials: Credentials::default(),
                created_at: env.clock.now(),
            })
            .await
            .unwrap();
        channels.push(channel.id);
    }

    // Insert the posts, due now, in 4 parallel streams.
    let mut inserts = Vec::new();
    for w in 0..WORKERS {
        let store = env.store.clone();
        let (tenant, now) = (env.tenant, env.clock.now());
        let channels = channels.clone();
        inserts.push(tokio::spawn(async move {
            for i in (w..POSTS).step_by(WORKERS) {
                let channel = channels[i % CHANNELS];
                store
                    .insert_post(NewScheduledPost::one_off(
                        tenant,
                        channel,
                        Content::text(format!("post {i}")),
                        now - Duration::seconds(i as i64),
                        now,
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in inserts {
        t.await.unwrap();
    }

    let mock = MockConnector::new(Platform::Facebook);
    let gateway = Arc::new(ConnectorGateway::single(Arc::new(mock.clone())));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let pool_store: Arc<dyn Store> = Arc::new(
            PgStore::connect_with(options.clone(), 2)
                .await
                .unwrap()
                .with_keys(test_keys()),
        );
        let queue = PublishQueue::new(
            pool_store,
            gateway.clone(),
            env.clock.clone(),
            PublishConfig::for_worker(format!("worker-{w}")),
        );
        let (store, tenant) = (env.store.clone(), env.tenant);
        tasks.push(tokio::spawn(async move {
            let mut total = QueueReport::default();
            loop {
                let r = queue.run_due(&batch(50), None).await.unwrap();
                if r.claimed == 0 {
                    // Nothing claimable: the rest is on channels other
                    // workers hold, or everything is done.
                    let queued = PostFilter {
                        status: Some(PostStatus::Queued),
                        limit: Some(1),
                        ..PostFilter::default()
                    };
                    if store.list_posts(tenant, queued).await.unwrap().is_empty() {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                total.claimed += r.claimed;
                total.published += r.published;
                total.skipped += r.skipped;
            }
            total
        }));
    }
    let mut claimed_by_worker = Vec::new();
    for t in tasks {
        let report = t.await.unwrap();
        assert_eq!(report.skipped, 0);
        assert_eq!(report.claimed, report.published);
        claimed_by_worker.push(report.published);
    }
    assert_eq!(claimed_by_worker.iter().sum::<u64>(), POSTS as u64);
    assert!(
        claimed_by_worker.iter().filter(|n| **n > 0).count() >= 2,
        "the work was shared: {claimed_by_worker:?}"
    );

    // The platform's call log has no duplicate (each post has its own text).
    let calls = mock.calls_of(MockOp::Publish);
    assert_eq!(calls.len(), POSTS);
    let texts: HashSet<_> = calls.iter().map(|c| c.text.clone().unwrap()).collect();
    assert_eq!(texts.len(), POSTS);

    // Every post ends published, with exactly one successful run.
    let posts = env
        .store
        .list_posts(env.tenant, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), POSTS);
    assert!(posts.iter().all(|p| p.status == PostStatus::Published));
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let (runs, distinct, success): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT post_id), count(*) FILTER (WHERE status = 'success') \
         FROM post_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (runs, distinct, success),
        (POSTS as i64, POSTS as i64, POSTS as i64)
    );
    pool.close().await;
    ts.cleanup().await;
}
