//! Conformance tests of comment polling in batches: claims of due posts with
//! their checkpoints, and write-backs guarded by the claim.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::*;

use super::fixtures::{World, t0, world};
use crate::{PollResult, PollWritten, StorageError, Store};

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

/// A published post, due for polling at `due`.
async fn due_post(s: &dyn Store, w: &World, text: &str, due: DateTime<Utc>) -> ScheduledPost {
    let p = s
        .insert_post(NewScheduledPost::one_off(
            w.tenant.id,
            w.channel.id,
            Content::text(text),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    s.update_post(
        w.tenant.id,
        p.id,
        PostPatch {
            status: Some(PostStatus::Published),
            platform_post_id: Some(Some(format!("pp-{text}"))),
            published_at: Some(Some(t0())),
            next_check_at: Some(Some(due)),
            stop_at: Some(Some(t0() + Duration::days(7))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap()
}

fn comment(post: &ScheduledPost, key: &str, at: DateTime<Utc>) -> NewComment {
    NewComment {
        tenant_id: post.tenant_id,
        post_id: post.id,
        platform_comment_id: key.to_owned(),
        parent_platform_comment_id: None,
        author_id: Some("fan".into()),
        author_name: Some("Fan".into()),
        text: format!("comment {key}"),
        created_at: at,
        stored_at: at,
        hidden: false,
    }
}

fn checkpoint(post: &ScheduledPost, cursor: &str, at: DateTime<Utc>) -> CommentCheckpoint {
    CommentCheckpoint {
        tenant_id: post.tenant_id,
        post_id: post.id,
        last_cursor: Some(cursor.to_owned()),
        last_seen_at: Some(at),
        updated_at: at,
        rereading: false,
    }
}

fn result(post: &ScheduledPost, lease_until: DateTime<Utc>) -> PollResult {
    PollResult {
        tenant_id: post.tenant_id,
        post_id: post.id,
        lease_until,
        comments: Vec::new(),
        checkpoint: None,
        last_check_at: None,
        next_check_at: None,
        poll_failures: 0,
    }
}

/// A claim takes the due posts oldest first with their checkpoints, moves
/// them to `now + lease` (a second claim skips them), and they come back
/// when the lease ends. A lease that is not positive is refused.
pub async fn polling_claims_take_due_posts_once_with_their_checkpoints(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let now = t0() + mins(10);
    let a = due_post(s, &w, "a", now - mins(2)).await;
    let b = due_post(s, &w, "b", now - mins(1)).await;
    let later = due_post(s, &w, "later", now + mins(1)).await;
    let saved = s
        .save_checkpoint(checkpoint(&b, "cursor-b", t0()))
        .await
        .unwrap();

    let claimed = s.claim_polls(now, 10, mins(5)).await.unwrap();
    let ids: Vec<PostId> = claimed.iter().map(|c| c.post.id).collect();
    assert_eq!(ids, vec![a.id, b.id]);
    assert_eq!(claimed[0].checkpoint, None);
    assert_eq!(claimed[1].checkpoint, Some(saved));
    assert_eq!(claimed[0].due_at, now - mins(2));
    for c in &claimed {
        assert_eq!(c.lease_until, now + mins(5));
        assert_eq!(c.post.next_check_at, Some(now + mins(5)));
        let stored = s.get_post(w.tenant.id, c.post.id).await.unwrap();
        assert_eq!(stored.next_check_at, Some(now + mins(5)));
        assert_eq!(stored.updated_at, t0(), "a claim keeps updated_at");
    }
    assert!(s.claim_polls(now, 10, mins(5)).await.unwrap().is_empty());
    assert!(
        s.list_posts_due_for_polling(now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The limit: the oldest due first.
    let next = s.claim_polls(now + mins(5), 1, mins(5)).await.unwrap();
    let ids: Vec<PostId> = next.iter().map(|c| c.post.id).collect();
    assert_eq!(ids, vec![later.id]);
    // The lease ended: claimable again.
    let again = s.claim_polls(now + mins(5), 10, mins(5)).await.unwrap();
    let ids: Vec<PostId> = again.iter().map(|c| c.post.id).collect();
    assert_eq!(ids, vec![a.id, b.id]);
    assert_eq!(again[0].due_at, now + mins(5));
    assert_eq!(again[0].lease_until, now + mins(10));

    let err = s.claim_polls(now, 10, Duration::zero()).await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert!(s.claim_polls(now, 0, mins(5)).await.unwrap().is_empty());
}

/// A write-back stores the comments once (the first of a repeated key), the
/// checkpoint and the next check, only while the claim holds; a result whose
/// claim moved on (another claim after the lease lapsed, a changed schedule,
/// another tenant) writes nothing and says so. An invalid batch writes
/// nothing.
pub async fn poll_results_are_written_only_under_their_claim(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let x = world(s, "Other", Platform::Facebook, "page-x").await;
    let now = t0() + mins(10);
    let a = due_post(s, &w, "a", now).await;
    let b = due_post(s, &w, "b", now).await;
    let c = due_post(s, &w, "c", now).await;
    let first = s.claim_polls(now, 10, mins(5)).await.unwrap();
    assert_eq!(first.len(), 3);
    let lease1 = first[0].lease_until;
    // The lease lapses; another poller claims the posts again.
    let later = now + mins(6);
    let second = s.claim_polls(later, 10, mins(5)).await.unwrap();
    assert_eq!(second.len(), 3);
    let lease2 = second[0].lease_until;
    s.insert_comment(comment(&a, "old", t0())).await.unwrap();

    // The first poller's results: its claim moved on, nothing written.
    let stale = PollResult {
        comments: vec![comment(&a, "stale", now)],
        checkpoint: Some(checkpoint(&a, "stale", now)),
        last_check_at: Some(now),
        next_check_at: Some(now + mins(5)),
        ..result(&a, lease1)
    };
    let answer = s.finish_polls(&[stale], now).await.unwrap();
    assert_eq!(
        answer,
        vec![PollWritten {
            written: false,
            created: vec![false]
        }]
    );
    assert_eq!(
        s.list_comments(w.tenant.id, a.id, 10).await.unwrap().len(),
        1
    );
    assert_eq!(s.get_checkpoint(w.tenant.id, a.id).await.unwrap(), None);

    // b's schedule changed meanwhile: its claim no longer holds either.
    s.update_post(
        w.tenant.id,
        b.id,
        PostPatch {
            next_check_at: Some(Some(later + mins(2))),
            ..PostPatch::default()
        },
        later,
    )
    .await
    .unwrap();

    let at = later + mins(1);
    let fresh = PollResult {
        comments: vec![
            comment(&a, "c1", now),
            comment(&a, "old", now),
            comment(&a, "c2", now + mins(1)),
            comment(&a, "c1", now),
        ],
        // Part way through a re-read: the mark is written with the cursor.
        checkpoint: Some(CommentCheckpoint {
            rereading: true,
            ..checkpoint(&a, "cur-2", now + mins(1))
        }),
        last_check_at: Some(later),
        next_check_at: Some(later + mins(4)),
        poll_failures: 3,
        ..result(&a, lease2)
    };
    let moved_b = PollResult {
        comments: vec![comment(&b, "b1", now)],
        next_check_at: Some(later + mins(5)),
        ..result(&b, lease2)
    };
    // c under another tenant's name: not written.
    let foreign = PollResult {
        tenant_id: x.tenant.id,
        next_check_at: None,
        ..result(&c, lease2)
    };
    let answer = s
        .finish_polls(&[fresh.clone(), moved_b, foreign], at)
        .await
        .unwrap();
    assert_eq!(
        answer,
        vec![
            PollWritten {
                written: true,
                created: vec![true, false, true, false]
            },
            PollWritten {
                written: false,
                created: vec![false]
            },
            PollWritten {
                written: false,
                created: vec![]
            },
        ]
    );
    let keys: Vec<String> = s
        .list_comments(w.tenant.id, a.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.platform_comment_id)
        .collect();
    assert_eq!(keys, vec!["old", "c1", "c2"]);
    let stored = s
        .find_comment(w.tenant.id, a.id, "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.channel_id, w.channel.id);
    assert_eq!(stored.text, "comment c1");
    assert_eq!(
        s.get_checkpoint(w.tenant.id, a.id).await.unwrap(),
        fresh.checkpoint
    );
    let post_a = s.get_post(w.tenant.id, a.id).await.unwrap();
    assert_eq!(post_a.last_check_at, Some(later));
    assert_eq!(post_a.next_check_at, Some(later + mins(4)));
    assert_eq!(post_a.poll_failures, 3);
    assert_eq!(post_a.updated_at, at);
    assert!(
        s.list_comments(w.tenant.id, b.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let post_c = s.get_post(w.tenant.id, c.id).await.unwrap();
    assert_eq!(post_c.next_check_at, Some(lease2));

    // Written once: the same claim does not hold any more.
    let answer = s.finish_polls(&[fresh], at).await.unwrap();
    assert!(!answer[0].written);

    // A result that keeps last_check_at, and ends polling.
    let end = PollResult {
        next_check_at: None,
        ..result(&c, lease2)
    };
    assert!(s.finish_polls(&[end], at).await.unwrap()[0].written);
    let post_c = s.get_post(w.tenant.id, c.id).await.unwrap();
    assert_eq!((post_c.next_check_at, post_c.last_check_at), (None, None));

    // Invalid batches write nothing.
    let d = due_post(s, &w, "d", at).await;
    let claim = s.claim_polls(at, 10, mins(5)).await.unwrap();
    assert_eq!(claim.len(), 1);
    let lease = claim[0].lease_until;
    let mixed = PollResult {
        comments: vec![comment(&a, "elsewhere", at)],
        next_check_at: Some(at + mins(5)),
        ..result(&d, lease)
    };
    let err = s.finish_polls(&[mixed], at).await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    let twice = PollResult {
        next_check_at: Some(at + mins(5)),
        ..result(&d, lease)
    };
    let err = s
        .finish_polls(&[twice.clone(), twice.clone()], at)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Invalid(_)), "{err:?}");
    assert_eq!(
        s.get_post(w.tenant.id, d.id).await.unwrap().next_check_at,
        Some(lease)
    );
    assert!(s.finish_polls(&[twice], at).await.unwrap()[0].written);
    assert!(s.finish_polls(&[], at).await.unwrap().is_empty());
}

/// A comment hidden on the platform when it was read is stored hidden,
/// whether written one at a time or with a poll result, and is left out of
/// the triage queue (no decision, so no reply) and waits for no one in the
/// inbox; a visible one is queued and waits. Hiding a comment afterwards
/// stops its wait.
pub async fn hidden_comments_are_neither_triaged_nor_waiting(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let now = t0() + mins(10);
    let a = due_post(s, &w, "a", now).await;
    let hidden = |key: &str| NewComment {
        hidden: true,
        ..comment(&a, key, now)
    };
    let alone = s.insert_comment(hidden("alone")).await.unwrap();
    assert!(alone.created && alone.record.hidden);
    let lease = s.claim_polls(now, 10, mins(5)).await.unwrap()[0].lease_until;
    let polled = PollResult {
        comments: vec![hidden("polled"), comment(&a, "visible", now)],
        next_check_at: Some(now + mins(5)),
        ..result(&a, lease)
    };
    assert!(s.finish_polls(&[polled], now).await.unwrap()[0].written);
    for (key, is_hidden) in [("alone", true), ("polled", true), ("visible", false)] {
        let stored = s
            .find_comment(w.tenant.id, a.id, key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.hidden, is_hidden, "{key}");
        // A hidden comment waits for no one in the inbox (no reply goes to it).
        let item = s
            .get_inbox_item(w.tenant.id, InboxSubject::Comment(stored.id))
            .await
            .unwrap();
        assert_eq!(item.waiting_since.is_none(), is_hidden, "{key}");
    }
    let queued: Vec<String> = s
        .list_untriaged_comments(w.tenant.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.platform_comment_id)
        .collect();
    assert_eq!(queued, vec!["visible"]);

    // Hidden afterwards (`hide_comment`): it stops waiting; shown again, it waits.
    let visible = s
        .find_comment(w.tenant.id, a.id, "visible")
        .await
        .unwrap()
        .unwrap();
    let subject = InboxSubject::Comment(visible.id);
    for hide in [true, false] {
        s.set_comment_hidden(w.tenant.id, visible.id, hide)
            .await
            .unwrap();
        let item = s.get_inbox_item(w.tenant.id, subject).await.unwrap();
        assert_eq!(item.waiting_since.is_none(), hide);
    }
}
