//! The fake platform and the pollers over it, the published posts they poll
//! and the comments seeded on them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{ConnectorRegistry, MockConnector, RemoteComment};
use nexiom_core::*;
use nexiom_scheduler::*;

use crate::common::Env;

pub fn mock(env: &Env) -> MockConnector {
    MockConnector::new(Platform::Facebook).with_clock(env.clock.clone())
}

pub fn poller(env: &Env, mock: &MockConnector) -> CommentPoller {
    CommentPoller::new(
        env.store.clone(),
        env.clock.clone(),
        ConnectorRegistry::new().with(Arc::new(mock.clone())),
    )
}

/// A poller that polls one post at a time: the mock's scripted failure
/// answers its next call whatever the post, so one call at a time keeps
/// which post gets it fixed.
pub fn sequential_poller(env: &Env, mock: &MockConnector) -> CommentPoller {
    poller(env, mock).with_config(PollingConfig {
        concurrency: ConcurrencyConfig::sequential(),
        ..PollingConfig::default()
    })
}

/// A published post on `channel`, polled from `next_check` until 7 days after `now`.
pub async fn published(
    env: &Env,
    channel: ChannelId,
    platform_id: &str,
    next_check: DateTime<Utc>,
) -> ScheduledPost {
    let now = env.clock.now();
    let post = env
        .store
        .insert_post(NewScheduledPost::one_off(
            env.tenant,
            channel,
            Content::text("Launch"),
            now,
            now,
        ))
        .await
        .unwrap()
        .record;
    env.store
        .update_post(
            env.tenant,
            post.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some(platform_id.into())),
                published_at: Some(Some(now)),
                next_check_at: Some(Some(next_check)),
                stop_at: Some(Some(now + Duration::days(7))),
                ..PostPatch::default()
            },
            now,
        )
        .await
        .unwrap()
}

/// Six comments (three pages of two), the fourth a reply to the third.
pub fn six_comments(mock: &MockConnector, prefix: &str) -> Vec<RemoteComment> {
    (0..6)
        .map(|i| RemoteComment {
            parent_id: (i == 3).then(|| format!("{prefix}-2")),
            ..mock.comment(&format!("{prefix}-{i}"), "fan", &format!("Comment {i}"))
        })
        .collect()
}

pub async fn comments(env: &Env, post: PostId) -> Vec<Comment> {
    env.store
        .list_comments(env.tenant, post, 1000)
        .await
        .unwrap()
}

pub fn ids(comments: &[Comment]) -> Vec<String> {
    let mut ids: Vec<_> = comments
        .iter()
        .map(|c| c.platform_comment_id.clone())
        .collect();
    ids.sort();
    ids
}
