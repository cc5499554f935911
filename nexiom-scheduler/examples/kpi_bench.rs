//! KPI aggregation on Postgres, side by side in the same run:
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
//! Measured:
//! - **full recompute** of every window of the 7 days for all 50 tenants:
//!   `aggregate_kpis` (the tenants of one time zone in one
//!   `KpiStore::recompute_kpis_for` statement) against the baseline, one hand-written
//!   statement over all tenants at once (`GROUP BY` tenant and window, a hash
//!   join to the decisions, one window pass for first responses) that upserts
//!   the same rows. Both results are read back and must be identical.
//! - **incremental**: after a run at the end of the data set, 10,000 new
//!   messages (2,000 new conversations of 5 messages) and the decisions on
//!   the inbound ones arrive within 30 minutes; `aggregate_kpis_incremental` 30 minutes later, timed, then
//!   checked against a full recompute of the 48 hours. The new rows are
//!   removed afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::{Kpi2h, KpiWindow, ManualClock, Tenant};
use nexiom_scheduler::{KpiConfig, aggregate_kpis, aggregate_kpis_incremental, recent_windows};
use nexiom_storage::{PgStore, Store};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

const SCHEMA: &str = "kpi_bench";
const TENANTS: i64 = 50;
const CONVERSATIONS_PER_TENANT: i64 = 2_000;
const MESSAGES_PER_CONVERSATION: i64 = 10;
const POSTS_PER_TENANT: i64 = 20;
const COMMENTS_PER_POST: i64 = 200;
const NEW_MESSAGES: i64 = 10_000;

/// The baseline: every tenant's rows for the windows `$1`..`$2` (starts and
/// ends, contiguous, the same for every tenant: one time zone) from `$3` to
/// `$4`, stamped `$5`, in one statement.
const HANDWRITTEN: &str = r"
WITH w AS (
    SELECT t.window_start, t.window_end, t.b::int AS b
    FROM unnest($1::timestamptz[], $2::timestamptz[]) WITH ORDINALITY AS t (window_start, window_end, b)
),
msg AS (
    SELECT m.tenant_id, m.direction, m.created_at,
           width_bucket(m.created_at, $1::timestamptz[]) AS b,
           lag(m.direction) OVER c AS previous_direction,
           min(m.created_at) FILTER (WHERE m.direction = 'outbound')
               OVER (c ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS reply_at
    FROM messages m
    WHERE m.created_at >= $3
    WINDOW c AS (PARTITION BY m.conversation_id ORDER BY m.created_at, m.id)
),
msg_stats AS (
    SELECT tenant_id, b,
           count(*) FILTER (WHERE direction = 'inbound') AS messages_count,
           percentile_cont(0.5) WITHIN GROUP
               (ORDER BY extract(epoch FROM reply_at - created_at)::float8)
               FILTER (WHERE direction = 'inbound' AND reply_at IS NOT NULL
                       AND COALESCE(previous_direction, 'outbound') = 'outbound') AS p50
    FROM msg WHERE created_at < $4
    GROUP BY tenant_id, b
),
comment_stats AS (
    SELECT tenant_id, width_bucket(created_at, $1::timestamptz[]) AS b,
           count(*) AS comments_count, count(DISTINCT post_id) AS posts_active
    FROM comments WHERE created_at >= $3 AND created_at < $4
    GROUP BY 1, 2
),
items AS (
    SELECT id, 'message' AS kind, created_at FROM messages
    WHERE created_at >= $3 AND created_at < $4
    UNION ALL
    SELECT id, 'comment', created_at FROM comments
    WHERE created_at >= $3 AND created_at < $4
),
decision_stats AS (
    SELECT d.tenant_id, width_bucket(i.created_at, $1::timestamptz[]) AS b,
           count(*) AS total,
           count(*) FILTER (WHERE d.triage = 'auto_reply') AS auto_replies,
           count(*) FILTER (WHERE d.triage = 'escalate') AS escalations,
           count(*) FILTER (WHERE d.triage = 'ignore') AS ignored
    FROM ai_decisions d JOIN items i ON i.id = d.subject_id AND i.kind = d.subject_kind
    GROUP BY 1, 2
)
INSERT INTO kpi_2h (tenant_id, window_start, window_end, messages_count,
    comments_count, frt_p50_seconds, auto_reply_rate, escalate_count,
    ignored_count, posts_active, computed_at)
SELECT t.id, w.window_start, w.window_end,
       COALESCE(ms.messages_count, 0),
       COALESCE(cs.comments_count, 0),
       floor(ms.p50 + 0.5)::bigint,
       ((2000 * ds.auto_replies + ds.total) / (2 * ds.total))::float8 / 1000,
       COALESCE(ds.escalations, 0),
       COALESCE(ds.ignored, 0),
       COALESCE(cs.posts_active, 0),
       $5
FROM tenants t CROSS JOIN w
LEFT JOIN msg_stats ms ON ms.tenant_id = t.id AND ms.b = w.b
LEFT JOIN comment_stats cs ON cs.tenant_id = t.id AND cs.b = w.b
LEFT JOIN decision_stats ds ON ds.tenant_id = t.id AND ds.b = w.b
ON CONFLICT (tenant_id, window_start) DO UPDATE SET
    window_end = EXCLUDED.window_end,
    messages_count = EXCLUDED.messages_count,
    comments_count = EXCLUDED.comments_count,
    frt_p50_seconds = EXCLUDED.frt_p50_seconds,
    auto_reply_rate = EXCLUDED.auto_reply_rate,
    escalate_count = EXCLUDED.escalate_count,
    ignored_count = EXCLUDED.ignored_count,
    posts_active = EXCLUDED.posts_active,
    computed_at = EXCLUDED.computed_at
";

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap()
}

fn secs(d: StdDuration) -> f64 {
    d.as_secs_f64()
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
    let pg = PgStore::connect_with(options.options([("search_path", SCHEMA)]), 10)
        .await
        .expect("connect store");
    pg.migrate().await.expect("migrate");
    let pool = pg.pool().clone();
    let store: Arc<dyn Store> = Arc::new(pg);

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
    remove_new_messages(&pool).await;
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
    full_recompute(&store, &pool, &tenants).await;
    incremental(&store, &pool, &tenants).await;
}

fn windows_of(t: &Tenant, now: DateTime<Utc>, span: Duration) -> Vec<KpiWindow> {
    recent_windows(now, span, t.time_zone)
        .into_iter()
        .map(|w| w.window)
        .collect()
}

async fn all_rows(store: &Arc<dyn Store>, tenants: &[Tenant]) -> Vec<Vec<Kpi2h>> {
    let mut rows = Vec::new();
    for t in tenants {
        let mut r = store
            .list_kpis(t.id, end() - Duration::days(8), end() + Duration::days(1))
            .await
            .unwrap();
        for row in &mut r {
            row.computed_at = end();
        }
        rows.push(r);
    }
    rows
}

async fn ours(store: &Arc<dyn Store>, tenants: &[Tenant]) -> StdDuration {
    let clock = ManualClock::new(end());
    let config = KpiConfig {
        recompute_span: Duration::days(7),
        ..KpiConfig::default()
    };
    let started = Instant::now();
    let run = aggregate_kpis(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert!(run.failures.is_empty(), "{run:?}");
    assert_eq!(run.tenants_processed, tenants.len() as u64);
    started.elapsed()
}

async fn handwritten(pool: &PgPool, tenants: &[Tenant]) -> StdDuration {
    let now = end();
    let windows = windows_of(&tenants[0], now, Duration::days(7));
    let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.start).collect();
    let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.end).collect();
    let started = Instant::now();
    sqlx::query(HANDWRITTEN)
        .bind(&starts)
        .bind(&ends)
        .bind(windows[0].start)
        .bind(windows[windows.len() - 1].end)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    started.elapsed()
}

async fn full_recompute(store: &Arc<dyn Store>, pool: &PgPool, tenants: &[Tenant]) {
    assert!(
        tenants.iter().all(|t| t.time_zone == tenants[0].time_zone),
        "the baseline assumes one time zone"
    );
    let n_windows = windows_of(&tenants[0], end(), Duration::days(7)).len();
    // Warm the cache once each (untimed).
    handwritten(pool, tenants).await;
    ours(store, tenants).await;
    let mut best = [StdDuration::MAX; 2];
    let mut same = true;
    for _ in 0..3 {
        sqlx::query("DELETE FROM kpi_2h")
            .execute(pool)
            .await
            .unwrap();
        let base = handwritten(pool, tenants).await;
        let expected = all_rows(store, tenants).await;
        sqlx::query("DELETE FROM kpi_2h")
            .execute(pool)
            .await
            .unwrap();
        let one = ours(store, tenants).await;
        same &= all_rows(store, tenants).await == expected;
        best = [best[0].min(base), best[1].min(one)];
    }
    assert!(
        same,
        "aggregate_kpis and the hand-written statement disagree"
    );
    let total = n_windows * tenants.len();
    println!();
    println!(
        "full recompute: {n_windows} windows x {} tenants = {total} rows, best of 3",
        tenants.len()
    );
    println!(
        "  baseline, one hand-written statement   {:>8.3} s",
        secs(best[0])
    );
    println!(
        "  aggregate_kpis (recompute_kpis_for)    {:>8.3} s   {:.2}x the baseline",
        secs(best[1]),
        secs(best[0]) / secs(best[1])
    );
    println!("  results identical: {same}");
}

async fn remove_new_messages(pool: &PgPool) {
    for sql in [
        "DELETE FROM ai_decisions d USING messages m \
         WHERE d.subject_kind = 'message' AND d.subject_id = m.id AND m.created_at >= $1",
        "DELETE FROM messages WHERE created_at >= $1",
        "DELETE FROM conversations WHERE created_at = $1",
        "DELETE FROM contacts WHERE created_at = $1",
    ] {
        sqlx::query(sql).bind(end()).execute(pool).await.unwrap();
    }
}

async fn incremental(store: &Arc<dyn Store>, pool: &PgPool, tenants: &[Tenant]) {
    let config = KpiConfig::default();
    let clock = ManualClock::new(end());
    // The previous run, at the end of the data set.
    aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    // 10,000 messages within the next 30 minutes: 2,000 new conversations
    // (40 per tenant) of 5 messages each, inbound first, then alternating.
    let at = end() + Duration::minutes(30);
    for sql in [
        format!(
            "INSERT INTO contacts (id, tenant_id, created_at) \
             SELECT gen_random_uuid(), t.id, $1 \
             FROM tenants t, generate_series(1, {NEW_MESSAGES} / 5 / {TENANTS}) g"
        ),
        "INSERT INTO conversations (id, tenant_id, contact_id, channel_id, status, created_at) \
         SELECT gen_random_uuid(), c.tenant_id, c.id, ch.id, 'open', $1 \
         FROM contacts c JOIN channels ch ON ch.tenant_id = c.tenant_id \
         WHERE c.created_at = $1"
            .to_owned(),
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, text, \
             has_media, created_at, stored_at) \
         SELECT gen_random_uuid(), cv.tenant_id, cv.id, cv.channel_id, \
                CASE WHEN g % 2 = 1 THEN 'inbound' ELSE 'outbound' END, 'm', false, \
                cv.base + g * interval '5 minutes', $2 \
         FROM (SELECT *, $1::timestamptz + random() * interval '4 minutes' AS base \
               FROM conversations WHERE created_at = $1) cv, \
              generate_series(1, 5) g"
            .to_owned(),
    ] {
        let mut q = sqlx::query(&sql).bind(end());
        if sql.contains("$2") {
            q = q.bind(at);
        }
        q.execute(pool).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO ai_decisions (id, tenant_id, subject_kind, subject_id, triage, confidence, \
             reason, snapshot, created_at) \
         SELECT gen_random_uuid(), m.tenant_id, 'message', m.id, \
                (ARRAY['ignore', 'escalate', 'auto_reply'])[1 + floor(random() * 3)::int], \
                0.9, 'bench', '{}', $2 \
         FROM messages m WHERE m.direction = 'inbound' AND m.created_at >= $1",
    )
    .bind(end())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE messages").execute(pool).await.unwrap();
    clock.set(at);
    let started = Instant::now();
    let run = aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(run.failures.is_empty(), "{run:?}");
    let incremental_rows = all_rows(store, tenants).await;
    let started = Instant::now();
    aggregate_kpis(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    let full = started.elapsed();
    let same = all_rows(store, tenants).await == incremental_rows;
    let span = windows_of(&tenants[0], at, config.recompute_span).len() * tenants.len();
    println!();
    println!(
        "incremental: {NEW_MESSAGES} new messages in 30 minutes, {} tenants",
        tenants.len()
    );
    println!(
        "  aggregate_kpis_incremental             {:>8.3} s   {} rows recomputed",
        secs(took),
        run.rows_upserted
    );
    println!(
        "  aggregate_kpis (full 48 h)             {:>8.3} s   {span} rows",
        secs(full)
    );
    println!("  results identical: {same}");
    assert!(same, "the incremental run and the full recompute disagree");
    remove_new_messages(pool).await;
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
