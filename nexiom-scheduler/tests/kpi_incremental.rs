//! Incremental KPI runs give the rows a full recompute gives, on memory and
//! Postgres, while recomputing only the windows that changed: new messages,
//! a reply to a day-old message (its window's first-response time changes), a
//! decision on an older message, a comment, and an item stored late (within
//! the lateness).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;

on_both_backends!(
    incremental_runs_match_the_full_recompute,
    a_row_computed_in_the_future_does_not_hide_new_activity
);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 24, 6, 0, 0).unwrap()
}

/// A small deterministic generator (an LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

struct World {
    store: Arc<dyn Store>,
    tenant: TenantId,
    channel: ChannelId,
    conversations: Vec<ConversationId>,
    post: PostId,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> World {
        let tenant = store
            .create_tenant(NewTenant {
                time_zone: chrono_tz::Europe::Paris,
                ..NewTenant::new("Acme", start())
            })
            .await
            .unwrap();
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: Platform::WhatsApp,
                external_account_id: format!("pn-{}", tenant.id),
                name: "WA".into(),
                credentials: Credentials::default(),
                created_at: start(),
            })
            .await
            .unwrap();
        let mut conversations = Vec::new();
        for i in 0..6 {
            let cc = store
                .insert_contact_channel(NewContactChannel {
                    tenant_id: tenant.id,
                    platform: Platform::WhatsApp,
                    external_handle: format!("3360000000{i}"),
                    display_name: None,
                    created_at: start(),
                })
                .await
                .unwrap()
                .record;
            conversations.push(
                store
                    .insert_open_conversation(tenant.id, cc.contact_id, channel.id, start())
                    .await
                    .unwrap()
                    .record
                    .id,
            );
        }
        let post = store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                channel.id,
                Content::text("p"),
                start(),
                start(),
            ))
            .await
            .unwrap()
            .record
            .id;
        World {
            store,
            tenant: tenant.id,
            channel: channel.id,
            conversations,
            post,
        }
    }

    async fn message(
        &self,
        conversation: usize,
        direction: MessageDirection,
        at: DateTime<Utc>,
        stored_at: DateTime<Utc>,
    ) -> Message {
        self.store
            .insert_message(NewMessage {
                tenant_id: self.tenant,
                conversation_id: self.conversations[conversation],
                direction,
                text: "m".into(),
                has_media: false,
                provider_message_id: None,
                in_reply_to: None,
                delivery_status: None,
                created_at: at,
                stored_at,
            })
            .await
            .unwrap()
            .record
    }

    async fn decide(&self, subject: DecisionSubject, triage: Triage, at: DateTime<Utc>) {
        self.store
            .insert_decision(NewAiDecision {
                tenant_id: self.tenant,
                subject,
                triage,
                confidence: 0.9,
                rule_id: None,
                reason: "test".into(),
                snapshot: serde_json::json!({}),
                created_at: at,
            })
            .await
            .unwrap();
    }

    async fn comment(&self, key: &str, at: DateTime<Utc>) -> Comment {
        self.store
            .insert_comment(NewComment {
                tenant_id: self.tenant,
                post_id: self.post,
                platform_comment_id: key.into(),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: "nice".into(),
                created_at: at,
                stored_at: at,
                hidden: false,
            })
            .await
            .unwrap()
            .record
    }

    async fn rows(&self) -> Vec<Kpi2h> {
        let mut rows = self
            .store
            .list_kpis(
                self.tenant,
                start() - Duration::days(3),
                start() + Duration::days(3),
            )
            .await
            .unwrap();
        for row in &mut rows {
            row.computed_at = start();
        }
        rows
    }
}

async fn incremental_runs_match_the_full_recompute(store: Arc<dyn Store>) {
    let w = World::new(Arc::clone(&store)).await;
    let config = KpiConfig::default();
    let mut rng = Lcg(7);
    // 40 hours of traffic before the first run.
    let mut old_inbound = Vec::new();
    let mut decided = std::collections::HashSet::new();
    for i in 0..120 {
        let at = start() + Duration::minutes(i64::try_from(i * 20 + rng.next(15)).unwrap());
        let conversation = usize::try_from(rng.next(6)).unwrap();
        let direction = if rng.next(10) < 6 {
            MessageDirection::Inbound
        } else {
            MessageDirection::Outbound
        };
        let m = w.message(conversation, direction, at, at).await;
        if direction == MessageDirection::Inbound {
            if rng.next(3) > 0 {
                let triage = [Triage::Ignore, Triage::Escalate, Triage::AutoReply]
                    [usize::try_from(rng.next(3)).unwrap()];
                w.decide(DecisionSubject::Message(m.id), triage, at).await;
                decided.insert(m.id);
            }
            old_inbound.push(m);
        }
        if i % 7 == 0 {
            let c = w.comment(&format!("c{i}"), at).await;
            w.decide(DecisionSubject::Comment(c.id), Triage::Ignore, at)
                .await;
        }
    }
    let t1 = start() + Duration::hours(40) + Duration::minutes(10);
    let clock = ManualClock::new(t1);
    let first = aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    let span = first.rows_upserted;
    assert!(span >= 24, "the first run covers the span: {first:?}");

    // Thirty minutes of new facts.
    clock.advance(Duration::minutes(30));
    let t2 = clock.now();
    let c = usize::try_from(rng.next(6)).unwrap();
    w.message(c, MessageDirection::Inbound, t2 - Duration::minutes(20), t2)
        .await;
    w.message(c, MessageDirection::Outbound, t2 - Duration::minutes(5), t2)
        .await;
    // A reply, now, in the conversation of an inbound message of a day ago
    // that nobody answered since.
    let day_old = old_inbound
        .iter()
        .find(|m| m.created_at < t1 - Duration::hours(20))
        .unwrap();
    let conversation = w
        .conversations
        .iter()
        .position(|c| *c == day_old.conversation_id)
        .unwrap();
    w.message(
        conversation,
        MessageDirection::Outbound,
        t2 - Duration::minutes(1),
        t2,
    )
    .await;
    // A decision made now on a 30-hour-old message that had none.
    let undecided = old_inbound
        .iter()
        .find(|m| m.created_at < t1 - Duration::hours(30) && !decided.contains(&m.id))
        .unwrap();
    w.decide(
        DecisionSubject::Message(undecided.id),
        Triage::Escalate,
        t2 - Duration::minutes(2),
    )
    .await;
    w.comment("late", t1 - Duration::minutes(40)).await;

    let second = aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert!(second.failures.is_empty(), "{second:?}");
    assert!(
        second.rows_upserted < span / 2,
        "only the changed windows: {} of {span}",
        second.rows_upserted
    );
    let incremental = w.rows().await;

    aggregate_kpis(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    let full = w.rows().await;
    assert_eq!(incremental, full);
    assert!(full.iter().map(|r| r.messages_count).sum::<i64>() > 50);

    // Nothing new for longer than the lateness: a run rewrites the window
    // holding now (and a window the span gained, if any) only.
    clock.advance(Duration::hours(2));
    aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    clock.advance(Duration::minutes(30));
    let quiet = aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert!(quiet.rows_upserted <= 2, "{quiet:?}");
    let incremental = w.rows().await;
    aggregate_kpis(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert_eq!(incremental, w.rows().await);
    let _ = w.channel;
}

/// A stored row whose `computed_at` is ahead of the worker's clock (another
/// host's clock ahead, or a recompute called with a later time) does not
/// hide new activity from the next incremental run: such a row is left out
/// of the watermark. Before, the run looked for activity after that future
/// time and rewrote nothing but the window holding now until the next full
/// run.
async fn a_row_computed_in_the_future_does_not_hide_new_activity(store: Arc<dyn Store>) {
    let w = World::new(Arc::clone(&store)).await;
    let config = KpiConfig::default();
    // A message every hour: every window of the span has its row. The
    // first run at 13:00 UTC (14:00 in Paris, the day after the clocks went
    // back), the start of a window.
    for i in 0..31 {
        let at = start() + Duration::hours(i);
        w.message(0, MessageDirection::Inbound, at, at).await;
    }
    let t1 = start() + Duration::hours(31);
    let clock = ManualClock::new(t1);
    aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    let mut ahead = w.rows().await.remove(0);
    ahead.computed_at = t1 + Duration::days(1);
    store.upsert_kpi(ahead).await.unwrap();

    clock.advance(Duration::minutes(30));
    let t2 = clock.now();
    // In the window before the one holding now (which every run rewrites).
    w.message(1, MessageDirection::Inbound, t1 - Duration::minutes(20), t2)
        .await;
    let run = aggregate_kpis_incremental(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert!(run.failures.is_empty(), "{run:?}");
    let incremental = w.rows().await;
    aggregate_kpis(store.as_ref(), &clock, &config)
        .await
        .unwrap();
    assert_eq!(incremental, w.rows().await);
}

/// A zone whose full recompute fails (here a trigger refusing one tenant's
/// rows, on PostgreSQL) does not make every later run full: the next run
/// recomputes the zone's tenants whole one by one (the healthy neighbour of
/// the failing tenant is done there and then), and is incremental for the
/// other tenants; only the failing tenant stays owed until it succeeds.
/// Before, a run with any failure left the worker's last full run unset, so
/// every run recomputed every zone's 48 hours for as long as one tenant kept
/// failing.
#[tokio::test]
async fn a_failing_zone_does_not_make_every_run_full() {
    let Some((url, ts)) = common::on_postgres().await else {
        return;
    };
    let store = ts.store();
    let tenant = |name: &str, zone: chrono_tz::Tz| {
        let store = Arc::clone(&store);
        let name = name.to_owned();
        async move {
            store
                .create_tenant(NewTenant {
                    time_zone: zone,
                    ..NewTenant::new(&name, start())
                })
                .await
                .unwrap()
                .id
        }
    };
    let fine = tenant("Fine", chrono_tz::Europe::Paris).await;
    let failing = tenant("Failing", chrono_tz::America::New_York).await;
    let neighbour = tenant("Neighbour", chrono_tz::America::New_York).await;
    let refuse = format!(
        "CREATE FUNCTION refuse_kpis() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'out of disk'; END $$; \
         CREATE TRIGGER refuse_kpis BEFORE INSERT ON kpi_2h FOR EACH ROW \
         WHEN (NEW.tenant_id = '{failing}') EXECUTE FUNCTION refuse_kpis()"
    );
    common::as_admin(&url, &ts, &refuse, None).await;
    let clock = Arc::new(ManualClock::new(start() + Duration::hours(31)));
    let worker = KpiWorker::new(Arc::clone(&store), clock.clone());
    let failed = |run: &KpiRunSummary| -> Vec<TenantId> {
        let mut ids: Vec<TenantId> = run.failures.iter().map(|f| f.tenant_id).collect();
        ids.sort();
        ids
    };
    // The rows of a whole span (windows inside the last 48 hours).
    let rows_of = |tenant: TenantId| {
        let store = Arc::clone(&store);
        let now = clock.now();
        async move {
            store
                .list_kpis(tenant, now - Duration::hours(48), now)
                .await
                .unwrap()
                .len()
        }
    };

    // The full run: the New York zone's statement fails for both.
    let first = worker.aggregate().await.unwrap();
    let mut zone = vec![failing, neighbour];
    zone.sort();
    assert_eq!(failed(&first), zone);
    assert!(first.rows_upserted >= 24, "{first:?}");
    assert!(rows_of(fine).await >= 20);

    // Owed, one by one: the neighbour is done; the Paris tenant incremental.
    clock.advance(Duration::minutes(30));
    let second = worker.aggregate().await.unwrap();
    assert_eq!(failed(&second), vec![failing], "{second:?}");
    assert!(rows_of(neighbour).await >= 20);

    // Only the failing tenant is still owed: every other is incremental.
    clock.advance(Duration::minutes(30));
    let third = worker.aggregate().await.unwrap();
    assert_eq!(failed(&third), vec![failing], "{third:?}");
    assert!(third.rows_upserted <= 4, "{third:?}");

    common::as_admin(&url, &ts, "DROP TRIGGER refuse_kpis ON kpi_2h", None).await;
    clock.advance(Duration::minutes(30));
    let fourth = worker.aggregate().await.unwrap();
    assert!(fourth.failures.is_empty(), "{fourth:?}");
    assert!(rows_of(failing).await >= 20, "the failing tenant whole");

    clock.advance(Duration::minutes(30));
    let fifth = worker.aggregate().await.unwrap();
    assert!(
        fifth.failures.is_empty() && fifth.rows_upserted <= 6,
        "{fifth:?}"
    );
}
