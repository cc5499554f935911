//! Conformance tests of comments and polling checkpoints.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexiom_core::*;

use super::fixtures::{assert_not_found, assert_unknown, mins, published_post, t0, world};
use crate::Store;

pub async fn comments_and_checkpoints(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let t = w.tenant.id;
    let p = published_post(s, &w, "launch").await;
    let new = |id: &str, parent: Option<&str>, at: DateTime<Utc>| NewComment {
        tenant_id: t,
        post_id: p.id,
        platform_comment_id: id.into(),
        parent_platform_comment_id: parent.map(str::to_owned),
        author_id: Some("1789".into()),
        author_name: Some("zoe".into()),
        text: format!("comment {id}"),
        created_at: at,
        stored_at: at,
        hidden: false,
    };
    let c1 = s
        .insert_comment(new("17873440459141021", None, t0() + mins(2)))
        .await
        .unwrap();
    assert!(c1.created);
    assert_eq!(c1.record.channel_id, w.channel.id);
    assert!(!c1.record.hidden);
    let reply = s
        .insert_comment(new(
            "17873440459141022",
            Some("17873440459141021"),
            t0() + mins(1),
        ))
        .await
        .unwrap();
    assert_eq!(
        reply.record.parent_platform_comment_id.as_deref(),
        Some("17873440459141021")
    );
    let dup = s
        .insert_comment(new("17873440459141021", None, t0() + mins(9)))
        .await
        .unwrap();
    assert!(!dup.created);
    assert_eq!(dup.record, c1.record);
    assert_eq!(s.get_comment(t, c1.record.id).await.unwrap(), c1.record);
    assert_eq!(
        s.find_comment(t, p.id, "17873440459141021").await.unwrap(),
        Some(c1.record.clone())
    );
    assert_eq!(s.find_comment(t, p.id, "nope").await.unwrap(), None);
    assert_eq!(
        s.list_comments(t, p.id, 10).await.unwrap(),
        vec![reply.record.clone(), c1.record.clone()]
    );
    assert_eq!(s.list_comments(t, p.id, 1).await.unwrap().len(), 1);
    assert_eq!(
        s.list_comments_since(t, t0() + mins(2), 10).await.unwrap(),
        vec![c1.record.clone()]
    );

    let triaged = s
        .set_comment_triage(t, c1.record.id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    assert_eq!(triaged.triage, Some(Triage::AutoReply));
    assert_eq!(triaged.confidence, Some(0.9));
    let hidden = s.set_comment_hidden(t, c1.record.id, true).await.unwrap();
    assert!(hidden.hidden);
    assert_eq!(s.get_comment(t, c1.record.id).await.unwrap(), hidden);

    assert_eq!(s.get_checkpoint(t, p.id).await.unwrap(), None);
    let cp = CommentCheckpoint {
        tenant_id: t,
        post_id: p.id,
        last_cursor: Some("QVFIUmx1WTBpMGpJWXprYzVYaVhabEp".into()),
        last_seen_at: Some(t0() + mins(2)),
        updated_at: t0() + mins(5),
        rereading: true,
    };
    assert_eq!(s.save_checkpoint(cp.clone()).await.unwrap(), cp);
    let cp2 = CommentCheckpoint {
        last_cursor: None,
        updated_at: t0() + mins(10),
        rereading: false,
        ..cp.clone()
    };
    assert_eq!(s.save_checkpoint(cp2.clone()).await.unwrap(), cp2);
    assert_eq!(s.get_checkpoint(t, p.id).await.unwrap(), Some(cp2));
    // A platform's cursor may be longer than a key (opaque, 300 bytes here).
    let long = CommentCheckpoint {
        last_cursor: Some(format!("QVFI{}", "x".repeat(296))),
        updated_at: t0() + mins(11),
        ..cp.clone()
    };
    assert_eq!(s.save_checkpoint(long.clone()).await.unwrap(), long);
    assert_eq!(s.get_checkpoint(t, p.id).await.unwrap(), Some(long));

    let other = world(s, "Globex", Platform::Instagram, "ig-2").await;
    assert_unknown(
        s.insert_comment(NewComment {
            tenant_id: other.tenant.id,
            ..new("x", None, t0())
        })
        .await,
        "post",
    );
    assert_not_found(s.get_comment(other.tenant.id, c1.record.id).await);
    assert_eq!(
        s.find_comment(other.tenant.id, p.id, "17873440459141021")
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_checkpoint(other.tenant.id, p.id).await.unwrap(), None);
    assert_unknown(
        s.save_checkpoint(CommentCheckpoint {
            tenant_id: other.tenant.id,
            ..cp
        })
        .await,
        "post",
    );
    assert_not_found(
        s.set_comment_hidden(other.tenant.id, c1.record.id, false)
            .await,
    );
}
