//! Items left behind the window the queue answers in are given up and
//! escalated to a person, whatever held them back.

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_storage::Store;

use crate::{pending, tenant, world};

/// Two items a backlog, a paused channel or AI control switched off left
/// behind the window (created 3 h and 2 h ago, the window is the last hour)
/// and one inside it: the old ones are given up and escalated (a person is
/// notified), with no send, and the recent one is answered; a second run
/// finds nothing. Before, the old ones stayed `pending` for good.
pub async fn items_left_behind_the_window_are_given_up_and_escalated(store: Arc<dyn Store>) {
    let w = world(store);
    let acme = tenant(&*w.store, "acme").await;
    let now = w.clock.now();
    let old = [
        pending(&*w.store, acme, "old1", "Bonjour", now - Duration::hours(3)).await,
        pending(
            &*w.store,
            acme,
            "old2",
            "Horaires ?",
            now - Duration::hours(2),
        )
        .await,
    ];
    let recent = pending(
        &*w.store,
        acme,
        "new",
        "Horaires ?",
        now - Duration::minutes(5),
    )
    .await;
    let since = now - Duration::hours(1);

    let report = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((report.expired, report.sent), (2, 1), "{report:?}");
    assert_eq!(
        w.mock
            .calls_of(nexiom_connectors::MockOp::SendMessage)
            .len(),
        1
    );
    for m in &old {
        let stored = w.store.get_message(acme.0, m.id).await.unwrap();
        let reply = stored.reply.unwrap();
        assert_eq!(reply.state, ReplyState::GivenUp);
        assert!(
            reply
                .error
                .as_deref()
                .unwrap()
                .contains("before the auto-reply window"),
            "{:?}",
            reply.error
        );
        assert_eq!(stored.triage, Some(Triage::Escalate), "a person answers");
    }
    assert_eq!(
        w.store
            .get_message(acme.0, recent.id)
            .await
            .unwrap()
            .reply
            .unwrap()
            .state,
        ReplyState::Sent
    );
    let escalated = w
        .store
        .list_notifications(acme.0, Some(NotificationKind::ItemEscalated), 10)
        .await
        .unwrap();
    assert_eq!(escalated.len(), 2, "the person is told of each");

    let again = w
        .pipeline
        .auto_reply_recent_inbound(since, 10)
        .await
        .unwrap();
    assert_eq!((again.expired, again.sent), (0, 0));
}
