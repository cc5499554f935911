//! What a platform answers never spoils the rest of a claimed batch, on
//! memory and on PostgreSQL: an answer the store cannot hold (an id with a
//! control character, an error message with a NUL) settles its own post
//! only; a wait asked on one call of a channel that takes several calls at
//! once holds back the channel's other lanes too; a refused token stops the
//! channel's remaining posts before any call.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use common::{Env, TestGateway, TestPlatform, batch};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use tokio::sync::watch;

on_both_backends!(
    an_unstorable_answer_settles_only_its_own_post,
    a_wait_on_one_lane_holds_back_the_channels_other_lanes,
    a_refused_token_stops_the_channels_remaining_posts,
    a_post_paused_on_its_last_attempt_goes_out_after_reconnection,
);

/// How the platform answers one account.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// Published, under an id of its own.
    Publish,
    /// "Published", under an id with a control character.
    OddId,
    /// Refused for good, with a NUL in the message.
    NulError,
    /// The first call answers 429 (Retry-After 30 s) at once; the others
    /// wait until `open` is set, then publish.
    ThrottleFirst,
    /// 401, and the token refresh is refused for good.
    Refused,
    /// The platform refuses the channel's tokens for good (re-authorization
    /// needed) until `open` is set (the channel reconnected), then publishes.
    NeedsReauthUntilOpen,
}

struct Scripted {
    answers: HashMap<String, Answer>,
    calls: Mutex<HashMap<String, usize>>,
    open: watch::Receiver<bool>,
}

impl Scripted {
    fn new(answers: HashMap<String, Answer>) -> (Arc<TestGateway<Self>>, watch::Sender<bool>) {
        let (open_tx, open) = watch::channel(false);
        let gateway = Scripted {
            answers,
            calls: Mutex::new(HashMap::new()),
            open,
        };
        (Arc::new(TestGateway(gateway)), open_tx)
    }

    fn calls(&self, account: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(account)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl TestPlatform for Scripted {
    async fn publish(
        &self,
        channel: &Channel,
        _: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        let account = channel.external_account_id.clone();
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(account.clone()).or_default();
            *n += 1;
            *n
        };
        let answer = self
            .answers
            .get(&account)
            .copied()
            .unwrap_or(Answer::Publish);
        match answer {
            Answer::Publish => {}
            Answer::OddId => {
                return Ok(PublishedPost {
                    platform_post_id: format!("fb-\u{7}-{reference}"),
                    url: None,
                });
            }
            Answer::NulError => {
                return Err(PublishFailure::Permanent(
                    "(#100) Invalid parameter \0 near 'message'".into(),
                ));
            }
            Answer::ThrottleFirst if call == 1 => {
                return Err(PublishFailure::RateLimited {
                    message: "(#4) Application request limit reached".into(),
                    retry_after: Some(Duration::seconds(30)),
                });
            }
            Answer::ThrottleFirst => {
                let mut open = self.open.clone();
                open.wait_for(|open| *open).await.unwrap();
            }
            Answer::NeedsReauthUntilOpen if *self.open.borrow() => {}
            Answer::NeedsReauthUntilOpen => {
                return Err(PublishFailure::NeedsReauth(
                    "(#190) The user has not authorized application".into(),
                ));
            }
            Answer::Refused => {
                return Err(PublishFailure::Unauthorized(
                    "(#190) Error validating access token".into(),
                ));
            }
        }
        Ok(PublishedPost {
            platform_post_id: format!("fb-{reference}"),
            url: None,
        })
    }

    /// Lookups are supported; `TestGateway`'s never finds anything (a feed
    /// that has not caught up).
    fn can_lookup(&self, _: &Channel) -> bool {
        true
    }

    async fn refresh_credentials(&self, _: &Channel) -> Result<Credentials, PublishFailure> {
        Err(PublishFailure::NeedsReauth(
            "The user has not authorized application".into(),
        ))
    }
}

/// The environment's channel and `n - 1` more Facebook Pages, each with a
/// token.
async fn channels(env: &Env, n: usize) -> Vec<Channel> {
    let token = Credentials {
        access_token: Some(SecretString::new("EAAG-token")),
        refresh_token: Some(SecretString::new("EAAG-refresh")),
        expires_at: None,
    };
    let first = env
        .store
        .update_channel_credentials(env.tenant, env.channel, token.clone())
        .await
        .unwrap();
    let mut out = vec![first];
    for i in 1..n {
        out.push(
            env.store
                .create_channel(NewChannel {
                    tenant_id: env.tenant,
                    platform: Platform::Facebook,
                    external_account_id: format!("page-{}-{i}", env.tenant),
                    name: format!("Page {i}"),
                    credentials: token.clone(),
                    created_at: env.clock.now(),
                })
                .await
                .unwrap(),
        );
    }
    out
}

/// `n` posts on `channel`, due one second apart.
async fn posts(env: &Env, channel: &Channel, n: usize) -> Vec<ScheduledPost> {
    let mut out = Vec::new();
    for i in 0..n {
        let at = env.clock.now() - Duration::seconds(1_000) + Duration::seconds(i as i64);
        out.push(
            env.store
                .insert_post(NewScheduledPost::one_off(
                    env.tenant,
                    channel.id,
                    Content::text(format!("{} #{i}", channel.external_account_id)),
                    at,
                    env.clock.now(),
                ))
                .await
                .unwrap()
                .record,
        );
    }
    out
}

fn queue(env: &Env, gateway: Arc<TestGateway<Scripted>>, per_channel: usize) -> PublishQueue {
    let config = PublishConfig {
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        concurrency: ConcurrencyConfig {
            per_channel,
            ..ConcurrencyConfig::default()
        },
        ..PublishConfig::for_worker("w1")
    };
    PublishQueue::new(env.store.clone(), gateway, env.clock.clone(), config)
}

/// One batch over three Pages: one publishes, one answers "published" under
/// an id the store refuses, one refuses with a NUL in its message. The
/// batch's settlements go to the store together; each post still gets its
/// own outcome: published; `outcome_unknown` at once (the post is on the
/// platform, but its id cannot be recorded; it is not looked up, since a
/// lookup that misses it, as this one does, would publish it again);
/// failed with the message kept (the NUL replaced).
async fn an_unstorable_answer_settles_only_its_own_post(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 3).await;
    let (good, odd, nul) = (&chans[0], &chans[1], &chans[2]);
    let good_posts = posts(&env, good, 2).await;
    let odd_posts = posts(&env, odd, 2).await;
    let nul_posts = posts(&env, nul, 2).await;
    let (gateway, _open) = Scripted::new(HashMap::from([
        (odd.external_account_id.clone(), Answer::OddId),
        (nul.external_account_id.clone(), Answer::NulError),
    ]));
    let q = queue(&env, gateway.clone(), 1);
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!((report.claimed, report.published), (6, 2));
    assert_eq!(report.failed, 4, "{report:?}");
    for p in &good_posts {
        assert_eq!(env.post(p.id).await.status, PostStatus::Published);
    }
    // Told "published" once per post: never looked up and published again.
    assert_eq!(gateway.calls(&odd.external_account_id), 2);
    for p in &odd_posts {
        let p = env.post(p.id).await;
        assert_eq!(p.status, PostStatus::Failed);
        let error = p.error_message.unwrap();
        assert!(error.starts_with(OUTCOME_UNKNOWN), "{error}");
        assert!(error.contains("cannot be stored"), "{error}");
        assert_eq!(p.platform_post_id, None);
    }
    for p in &nul_posts {
        let p = env.post(p.id).await;
        assert_eq!(p.status, PostStatus::Failed);
        let error = p.error_message.unwrap();
        assert!(error.contains("Invalid parameter \u{FFFD} near"), "{error}");
    }
    for p in odd_posts.iter().chain(&nul_posts).chain(&good_posts) {
        let runs = env.runs(p.id).await;
        assert_eq!(runs.len(), 1);
        assert_ne!(runs[0].status, PostRunStatus::Running, "every run ended");
    }
}

/// A Page that takes 4 calls at once, 8 posts (4 lanes of 2). The first
/// call answers 429 with Retry-After 30 s while the 3 others are in flight;
/// once the throttled lane has handed its second post back, the 3 calls
/// finish. Their lanes' second posts are handed back too, untouched: 4
/// calls in all, not 7.
async fn a_wait_on_one_lane_holds_back_the_channels_other_lanes(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 1).await;
    let page = &chans[0];
    let all = posts(&env, page, 8).await;
    let (gateway, open) = Scripted::new(HashMap::from([(
        page.external_account_id.clone(),
        Answer::ThrottleFirst,
    )]));
    let q = queue(&env, gateway.clone(), 4);
    let run = tokio::spawn(async move { q.run_due(&batch(100), None).await });

    // Wait (for an event, not a time) until a post is handed back: the
    // throttled lane has met the wait and held the channel.
    let store = env.store.clone();
    let tenant = env.tenant;
    let ids: Vec<PostId> = all.iter().map(|p| p.id).collect();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let mut handed_back = false;
            for id in &ids {
                let p = store.get_post(tenant, *id).await.unwrap();
                if p.status == PostStatus::Queued
                    && p.retry_count == 0
                    && p.next_attempt_at.is_some()
                {
                    handed_back = true;
                }
            }
            if handed_back {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(gateway.calls(&page.external_account_id), 4);
    open.send(true).unwrap();
    let report = run.await.unwrap().unwrap();

    assert_eq!(
        gateway.calls(&page.external_account_id),
        4,
        "no call after the 429"
    );
    assert_eq!(
        (
            report.published,
            report.retrying,
            report.handed_back,
            report.skipped
        ),
        (3, 1, 4, 0),
        "{report:?}"
    );
    let now = env.clock.now();
    for p in &all {
        let p = env.post(p.id).await;
        if p.status == PostStatus::Queued && p.retry_count == 0 {
            assert!(p.next_attempt_at.unwrap() >= now + Duration::seconds(30));
            assert!(env.runs(p.id).await.is_empty(), "no attempt was made");
        }
    }
}

/// A Page whose token the platform refuses, and whose refresh it refuses
/// too: the first post's attempt pauses the channel; the channel's other
/// posts in the batch wait, queued, with no call and no attempt counted.
async fn a_refused_token_stops_the_channels_remaining_posts(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let chans = channels(&env, 2).await;
    let (refused, fine) = (&chans[0], &chans[1]);
    let mine = posts(&env, refused, 4).await;
    posts(&env, fine, 2).await;
    let (gateway, _open) = Scripted::new(HashMap::from([(
        refused.external_account_id.clone(),
        Answer::Refused,
    )]));
    let q = queue(&env, gateway.clone(), 1);
    let report = q.run_due(&batch(100), None).await.unwrap();
    assert_eq!(report.published, 2, "{report:?}");
    assert_eq!(
        gateway.calls(&refused.external_account_id),
        1,
        "one call with the refused token"
    );
    let channel = env.store.get_channel(env.tenant, refused.id).await.unwrap();
    assert_eq!(channel.status, ChannelStatus::NeedsReauth);
    let first = env.post(mine[0].id).await;
    assert_eq!((first.status, first.retry_count), (PostStatus::Queued, 1));
    for p in &mine[1..] {
        let p = env.post(p.id).await;
        assert_eq!(
            (p.status, p.retry_count, p.lease_owner.clone()),
            (PostStatus::Queued, 0, None)
        );
        assert!(env.runs(p.id).await.is_empty(), "no attempt was made");
    }
}

/// A post whose first two attempts failed meets a token the platform
/// refuses for good on its third and last: the channel is paused and the post waits, its attempt counted
/// and its message starting with `AWAITING_RECONNECTION`. Once a person
/// reconnects the channel it goes out (before, it failed at its next claim
/// with no call: "no attempt left").
async fn a_post_paused_on_its_last_attempt_goes_out_after_reconnection(store: Arc<dyn Store>) {
    let env = Env::new(store).await;
    let channel = channels(&env, 1).await.remove(0);
    let post = posts(&env, &channel, 1).await.remove(0);
    env.store
        .update_post(
            env.tenant,
            post.id,
            PostPatch {
                retry_count: Some(2),
                error_message: Some(Some("(#2) Service temporarily unavailable".into())),
                ..PostPatch::default()
            },
            env.clock.now(),
        )
        .await
        .unwrap();
    let (gateway, open) = Scripted::new(HashMap::from([(
        channel.external_account_id.clone(),
        Answer::NeedsReauthUntilOpen,
    )]));
    let q = queue(&env, gateway.clone(), 1);
    let report = q.run_due(&batch(10), None).await.unwrap();
    assert_eq!(
        (report.awaiting_reconnection, report.handed_back),
        (1, 0),
        "{report:?}"
    );
    let waiting = env.post(post.id).await;
    assert_eq!(
        (waiting.status, waiting.retry_count),
        (PostStatus::Queued, 3)
    );
    let why = waiting.error_message.unwrap();
    assert!(why.starts_with(AWAITING_RECONNECTION), "{why}");
    let paused = env.store.get_channel(env.tenant, channel.id).await.unwrap();
    assert_eq!(paused.status, ChannelStatus::NeedsReauth);

    ChannelTokens::new(env.store.clone(), env.clock.clone())
        .reconnect(
            env.tenant,
            channel.id,
            Credentials {
                access_token: Some(SecretString::new("EAAG-new")),
                refresh_token: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    open.send(true).unwrap();
    env.advance(Duration::minutes(1));
    let report = q.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1, "{report:?}");
    let out = env.post(post.id).await;
    assert_eq!(out.status, PostStatus::Published);
    assert_eq!(gateway.calls(&channel.external_account_id), 2);
}
