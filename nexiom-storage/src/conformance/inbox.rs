//! Conformance tests of the inbox (`InboxStore`): items that follow the
//! messages, comments and replies; people's assignee, status, labels and
//! notes; the lists and their cursors; canned replies.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::{StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

pub(super) async fn say(
    s: &dyn Store,
    w: &World,
    conv: ConversationId,
    direction: MessageDirection,
    key: &str,
    at: DateTime<Utc>,
    triage: Option<Triage>,
) -> Message {
    let m = s
        .insert_message(NewMessage {
            tenant_id: w.tenant.id,
            conversation_id: conv,
            direction,
            text: key.into(),
            has_media: false,
            provider_message_id: Some(key.into()),
            in_reply_to: None,
            delivery_status: None,
            created_at: at,
            stored_at: at,
        })
        .await
        .unwrap()
        .record;
    match triage {
        Some(t) => s
            .set_message_triage(w.tenant.id, m.id, t, 1.0, None)
            .await
            .unwrap(),
        None => m,
    }
}

pub(super) async fn open_conversation(s: &dyn Store, w: &World, handle: &str) -> Conversation {
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: w.channel.platform.clone(),
            external_handle: handle.into(),
            display_name: None,
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    s.insert_open_conversation(w.tenant.id, cc.contact_id, w.channel.id, t0())
        .await
        .unwrap()
        .record
}

pub(super) fn query(w: &World, view: InboxView, now: DateTime<Utc>) -> InboxQuery {
    InboxQuery {
        tenant_id: w.tenant.id,
        view,
        now,
        after: None,
        limit: 50,
    }
}

pub(super) async fn listed(s: &dyn Store, q: InboxQuery) -> Vec<InboxSubject> {
    s.list_inbox(q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.subject)
        .collect()
}

/// Items follow the data (triage, waiting, activity) and people (assignee,
/// status, labels, notes); the lists show active items oldest first, page by
/// cursor and keep to their tenant.
pub async fn inbox_items_follow_messages_and_people(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    let a = open_conversation(s, &w, "psid-a").await;
    let sa = InboxSubject::Conversation(a.id);
    let empty = open_conversation(s, &w, "psid-b").await;
    let item = s
        .get_inbox_item(w.tenant.id, InboxSubject::Conversation(empty.id))
        .await
        .unwrap();
    assert_eq!(item.waiting_since, None);
    assert_eq!(item.last_activity_at, t0());
    assert_eq!(item.status, InboxStatus::Open);
    assert_eq!(item.triage, None);

    say(
        s,
        &w,
        a.id,
        MessageDirection::Inbound,
        "a1",
        t0() + mins(1),
        Some(Triage::Escalate),
    )
    .await;
    let item = s.get_inbox_item(w.tenant.id, sa).await.unwrap();
    assert_eq!(item.triage, Some(Triage::Escalate));
    assert_eq!(item.waiting_since, Some(t0() + mins(1)));
    assert_eq!(item.channel_id, w.channel.id);
    let now = t0() + mins(60);
    assert_eq!(
        listed(s, query(&w, InboxView::UnassignedEscalations, now)).await,
        vec![sa]
    );
    say(
        s,
        &w,
        a.id,
        MessageDirection::Outbound,
        "a2",
        t0() + mins(5),
        None,
    )
    .await;
    let item = s.get_inbox_item(w.tenant.id, sa).await.unwrap();
    assert_eq!(item.waiting_since, None, "answered");
    assert_eq!(item.last_activity_at, t0() + mins(5));
    say(
        s,
        &w,
        a.id,
        MessageDirection::Inbound,
        "a3",
        t0() + mins(10),
        None,
    )
    .await;
    say(
        s,
        &w,
        a.id,
        MessageDirection::Inbound,
        "a4",
        t0() + mins(12),
        Some(Triage::Ignore),
    )
    .await;
    let item = s.get_inbox_item(w.tenant.id, sa).await.unwrap();
    assert_eq!(item.waiting_since, Some(t0() + mins(10)));
    assert_eq!(
        item.triage,
        Some(Triage::Ignore),
        "the latest triaged inbound"
    );
    assert_eq!(item.since(), t0() + mins(10));

    // A comment waits until a reply to it is sent.
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("p"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let c = s
        .insert_comment(NewComment {
            tenant_id: w.tenant.id,
            post_id: post.id,
            platform_comment_id: "c-1".into(),
            parent_platform_comment_id: None,
            author_id: None,
            author_name: None,
            text: "help".into(),
            created_at: t0() + mins(2),
            stored_at: t0() + mins(2),
            hidden: false,
        })
        .await
        .unwrap()
        .record;
    s.set_comment_triage(w.tenant.id, c.id, Triage::Escalate, 1.0, None)
        .await
        .unwrap();
    let sc = InboxSubject::Comment(c.id);
    let item = s.get_inbox_item(w.tenant.id, sc).await.unwrap();
    assert_eq!(item.waiting_since, Some(t0() + mins(2)));
    assert_eq!(item.triage, Some(Triage::Escalate));
    assert_eq!(
        listed(s, query(&w, InboxView::UnassignedEscalations, now)).await,
        vec![sc]
    );
    assert_eq!(
        listed(s, query(&w, InboxView::WaitingLongerThan(mins(49)), now)).await,
        vec![sc, sa],
        "waiting since t0+2 and t0+10, both 50 minutes or more at t0+60"
    );
    assert_eq!(
        listed(s, query(&w, InboxView::WaitingLongerThan(mins(55)), now)).await,
        vec![sc]
    );
    s.insert_comment_reply(NewCommentReply {
        tenant_id: w.tenant.id,
        comment_id: c.id,
        text: "DM sent".into(),
        created_at: t0() + mins(3),
    })
    .await
    .unwrap();
    s.finish_comment_reply(
        w.tenant.id,
        c.id,
        DeliveryStatus::Sent,
        Some("r-1"),
        None,
        t0() + mins(3),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_inbox_item(w.tenant.id, sc)
            .await
            .unwrap()
            .waiting_since,
        None
    );

    // People: assignee, labels, status.
    let assigned = s
        .assign_inbox_item(w.tenant.id, sc, Some("ana"))
        .await
        .unwrap();
    assert_eq!(assigned.assignee.as_deref(), Some("ana"));
    assert!(
        listed(s, query(&w, InboxView::UnassignedEscalations, now))
            .await
            .is_empty()
    );
    assert_eq!(
        listed(s, query(&w, InboxView::AssignedTo("ana".into()), now)).await,
        vec![sc]
    );
    let labelled = s
        .label_inbox_item(
            w.tenant.id,
            sa,
            &["vip".into(), "b".into(), "vip".into()],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(labelled.labels, vec!["b".to_owned(), "vip".to_owned()]);
    let labelled = s
        .label_inbox_item(w.tenant.id, sa, &[], &["b".into()])
        .await
        .unwrap();
    assert_eq!(labelled.labels, vec!["vip".to_owned()]);
    assert!(matches!(
        s.label_inbox_item(w.tenant.id, sa, &[String::new()], &[])
            .await,
        Err(StorageError::Invalid { .. })
    ));
    assert_eq!(
        listed(s, query(&w, InboxView::Label("vip".into()), now)).await,
        vec![sa]
    );
    assert_eq!(
        listed(s, query(&w, InboxView::Triage(Triage::Ignore), now)).await,
        vec![sa]
    );
    let by_channel = listed(s, query(&w, InboxView::Channel(w.channel.id), now)).await;
    assert_eq!(
        by_channel,
        vec![InboxSubject::Conversation(empty.id), sc, sa],
        "oldest since first: t0, t0+2, t0+10"
    );

    // Resolved: out of the lists; the contact writing again reopens it.
    let resolved = s
        .set_inbox_status(w.tenant.id, sa, InboxStatus::Resolved, t0() + mins(20))
        .await
        .unwrap();
    assert_eq!(resolved.status, InboxStatus::Resolved);
    assert!(
        listed(s, query(&w, InboxView::Label("vip".into()), now))
            .await
            .is_empty()
    );
    say(
        s,
        &w,
        a.id,
        MessageDirection::Inbound,
        "a5",
        t0() + mins(30),
        None,
    )
    .await;
    assert_eq!(
        s.get_inbox_item(w.tenant.id, sa).await.unwrap().status,
        InboxStatus::Open
    );
    // Snoozed: back in the lists once its time passed.
    let until = t0() + mins(120);
    s.set_inbox_status(
        w.tenant.id,
        sa,
        InboxStatus::Snoozed { until },
        t0() + mins(31),
    )
    .await
    .unwrap();
    assert!(
        listed(s, query(&w, InboxView::Label("vip".into()), now))
            .await
            .is_empty()
    );
    assert_eq!(
        listed(s, query(&w, InboxView::Label("vip".into()), until)).await,
        vec![sa]
    );
    s.set_inbox_status(w.tenant.id, sa, InboxStatus::Pending, t0() + mins(32))
        .await
        .unwrap();

    // Pages by cursor.
    let mut q = query(&w, InboxView::Channel(w.channel.id), now);
    q.limit = 2;
    let first = s.list_inbox(q.clone()).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let next = first.next.unwrap();
    q.after = Some(next);
    let second = s.list_inbox(q.clone()).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next, None);
    let mut all: Vec<InboxSubject> = first.items.iter().map(|i| i.subject).collect();
    all.extend(second.items.iter().map(|i| i.subject));
    assert_eq!(all, by_channel);
    q.limit = 0;
    assert!(matches!(
        s.list_inbox(q).await,
        Err(StorageError::Invalid { .. })
    ));

    // Notes.
    s.add_inbox_note(w.tenant.id, sa, "ana", "called them", t0() + mins(40))
        .await
        .unwrap();
    s.add_inbox_note(w.tenant.id, sa, "bo", "refund done", t0() + mins(41))
        .await
        .unwrap();
    let notes = s.list_inbox_notes(w.tenant.id, sa).await.unwrap();
    assert_eq!(
        notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(),
        vec!["called them", "refund done"]
    );
    assert!(matches!(
        s.add_inbox_note(w.tenant.id, sa, "ana", " ", t0()).await,
        Err(StorageError::Invalid { .. })
    ));

    // Tenant isolation.
    assert!(matches!(
        s.get_inbox_item(other.tenant.id, sa).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        s.assign_inbox_item(other.tenant.id, sa, Some("x")).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        s.list_inbox_notes(other.tenant.id, sa).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(
        listed(s, query(&other, InboxView::Channel(w.channel.id), now))
            .await
            .is_empty()
    );
}

/// Canned replies: created, listed by name, unique per tenant, checked,
/// deleted.
pub async fn canned_replies_are_kept_per_tenant(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let other = world(s, "Other", Platform::Facebook, "page-2").await;
    let b = s
        .create_canned_reply(w.tenant.id, "shipping", "Hi {name}, it ships {day}.", t0())
        .await
        .unwrap();
    let a = s
        .create_canned_reply(w.tenant.id, "apology", "Sorry {name}!", t0())
        .await
        .unwrap();
    assert_eq!(
        s.list_canned_replies(w.tenant.id).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(
        s.list_canned_replies(other.tenant.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.create_canned_reply(w.tenant.id, "apology", "x", t0())
            .await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(matches!(
        s.create_canned_reply(w.tenant.id, "broken", "Hi {name", t0())
            .await,
        Err(StorageError::Invalid { .. })
    ));
    s.create_canned_reply(other.tenant.id, "apology", "Désolé {name}", t0())
        .await
        .unwrap();
    assert!(matches!(
        s.delete_canned_reply(other.tenant.id, a.id).await,
        Err(StorageError::NotFound { .. })
    ));
    s.delete_canned_reply(w.tenant.id, a.id).await.unwrap();
    assert_eq!(s.list_canned_replies(w.tenant.id).await.unwrap(), vec![b]);
}

/// First-response targets: set, replaced, removed, checked, listed.
pub async fn first_response_targets_are_kept_per_tenant(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Other", Platform::Facebook, "page-2").await;
    assert_eq!(s.first_response_target(a.tenant.id).await.unwrap(), None);
    s.set_first_response_target(a.tenant.id, Some(mins(30)), t0())
        .await
        .unwrap();
    s.set_first_response_target(a.tenant.id, Some(mins(15)), t0())
        .await
        .unwrap();
    s.set_first_response_target(b.tenant.id, Some(mins(60)), t0())
        .await
        .unwrap();
    assert_eq!(
        s.first_response_target(a.tenant.id).await.unwrap(),
        Some(mins(15))
    );
    let mut expected = vec![(a.tenant.id, mins(15)), (b.tenant.id, mins(60))];
    expected.sort_by_key(|(t, _)| *t);
    assert_eq!(s.list_first_response_targets().await.unwrap(), expected);
    for bad in [Duration::zero(), Duration::milliseconds(1500)] {
        assert!(matches!(
            s.set_first_response_target(a.tenant.id, Some(bad), t0())
                .await,
            Err(StorageError::Invalid { .. })
        ));
    }
    assert!(matches!(
        s.set_first_response_target(TenantId::generate(), Some(mins(5)), t0())
            .await,
        Err(StorageError::UnknownReference { .. })
    ));
    assert!(matches!(
        s.set_first_response_target(TenantId::generate(), None, t0())
            .await,
        Err(StorageError::UnknownReference { .. })
    ));
    s.set_first_response_target(b.tenant.id, None, t0())
        .await
        .unwrap();
    assert_eq!(s.first_response_target(b.tenant.id).await.unwrap(), None);
    assert_eq!(
        s.list_first_response_targets().await.unwrap(),
        vec![(a.tenant.id, mins(15))]
    );
}

/// Messages of one conversation written by 16 concurrent tasks: the item
/// counts every one of them (latest triage, first unanswered message).
pub async fn concurrent_messages_keep_the_item_right(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let conv = open_conversation(s, &w, "psid-c").await;
    let mut tasks = Vec::new();
    for i in 0..16i64 {
        let store = Arc::clone(&store);
        let tenant = w.tenant.id;
        tasks.push(tokio::spawn(async move {
            // Minute 7 is the last answer; later ones wait, the latest
            // (minute 15) is escalated.
            let direction = if i == 7 {
                MessageDirection::Outbound
            } else {
                MessageDirection::Inbound
            };
            let m = store
                .insert_message(NewMessage {
                    tenant_id: tenant,
                    conversation_id: conv.id,
                    direction,
                    text: format!("m{i}"),
                    has_media: false,
                    provider_message_id: Some(format!("c{i}")),
                    in_reply_to: None,
                    delivery_status: None,
                    created_at: t0() + mins(i),
                    stored_at: t0() + mins(i),
                })
                .await
                .unwrap()
                .record;
            if direction == MessageDirection::Inbound {
                let triage = if i == 15 {
                    Triage::Escalate
                } else {
                    Triage::Ignore
                };
                store
                    .set_message_triage(tenant, m.id, triage, 1.0, None)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let item = s
        .get_inbox_item(w.tenant.id, InboxSubject::Conversation(conv.id))
        .await
        .unwrap();
    assert_eq!(item.waiting_since, Some(t0() + mins(8)));
    assert_eq!(item.last_activity_at, t0() + mins(15));
    assert_eq!(item.triage, Some(Triage::Escalate));
}
