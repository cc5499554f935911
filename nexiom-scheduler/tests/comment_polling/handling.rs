//! What is done with polled comments: one seen by webhook and by polling is
//! stored, triaged and answered once; hiding one goes through the platform.

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::{MockOp, RemoteComment};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::json;

use super::fixture::{comments, ids, mock, poller, published, six_comments};
use crate::common::{AutoReplying, Env};

pub async fn a_comment_seen_by_webhook_and_polling_is_handled_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let now = env.clock.now();
    let AutoReplying { inbound, poller } = env.auto_replying(&mock, "Merci {name} : 9h-18h.").await;
    let post = published(&env, env.channel, "fb-post-1", now).await;

    // The webhook brings comment 1 first; routing stores it.
    env.store
        .insert_event(NewWebhookEvent {
            tenant_id: env.tenant,
            channel_id: env.channel,
            platform: Platform::Facebook,
            event_id: "cm-1".into(),
            kind: EventKind::Comment,
            sender_id: Some("fan".into()),
            sender_name: Some("fan".into()),
            text: Some("Vos horaires ?".into()),
            has_media: false,
            delivery_status: None,
            target_id: Some("fb-post-1".into()),
            parent_id: None,
            occurred_at: now,
            payload: json!({}),
            received_at: now,
        })
        .await
        .unwrap();
    inbound.route_unrouted_events(None, 100).await.unwrap();
    assert_eq!(comments(&env, post.id).await.len(), 1);

    // Polling sees comment 1 again and a new comment 2.
    mock.seed_comments(
        "fb-post-1",
        [
            mock.comment("cm-1", "fan", "Vos horaires ?"),
            mock.comment("cm-2", "other", "Et vos horaires le dimanche ?"),
        ],
    );
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.comments_stored, 1, "cm-1 is on the webhook's key");
    assert_eq!(report.triaged, 2, "each comment triaged");
    assert_eq!(report.auto_replied, 2);
    // Later passes and the pipeline's own steps change nothing.
    env.advance(Duration::minutes(5));
    poller.poll_due(50, None).await.unwrap();
    inbound.triage_new_items(100).await.unwrap();
    inbound
        .auto_reply_recent_inbound(now - Duration::hours(1), 100)
        .await
        .unwrap();

    let stored = comments(&env, post.id).await;
    assert_eq!(ids(&stored), vec!["cm-1", "cm-2"]);
    let decisions = env
        .store
        .list_decisions(env.tenant, None, 100)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2, "one decision per comment");
    assert!(decisions.iter().all(|d| d.triage == Triage::AutoReply));
    let replies: Vec<_> = mock
        .calls_of(MockOp::ReplyComment)
        .into_iter()
        .filter_map(|c| c.target)
        .collect();
    assert_eq!(replies.len(), 2, "one reply per comment");
    assert!(replies.contains(&"cm-1".to_string()) && replies.contains(&"cm-2".to_string()));
}

pub async fn hiding_a_comment_goes_through_the_platform_and_is_recorded(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    poller.poll_due(50, None).await.unwrap();
    let target = comments(&env, post.id).await.remove(0);

    let hidden = poller
        .hide_comment(env.tenant, target.id, true)
        .await
        .unwrap();
    assert!(hidden.hidden);
    let calls = mock.calls_of(MockOp::HideComment);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].target.as_deref(),
        Some(target.platform_comment_id.as_str())
    );

    // A refusal records nothing.
    mock.fail_permanently_next(MockOp::HideComment, "no permission");
    let err = poller
        .hide_comment(env.tenant, target.id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, PollingError::Connector(_)), "{err}");
    assert!(
        env.store
            .get_comment(env.tenant, target.id)
            .await
            .unwrap()
            .hidden
    );
}

/// A comment a moderator hid on the platform before it was polled is
/// stored hidden and gets no decision and no reply; one hidden through the
/// library after it was triaged gets no reply either; the visible one is
/// answered. Before, the platform's flag was dropped: the hidden
/// comment was triaged and answered (Instagram refuses replies to hidden
/// comments; on Facebook the brand answered what a moderator had hidden).
pub async fn a_comment_hidden_on_the_platform_gets_no_reply(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let now = env.clock.now();
    let AutoReplying { inbound, poller } = env.auto_replying(&mock, "Merci {name} : 9h-18h.").await;
    let post = published(&env, env.channel, "fb-post-1", now).await;
    mock.seed_comments(
        "fb-post-1",
        [
            RemoteComment {
                hidden: true,
                ..mock.comment("cm-spam", "spammer", "Vos horaires ? http://spam")
            },
            mock.comment("cm-ok", "fan", "Vos horaires ?"),
            mock.comment("cm-later", "troll", "Vos horaires ?"),
        ],
    );
    // The poll triages and answers at once: both visible comments' first
    // reply attempts fail before anything is sent (to be tried again).
    mock.fail_transient(MockOp::ReplyComment, 2);
    let report = poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.comments_stored, 3);
    let tried = |target: &str| {
        mock.calls_of(MockOp::ReplyComment)
            .into_iter()
            .filter(|c| c.target.as_deref() == Some(target))
            .count()
    };
    assert_eq!((tried("cm-ok"), tried("cm-later")), (1, 1));
    // Hidden through the library after triage, before its reply is sent.
    let later = comments(&env, post.id)
        .await
        .into_iter()
        .find(|c| c.platform_comment_id == "cm-later")
        .unwrap();
    assert_eq!(later.triage, Some(Triage::AutoReply));
    poller
        .hide_comment(env.tenant, later.id, true)
        .await
        .unwrap();
    env.advance(Duration::hours(1));
    inbound
        .auto_reply_recent_inbound(now - Duration::hours(2), 100)
        .await
        .unwrap();
    assert_eq!(
        (tried("cm-ok"), tried("cm-later"), tried("cm-spam")),
        (2, 1, 0),
        "the hidden comments get no (further) reply"
    );

    let stored = comments(&env, post.id).await;
    let spam = stored
        .iter()
        .find(|c| c.platform_comment_id == "cm-spam")
        .unwrap();
    assert!(spam.hidden && spam.triage.is_none(), "{spam:?}");
}

/// Hiding a comment meets a refused token (a Page token invalidated by a
/// password change, say): the token is renewed once and the comment hidden
/// with the new one; a refused renewal pauses the channel and records
/// nothing. Before, the call failed with the old token at every try and the
/// token was never renewed.
pub async fn hiding_a_comment_renews_a_refused_token_once(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = poller(&env, &mock);
    let post = published(&env, env.channel, "fb-post-1", env.clock.now()).await;
    mock.seed_comments("fb-post-1", six_comments(&mock, "c"));
    poller.poll_due(50, None).await.unwrap();
    let stored = comments(&env, post.id).await;

    mock.unauthorized_next(MockOp::HideComment);
    let hidden = poller
        .hide_comment(env.tenant, stored[0].id, true)
        .await
        .unwrap();
    assert!(hidden.hidden);
    assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
    assert_eq!(mock.calls_of(MockOp::HideComment).len(), 2);

    // Refused again, and the renewal refused: the channel is paused.
    mock.unauthorized_next(MockOp::HideComment);
    mock.fail_next(
        MockOp::RefreshToken,
        1,
        nexiom_connectors::ConnectorError::NeedsReauth {
            platform: "facebook".into(),
            reason: "the user changed their password".into(),
        },
    );
    let err = poller
        .hide_comment(env.tenant, stored[1].id, true)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("reconnect") || err.to_string().contains("re-auth"),
        "{err}"
    );
    assert_eq!(mock.calls_of(MockOp::HideComment).len(), 3);
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    assert_eq!(channel.status, ChannelStatus::NeedsReauth);
    assert!(
        !env.store
            .get_comment(env.tenant, stored[1].id)
            .await
            .unwrap()
            .hidden
    );
}
