//! The token lifecycle end to end, with the real LinkedIn connector against a
//! local fake platform (wiremock), on memory and on Postgres:
//!
//! - a refused refresh (LinkedIn's documented `400` on the refresh-token
//!   grant) sets the channel `needs_reauth` with the reason and time, tells
//!   the application, leaves the due post `queued` (not failed), stops the
//!   channel's polls, and no platform call is made for the channel until a
//!   person reconnects it; then the post goes out and the polls resume;
//! - two keepers (two worker processes: no shared memory, one store)
//!   refreshing the same channel at once make one refresh call, and both use
//!   the new token;
//! - the refresh worker renews a token ahead of its expiry, once, even when
//!   two workers run at the same time;
//! - a token the platform will not renew ahead of time stays in use until it
//!   expires: the tenant is notified a day ahead, the worker leaves the
//!   channel alone, calls use the token, and the channel is paused only once
//!   the token has expired;
//! - a WhatsApp token (no refresh flow) the platform refuses pauses the
//!   channel instead of failing every call again;
//! - a token endpoint that fails leaves calls the token while it works,
//!   asking again at most once a minute;
//! - a grant whose write fails is used, then stored at the next call
//!   (`unstored`), never over a reconnection.
#![allow(clippy::unwrap_used)]

mod common;
mod token_lifecycle {
    pub mod fixture;
    mod notice;
    mod unstored;
}

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use common::{batch, t0};
use nexiom_connectors::{ConnectorRegistry, WhatsAppConnector};
use nexiom_core::*;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use token_lifecycle::fixture::*;

on_both_backends!(
    refused_refresh_pauses_the_channel_until_it_is_reconnected,
    a_token_that_cannot_be_renewed_is_used_until_it_expires,
    a_token_without_a_refresh_flow_refused_by_the_platform_pauses_the_channel,
    a_reconnected_token_that_never_expires_replaces_the_cached_one,
    a_shorter_lived_token_from_another_process_replaces_the_cached_one,
    two_keepers_refreshing_one_channel_make_one_refresh_call,
    refresh_worker_renews_ahead_of_expiry_once,
    a_refusal_never_undoes_a_newer_token_and_a_stale_paused_copy_is_reread,
    a_token_endpoint_that_fails_leaves_calls_the_token_that_still_works,
);

async fn refused_refresh_pauses_the_channel_until_it_is_reconnected(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.refuse_refresh().await;
    fake.accept_calls_with("new-token").await;
    // The token has expired: it must be refreshed first.
    let channel = linkedin_channel(store.as_ref(), t0() - Duration::minutes(1)).await;
    let tenant = channel.tenant_id;
    let due = store
        .insert_post(NewScheduledPost::one_off(
            tenant,
            channel.id,
            Content::text("Spring menu is out"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    // A post published earlier, due for its comment check.
    let earlier = store
        .insert_post(NewScheduledPost::one_off(
            tenant,
            channel.id,
            Content::text("Winter menu"),
            t0() - Duration::days(1),
            t0() - Duration::days(1),
        ))
        .await
        .unwrap()
        .record;
    store
        .update_post(
            tenant,
            earlier.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("urn:li:share:6001".into())),
                published_at: Some(Some(t0() - Duration::days(1))),
                next_check_at: Some(Some(t0())),
                stop_at: Some(Some(t0() + Duration::days(6))),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();

    let told = Arc::new(Told::default());
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone()).with_listener(told.clone());
    let connector = fake.connector();
    let queue = queue(&store, &clock, Arc::clone(&connector), &tokens);
    let registry = ConnectorRegistry::new().with(Arc::clone(&connector));
    let poller =
        CommentPoller::new(Arc::clone(&store), clock.clone(), registry).with_tokens(tokens.clone());

    // The refresh is refused: the channel is paused, the post waits.
    queue.run_due(&batch(10), None).await.unwrap();
    let paused = store.get_channel(tenant, channel.id).await.unwrap();
    assert_eq!(paused.status, ChannelStatus::NeedsReauth);
    let reason = paused.status_reason.clone().unwrap();
    assert!(reason.contains("invalid"), "{reason}");
    assert_eq!(paused.status_changed_at, Some(t0()));
    assert_eq!(*told.0.lock().unwrap(), vec![channel.id]);
    let waiting = store.get_post(tenant, due.id).await.unwrap();
    assert_eq!(waiting.status, PostStatus::Queued);
    assert_eq!(waiting.retry_count, 0, "no attempt is counted");
    assert_eq!(fake.count("POST", OAUTH).await, 1);
    assert_eq!(fake.calls().await.len(), 1, "only the refused refresh");

    // Later passes of every path make zero platform calls for the channel.
    clock.advance(Duration::minutes(30));
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.claimed, 0);
    let polled = poller.poll_due(10, None).await.unwrap();
    assert_eq!(polled.posts_polled, 0);
    assert_eq!(
        polled.posts_paused + polled.posts_polled,
        0,
        "not even claimed"
    );
    let err = tokens
        .context(connector.as_ref(), &paused)
        .await
        .unwrap_err();
    assert!(err.is_paused(), "{err}");
    assert_eq!(fake.calls().await.len(), 1, "no call while paused");
    assert_eq!(
        store.get_post(tenant, due.id).await.unwrap().status,
        PostStatus::Queued
    );

    // A person reconnects the channel: the post goes out, polling resumes.
    let back = tokens
        .reconnect(
            tenant,
            channel.id,
            Credentials {
                access_token: Some(SecretString::new("new-token")),
                refresh_token: Some(SecretString::new("refresh-9")),
                expires_at: Some(clock.now() + Duration::days(60)),
            },
        )
        .await
        .unwrap();
    assert_eq!(back.status, ChannelStatus::Active);
    assert_eq!(back.status_reason, None);
    let report = queue.run_due(&batch(10), None).await.unwrap();
    assert_eq!(report.published, 1, "{report:?}");
    let out = store.get_post(tenant, due.id).await.unwrap();
    assert_eq!(out.status, PostStatus::Published);
    assert_eq!(out.platform_post_id.as_deref(), Some("urn:li:share:7001"));
    assert_eq!(fake.count("POST", "/rest/posts").await, 1);
    // The earlier post's check, and the new post's first one.
    let polled = poller.poll_due(10, None).await.unwrap();
    assert_eq!(polled.posts_polled, 2, "{polled:?}");
    assert_eq!(fake.count("GET", "/rest/socialActions/").await, 2);
    assert_eq!(
        fake.count("POST", OAUTH).await,
        1,
        "no refresh after reconnecting"
    );
}

async fn two_keepers_refreshing_one_channel_make_one_refresh_call(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    // Slow enough that the second keeper asks while the first is refreshing.
    fake.grant_refresh("fresh-1", StdDuration::from_millis(300))
        .await;
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::minutes(1)).await;
    // Two processes: two keepers, each with its own memory, one store.
    let keepers = [
        ChannelTokens::new(Arc::clone(&store), clock.clone()),
        ChannelTokens::new(Arc::clone(&store), clock.clone()),
    ];
    let connector = fake.connector();
    let mut handles = Vec::new();
    for keeper in keepers {
        let (connector, channel) = (Arc::clone(&connector), channel.clone());
        handles.push(tokio::spawn(async move {
            keeper
                .context(connector.as_ref(), &channel)
                .await
                .map(|ctx| ctx.access_token.expose().to_owned())
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap().unwrap(), "fresh-1");
    }
    assert_eq!(fake.count("POST", OAUTH).await, 1, "one refresh call");
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(stored.credentials.access_token.unwrap().expose(), "fresh-1");
    assert_eq!(
        stored.credentials.refresh_token.unwrap().expose(),
        "refresh-2"
    );
    assert_eq!(
        stored.credentials.expires_at,
        Some(t0() + Duration::seconds(5_184_000))
    );
}

async fn refresh_worker_renews_ahead_of_expiry_once(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.grant_refresh("fresh-1", StdDuration::from_millis(200))
        .await;
    // Expires in 2 hours: far from the call paths' margin, within the
    // worker's 24-hour horizon.
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::hours(2)).await;
    let registry = ConnectorRegistry::new().with(fake.connector());
    let workers = [
        TokenRefreshWorker::new(
            ChannelTokens::new(Arc::clone(&store), clock.clone()),
            registry.clone(),
        ),
        TokenRefreshWorker::new(
            ChannelTokens::new(Arc::clone(&store), clock.clone()),
            registry.clone(),
        ),
    ];
    let (a, b) = tokio::join!(
        workers[0].renew_expiring(store.as_ref(), clock.now(), 10),
        workers[1].renew_expiring(store.as_ref(), clock.now(), 10),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.renewed + b.renewed, 2, "{a:?} {b:?}");
    assert_eq!(fake.count("POST", OAUTH).await, 1, "one refresh call");
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(stored.credentials.access_token.unwrap().expose(), "fresh-1");

    // Renewed for 60 days: the next runs have nothing to do.
    clock.advance(Duration::hours(1));
    let again = workers[0]
        .renew_expiring(store.as_ref(), clock.now(), 10)
        .await
        .unwrap();
    assert_eq!(again, RenewReport::default());
    assert_eq!(fake.count("POST", OAUTH).await, 1);
}

async fn a_token_that_cannot_be_renewed_is_used_until_it_expires(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.refuse_refresh().await;
    let expires_at = t0() + Duration::hours(2);
    let channel = linkedin_channel(store.as_ref(), expires_at).await;
    let (tenant, id) = (channel.tenant_id, channel.id);
    let told = Arc::new(Told::default());
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone()).with_listener(told.clone());
    let connector = fake.connector();
    let worker = TokenRefreshWorker::new(
        tokens.clone(),
        ConnectorRegistry::new().with(Arc::clone(&connector)),
    );

    // Ahead of expiry the renewal is refused: the channel stays active, its
    // tenant is told for the instant the token expires.
    let first = worker
        .renew_expiring(store.as_ref(), clock.now(), 10)
        .await
        .unwrap();
    assert_eq!((first.unrenewable, first.refused), (1, 0), "{first:?}");
    assert_eq!(
        store.get_channel(tenant, id).await.unwrap().status,
        ChannelStatus::Active
    );
    let notices = store
        .list_notifications(tenant, Some(NotificationKind::ChannelNeedsReauth), 10)
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].occurred_at, expires_at);
    assert!(told.0.lock().unwrap().is_empty(), "not paused, not told");
    // The next passes leave it alone: no second refresh call, no second
    // notice.
    clock.advance(Duration::minutes(10));
    let second = worker
        .renew_expiring(store.as_ref(), clock.now(), 10)
        .await
        .unwrap();
    assert_eq!(second, RenewReport::default());
    assert_eq!(fake.count("POST", OAUTH).await, 1);

    // Within the call paths' margin the call still gets the token, which
    // works for 2 more minutes, without asking for a refresh again (the
    // keeper knows it is refused) and without taking the channel's lease.
    clock.set(expires_at - Duration::minutes(2));
    let ctx = tokens.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "old-token");
    let ctx = tokens.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "old-token");
    assert_eq!(fake.count("POST", OAUTH).await, 1);
    // Another process's keeper, without that knowledge, asks once, is
    // refused, and uses the token too.
    let other = ChannelTokens::new(Arc::clone(&store), fake.clock.clone());
    let ctx = other.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "old-token");
    let _ = other.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(fake.count("POST", OAUTH).await, 2);
    assert_eq!(
        store.get_channel(tenant, id).await.unwrap().status,
        ChannelStatus::Active
    );

    // Expired: refused, the channel is paused and the application told.
    clock.set(expires_at + Duration::minutes(1));
    let err = tokens
        .context(connector.as_ref(), &channel)
        .await
        .unwrap_err();
    assert!(err.is_paused(), "{err}");
    assert_eq!(
        store.get_channel(tenant, id).await.unwrap().status,
        ChannelStatus::NeedsReauth
    );
    assert_eq!(*told.0.lock().unwrap(), vec![id]);
    assert_eq!(fake.count("POST", OAUTH).await, 3);
}

async fn a_token_without_a_refresh_flow_refused_by_the_platform_pauses_the_channel(
    store: Arc<dyn Store>,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: "pn-1".into(),
            name: "Acme on WhatsApp".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("system-user-token")),
                refresh_token: None,
                expires_at: None,
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    let whatsapp = WhatsAppConnector::builder().build().unwrap();
    let told = Arc::new(Told::default());
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone()).with_listener(told.clone());
    // A send answered 401 (the token was revoked): there is no refresh, so
    // a person must replace the token; the channel's work waits for it.
    let err = tokens
        .after_unauthorized(&channel, channel.credentials.access_token.as_ref(), |c| {
            let whatsapp = whatsapp.clone();
            async move { connector_refresh(&whatsapp, &c).await }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Refused { .. }), "{err}");
    let paused = store.get_channel(tenant.id, channel.id).await.unwrap();
    assert_eq!(paused.status, ChannelStatus::NeedsReauth);
    assert!(
        paused.status_reason.unwrap().contains("refresh_token"),
        "the reason names the missing refresh"
    );
    assert_eq!(*told.0.lock().unwrap(), vec![channel.id]);
}

/// A keeper refreshed a channel (its token cached, expiring in 60 days);
/// another process reconnects the channel with a token that never expires.
/// The keeper, handed the channel as stored now, uses the new token, not
/// its cached one (`Some(expiry)` used to count as newer than `None`).
async fn a_reconnected_token_that_never_expires_replaces_the_cached_one(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.grant_refresh("fresh-1", StdDuration::from_millis(0))
        .await;
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::minutes(2)).await;
    let (tenant, id) = (channel.tenant_id, channel.id);
    let connector = fake.connector();
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone());
    let ctx = tokens.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");
    let reconnected = ChannelTokens::new(Arc::clone(&store), clock.clone())
        .reconnect(
            tenant,
            id,
            Credentials {
                access_token: Some(SecretString::new("never-expires")),
                refresh_token: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let ctx = tokens
        .context(connector.as_ref(), &reconnected)
        .await
        .unwrap();
    assert_eq!(ctx.access_token.expose(), "never-expires");
    assert_eq!(fake.count("POST", OAUTH).await, 1);
}

/// Another process reconnects the channel with a token that expires sooner
/// than the one this keeper refreshed: a copy read afterwards is used as it
/// is (before, the keeper preferred its own token, which expired later, and
/// kept using it for its whole life), while a copy read before this
/// keeper's refresh still gets the refreshed token, not the one it replaced.
async fn a_shorter_lived_token_from_another_process_replaces_the_cached_one(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.grant_refresh("fresh-1", StdDuration::from_millis(0))
        .await;
    let stale = linkedin_channel(store.as_ref(), t0() + Duration::minutes(2)).await;
    let (tenant, id) = (stale.tenant_id, stale.id);
    let connector = fake.connector();
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone());
    let ctx = tokens.context(connector.as_ref(), &stale).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");
    let ctx = tokens.context(connector.as_ref(), &stale).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1", "a stale copy");
    // A copy holding fresh-1 (valid for long: no reason to read the store).
    let refreshed = store.get_channel(tenant, id).await.unwrap();
    let other_process = ChannelTokens::new(Arc::clone(&store), clock.clone());
    other_process
        .reconnect(
            tenant,
            id,
            Credentials {
                access_token: Some(SecretString::new("short-lived")),
                refresh_token: Some(SecretString::new("refresh-2")),
                expires_at: Some(t0() + Duration::hours(2)),
            },
        )
        .await
        .unwrap();
    let read = store.get_channel(tenant, id).await.unwrap();
    let ctx = tokens.context(connector.as_ref(), &read).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "short-lived");
    assert_eq!(fake.count("POST", OAUTH).await, 1);

    // The platform refuses the short-lived token and the refresh gives
    // another: a copy still holding the first token, or fresh-1, is out of
    // date and gets the newest (the refusal made the keeper forget what it
    // knew, and it used to forget which tokens were replaced too).
    let renewed = tokens
        .after_unauthorized(&read, read.credentials.access_token.as_ref(), |_| async {
            RefreshOutcome::Granted(Credentials {
                access_token: Some(SecretString::new("after-401")),
                refresh_token: Some(SecretString::new("refresh-3")),
                expires_at: Some(t0() + Duration::days(60)),
            })
        })
        .await
        .unwrap();
    assert_eq!(
        renewed.credentials.access_token.unwrap().expose(),
        "after-401"
    );
    for copy in [&refreshed, &read] {
        let ctx = tokens.context(connector.as_ref(), copy).await.unwrap();
        assert_eq!(ctx.access_token.expose(), "after-401");
    }
}

async fn a_refusal_never_undoes_a_newer_token_and_a_stale_paused_copy_is_reread(
    store: Arc<dyn Store>,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::days(30)).await;
    let (tenant, id) = (channel.tenant_id, channel.id);
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone());
    // A call refused with a token that was replaced meanwhile: left alone.
    let kept = tokens
        .refuse(
            tenant,
            id,
            Some(&SecretString::new("an-older-token")),
            "revoked",
        )
        .await
        .unwrap();
    assert_eq!(kept.status, ChannelStatus::Active);
    // Refused with the stored token: paused.
    let paused = tokens
        .refuse(tenant, id, Some(&SecretString::new("old-token")), "revoked")
        .await
        .unwrap();
    assert_eq!(paused.status, ChannelStatus::NeedsReauth);
    let no_call = |_: Channel| async { RefreshOutcome::Refused("must not be called".into()) };
    assert!(
        tokens
            .fresh(&paused, no_call)
            .await
            .unwrap_err()
            .is_paused()
    );
    // Reconnected elsewhere: a caller still holding the paused copy gets the
    // channel as it is now, not a pause.
    ChannelTokens::new(Arc::clone(&store), clock.clone())
        .reconnect(
            tenant,
            id,
            Credentials {
                access_token: Some(SecretString::new("new-token")),
                refresh_token: None,
                expires_at: Some(t0() + Duration::days(60)),
            },
        )
        .await
        .unwrap();
    let fresh = tokens.fresh(&paused, no_call).await.unwrap();
    assert_eq!(fresh.status, ChannelStatus::Active);
    assert_eq!(
        fresh.credentials.access_token.unwrap().expose(),
        "new-token"
    );
}

/// The token endpoint answers `503` while the token has three minutes left:
/// calls go on with it, asking for a refresh at most once a minute, and fail
/// (to be retried) only once it has expired.
async fn a_token_endpoint_that_fails_leaves_calls_the_token_that_still_works(
    store: Arc<dyn Store>,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.fail_refresh().await;
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::minutes(3)).await;
    let connector = fake.connector();
    let keeper = ChannelTokens::new(Arc::clone(&store), clock.clone());
    let call = async || {
        keeper
            .context(connector.as_ref(), &channel)
            .await
            .map(|ctx| ctx.access_token.expose().to_owned())
    };

    assert_eq!(call().await.unwrap(), "old-token");
    assert_eq!(call().await.unwrap(), "old-token");
    assert_eq!(fake.count("POST", OAUTH).await, 1, "one refresh per minute");
    clock.advance(CALL_REFRESH_BACKOFF + Duration::seconds(1));
    assert_eq!(call().await.unwrap(), "old-token");
    assert_eq!(fake.count("POST", OAUTH).await, 2);

    clock.advance(Duration::minutes(2));
    let expired = call().await.unwrap_err();
    assert!(matches!(expired, TokenError::Failed { .. }), "{expired:?}");
    assert_eq!(fake.count("POST", OAUTH).await, 3);
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(
        stored.status,
        ChannelStatus::Active,
        "a failure pauses nothing"
    );
}
