//! Routing: the webhook fixture replayed, shuffled and concurrent, ends in the
//! state of one clean pass.

use std::future::Future;
use std::sync::Arc;

use nexiom_core::*;
use nexiom_storage::conformance::TestStore;
use nexiom_triage::{ReplyGenerator, TemplateGenerator};

use super::fixture;
use super::support::{drain, pipeline};

pub async fn replaying_the_fixture_shuffled_from_four_tasks_equals_one_clean_pass<F, Fut>(
    factory: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(clean) = factory().await else { return };
    let Some(replay) = factory().await else {
        return;
    };
    let generator: Arc<dyn ReplyGenerator> = Arc::new(TemplateGenerator::new());

    // One clean pass: every event once, in order, then routed.
    let clean_setup = fixture::setup(&*clean.store()).await;
    let clean_events = fixture::events(&clean_setup);
    assert_eq!(clean_events.len(), 1000);
    for e in &clean_events {
        assert!(clean.store().insert_event(e.clone()).await.unwrap().created);
    }
    let (p, _) = pipeline(clean.store(), Arc::clone(&generator));
    let report = drain(&p, 200).await;
    assert_eq!(report.processed, 1000);
    assert_eq!(report.messages_created, 800);
    // 60 on the known post, 10 on a post made elsewhere (recorded once).
    assert_eq!(report.comments_created, 70);
    assert_eq!(report.external_posts_created, 1);

    // Every webhook three times, shuffled, from four concurrent tasks that
    // ingest and route as they go.
    let replay_setup = fixture::setup(&*replay.store()).await;
    let replay_events = fixture::events(&replay_setup);
    let mut deliveries: Vec<NewWebhookEvent> =
        (0..3).flat_map(|_| replay_events.iter().cloned()).collect();
    fixture::shuffle(&mut deliveries, 0x5eed);
    let (p, _) = pipeline(replay.store(), Arc::clone(&generator));
    let per_task = deliveries.len().div_ceil(4);
    let mut tasks = Vec::new();
    for chunk in deliveries.chunks(per_task) {
        let chunk = chunk.to_vec();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut report = RoutingReport::default();
            for batch in chunk.chunks(25) {
                for e in batch {
                    p.store().insert_event(e.clone()).await.unwrap();
                }
                report.add(p.route_unrouted_events(None, 40).await.unwrap());
            }
            report
        }));
    }
    let mut replay_report = RoutingReport::default();
    for t in tasks {
        replay_report.add(t.await.unwrap());
    }
    replay_report.add(drain(&p, 200).await);
    assert_eq!(
        replay_report, report,
        "each event routed once, each row created once"
    );

    let expected = fixture::routed_state(&*clean.store(), &clean_setup, &clean_events).await;
    let got = fixture::routed_state(&*replay.store(), &replay_setup, &replay_events).await;
    assert_eq!(got, expected);
    // And the clean pass is what the design says.
    assert_eq!(expected.conversations.len(), 50 + 10 + 1);
    let inbound: usize = expected
        .conversations
        .values()
        .map(|c| {
            c.messages
                .iter()
                .filter(|m| m.1 == MessageDirection::Inbound)
                .count()
        })
        .sum();
    assert_eq!(inbound, 800);
    for conv in expected.conversations.values() {
        // The latest message time, whatever order the messages arrived in.
        assert_eq!(
            conv.last_message_at,
            conv.messages.iter().map(|m| m.4).max()
        );
        for m in conv
            .messages
            .iter()
            .filter(|m| m.1 == MessageDirection::Outbound)
        {
            assert_eq!(m.5, Some(DeliveryStatus::Read), "the highest status wins");
        }
    }
    assert_eq!(expected.comments.len(), 70);
    assert!(expected.events.values().all(|(routed, _)| *routed));
    clean.cleanup().await;
    replay.cleanup().await;
}
