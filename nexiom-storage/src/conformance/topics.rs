//! Conformance tests of [`TopicStore`](crate::TopicStore): the items a run
//! reads, stored vectors, runs (topics, memberships, daily sizes) and the three
//! reads, with tenant isolation and refusals that write nothing.
#![allow(clippy::unwrap_used, missing_docs)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::{World, world};
use crate::{StorageError, Store};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// A world with one conversation, `messages` inbound messages (one per hour
/// from 2026-11-10 00:00), one outbound and one blank inbound message, and a
/// post with `comments` comments (one per hour from 2026-11-10 00:30).
struct Scene {
    w: World,
    messages: Vec<MessageId>,
    post: PostId,
    comments: Vec<CommentId>,
}

async fn scene(s: &dyn Store, name: &str, account: &str, messages: u32, comments: u32) -> Scene {
    let w = world(s, name, Platform::WhatsApp, account).await;
    let cc = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: Platform::WhatsApp,
            external_handle: format!("{account}-contact"),
            display_name: None,
            created_at: at(1, 0),
        })
        .await
        .unwrap()
        .record;
    let conv = s
        .insert_open_conversation(w.tenant.id, cc.contact_id, w.channel.id, at(1, 0))
        .await
        .unwrap()
        .record
        .id;
    let message = |direction, text: String, t| NewMessage {
        tenant_id: w.tenant.id,
        conversation_id: conv,
        direction,
        text,
        has_media: false,
        provider_message_id: None,
        in_reply_to: None,
        delivery_status: None,
        created_at: t,
        stored_at: t,
    };
    let mut ids = Vec::new();
    for i in 0..messages {
        let t = at(10, 0) + Duration::hours(i64::from(i));
        let m = s
            .insert_message(message(
                MessageDirection::Inbound,
                format!("message {i}"),
                t,
            ))
            .await
            .unwrap()
            .record;
        ids.push(m.id);
    }
    s.insert_message(message(
        MessageDirection::Outbound,
        "reply".into(),
        at(10, 0),
    ))
    .await
    .unwrap();
    // Blank by Rust's `trim`, not by SQL's `btrim` alone.
    s.insert_message(message(
        MessageDirection::Inbound,
        " \n\t\u{a0}\u{3000}".into(),
        at(10, 0),
    ))
    .await
    .unwrap();
    let post = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text("post"),
            at(1, 0),
            at(1, 0),
        ))
        .await
        .unwrap()
        .record
        .id;
    let mut cids = Vec::new();
    for i in 0..comments {
        let t = at(10, 0) + Duration::minutes(30 + 60 * i64::from(i));
        let c = s
            .insert_comment(NewComment {
                tenant_id: w.tenant.id,
                post_id: post,
                platform_comment_id: format!("c-{i}"),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: format!("comment {i}"),
                created_at: t,
                stored_at: t,
                hidden: false,
            })
            .await
            .unwrap()
            .record;
        cids.push(c.id);
    }
    Scene {
        w,
        messages: ids,
        post,
        comments: cids,
    }
}

fn update(id: TopicId, label: &str, members: &[TopicSubject]) -> TopicUpdate {
    TopicUpdate {
        id,
        label: label.into(),
        terms: vec![label.into(), "terms".into()],
        centroid: vec![0.6, 0.8],
        members: members.iter().map(|s| (*s, 0.9)).collect(),
    }
}

fn run(tenant: TenantId, scope: TopicScope, d: u32, topics: Vec<TopicUpdate>) -> TopicRun {
    TopicRun {
        tenant_id: tenant,
        scope,
        model: "local-tfidf-hash-v1".into(),
        day: day(d),
        computed_at: at(d, 3),
        topics,
        unassigned: vec![],
    }
}

pub async fn topic_items_and_busy_posts(store: std::sync::Arc<dyn Store>) {
    let s = &*store;
    let sc = scene(s, "Items", "items-1", 3, 4).await;
    let items = s
        .list_topic_items(sc.w.tenant.id, at(10, 0), at(10, 2), None)
        .await
        .unwrap();
    // Inbound, non-empty messages at 00:00 and 01:00, comments at 00:30 and 01:30.
    let subjects: Vec<TopicSubject> = items.iter().map(|i| i.subject).collect();
    assert_eq!(
        subjects,
        vec![
            TopicSubject::Message(sc.messages[0]),
            TopicSubject::Comment(sc.comments[0]),
            TopicSubject::Message(sc.messages[1]),
            TopicSubject::Comment(sc.comments[1]),
        ]
    );
    assert_eq!(items[1].post_id, Some(sc.post));
    assert_eq!(items[1].text, "comment 0");
    let post_only = s
        .list_topic_items(sc.w.tenant.id, at(1, 0), at(20, 0), Some(sc.post))
        .await
        .unwrap();
    assert_eq!(post_only.len(), 4);
    assert!(post_only.iter().all(|i| i.post_id == Some(sc.post)));

    let busy = s
        .list_posts_with_comments(sc.w.tenant.id, 4, at(10, 3))
        .await
        .unwrap();
    assert_eq!(busy, vec![sc.post]);
    assert!(
        s.list_posts_with_comments(sc.w.tenant.id, 5, at(1, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_posts_with_comments(sc.w.tenant.id, 1, at(11, 0))
            .await
            .unwrap()
            .is_empty(),
        "no comment since"
    );
    let other = scene(s, "Other", "items-2", 1, 0).await;
    assert_eq!(
        s.list_topic_items(other.w.tenant.id, at(1, 0), at(20, 0), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn embeddings_are_upserted_and_checked(store: std::sync::Arc<dyn Store>) {
    let s = &*store;
    let sc = scene(s, "Vectors", "vec-1", 2, 1).await;
    let other = scene(s, "Vectors other", "vec-2", 1, 0).await;
    let e = |subject, v: Vec<f32>| ItemEmbedding {
        tenant_id: sc.w.tenant.id,
        subject,
        model: "m1".into(),
        vector: v,
        computed_at: at(11, 0),
    };
    let m0 = TopicSubject::Message(sc.messages[0]);
    let c0 = TopicSubject::Comment(sc.comments[0]);
    assert_eq!(
        s.upsert_embeddings(&[e(m0, vec![1.0, 0.0]), e(c0, vec![0.0, 1.0])])
            .await
            .unwrap(),
        2
    );
    s.upsert_embeddings(&[e(m0, vec![0.5, 0.25])])
        .await
        .unwrap();
    let m1 = TopicSubject::Message(sc.messages[1]);
    let got = s
        .get_embeddings(sc.w.tenant.id, "m1", &[c0, m1, m0])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].subject, got[0].vector.clone()),
        (c0, vec![0.0, 1.0])
    );
    assert_eq!(
        (got[1].subject, got[1].vector.clone()),
        (m0, vec![0.5, 0.25])
    );
    assert!(
        s.get_embeddings(sc.w.tenant.id, "m2", &[m0])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.get_embeddings(other.w.tenant.id, "m1", &[m0])
            .await
            .unwrap()
            .is_empty()
    );

    // Refusals write nothing: a foreign subject in the batch, a NaN, no values.
    let foreign = TopicSubject::Message(other.messages[0]);
    let err = s
        .upsert_embeddings(&[e(m1, vec![1.0]), e(foreign, vec![1.0])])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnknownReference {
                entity: "message",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        s.upsert_embeddings(&[e(m1, vec![f32::NAN])]).await,
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        s.upsert_embeddings(&[e(m1, vec![])]).await,
        Err(StorageError::Invalid(_))
    ));
    assert!(
        s.get_embeddings(sc.w.tenant.id, "m1", &[m1])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.get_embeddings(sc.w.tenant.id, "", &[m1]).await,
        Err(StorageError::Invalid(_))
    ));
}

pub async fn topic_runs_keep_identity_sizes_and_members(store: std::sync::Arc<dyn Store>) {
    let s = &*store;
    let sc = scene(s, "Runs", "runs-1", 6, 2).await;
    let t = sc.w.tenant.id;
    let m: Vec<TopicSubject> = sc
        .messages
        .iter()
        .map(|id| TopicSubject::Message(*id))
        .collect();
    let (a, b) = (TopicId::generate(), TopicId::generate());

    // Day 1: A = {m0, m1, m2}, B = {m3}, m4 unassigned.
    let mut r1 = run(
        t,
        TopicScope::Daily,
        10,
        vec![
            update(a, "delivery", &m[0..3]),
            update(b, "hours", &m[3..4]),
        ],
    );
    r1.unassigned = vec![m[4]];
    let saved = s.save_topic_run(r1).await.unwrap();
    assert_eq!(saved.len(), 2);
    assert_eq!(
        (saved[0].id, saved[0].size, saved[0].first_seen_on),
        (a, 3, day(10))
    );
    assert_eq!(saved[0].scope, TopicScope::Daily);

    // Day 2: A keeps its id with new members; m2 moves to B; m0 becomes unassigned.
    let mut r2 = run(
        t,
        TopicScope::Daily,
        11,
        vec![
            update(a, "late delivery", &m[1..2]),
            update(b, "hours", &[m[2], m[3], m[5]]),
        ],
    );
    r2.unassigned = vec![m[0]];
    s.save_topic_run(r2).await.unwrap();
    let listed = s.list_topics(t, TopicScope::Daily).await.unwrap();
    assert_eq!(listed.len(), 2);
    let a_now = listed.iter().find(|x| x.id == a).unwrap();
    assert_eq!((a_now.label.as_str(), a_now.size), ("late delivery", 1));
    assert_eq!(
        (a_now.first_seen_on, a_now.last_seen_on),
        (day(10), day(11))
    );
    assert_eq!(a_now.created_at, at(10, 3));
    assert_eq!(a_now.updated_at, at(11, 3));
    assert!(
        s.list_topics(t, TopicScope::Weekly)
            .await
            .unwrap()
            .is_empty()
    );

    // Trends: B is 1 on day 10 and 3 on day 11; A 3 then 1.
    let top = s
        .top_topics(t, TopicScope::Daily, day(10), day(11), 10)
        .await
        .unwrap();
    let sizes: Vec<(TopicId, i64, i64, i64)> = top
        .iter()
        .map(|x| (x.topic.id, x.size, x.today, x.yesterday))
        .collect();
    let (first, second) = if a < b {
        ((a, 4, 1, 3), (b, 4, 3, 1))
    } else {
        ((b, 4, 3, 1), (a, 4, 1, 3))
    };
    assert_eq!(sizes, vec![first, second], "equal sums: by id");
    let only_today = s
        .top_topics(t, TopicScope::Daily, day(11), day(11), 1)
        .await
        .unwrap();
    assert_eq!(
        (only_today.len(), only_today[0].topic.id, only_today[0].size),
        (1, b, 3)
    );
    // A week later: the day-11 sizes are "a week ago".
    let later = s
        .top_topics(t, TopicScope::Daily, day(11), day(18), 10)
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .find(|x| x.topic.id == b)
            .map(|x| (x.today, x.week_ago)),
        Some((0, 3))
    );
    assert!(
        s.top_topics(t, TopicScope::Daily, day(12), day(11), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Members, newest first, with their text, paged by cursor.
    let page1 = s.messages_in_topic(t, b, None, 2).await.unwrap();
    let texts: Vec<&str> = page1.members.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts, vec!["message 5", "message 3"]);
    assert!((page1.members[0].similarity - 0.9).abs() < 1e-6);
    let page2 = s.messages_in_topic(t, b, page1.next, 2).await.unwrap();
    let texts: Vec<&str> = page2.members.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts, vec!["message 2"]);
    assert_eq!(page2.next, None);
    let a_members = s.messages_in_topic(t, a, None, 10).await.unwrap();
    assert_eq!(
        a_members
            .members
            .iter()
            .map(|x| x.subject)
            .collect::<Vec<_>>(),
        vec![m[1]]
    );
}

pub async fn post_topics_and_refused_runs(store: std::sync::Arc<dyn Store>) {
    let s = &*store;
    let sc = scene(s, "Posts", "posts-1", 1, 3).await;
    let other = scene(s, "Posts other", "posts-2", 1, 1).await;
    let t = sc.w.tenant.id;
    let c: Vec<TopicSubject> = sc
        .comments
        .iter()
        .map(|id| TopicSubject::Comment(*id))
        .collect();
    let (big, small) = (TopicId::generate(), TopicId::generate());
    let scope = TopicScope::Post(sc.post);
    s.save_topic_run(run(
        t,
        scope,
        12,
        vec![
            update(small, "price", &c[2..3]),
            update(big, "menu", &c[0..2]),
        ],
    ))
    .await
    .unwrap();
    let for_post = s.topics_for_post(t, sc.post).await.unwrap();
    assert_eq!(
        for_post.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![big, small]
    );
    assert!(
        s.topics_for_post(other.w.tenant.id, sc.post)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_topics(t, TopicScope::Daily)
            .await
            .unwrap()
            .is_empty()
    );

    // Each refusal writes nothing.
    let before = s.topics_for_post(t, sc.post).await.unwrap();
    let foreign_post = run(
        t,
        TopicScope::Post(other.post),
        12,
        vec![update(TopicId::generate(), "x", &[])],
    );
    assert!(matches!(
        s.save_topic_run(foreign_post).await,
        Err(StorageError::UnknownReference { entity: "post", .. })
    ));
    // A topic id of another scope, or of another tenant, is unknown.
    let wrong_scope = run(t, TopicScope::Weekly, 12, vec![update(big, "menu", &[])]);
    assert!(matches!(
        s.save_topic_run(wrong_scope).await,
        Err(StorageError::UnknownReference {
            entity: "topic",
            ..
        })
    ));
    let stolen = run(
        other.w.tenant.id,
        TopicScope::Post(other.post),
        12,
        vec![update(big, "menu", &[])],
    );
    assert!(matches!(
        s.save_topic_run(stolen).await,
        Err(StorageError::UnknownReference {
            entity: "topic",
            ..
        })
    ));
    let foreign_member = run(
        t,
        scope,
        13,
        vec![update(
            big,
            "menu",
            &[c[0], TopicSubject::Comment(other.comments[0])],
        )],
    );
    assert!(matches!(
        s.save_topic_run(foreign_member).await,
        Err(StorageError::UnknownReference {
            entity: "comment",
            ..
        })
    ));
    let twice = run(
        t,
        scope,
        13,
        vec![update(big, "a", &c[0..1]), update(small, "b", &c[0..1])],
    );
    assert!(matches!(
        s.save_topic_run(twice).await,
        Err(StorageError::Invalid(_))
    ));
    let mut bad_centroid = update(big, "menu", &[]);
    bad_centroid.centroid = vec![f32::INFINITY];
    assert!(matches!(
        s.save_topic_run(run(t, scope, 13, vec![bad_centroid]))
            .await,
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        s.save_topic_run(run(TenantId::generate(), TopicScope::Daily, 13, vec![]))
            .await,
        Err(StorageError::UnknownReference {
            entity: "tenant",
            ..
        })
    ));
    assert_eq!(s.topics_for_post(t, sc.post).await.unwrap(), before);
    assert_eq!(
        s.top_topics(t, scope, day(13), day(13), 10).await.unwrap(),
        vec![],
        "no size written on day 13"
    );
    assert!(matches!(
        s.messages_in_topic(other.w.tenant.id, big, None, 10).await,
        Err(StorageError::NotFound {
            entity: "topic",
            ..
        })
    ));
}

/// Message retention takes what topics kept of a purged message (its topic
/// membership, and its vector once last computed before the cutoff: both
/// derived from the customer's text), and leaves a kept message's and a
/// comment's.
pub async fn retention_takes_a_purged_messages_topic_rows(store: std::sync::Arc<dyn Store>) {
    let s = &*store;
    let sc = scene(s, "Purged", "purge-1", 3, 1).await;
    let t = sc.w.tenant.id;
    let (old, kept) = (
        TopicSubject::Message(sc.messages[0]),
        TopicSubject::Message(sc.messages[2]),
    );
    let comment = TopicSubject::Comment(sc.comments[0]);
    let subjects = [old, kept, comment];
    // Each vector computed an hour after its item (the comment's on the
    // old message's schedule: comments are not message retention's).
    let vectors: Vec<ItemEmbedding> = [(old, at(10, 1)), (kept, at(10, 3)), (comment, at(10, 1))]
        .iter()
        .map(|(subject, computed_at)| ItemEmbedding {
            tenant_id: t,
            subject: *subject,
            model: "local-tfidf-hash-v1".into(),
            vector: vec![0.6, 0.8],
            computed_at: *computed_at,
        })
        .collect();
    s.upsert_embeddings(&vectors).await.unwrap();
    let topic = TopicId::generate();
    s.save_topic_run(run(
        t,
        TopicScope::Weekly,
        11,
        vec![update(topic, "orders", &subjects)],
    ))
    .await
    .unwrap();

    // Messages 0 and 1 (00:00 and 01:00 on the 10th) are older than the
    // cutoff, message 2 (02:00) is not.
    let cutoff = at(10, 1) + Duration::minutes(30);
    let mut removed = 0;
    loop {
        let n = s
            .purge_before(crate::Retained::Messages, cutoff, 1000)
            .await
            .unwrap();
        removed += n;
        if n < 1000 {
            break;
        }
    }
    // Messages 0 and 1, the outbound and the empty one (00:00), one
    // membership and one vector.
    assert_eq!(removed, 6);
    let left = s
        .get_embeddings(t, "local-tfidf-hash-v1", &subjects)
        .await
        .unwrap();
    let left: Vec<TopicSubject> = left.into_iter().map(|e| e.subject).collect();
    assert_eq!(left, vec![kept, comment]);
    let members: Vec<TopicSubject> = s
        .messages_in_topic(t, topic, None, 10)
        .await
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert!(!members.contains(&old), "{members:?}");
    assert!(
        members.contains(&kept) && members.contains(&comment),
        "{members:?}"
    );
}
