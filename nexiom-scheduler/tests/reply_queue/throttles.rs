//! A platform's throttle holds a channel's automatic replies in every
//! process: one met by publishing or polling (recorded in the store), and
//! one met by a reply, recorded for the other processes.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use nexiom_connectors::{ApiError, ConnectorError, MockOp};
use nexiom_core::*;
use nexiom_storage::Store;

use super::support::{pending, t0, tenant, world, world_with};

/// A publish worker elsewhere met the channel's throttle and recorded it
/// until two minutes from now: no reply of the channel is claimed or sent
/// before then (another channel's is), and all are sent after. Before, the
/// reply queue called the throttled channel at once and spent an attempt
/// per reply.
pub async fn a_channel_throttled_elsewhere_gets_no_reply_until_it_ends(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let globex = tenant(&*w.store, "globex").await;
    let held = pending(&*w.store, acme, "h1", "Horaires ?", t0()).await;
    pending(&*w.store, globex, "g1", "Prix ?", t0()).await;
    let until = w.clock.now() + Duration::minutes(2);
    w.store
        .throttle_channel(acme.0, acme.1, until)
        .await
        .unwrap();

    let since = t0() - Duration::hours(1);
    let run = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 1, "only the other channel's: {run:?}");
    let reply = w
        .store
        .get_message(acme.0, held.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!((reply.state, reply.attempts), (ReplyState::Pending, 0));

    w.clock.advance(Duration::minutes(2));
    let run = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    assert_eq!(w.mock.calls_of(MockOp::SendMessage).len(), 2);
}

/// A reply meets a throttle with Retry-After 5 minutes: another process's
/// run (a second pipeline over the same store) claims none of the
/// channel's replies until then, not even one that arrived after the
/// batch (the hold is recorded where publishing and polling read it too).
pub async fn a_throttle_met_by_a_reply_holds_the_channel_for_every_process(store: Arc<dyn Store>) {
    let w = world_with(Arc::clone(&store), 1);
    let other = world_with(store, 1);
    other.clock.set(w.clock.now());
    let acme = tenant(&*w.store, "acme").await;
    pending(&*w.store, acme, "r1", "Horaires ?", t0()).await;
    w.mock.fail_next(
        MockOp::SendMessage,
        1,
        ConnectorError::RateLimited {
            platform: "whatsapp".into(),
            retry_after: Some(StdDuration::from_secs(300)),
            detail: ApiError::message("(#130429) Rate limit hit"),
        },
    );
    let since = t0() - Duration::hours(1);
    let run = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((run.sent, run.retried_later), (0, 1), "{run:?}");

    // A message that arrived after the batch, answered by another process.
    let late = pending(
        &*w.store,
        acme,
        "r2",
        "Et le dimanche ?",
        w.clock.now() - Duration::seconds(1),
    )
    .await;
    let run = other
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 0, "held: {run:?}");
    assert!(other.mock.calls_of(MockOp::SendMessage).is_empty());
    w.clock.advance(Duration::minutes(5));
    other.clock.set(w.clock.now());
    let run = other
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 2, "both after the throttle: {run:?}");
    let reply = w
        .store
        .get_message(acme.0, late.id)
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.state, ReplyState::Sent);
}
