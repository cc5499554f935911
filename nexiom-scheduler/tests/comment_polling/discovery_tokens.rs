//! Post discovery meeting a refused token (a Page token invalidated by a
//! password change, say): the token is renewed once and the listing made
//! again; a refused renewal pauses the channel. Before, the listing failed at
//! every run, the token was never renewed, and the channel looked healthy.
//! And a listed post whose caption the store cannot take as it is.

use std::sync::Arc;

use nexiom_connectors::{ConnectorError, MockOp};
use nexiom_core::*;
use nexiom_storage::Store;

use super::fixture::{mock, poller};
use crate::common::Env;

async fn discovering(env: &Env, mock: &nexiom_connectors::MockConnector) -> String {
    let account = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap()
        .external_account_id;
    mock.seed_post(&account, "org-1", "Made elsewhere", env.clock.now());
    env.store
        .set_post_discovery(env.tenant, env.channel, 5, env.clock.now())
        .await
        .unwrap();
    account
}

pub async fn a_refused_token_is_renewed_before_discovery_lists_again(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    discovering(&env, &mock).await;
    mock.unauthorized_next(MockOp::ListRecentPosts);
    let report = poller(&env, &mock).poll_due(50, None).await.unwrap();
    assert_eq!(report.discovery_failures, Vec::new());
    assert_eq!(report.external_posts_found, 1);
    assert_eq!(mock.calls_of(MockOp::RefreshToken).len(), 1);
    assert_eq!(mock.calls_of(MockOp::ListRecentPosts).len(), 2);
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    assert_eq!(
        channel
            .credentials
            .access_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        Some("mock-token-1".to_owned()),
        "the renewed token is stored"
    );
}

pub async fn a_refused_renewal_pauses_the_channel_and_defers_discovery(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    discovering(&env, &mock).await;
    mock.unauthorized_next(MockOp::ListRecentPosts);
    mock.fail_next(
        MockOp::RefreshToken,
        1,
        ConnectorError::NeedsReauth {
            platform: "facebook".into(),
            reason: "the user changed their password".into(),
        },
    );
    let poller = poller(&env, &mock);
    poller.poll_due(50, None).await.unwrap();
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    assert_eq!(channel.status, ChannelStatus::NeedsReauth);
    let discovery = env
        .store
        .get_post_discovery(env.tenant, env.channel)
        .await
        .unwrap()
        .unwrap();
    assert!(discovery.next_run_at > env.clock.now(), "deferred");
    // Paused: the next runs make no call until it is reconnected.
    env.advance(chrono::Duration::hours(1));
    poller.poll_due(50, None).await.unwrap();
    assert_eq!(mock.calls_of(MockOp::ListRecentPosts).len(), 1);
}

/// A caption holding a NUL (PostgreSQL refuses it in text) and one longer
/// than a text column: the posts are recorded with their text cleaned, so
/// their comments are polled. Before, they were left out without a word.
pub async fn a_caption_the_store_cannot_take_does_not_hide_its_post(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let account = discovering(&env, &mock).await;
    let now = env.clock.now();
    mock.seed_post(&account, "org-nul", "Soldes\0 d'hiver", now);
    mock.seed_post(&account, "org-long", &"x".repeat(300_000), now);
    let report = poller(&env, &mock).poll_due(50, None).await.unwrap();
    assert_eq!(report.discovery_failures, Vec::new());
    assert_eq!(report.external_posts_found, 3);
}

/// Two posts of one channel in one pass, the first's comments answered 401
/// and the renewal refused: the channel is paused, and the second post makes
/// no call with the refused token. Before, it made one more call (a second
/// 401) from the pass's copy of the channel, which still said `active`.
pub async fn a_channel_paused_during_a_pass_gets_no_more_calls_in_it(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let mock = mock(&env);
    let poller = super::fixture::sequential_poller(&env, &mock);
    let now = env.clock.now();
    super::fixture::published(
        &env,
        env.channel,
        "fb-post-1",
        now - chrono::Duration::minutes(1),
    )
    .await;
    super::fixture::published(&env, env.channel, "fb-post-2", now).await;
    mock.unauthorized_next(MockOp::ListComments);
    mock.fail_next(
        MockOp::RefreshToken,
        1,
        ConnectorError::NeedsReauth {
            platform: "facebook".into(),
            reason: "the user changed their password".into(),
        },
    );
    poller.poll_due(50, None).await.unwrap();
    let channel = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap();
    assert_eq!(channel.status, ChannelStatus::NeedsReauth);
    assert_eq!(mock.calls_of(MockOp::ListComments).len(), 1);
}
