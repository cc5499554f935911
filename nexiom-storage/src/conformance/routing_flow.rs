//! Conformance tests of routing: events turned into messages, statuses and
//! comments, and concurrent routers routing each event once.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{
    World, assert_not_found, conversation, event, message, mins, published_post, t0, world,
};
use crate::Store;

/// A message event from `sender` (its event id is the provider message id).
fn inbound_event(
    w: &World,
    event_id: &str,
    sender: &str,
    text: &str,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        sender_id: Some(sender.into()),
        sender_name: Some(format!("{sender} name")),
        text: Some(text.into()),
        occurred_at,
        ..event(w, event_id, EventKind::Message, received_at)
    }
}

/// Every inbound message of the tenant, oldest first.
async fn all_inbound(s: &dyn Store, tenant: TenantId) -> Vec<Message> {
    s.list_messages_since(
        tenant,
        MessageDirection::Inbound,
        t0() - Duration::days(3650),
        u32::MAX,
    )
    .await
    .unwrap()
}

pub async fn routing_turns_events_into_messages_statuses_and_comments(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let fb = world(s, "Acme FB", Platform::Facebook, "page-1").await;
    let post = published_post(s, &w, "launch").await;
    let pp = post.platform_post_id.clone().unwrap();
    // An outbound message the statuses name.
    let (_, out_conv) = conversation(s, &w, "33600000009").await;
    let outbound = s
        .insert_message(message(
            w.tenant.id,
            out_conv.id,
            MessageDirection::Outbound,
            Some("wamid.out"),
            t0(),
        ))
        .await
        .unwrap()
        .record;

    let at = t0() + mins(60);
    let mut evs = vec![
        // Received in this order; A's second message happened earlier.
        inbound_event(&w, "m1", "A", "first", t0() + mins(10), t0() + mins(1)),
        inbound_event(&w, "m2", "A", "earlier", t0() + mins(5), t0() + mins(2)),
        NewWebhookEvent {
            text: None,
            has_media: true,
            ..inbound_event(&w, "m3", "B", "", t0() + mins(3), t0() + mins(3))
        },
        NewWebhookEvent {
            sender_id: None,
            ..inbound_event(&w, "m4", "C", "no sender", t0(), t0() + mins(4))
        },
    ];
    for (id, status, minute) in [
        ("s1", DeliveryStatus::Read, 5),
        ("s2", DeliveryStatus::Delivered, 6),
    ] {
        evs.push(NewWebhookEvent {
            delivery_status: Some(status),
            target_id: Some("wamid.out".into()),
            ..event(&w, id, EventKind::Status, t0() + mins(minute))
        });
    }
    evs.push(NewWebhookEvent {
        delivery_status: Some(DeliveryStatus::Read),
        target_id: Some("wamid.unknown".into()),
        ..event(&w, "s3", EventKind::Status, t0() + mins(7))
    });
    evs.push(NewWebhookEvent {
        target_id: Some(pp.clone()),
        text: Some("Nice post".into()),
        ..event(&w, "c1", EventKind::Comment, t0() + mins(8))
    });
    evs.push(NewWebhookEvent {
        target_id: Some(pp.clone()),
        parent_id: Some("c1".into()),
        text: Some("Agreed".into()),
        ..event(&w, "c2", EventKind::CommentReply, t0() + mins(9))
    });
    evs.push(NewWebhookEvent {
        target_id: Some("pp-not-ours".into()),
        ..event(&w, "c3", EventKind::Comment, t0() + mins(10))
    });
    evs.push(event(&w, "o1", EventKind::Other, t0() + mins(11)));
    // Another platform's event, left alone by a platform filter.
    evs.push(inbound_event(&fb, "f1", "A", "hello", t0(), t0()));
    for e in evs {
        s.insert_event(e).await.unwrap();
    }

    // Oldest first, up to the limit, one platform.
    let report = s
        .route_unrouted_events(Some(&Platform::WhatsApp), 2, at)
        .await
        .unwrap();
    assert_eq!(report.processed, 2);
    assert_eq!(report.messages_created, 2);
    let report = s
        .route_unrouted_events(Some(&Platform::WhatsApp), 100, at)
        .await
        .unwrap();
    assert_eq!(
        report,
        RoutingReport {
            processed: 9,
            messages_created: 1,
            comments_created: 3,
            external_posts_created: 1,
            set_aside: 0,
            left_unrouted: 0,
        }
    );
    let unrouted = s.list_unrouted_events(None, 10).await.unwrap();
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].event_id, "f1");

    // Messages: one per message event with a sender, text and media kept.
    let inbound = all_inbound(s, w.tenant.id).await;
    let pids: Vec<_> = inbound
        .iter()
        .map(|m| m.provider_message_id.clone().unwrap())
        .collect();
    assert_eq!(pids, vec!["m3", "m2", "m1"]);
    let m3 = &inbound[0];
    assert!(m3.has_media);
    assert_eq!(m3.text, "");
    assert_eq!(m3.created_at, t0() + mins(3));
    assert_eq!(m3.stored_at, at);
    // A's two messages share one conversation, whose last_message_at is the
    // later message time although it arrived first.
    let conv_a = s
        .get_conversation(w.tenant.id, inbound[2].conversation_id)
        .await
        .unwrap();
    assert_eq!(inbound[1].conversation_id, conv_a.id);
    assert_eq!(conv_a.last_message_at, Some(t0() + mins(10)));
    assert_eq!(conv_a.channel_id, w.channel.id);
    assert_eq!(conv_a.created_at, at);
    let contact = s.get_contact(w.tenant.id, conv_a.contact_id).await.unwrap();
    assert_eq!(contact.display_name.as_deref(), Some("A name"));
    assert_ne!(m3.conversation_id, conv_a.id);

    let ev = |id: &'static str| {
        let store = Arc::clone(&store);
        let tenant = w.tenant.id;
        async move {
            store
                .find_event(tenant, &Platform::WhatsApp, id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(ev("m1").await.conversation_id, Some(conv_a.id));
    assert_eq!(ev("m1").await.routed_at, Some(at));
    assert_eq!(ev("m4").await.conversation_id, None);
    assert!(ev("m4").await.routed_at.is_some());
    assert_eq!(ev("s1").await.conversation_id, Some(out_conv.id));
    assert_eq!(ev("s3").await.conversation_id, None);
    assert_eq!(ev("c1").await.conversation_id, None);
    assert!(ev("o1").await.routed_at.is_some());

    // Statuses: the highest wins whatever the order.
    let out = s.get_message(w.tenant.id, outbound.id).await.unwrap();
    assert_eq!(out.delivery_status, Some(DeliveryStatus::Read));

    // Comments on the known post, threads kept; the comment on a post made
    // elsewhere records that post once, as an external post, and is stored
    // on it.
    let external = s
        .find_post_by_platform_id(w.tenant.id, w.channel.id, "pp-not-ours")
        .await
        .unwrap()
        .expect("the external post is recorded");
    assert_eq!(external.origin, PostOrigin::External);
    assert_eq!(external.status, PostStatus::Published);
    assert_eq!(
        external.publish_at,
        t0() + mins(10),
        "its first comment's time"
    );
    assert_eq!(
        (
            external.published_at,
            external.next_check_at,
            external.stop_at
        ),
        (None, None, None),
        "known from a comment only: not polled"
    );
    assert_eq!(external.created_at, at);
    let on_external = s.list_comments(w.tenant.id, external.id, 10).await.unwrap();
    assert_eq!(on_external.len(), 1);
    assert_eq!(on_external[0].platform_comment_id, "c3");
    assert_eq!(on_external[0].channel_id, w.channel.id);
    assert_eq!(
        s.find_post_by_platform_id(w.tenant.id, w.channel.id, &pp)
            .await
            .unwrap()
            .map(|p| (p.id, p.origin)),
        Some((post.id, PostOrigin::Scheduled))
    );
    let comments = s.list_comments(w.tenant.id, post.id, 10).await.unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].platform_comment_id, "c1");
    assert_eq!(comments[0].text, "Nice post");
    assert_eq!(comments[0].author_id.as_deref(), Some("15550001"));
    assert_eq!(
        comments[1].parent_platform_comment_id.as_deref(),
        Some("c1")
    );
    assert_eq!(comments[1].created_at, t0() + mins(9));

    // Routing again does nothing.
    let again = s.route_unrouted_events(None, 100, at).await.unwrap();
    assert_eq!(again.processed, 1, "only the Facebook event was left");
    assert_eq!(
        s.route_unrouted_events(None, 100, at).await.unwrap(),
        RoutingReport::default()
    );

    // Single-event routing: the same rules; a routed event stays as it was.
    let later = at + mins(30);
    let routed = s
        .route_event(w.tenant.id, ev("m1").await.id, later)
        .await
        .unwrap();
    assert_eq!(routed.routed_at, Some(at));
    assert_eq!(routed.conversation_id, Some(conv_a.id));
    assert_not_found(s.route_event(fb.tenant.id, ev("m1").await.id, later).await);

    // A closed conversation: the next message opens a new one.
    s.close_conversation(w.tenant.id, conv_a.id).await.unwrap();
    let m5 = s
        .insert_event(inbound_event(&w, "m5", "A", "back", t0() + mins(70), later))
        .await
        .unwrap()
        .record;
    let routed = s.route_event(w.tenant.id, m5.id, later).await.unwrap();
    assert_eq!(routed.routed_at, Some(later));
    let new_conv = routed.conversation_id.unwrap();
    assert_ne!(new_conv, conv_a.id);
    let new_conv = s.get_conversation(w.tenant.id, new_conv).await.unwrap();
    assert_eq!(new_conv.contact_id, conv_a.contact_id);
    assert_eq!(new_conv.status, ConversationStatus::Open);
    assert_eq!(new_conv.last_message_at, Some(t0() + mins(70)));

    // A message stored already (by any path): routing only marks the event.
    let (_, conv_d) = conversation(s, &w, "D").await;
    let pre = s
        .insert_message(message(
            w.tenant.id,
            conv_d.id,
            MessageDirection::Inbound,
            Some("m6"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let m6 = s
        .insert_event(inbound_event(&w, "m6", "Z", "dup", t0(), later))
        .await
        .unwrap()
        .record;
    let report = s.route_unrouted_events(None, 10, later).await.unwrap();
    assert_eq!(
        report,
        RoutingReport {
            processed: 1,
            messages_created: 0,
            comments_created: 0,
            external_posts_created: 0,
            set_aside: 0,
            left_unrouted: 0,
        }
    );
    let m6 = s.get_event(w.tenant.id, m6.id).await.unwrap();
    assert_eq!(m6.conversation_id, Some(pre.conversation_id));
    let handles = s
        .list_contact_channels(w.tenant.id, conv_d.contact_id)
        .await
        .unwrap();
    assert_eq!(handles.len(), 1, "no contact is created for sender Z");
    assert_eq!(all_inbound(s, w.tenant.id).await.len(), 5);
}

pub async fn concurrent_routing_routes_each_event_once(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::WhatsApp, "pn-1").await);
    let n = 120;
    let mut ids = Vec::new();
    for i in 0..n {
        let e = inbound_event(
            &w,
            &format!("wamid.{i}"),
            &format!("sender-{}", i % 12),
            "hello",
            t0() + Duration::seconds(i),
            t0() + Duration::seconds((i * 7) % n),
        );
        ids.push(store.insert_event(e).await.unwrap().record.id);
    }
    let at = t0() + mins(60);
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let store = Arc::clone(&store);
        let w = Arc::clone(&w);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut total = RoutingReport::default();
            if worker == 0 {
                // One worker routes single events, the others in batches.
                for id in ids.iter().rev().take(40) {
                    store.route_event(w.tenant.id, *id, at).await.unwrap();
                }
            }
            loop {
                let r = store.route_unrouted_events(None, 7, at).await.unwrap();
                if r.processed == 0 {
                    break total;
                }
                total.add(r);
            }
        }));
    }
    let mut total = RoutingReport::default();
    for t in tasks {
        total.add(t.await.unwrap());
    }
    let s = &*store;
    assert!(s.list_unrouted_events(None, 10).await.unwrap().is_empty());
    let inbound = all_inbound(s, w.tenant.id).await;
    assert_eq!(inbound.len(), n as usize, "exactly one message per event");
    let distinct: HashSet<_> = inbound
        .iter()
        .map(|m| m.provider_message_id.clone())
        .collect();
    assert_eq!(distinct.len(), n as usize);
    // Batches never count an event twice (single routing is not counted).
    assert!(total.processed <= n as u64);
    let convs = s.list_conversations(w.tenant.id, None, 100).await.unwrap();
    assert_eq!(convs.len(), 12, "one conversation per sender");
    for conv in convs {
        let msgs = s.list_messages(w.tenant.id, conv.id, 100).await.unwrap();
        assert_eq!(msgs.len(), 10);
        assert_eq!(
            conv.last_message_at,
            msgs.iter().map(|m| m.created_at).max()
        );
    }
    for id in ids {
        let e = s.get_event(w.tenant.id, id).await.unwrap();
        assert_eq!(e.routed_at, Some(at));
        assert!(e.conversation_id.is_some());
    }
}

/// A comment hidden, shown again or removed by the Page's moderator
/// (`moderation` events) is recorded on the stored comment when routed:
/// `hide` and `remove` hide it, `unhide` shows it; the latest moderation by
/// the time it happened wins, in one batch as across batches (one routed
/// after a later one changes nothing); a moderation in the same batch as its
/// comment applies to it, even received before it; one about a comment never
/// stored changes nothing. Every event is routed; a hidden comment leaves
/// the triage queue.
pub async fn moderation_events_hide_and_show_stored_comments(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let comment = |id: &str, at| NewWebhookEvent {
        target_id: Some("P_1".into()),
        ..event(&w, id, EventKind::Comment, at)
    };
    // Happened at `at`, received at `received`.
    let moderated = |comment: &str, verb: &str, at, received| NewWebhookEvent {
        target_id: Some("P_1".into()),
        parent_id: Some(comment.into()),
        text: Some(verb.into()),
        occurred_at: at,
        ..event(
            &w,
            &format!("{comment}:{verb}:{at}"),
            EventKind::Moderation,
            received,
        )
    };
    let moderation = |comment: &str, verb: &str, at| moderated(comment, verb, at, at);
    let hidden = || async {
        let comments = s.list_comments_since(t, t0() - mins(1), 100).await.unwrap();
        let mut hidden: Vec<(String, bool)> = comments
            .into_iter()
            .map(|c| (c.platform_comment_id, c.hidden))
            .collect();
        hidden.sort();
        hidden
    };
    let route = |at| async move {
        s.route_unrouted_events(None, 100, at).await.unwrap();
        assert!(s.list_unrouted_events(None, 10).await.unwrap().is_empty());
    };
    let rounds: [(Vec<NewWebhookEvent>, [bool; 4]); 4] = [
        // The comments and c1 hidden after them in the same batch; c4
        // hidden, the moderation received before the comment.
        (
            vec![
                comment("c1", t0()),
                comment("c2", t0() + mins(1)),
                comment("c3", t0() + mins(2)),
                moderation("c1", "hide", t0() + mins(3)),
                moderation("c9", "hide", t0() + mins(3)),
                moderation("c4", "hide", t0() + mins(3)),
                comment("c4", t0() + mins(4)),
            ],
            [true, false, false, true],
        ),
        // c1 shown again, c2 removed.
        (
            vec![
                moderation("c1", "unhide", t0() + mins(5)),
                moderation("c2", "remove", t0() + mins(5)),
            ],
            [false, true, false, true],
        ),
        // c3 shown then hidden, received in the other order: the latest
        // by the time it happened wins.
        (
            vec![
                moderated("c3", "hide", t0() + mins(7), t0() + mins(6)),
                moderated("c3", "unhide", t0() + mins(6), t0() + mins(7)),
            ],
            [false, true, true, true],
        ),
        // Routed late: c1 hidden before it was shown, c3 shown before it was
        // hidden (another router's older batch, a redelivery).
        (
            vec![
                moderation("c1", "hide", t0() + mins(4)),
                moderation("c3", "unhide", t0() + mins(6) + Duration::seconds(30)),
            ],
            [false, true, true, true],
        ),
    ];
    for (i, (events, expected)) in rounds.into_iter().enumerate() {
        for e in events {
            s.insert_event(e).await.unwrap();
        }
        route(t0() + mins(10 + i as i64)).await;
        let want: Vec<(String, bool)> = ["c1", "c2", "c3", "c4"]
            .into_iter()
            .zip(expected)
            .map(|(c, h)| (c.to_owned(), h))
            .collect();
        assert_eq!(hidden().await, want, "round {i}");
    }
    let untriaged: Vec<String> = s
        .list_untriaged_comments(t, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.platform_comment_id)
        .collect();
    assert_eq!(untriaged, ["c1"]);
}
