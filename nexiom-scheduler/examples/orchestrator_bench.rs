//! Benchmark of the mission orchestrator: one orchestration over 10,000 active
//! missions and 100,000 ready content jobs on one channel, on the memory store
//! and on PostgreSQL, and a 30-day dry-run plan over the same data.
//!
//! ```sh
//! cargo run --release -p nexiom-scheduler --example orchestrator_bench
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom cargo run --release \
//!     -p nexiom-scheduler --example orchestrator_bench
//! ```
//!
//! Without `DATABASE_URL` only the memory figures are printed. On PostgreSQL
//! the data lives in a throw-away schema, dropped at the end.
//!
//! Each figure is compared with a baseline measured in the same run on the same
//! store: a plain `list_content_jobs` of every ready job of the channel (what any
//! scheduler must at least read), and, for the dry run, 30 single-day
//! orchestrations (what previewing a month day by day would cost).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use nexiom_core::*;
use nexiom_scheduler::{MissionOrchestrator, PlanMode};
use nexiom_storage::{MemoryStore, PgStore, Store};
use sqlx::postgres::PgConnectOptions;

const MISSIONS: u32 = 10_000;
const JOBS_PER_MISSION: u32 = 10;
const CAP: u32 = 10;
const RUNS: u32 = 5;

fn d0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
}

fn created() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
}

const PRIORITIES: [ObjectivePriority; 3] = [
    ObjectivePriority::High,
    ObjectivePriority::Medium,
    ObjectivePriority::Low,
];

async fn tenant_and_channel(store: &dyn Store) -> (TenantId, ChannelId) {
    let tenant = store
        .create_tenant(NewTenant::new("Bench", created()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::Facebook,
            external_account_id: format!("page-{}", tenant.id),
            name: "Page".into(),
            credentials: Credentials::default(),
            created_at: created(),
        })
        .await
        .unwrap();
    (tenant.id, channel.id)
}

/// Mission `g` runs from `d0 - g % 20` to `d0 + 30 + g % 40`: every mission is
/// active on every day measured.
async fn fill_memory(store: &dyn Store, tenant: TenantId, channel: ChannelId) {
    for g in 0..MISSIONS {
        let m = store
            .create_mission(NewMission {
                tenant_id: tenant,
                channel_id: channel,
                name: format!("m{g}"),
                status: MissionStatus::Active,
                objective_priority: PRIORITIES[(g % 3) as usize],
                start_date: d0() - Duration::days(i64::from(g % 20)),
                end_date: d0() + Duration::days(30 + i64::from(g % 40)),
                created_at: created(),
            })
            .await
            .unwrap();
        for k in 0..JOBS_PER_MISSION {
            store
                .create_content_job(NewContentJob {
                    tenant_id: tenant,
                    mission_id: Some(m.id),
                    channel_id: channel,
                    phase: Phase::from_index(k % 3),
                    status: ContentJobStatus::Ready,
                    content: Content::text("post"),
                    source_ref: None,
                    created_at: created() + Duration::minutes(i64::from(k)),
                })
                .await
                .unwrap();
        }
    }
}

/// The same data as [`fill_memory`], in two set-based statements.
async fn fill_postgres(pg: &PgStore, tenant: TenantId, channel: ChannelId) {
    sqlx::query(
        "INSERT INTO missions (id, tenant_id, channel_id, name, status, objective_priority, \
             start_date, end_date, created_at) \
         SELECT gen_random_uuid(), $1, $2, 'm' || g, 'active', \
             (ARRAY['high', 'medium', 'low'])[1 + g % 3], \
             $3::date - (g % 20)::int, $3::date + 30 + (g % 40)::int, $4 \
         FROM generate_series(0, $5 - 1) g",
    )
    .bind(tenant.as_uuid())
    .bind(channel.as_uuid())
    .bind(d0())
    .bind(created())
    .bind(i64::from(MISSIONS))
    .execute(pg.pool())
    .await
    .unwrap();
    // Statistics before the jobs go in: the foreign-key checks of the next
    // statement are planned from them (with none, each check scans missions).
    sqlx::query("ANALYZE missions")
        .execute(pg.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO content_jobs (id, tenant_id, mission_id, channel_id, phase, status, \
             content, scheduled_post_id, source_ref, created_at, updated_at) \
         SELECT gen_random_uuid(), m.tenant_id, m.id, m.channel_id, \
             (ARRAY['intro', 'nurture', 'closing'])[1 + k % 3], 'ready', \
             '{\"text\": \"post\"}'::jsonb, NULL, NULL, \
             $2 + k * interval '1 minute', $2 + k * interval '1 minute' \
         FROM missions m, generate_series(0, $3 - 1) k \
         WHERE m.tenant_id = $1",
    )
    .bind(tenant.as_uuid())
    .bind(created())
    .bind(i64::from(JOBS_PER_MISSION))
    .execute(pg.pool())
    .await
    .unwrap();
    // What autovacuum does in production: statistics and the visibility map
    // (which lets the ready-jobs read be an index-only scan).
    sqlx::query("VACUUM ANALYZE")
        .execute(pg.pool())
        .await
        .unwrap();
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<StdDuration>) -> StdDuration {
    v.sort();
    v[v.len() / 2]
}

async fn measure(label: &str, store: Arc<dyn Store>, tenant: TenantId, channel: ChannelId) {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 31, 12, 0, 0).unwrap(),
    ));
    let orch = MissionOrchestrator::new(Arc::clone(&store), clock);

    // Baseline: read every ready job of the channel once.
    let mut base = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let jobs = store
            .list_content_jobs(
                tenant,
                ContentJobFilter {
                    channel_id: Some(channel),
                    status: Some(ContentJobStatus::Ready),
                    ..ContentJobFilter::default()
                },
            )
            .await
            .unwrap();
        base.push(t.elapsed());
        assert_eq!(jobs.len(), (MISSIONS * JOBS_PER_MISSION) as usize);
    }
    let base = median(base);

    // One orchestration per fresh day (each commits CAP posts).
    let mut one_day = Vec::new();
    for day in 0..RUNS {
        let date = d0() + Duration::days(i64::from(day));
        let t = Instant::now();
        let summary = orch
            .orchestrate_global_publishing(tenant, channel, date, CAP, Paris)
            .await
            .unwrap();
        one_day.push(t.elapsed());
        assert_eq!(summary.scheduled.len(), CAP as usize);
        assert_eq!(summary.skipped.len(), (MISSIONS - CAP) as usize);
    }
    let one_day = median(one_day);

    // A 30-day dry run from the next day.
    let start = d0() + Duration::days(i64::from(RUNS));
    let mut dry = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let plan = orch
            .plan_range(tenant, channel, start, 30, CAP, Paris, PlanMode::DryRun)
            .await
            .unwrap();
        dry.push(t.elapsed());
        assert_eq!(plan.total_scheduled(), 30 * CAP as usize);
    }
    let dry = median(dry);

    println!(
        "{label}: {MISSIONS} active missions, {} ready jobs, cap {CAP}",
        MISSIONS * JOBS_PER_MISSION
    );
    println!(
        "  baseline list_content_jobs(ready, all)  {:>9.1} ms",
        ms(base)
    );
    println!(
        "  orchestrate_global_publishing (1 day)   {:>9.1} ms   = {:.2} x baseline",
        ms(one_day),
        ms(one_day) / ms(base)
    );
    println!(
        "  plan_range 30 days, dry run             {:>9.1} ms   = {:.2} x one orchestration ({:.2} x 30 of them)",
        ms(dry),
        ms(dry) / ms(one_day),
        ms(dry) / (30.0 * ms(one_day))
    );
}

#[tokio::main]
async fn main() {
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (tenant, channel) = tenant_and_channel(&*memory).await;
    let t = Instant::now();
    fill_memory(&*memory, tenant, channel).await;
    println!("memory: data created in {:.1} s", t.elapsed().as_secs_f64());
    measure("memory", memory, tenant, channel).await;

    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("postgres: skipped (set DATABASE_URL)");
        return;
    };
    let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL");
    let admin = PgStore::connect_with(options.clone(), 1).await.unwrap();
    let schema = format!("nx_bench_{}", uuid_suffix());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(admin.pool())
        .await
        .unwrap();
    let pg = PgStore::connect_with(options.options([("search_path", schema.as_str())]), 4)
        .await
        .unwrap();
    pg.migrate().await.unwrap();
    let (tenant, channel) = tenant_and_channel(&pg).await;
    let t = Instant::now();
    fill_postgres(&pg, tenant, channel).await;
    println!(
        "postgres: data created in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    measure("postgres", Arc::new(pg.clone()), tenant, channel).await;
    pg.pool().close().await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(admin.pool())
        .await
        .unwrap();
}

fn uuid_suffix() -> String {
    ChannelId::generate().as_uuid().simple().to_string()
}
