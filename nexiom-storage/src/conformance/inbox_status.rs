//! Conformance tests of an inbox item's status set by people against the
//! messages it holds.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;

use super::fixtures::{t0, world};
use super::inbox::{listed, open_conversation, query, say};
use crate::Store;

/// A conversation resolved or snoozed at a time before its last inbound
/// message (the agent had not seen it) is open at once, in its item and in
/// its label's list; resolved after it, it stays resolved until the contact
/// writes again.
pub async fn resolving_before_the_last_inbound_message_leaves_it_open(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::WhatsApp, "number-1").await;
    let conv = open_conversation(s, &w, "+33600000001").await;
    let subject = InboxSubject::Conversation(conv.id);
    let mins = Duration::minutes;
    let inbound = MessageDirection::Inbound;
    say(s, &w, conv.id, inbound, "m1", t0() + mins(10), None).await;
    s.label_inbox_item(w.tenant.id, subject, &["vip".to_owned()], &[])
        .await
        .unwrap();
    let now = t0() + mins(60);
    let in_label = || query(&w, InboxView::Label("vip".into()), now);

    let early = s
        .set_inbox_status(w.tenant.id, subject, InboxStatus::Resolved, t0() + mins(5))
        .await
        .unwrap();
    assert_eq!(early.status, InboxStatus::Open, "resolved before m1");
    assert_eq!(
        s.get_inbox_item(w.tenant.id, subject).await.unwrap().status,
        InboxStatus::Open
    );
    assert_eq!(listed(s, in_label()).await, vec![subject]);

    let snoozed = s
        .set_inbox_status(
            w.tenant.id,
            subject,
            InboxStatus::Snoozed {
                until: t0() + mins(600),
            },
            t0() + mins(9),
        )
        .await
        .unwrap();
    assert_eq!(snoozed.status, InboxStatus::Open, "snoozed before m1");
    assert_eq!(listed(s, in_label()).await, vec![subject]);

    let resolved = s
        .set_inbox_status(w.tenant.id, subject, InboxStatus::Resolved, t0() + mins(11))
        .await
        .unwrap();
    assert_eq!(resolved.status, InboxStatus::Resolved, "resolved after m1");
    assert!(listed(s, in_label()).await.is_empty());
    // An answer does not reopen it; the contact writing again does.
    let outbound = MessageDirection::Outbound;
    say(s, &w, conv.id, outbound, "r1", t0() + mins(12), None).await;
    assert_eq!(
        s.get_inbox_item(w.tenant.id, subject).await.unwrap().status,
        InboxStatus::Resolved
    );
    say(s, &w, conv.id, inbound, "m2", t0() + mins(20), None).await;
    assert_eq!(
        s.get_inbox_item(w.tenant.id, subject).await.unwrap().status,
        InboxStatus::Open
    );
    assert_eq!(listed(s, in_label()).await, vec![subject]);
}
