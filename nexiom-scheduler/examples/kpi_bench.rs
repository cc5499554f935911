//! KPI aggregation on Postgres: set-based SQL against loading the rows into the
//! process, in the same run.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexiom \
//!     cargo run --release -p nexiom-scheduler --example kpi_bench
//! ```
//!
//! Data set (generated with `generate_series`, in schema `kpi_bench`, kept between
//! runs; `KPI_BENCH_REGENERATE=1` rebuilds it): 50 tenants in Europe/Paris, 7
//! days ending 2026-10-26 00:00 UTC (so the 3-hour fall-back window is in it);
//! 100,000 conversations of 10 messages each (1,000,000 messages, 60 % inbound,
//! a few minutes apart); 1,000 posts with 200 comments each (200,000
//! comments); one decision per inbound message and per comment (~800,000).
//!
//! Measured, for all 50 tenants one after the other:
//! - **full**: every window of the 7 days (`recent_windows(now, 7 days)`);
//! - **incremental**: the windows of the last 48 hours (what the worker runs).
//!
//! Each is run with `KpiStore::recompute_kpis` (one SQL statement per tenant)
//! and with the baseline: the same facts loaded with plain SELECTs (messages
//! since the first window plus each conversation's message just before it;
//! comments and decided items in range), aggregated by
//! `nexiom_core::compute_kpis`, and written back with `upsert_kpi` per row. The
//! two must give identical rows; the example checks it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{
    KpiComment, KpiDecision, KpiFacts, KpiMessage, KpiWindow, MessageDirection, Tenant, TenantId,
    Triage, compute_kpis,
};
use nexiom_scheduler::recent_windows;
use nexiom_storage::{KpiStore, PgStore, TenantStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Row};

const SCHEMA: &str = "kpi_bench";
const TENANTS: i64 = 50;
const CONVERSATIONS_PER_TENANT: i64 = 2_000;
const MESSAGES_PER_CONVERSATION: i64 = 10;
const POSTS_PER_TENANT: i64 = 20;
const COMMENTS_PER_POST: i64 = 200;

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap()
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL");
    let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL");
    let admin = PgPool::connect_with(options.clone())
        .await
        .expect("connect");
    let regenerate = std::env::var("KPI_BENCH_REGENERATE").is_ok_and(|v| v == "1");
    if regenerate {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    }
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .execute(&admin)
        .await
        .unwrap();
    let store = PgStore::connect_with(options.options([("search_path", SCHEMA)]), 4)
        .await
        .expect("connect store");
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();

    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    if have == 0 {
        let started = Instant::now();
        generate(&pool).await;
        println!("data set generated in {:.1} s", secs(started.elapsed()));
    } else {
        println!("reusing the data set in schema {SCHEMA} (KPI_BENCH_REGENERATE=1 rebuilds it)");
    }
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM comments), \
                (SELECT count(*) FROM ai_decisions)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "{} messages, {} comments, {} decisions, {} tenants",
        counts.0, counts.1, counts.2, TENANTS
    );

    let tenants = store.list_tenants().await.unwrap();
    let now = end();
    for (name, span) in [
        ("full (7 days)", Duration::days(7)),
        ("incremental (48 h)", Duration::hours(48)),
    ] {
        let windows_of = |t: &Tenant| -> Vec<KpiWindow> {
            recent_windows(now, span, t.time_zone)
                .into_iter()
                .map(|w| w.window)
                .collect()
        };
        let n_windows = windows_of(&tenants[0]).len();

        // Warm the cache once (untimed), then time the SQL path.
        for t in &tenants {
            store
                .recompute_kpis(t.id, &windows_of(t), now)
                .await
                .unwrap();
        }
        let started = Instant::now();
        let mut sql_rows = Vec::new();
        for t in &tenants {
            sql_rows.push(
                store
                    .recompute_kpis(t.id, &windows_of(t), now)
                    .await
                    .unwrap(),
            );
        }
        let sql = started.elapsed();

        let mut load = StdDuration::ZERO;
        let mut compute = StdDuration::ZERO;
        let mut write = StdDuration::ZERO;
        let mut loaded_rows = 0usize;
        let mut baseline_rows = Vec::new();
        for t in &tenants {
            let windows = windows_of(t);
            let step = Instant::now();
            let facts = load_facts(&pool, t.id, &windows).await;
            load += step.elapsed();
            loaded_rows += facts.messages.len() + facts.comments.len() + facts.decisions.len();
            let step = Instant::now();
            let rows = compute_kpis(t.id, &windows, &facts, now).unwrap();
            compute += step.elapsed();
            let step = Instant::now();
            for row in &rows {
                store.upsert_kpi(row.clone()).await.unwrap();
            }
            write += step.elapsed();
            baseline_rows.push(rows);
        }
        let baseline = load + compute + write;
        let same = sql_rows == baseline_rows;
        assert!(same, "SQL and in-process aggregation disagree");
        let total: usize = sql_rows.iter().map(Vec::len).sum();
        println!();
        println!("{name}: {n_windows} windows per tenant, {total} rows");
        println!("  SQL, set-based (recompute_kpis)   {:>8.3} s", secs(sql));
        println!(
            "  baseline, rows into the process   {:>8.3} s  (load {:.3} s for {} rows, compute {:.3} s, write {:.3} s)",
            secs(baseline),
            secs(load),
            loaded_rows,
            secs(compute),
            secs(write)
        );
        println!(
            "  baseline / SQL                    {:>8.2}x   results identical: {same}",
            secs(baseline) / secs(sql)
        );
    }
}

fn secs(d: StdDuration) -> f64 {
    d.as_secs_f64()
}

/// The baseline's reads: what `compute_kpis` needs for `windows`.
async fn load_facts(pool: &PgPool, tenant: TenantId, windows: &[KpiWindow]) -> KpiFacts {
    let lo = windows.first().unwrap().start;
    let hi = windows.last().unwrap().end;
    let messages = sqlx::query(
        "SELECT id, conversation_id, direction, created_at FROM messages \
         WHERE tenant_id = $1 AND created_at >= $2 \
         UNION ALL \
         SELECT p.id, p.conversation_id, p.direction, p.created_at \
         FROM (SELECT DISTINCT conversation_id FROM messages \
               WHERE tenant_id = $1 AND created_at >= $2) c \
         CROSS JOIN LATERAL (SELECT id, conversation_id, direction, created_at \
               FROM messages p WHERE p.conversation_id = c.conversation_id \
                 AND p.created_at < $2 \
               ORDER BY p.created_at DESC, p.id DESC LIMIT 1) p",
    )
    .bind(tenant.as_uuid())
    .bind(lo)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| KpiMessage {
        id: r.get::<uuid::Uuid, _>(0).into(),
        conversation_id: r.get::<uuid::Uuid, _>(1).into(),
        direction: MessageDirection::from_str(r.get::<&str, _>(2)).unwrap(),
        created_at: r.get(3),
    })
    .collect();
    let comments = sqlx::query(
        "SELECT post_id, created_at FROM comments \
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(tenant.as_uuid())
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| KpiComment {
        post_id: r.get::<uuid::Uuid, _>(0).into(),
        created_at: r.get(1),
    })
    .collect();
    let decisions = sqlx::query(
        // The same index lookups as the SQL path (see its docs).
        "SELECT d.triage, m.created_at FROM messages m \
         CROSS JOIN LATERAL (SELECT d.triage FROM ai_decisions d \
             WHERE d.subject_kind = 'message' AND d.subject_id = m.id LIMIT 1) d \
         WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3 \
         UNION ALL \
         SELECT d.triage, c.created_at FROM comments c \
         CROSS JOIN LATERAL (SELECT d.triage FROM ai_decisions d \
             WHERE d.subject_kind = 'comment' AND d.subject_id = c.id LIMIT 1) d \
         WHERE c.tenant_id = $1 AND c.created_at >= $2 AND c.created_at < $3",
    )
    .bind(tenant.as_uuid())
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| KpiDecision {
        triage: Triage::from_str(r.get::<&str, _>(0)).unwrap(),
        item_created_at: r.get(1),
    })
    .collect();
    KpiFacts {
        messages,
        comments,
        decisions,
    }
}

/// Builds the data set with set-based SQL.
async fn generate(pool: &PgPool) {
    let created = end() - Duration::days(30);
    let statements = [
        format!(
            "INSERT INTO tenants (id, name, time_zone, created_at) \
             SELECT gen_random_uuid(), 'bench-' || i, 'Europe/Paris', $1 \
             FROM generate_series(1, {TENANTS}) i"
        ),
        "INSERT INTO channels (id, tenant_id, platform, external_account_id, name, status, \
             created_at) \
         SELECT gen_random_uuid(), t.id, 'whatsapp', 'acct-' || t.name, t.name, 'active', $1 \
         FROM tenants t"
            .to_owned(),
        format!(
            "INSERT INTO contacts (id, tenant_id, created_at) \
             SELECT gen_random_uuid(), t.id, $1 \
             FROM tenants t, generate_series(1, {CONVERSATIONS_PER_TENANT}) g"
        ),
        "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, created_at) \
         SELECT gen_random_uuid(), c.tenant_id, c.id, ch.id, 'open', $1 \
         FROM contacts c JOIN channels ch ON ch.tenant_id = c.tenant_id"
            .to_owned(),
        // Each conversation starts at a random instant of the 7 days; its
        // messages follow 0-10 minutes apart, 60 % of them inbound.
        format!(
            "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
                 has_media, created_at, stored_at) \
             SELECT gen_random_uuid(), cv.tenant_id, cv.id, cv.channel_id, \
                    CASE WHEN random() < 0.6 THEN 'inbound' ELSE 'outbound' END, 'm', false, \
                    cv.base + (g * 5 + random() * 5) * interval '1 minute', $1 \
             FROM (SELECT *, $2::timestamptz - interval '2 hours' \
                       - random() * interval '6 days 22 hours' AS base \
                   FROM conversations) cv, \
                  generate_series(1, {MESSAGES_PER_CONVERSATION}) g"
        ),
        format!(
            "INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, status, \
                 retry_count, published_at, created_at, updated_at) \
             SELECT gen_random_uuid(), ch.tenant_id, ch.id, '{{\"text\": \"p\"}}', $1, \
                    'published', 0, $1, $1, $1 \
             FROM channels ch, generate_series(1, {POSTS_PER_TENANT}) g"
        ),
        format!(
            "INSERT INTO comments (id, tenant_id, post_id, channel_id, platform_comment_id, text, \
                 created_at, stored_at, hidden) \
             SELECT gen_random_uuid(), p.tenant_id, p.id, p.channel_id, 'c-' || g, 'nice', \
                    $2::timestamptz - random() * interval '7 days', $1, false \
             FROM scheduled_posts p, generate_series(1, {COMMENTS_PER_POST}) g"
        ),
        "INSERT INTO ai_decisions (id, tenant_id, subject_kind, subject_id, triage, confidence, \
             reason, snapshot, created_at) \
         SELECT gen_random_uuid(), m.tenant_id, 'message', m.id, \
                (ARRAY['ignore', 'escalate', 'auto_reply'])[1 + floor(random() * 3)::int], \
                0.9, 'bench', '{}', m.created_at \
         FROM messages m WHERE m.direction = 'inbound'"
            .to_owned(),
        "INSERT INTO ai_decisions (id, tenant_id, subject_kind, subject_id, triage, confidence, \
             reason, snapshot, created_at) \
         SELECT gen_random_uuid(), c.tenant_id, 'comment', c.id, \
                (ARRAY['ignore', 'escalate', 'auto_reply'])[1 + floor(random() * 3)::int], \
                0.9, 'bench', '{}', c.created_at \
         FROM comments c"
            .to_owned(),
    ];
    for sql in &statements {
        let step = Instant::now();
        let mut q = sqlx::query(sql);
        if sql.contains("$1") {
            q = q.bind(created);
        }
        if sql.contains("$2") {
            q = q.bind(end());
        }
        let done = q.execute(pool).await.unwrap();
        println!(
            "  {:>9} rows in {:>6.1} s: {}",
            done.rows_affected(),
            secs(step.elapsed()),
            sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
}
