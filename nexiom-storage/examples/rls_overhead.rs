//! What row-level security and sealed tokens cost a tenant-scoped operation.
//!
//! Side by side, on one schema, 8 concurrent tasks on a pool of 8:
//!
//! - `bare`: the single statement `get_channel` ran before row-level security
//!   (`SELECT * FROM channels WHERE tenant_id = $1 AND id = $2`, one round
//!   trip, no transaction, token left sealed);
//! - `store (superuser)`: `PgStore::get_channel`, which now runs `BEGIN` +
//!   `set_config` (one round trip), the SELECT, `COMMIT`, and opens the sealed
//!   token (policies bypassed: superuser);
//! - `store (nexiom_app)`: the same on a pool connected as `nexiom_app`, so
//!   the policy is evaluated;
//! - the same three for a write, `set_channel_status` (an `UPDATE … RETURNING`).
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release -p nexiom-storage --example rls_overhead
//! ```
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use nexiom_core::{
    ChannelId, ChannelStatus, Credentials, NewChannel, NewTenant, Platform, SecretString, TenantId,
};
use nexiom_storage::conformance::test_keys;
use nexiom_storage::{PgStore, TenantStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

const TASKS: usize = 8;
const OPS: usize = 20_000;
const CHANNELS: usize = 200;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run<F, Fut>(label: &str, baseline: Option<f64>, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            for i in (t..OPS).step_by(TASKS) {
                op(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = OPS as f64 / start.elapsed().as_secs_f64();
    match baseline {
        Some(b) => println!("{label:<40} {rate:>9.0} ops/s  {:.2}x bare", rate / b),
        None => println!("{label:<40} {rate:>9.0} ops/s"),
    }
    rate
}

async fn pool(options: PgConnectOptions, role: Option<&'static str>) -> PgPool {
    PgPoolOptions::new()
        .max_connections(TASKS as u32)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if let Some(role) = role {
                    conn.execute(format!("SET ROLE {role}").as_str()).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let base = PgConnectOptions::from_str(&url)?;
    let admin = pool(base.clone(), None).await;
    let schema = format!("nx_rls_bench_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
        .await?;
    let options = base.options([("search_path", schema.as_str())]);
    let superuser = pool(options.clone(), None).await;
    let store = PgStore::from_pool(superuser.clone()).with_keys(test_keys());
    store.migrate().await?;
    let app =
        PgStore::from_pool(pool(options.clone(), Some("nexiom_app")).await).with_keys(test_keys());

    let tenant = store
        .create_tenant(NewTenant::new("bench", Utc::now()))
        .await?;
    let mut ids = Vec::new();
    for c in 0..CHANNELS {
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::Facebook,
                external_account_id: format!("page-{c}"),
                name: format!("Page {c}"),
                credentials: Credentials {
                    access_token: Some(SecretString::new(format!("EAAG-token-{c}"))),
                    ..Credentials::default()
                },
                created_at: Utc::now(),
            })
            .await?;
        ids.push(channel.id);
    }
    let ids = Arc::new(ids);
    let t: TenantId = tenant.id;
    println!(
        "{OPS} operations, {TASKS} tasks, pool of {TASKS}, {CHANNELS} channels, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    println!("-- read: get_channel");
    let (p, i) = (superuser.clone(), ids.clone());
    let bare = run("bare SELECT (no transaction)", None, move |n| {
        let (p, id) = (p.clone(), i[n % CHANNELS]);
        async move {
            let _row: (uuid::Uuid,) =
                sqlx::query_as("SELECT id FROM channels WHERE tenant_id = $1 AND id = $2")
                    .bind(t.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_one(&p)
                    .await
                    .unwrap();
        }
    })
    .await;
    for (label, s) in [
        ("PgStore::get_channel (superuser)", store.clone()),
        ("PgStore::get_channel (nexiom_app)", app.clone()),
    ] {
        let i = ids.clone();
        run(label, Some(bare), move |n| {
            let (s, id): (PgStore, ChannelId) = (s.clone(), i[n % CHANNELS]);
            async move {
                s.get_channel(t, id).await.unwrap();
            }
        })
        .await;
    }

    println!("-- write: set_channel_status");
    let (p, i) = (superuser.clone(), ids.clone());
    let bare = run("bare UPDATE … RETURNING", None, move |n| {
        let (p, id) = (p.clone(), i[n % CHANNELS]);
        async move {
            sqlx::query(
                "UPDATE channels SET status = 'active' WHERE tenant_id = $1 AND id = $2 \
                 RETURNING *",
            )
            .bind(t.as_uuid())
            .bind(id.as_uuid())
            .fetch_one(&p)
            .await
            .unwrap();
        }
    })
    .await;
    for (label, s) in [
        ("PgStore::set_channel_status (superuser)", store.clone()),
        ("PgStore::set_channel_status (nexiom_app)", app.clone()),
    ] {
        let i = ids.clone();
        run(label, Some(bare), move |n| {
            let (s, id): (PgStore, ChannelId) = (s.clone(), i[n % CHANNELS]);
            async move {
                s.set_channel_status(t, id, ChannelStatus::Active)
                    .await
                    .unwrap();
            }
        })
        .await;
    }

    admin
        .execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str())
        .await?;
    Ok(())
}
