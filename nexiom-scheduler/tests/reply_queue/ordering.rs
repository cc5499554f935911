//! A conversation's replies go out in order within one batch too.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::MockOp;
use nexiom_core::*;
use nexiom_storage::Store;

use super::support::{pending, t0, tenant, world};

/// Two messages of one conversation in one batch, the first's send failing
/// with a 503: the second is put back untouched (no attempt, nothing sent)
/// until the first's retry, and both are answered then. Before, the second
/// was answered at once, ahead of the first.
pub async fn a_message_left_for_later_holds_its_conversations_next_one(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let first = pending(&*w.store, acme, "o1", "Horaires ?", t0()).await;
    let second = w
        .store
        .insert_message(NewMessage {
            tenant_id: acme.0,
            conversation_id: first.conversation_id,
            direction: MessageDirection::Inbound,
            text: "Et le dimanche ?".into(),
            has_media: false,
            provider_message_id: Some("wamid.o2".into()),
            in_reply_to: None,
            delivery_status: None,
            created_at: t0() + Duration::seconds(5),
            stored_at: t0() + Duration::seconds(5),
        })
        .await
        .unwrap()
        .record;
    w.store
        .set_message_triage(acme.0, second.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    w.mock.fail_transient(MockOp::SendMessage, 1);
    let since = t0() - Duration::hours(1);
    let run = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 0, "{run:?}");
    assert_eq!(run.held_back, 1, "{run:?}");
    assert_eq!(w.mock.calls_of(MockOp::SendMessage).len(), 1);
    let state = |m: Message| m.reply.unwrap();
    let one = state(w.store.get_message(acme.0, first.id).await.unwrap());
    let two = state(w.store.get_message(acme.0, second.id).await.unwrap());
    assert_eq!((one.state, one.attempts), (ReplyState::Pending, 1));
    assert_eq!((two.state, two.attempts), (ReplyState::Pending, 0));
    assert_eq!(two.next_at, one.next_at, "held until the first's retry");

    // Due again: both answered (in claim order, which is queue order).
    w.clock.advance(Duration::minutes(10));
    let run = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!(run.sent, 2, "{run:?}");
    let one = state(w.store.get_message(acme.0, first.id).await.unwrap());
    let two = state(w.store.get_message(acme.0, second.id).await.unwrap());
    assert_eq!((one.state, two.state), (ReplyState::Sent, ReplyState::Sent));
}
