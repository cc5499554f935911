//! Routing when the database refuses some of it: an event routing refuses
//! is set aside and the others routed; a fault that is not the events' sets
//! nothing aside; a batch too big for a statement timeout is routed in
//! smaller ones. PostgreSQL only (faults are made with triggers).

use super::super::*;
use nexiom_scheduler::inbound::InboundError;

/// Makes every message insert run `body` (PL/pgSQL) first, as a `BEFORE
/// INSERT` trigger on `messages`.
async fn on_message_insert(url: &str, ts: &TestStore, body: &str) {
    let sql = format!(
        "CREATE OR REPLACE FUNCTION message_fault() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN {body} RETURN NEW; END $$; \
         DROP TRIGGER IF EXISTS message_fault ON messages; \
         CREATE TRIGGER message_fault BEFORE INSERT ON messages \
         FOR EACH ROW EXECUTE FUNCTION message_fault()"
    );
    as_admin(url, ts, &sql, None).await;
}

/// Ingests `n` text messages `wamid.{prefix}.{i}` for `account` through
/// `pipeline`.
async fn ingest(
    pipeline: &InboundPipeline,
    wa: &WhatsAppConnector,
    account: &str,
    prefix: &str,
    n: usize,
) {
    let events: Vec<_> = (0..n)
        .map(|i| message(&format!("wamid.{prefix}.{i}"), "hello"))
        .collect();
    let (raw, headers) = body(account, events);
    pipeline.ingest_webhook(wa, &headers, &raw).await.unwrap();
}

/// No event is left unrouted.
async fn assert_nothing_unrouted(store: &Arc<dyn nexiom_storage::Store>) {
    assert!(
        store
            .list_unrouted_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A pipeline whose clock is a second after the receiver's: what it
/// ingests is routed after what the receiver ingested.
fn received_later(store: &Arc<dyn nexiom_storage::Store>) -> InboundPipeline {
    InboundPipeline::new(
        Arc::clone(store),
        Arc::new(ManualClock::new(t0() + chrono::Duration::seconds(1))),
        Arc::new(nexiom_triage::TemplateGenerator::new()),
    )
}

/// A WhatsApp body of delivery statuses for `account`.
fn statuses(account: &str, ids: &[&str]) -> (Vec<u8>, WebhookHeaders) {
    let statuses = ids
        .iter()
        .map(|id| {
            json!({"id": id, "status": "delivered", "recipient_id": "33611111111",
                   "timestamp": t0().timestamp().to_string()})
        })
        .collect();
    signed(account, "statuses", statuses)
}

/// An unrouted event whose channel was deleted by hand (routing cannot
/// create its conversation: a foreign key refuses it) ahead of another
/// tenant's good events: the batch fails, the events are routed one by one,
/// and the bad one is set aside (a dead letter of its tenant, marked routed
/// to no conversation), so the next runs route as usual. Before, every run
/// failed on the same oldest event, and routing stopped for every tenant.
/// Postgres only: the memory store has no way to lose a channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn an_event_routing_refuses_is_set_aside_and_the_others_routed() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let gone = channel(&*store, "Globex", "pn-gone").await;
    let acme = channel(&*store, "Acme", "pn-acme").await;
    let (p, wa) = receiver(&store);
    let (first, headers) = body("pn-gone", vec![message("wamid.gone.0", "hi")]);
    p.ingest_webhook(&wa, &headers, &first).await.unwrap();
    delete_channel(&url, &ts, &gone).await;
    let good: Vec<_> = (0..5)
        .map(|i| message(&format!("wamid.acme.{i}"), "hello"))
        .collect();
    let (second, headers) = body("pn-acme", good);
    p.ingest_webhook(&wa, &headers, &second).await.unwrap();

    let report = p.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!((report.processed, report.set_aside), (5, 1), "{report:?}");
    assert_nothing_unrouted(&store).await;
    let conversations = store
        .list_conversations(acme.tenant_id, None, 10)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    let letters = store
        .list_dead_letters(Some(gone.tenant_id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.starts_with("routing failed"),
        "{letters:?}"
    );
    assert!(letters[0].excerpt.contains("wamid.gone.0"));

    // The next body routes in one batch again.
    let (third, headers) = body("pn-acme", vec![message("wamid.acme.9", "again")]);
    p.ingest_webhook(&wa, &headers, &third).await.unwrap();
    let next = p.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!((next.processed, next.set_aside), (1, 0));
    ts.cleanup().await;
}

/// A failure that is not the events' sets nothing aside: first a lock
/// timeout (a trigger raising SQLSTATE 55P03: the database too busy, an
/// outage, however small the batch), then a refusal every message insert
/// meets (SQLSTATE 23514, as a check constraint a migration added) while the
/// delivery statuses queued after the messages still route, then a broken
/// trigger (P0001) with only messages left. Each time no dead letter is
/// written and the messages stay unrouted; once the fault is gone they are
/// all routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_fault_that_is_not_the_events_sets_nothing_aside() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-acme").await;
    let beta = channel(&*store, "Beta", "pn-beta").await;
    let (p, wa) = receiver(&store);
    for account in ["pn-acme", "pn-beta"] {
        let events: Vec<_> = (0..2)
            .map(|i| message(&format!("wamid.{account}.{i}"), "hello"))
            .collect();
        let (raw, headers) = body(account, events);
        p.ingest_webhook(&wa, &headers, &raw).await.unwrap();
    }
    // The statuses are received after the messages (so routed after them).
    let later = received_later(&store);
    let (raw, headers) = statuses("pn-acme", &["wamid.out.1", "wamid.out.2"]);
    later.ingest_webhook(&wa, &headers, &raw).await.unwrap();
    let unrouted_messages = || async {
        let events = store.list_unrouted_events(None, 10).await.unwrap();
        events
            .iter()
            .filter(|e| e.kind == EventKind::Message)
            .count()
    };

    // A lock timeout whatever the batch: an outage, nothing routed.
    on_message_insert(&url, &ts, "RAISE EXCEPTION 'busy' USING ERRCODE = '55P03';").await;
    let (p, _) = receiver(&store);
    let failed = p.route_unrouted_events(None, 100).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(store.list_unrouted_events(None, 10).await.unwrap().len(), 6);

    // Every message refused (a check a migration added, SQLSTATE 23514: a
    // refusal, but of every message), the statuses route: the messages stay.
    on_message_insert(
        &url,
        &ts,
        "RAISE EXCEPTION 'new row violates check constraint' USING ERRCODE = '23514';",
    )
    .await;
    let (p, _) = receiver(&store);
    let report = p.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!(
        (report.processed, report.set_aside, report.left_unrouted),
        (2, 0, 4),
        "{report:?}"
    );
    assert_eq!(unrouted_messages().await, 4);
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());

    // A broken trigger every message meets, only messages left: the call
    // fails, nothing set aside.
    on_message_insert(
        &url,
        &ts,
        "RAISE EXCEPTION 'broken' USING ERRCODE = 'P0001';",
    )
    .await;
    let failed = p.route_unrouted_events(None, 100).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(unrouted_messages().await, 4);
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());

    as_admin(&url, &ts, "DROP TRIGGER message_fault ON messages", None).await;
    let report = p.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!((report.processed, report.set_aside), (4, 0), "{report:?}");
    for tenant in [acme.tenant_id, beta.tenant_id] {
        let conversations = store.list_conversations(tenant, None, 10).await.unwrap();
        assert_eq!(conversations.len(), 1);
    }
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());
    ts.cleanup().await;
}

/// On a single channel, one message that fails on its own (not a refusal:
/// a trigger raising SQLSTATE P0001 for its text) while the other messages
/// route is set aside; the others are routed, in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_message_that_fails_alone_is_set_aside_on_a_single_channel() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-acme").await;
    let (p, wa) = receiver(&store);
    let mut events: Vec<_> = (0..5)
        .map(|i| message(&format!("wamid.ok.{i}"), "hello"))
        .collect();
    events.insert(2, message("wamid.poison", "poison"));
    let (raw, headers) = body("pn-acme", events);
    p.ingest_webhook(&wa, &headers, &raw).await.unwrap();
    on_message_insert(
        &url,
        &ts,
        "IF NEW.text = 'poison' THEN RAISE EXCEPTION 'poison' USING ERRCODE = 'P0001'; END IF;",
    )
    .await;
    let report = p.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!(
        (report.processed, report.set_aside, report.left_unrouted),
        (5, 1, 0),
        "{report:?}"
    );
    assert_nothing_unrouted(&store).await;
    let letters = store
        .list_dead_letters(Some(acme.tenant_id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].excerpt.contains("wamid.poison"), "{letters:?}");
    ts.cleanup().await;
}

/// A batch that meets a statement timeout (a trigger raising SQLSTATE 57014
/// once a transaction has inserted more than 3 messages) is tried again
/// smaller, and the pipeline remembers the smaller size, so routing goes on
/// at the size that passes: every event routed, none set aside, only the
/// first call failing (it halved 3 times, to 12, and gave up). Before,
/// every run failed with the whole batch as an outage and nothing was ever
/// routed; without the remembered size every call would fail as the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_batch_too_big_for_a_statement_timeout_is_routed_in_smaller_ones() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-acme").await;
    let (p, wa) = receiver(&store);
    ingest(&p, &wa, "pn-acme", "slow", 20).await;
    on_message_insert(
        &url,
        &ts,
        "PERFORM set_config('nexiom_test.rows', \
           (coalesce(nullif(current_setting('nexiom_test.rows', true), ''), '0')::int + 1)::text, \
           true); \
         IF current_setting('nexiom_test.rows')::int > 3 THEN \
           RAISE EXCEPTION 'canceling statement due to statement timeout' \
             USING ERRCODE = '57014'; \
         END IF;",
    )
    .await;
    // A call halves at most 3 times (100, 50, 25, 12: the first call fails
    // with the timeout); the next calls start from the remembered size.
    let mut runs = 0;
    let mut failed_runs = 0;
    let mut routed = 0;
    while routed < 20 {
        runs += 1;
        assert!(runs <= 20, "routing does not progress: {routed} routed");
        match p.route_unrouted_events(None, 100).await {
            Ok(report) => {
                assert!(report.processed > 0, "{report:?}");
                assert_eq!(report.set_aside, 0, "{report:?}");
                routed += report.processed;
            }
            Err(InboundError::Storage(e)) if e.is_timeout() => failed_runs += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(failed_runs, 1, "only the first call times out");
    assert_nothing_unrouted(&store).await;
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());
    let conversations = store
        .list_conversations(acme.tenant_id, None, 10)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    ts.cleanup().await;
}

/// A fault of one channel's messages at the head of the queue (a trigger
/// refusing every message of channel A, P0001), more of them than a run's
/// limit: the run looks past them, routes a message of channel B, which
/// vouches that messages route, and sets A's aside; B's other message is
/// routed next. Before, with the limit as small as the failing head, every
/// run failed on the same events and routing stopped for every tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_failing_head_of_the_queue_is_looked_past() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let acme = channel(&*store, "Acme", "pn-acme").await;
    let beta = channel(&*store, "Beta", "pn-beta").await;
    let (p, wa) = receiver(&store);
    ingest(&p, &wa, "pn-acme", "acme", 3).await;
    let later = received_later(&store);
    ingest(&later, &wa, "pn-beta", "beta", 2).await;
    on_message_insert(
        &url,
        &ts,
        &format!(
            "IF NEW.channel_id = '{}' THEN RAISE EXCEPTION 'broken' USING ERRCODE = 'P0001'; END IF;",
            acme.id.as_uuid()
        ),
    )
    .await;

    let report = p.route_unrouted_events(None, 2).await.unwrap();
    assert_eq!(
        (report.processed, report.set_aside, report.left_unrouted),
        (1, 3, 0),
        "{report:?}"
    );
    let next = p.route_unrouted_events(None, 2).await.unwrap();
    assert_eq!((next.processed, next.set_aside), (1, 0), "{next:?}");
    assert_nothing_unrouted(&store).await;
    let letters = store
        .list_dead_letters(Some(acme.tenant_id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let conversations = store
        .list_conversations(beta.tenant_id, None, 10)
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    ts.cleanup().await;
}

/// Every message fails for the database (a broken trigger, P0001), three
/// of them at the head of the queue, two delivery statuses behind them,
/// limit 2: the statuses are routed in the look-past, one a run, while the
/// messages stay unrouted and nothing is set aside. Before, the look-past
/// tried only the failing kind and the statuses waited behind the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    nexiom_no_postgres,
    ignore = "no PostgreSQL reachable (see README: Tests)"
)]
async fn a_kind_failing_at_the_head_does_not_hold_the_others() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    channel(&*store, "Acme", "pn-acme").await;
    let (p, wa) = receiver(&store);
    ingest(&p, &wa, "pn-acme", "acme", 3).await;
    let later = received_later(&store);
    let (raw, headers) = statuses("pn-acme", &["wamid.out.1", "wamid.out.2"]);
    later.ingest_webhook(&wa, &headers, &raw).await.unwrap();
    on_message_insert(
        &url,
        &ts,
        "RAISE EXCEPTION 'broken' USING ERRCODE = 'P0001';",
    )
    .await;

    let mut routed = 0;
    for _ in 0..2 {
        let report = p.route_unrouted_events(None, 2).await.unwrap();
        assert_eq!(
            (report.processed, report.set_aside, report.left_unrouted),
            (1, 0, 3),
            "{report:?}"
        );
        routed += report.processed;
    }
    assert_eq!(routed, 2);
    let left = store.list_unrouted_events(None, 10).await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.kind == EventKind::Message));
    assert!(store.list_dead_letters(None, 10).await.unwrap().is_empty());
    ts.cleanup().await;
}
