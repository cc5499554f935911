//! A reply too old for the queue's window is escalated, never left waiting.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::MockOp;
use nexiom_core::*;
use nexiom_storage::Store;

use super::support::{pending, t0, tenant, world};

/// A channel paused (its token refused) while an auto-reply waits, then
/// reconnected three hours later: the waiting item is older than the run's
/// one-hour window, so the claim never takes it. It is given up and
/// escalated (a person is notified), nothing sent; a message received after
/// the reconnection is answered as ever.
pub async fn a_reply_waiting_out_a_long_pause_is_escalated(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let (tenant_id, channel) = acme;
    let waiting = pending(&*w.store, acme, "w1", "Horaires ?", t0()).await;
    w.store
        .set_channel_status(tenant_id, channel, ChannelStatus::NeedsReauth)
        .await
        .unwrap();
    let r = w
        .pipeline
        .auto_reply_recent_inbound(w.clock.now() - Duration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.expired), (0, 0), "paused: it waits: {r:?}");

    w.clock.advance(Duration::hours(3));
    w.store
        .set_channel_status(tenant_id, channel, ChannelStatus::Active)
        .await
        .unwrap();
    let fresh = pending(&*w.store, acme, "f1", "Prix ?", w.clock.now()).await;
    let since = w.clock.now() - Duration::hours(1);
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((r.sent, r.expired, r.given_up), (1, 1, 0), "{r:?}");
    let sends = w.mock.calls_of(MockOp::SendMessage);
    assert_eq!(
        sends.len(),
        1,
        "only the fresh message is answered: {sends:?}"
    );

    let stored = w.store.get_message(tenant_id, waiting.id).await.unwrap();
    assert_eq!(stored.triage, Some(Triage::Escalate));
    let reply = stored.reply.unwrap();
    assert_eq!((reply.state, reply.attempts), (ReplyState::GivenUp, 0));
    let notified = w
        .store
        .list_notifications(tenant_id, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        notified[0].key,
        format!("item_escalated:message:{}", waiting.id)
    );
    let fresh = w.store.get_message(tenant_id, fresh.id).await.unwrap();
    assert_eq!(fresh.reply.map(|r| r.state), Some(ReplyState::Sent));

    // Nothing is left waiting: the next run has nothing to do.
    let r = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(r, nexiom_scheduler::inbound::AutoReplyReport::default());
}
