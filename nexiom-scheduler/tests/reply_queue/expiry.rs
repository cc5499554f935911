//! A reply too old for the queue's window is escalated, never left waiting.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::MockOp;
use nexiom_core::*;
use nexiom_scheduler::{AutoReplyStep, PipelineStep};
use nexiom_storage::Store;

use super::support::{pending, t0, tenant, world};

/// A channel paused (its token refused) while an auto-reply waits, then
/// reconnected three hours later: the waiting item is older than the
/// pipeline's one-hour window, so the claim never takes it. The pipeline's
/// reply step gives it up and escalates it (a person is notified), nothing
/// sent; a message received after the reconnection is answered as ever. A
/// caller answering a narrower window (the comment poller's follow-up, which
/// calls `auto_reply_recent_inbound` alone) takes nothing out of the queue.
pub async fn a_reply_waiting_out_a_long_pause_is_escalated(store: Arc<dyn Store>) {
    let w = world(store);
    let step = AutoReplyStep::new(w.pipeline.clone());
    let acme = tenant(&*w.store, "acme").await;
    let (tenant_id, channel) = acme;
    let waiting = pending(&*w.store, acme, "w1", "Horaires ?", t0()).await;
    w.store
        .set_channel_status(tenant_id, channel, ChannelStatus::NeedsReauth)
        .await
        .unwrap();
    let sent = step
        .run(w.clock.now() - Duration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(sent, 0, "paused: it waits");

    w.clock.advance(Duration::hours(3));
    w.store
        .set_channel_status(tenant_id, channel, ChannelStatus::Active)
        .await
        .unwrap();
    let fresh = pending(&*w.store, acme, "f1", "Prix ?", w.clock.now()).await;
    // A narrow window answers nothing and takes nothing out.
    let r = w
        .pipeline
        .auto_reply_recent_inbound(w.clock.now() + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(r.sent, 0, "{r:?}");
    let still = w.store.get_message(tenant_id, waiting.id).await.unwrap();
    assert_eq!(still.reply.map(|r| r.state), Some(ReplyState::Pending));

    let since = w.clock.now() - Duration::hours(1);
    assert_eq!(step.run(since, 10).await.unwrap(), 1);
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
    assert_eq!(step.run(since, 10).await.unwrap(), 0);
    assert_eq!(w.mock.calls_of(MockOp::SendMessage).len(), 1);
}

/// An item received 20 minutes ago is not taken out of the queue even by a
/// step whose window starts after it: the expiry never takes an item
/// younger than an hour (`STALE_REPLY_AGE`).
pub async fn a_recent_reply_is_never_expired_by_a_narrow_window(store: Arc<dyn Store>) {
    let w = world(store);
    let step = AutoReplyStep::new(w.pipeline.clone());
    let acme = tenant(&*w.store, "acme").await;
    let now = w.clock.now();
    let item = pending(
        &*w.store,
        acme,
        "r1",
        "Horaires ?",
        now - Duration::minutes(20),
    )
    .await;
    assert_eq!(step.run(now - Duration::minutes(5), 10).await.unwrap(), 0);
    let stored = w.store.get_message(acme.0, item.id).await.unwrap();
    assert_eq!(stored.reply.map(|r| r.state), Some(ReplyState::Pending));
    assert_eq!(stored.triage, Some(Triage::AutoReply));
}
