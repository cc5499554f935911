//! A refreshed token whose write fails (on Postgres, where the write can be
//! made to fail): used, then stored at the next call, never over a
//! reconnection.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use nexiom_connectors::PlatformConnector;
use nexiom_core::*;
use nexiom_scheduler::*;

use super::fixture::*;
use crate::common::{as_admin, on_postgres, t0};

/// The first update of a channel row fails, as a full disk or a dropped
/// connection would fail the write of a refreshed token.
const FAIL_THE_NEXT_CHANNEL_UPDATE: &str = "
    CREATE SEQUENCE channel_update_faults;
    CREATE FUNCTION fail_the_first_channel_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF nextval('channel_update_faults') = 1 THEN
            RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER fail_the_first_channel_update BEFORE UPDATE ON channels
        FOR EACH ROW EXECUTE FUNCTION fail_the_first_channel_update();";

/// A LinkedIn channel whose token expires in a minute, on Postgres, the
/// platform granting `fresh-1`, and the next write of the channel row made to
/// fail; with a keeper, the connector and the store. `None` without
/// PostgreSQL.
async fn a_grant_whose_write_fails() -> Option<(
    nexiom_storage::conformance::TestStore,
    Fake,
    Channel,
    Arc<dyn PlatformConnector>,
    ChannelTokens,
)> {
    let (url, ts) = on_postgres().await?;
    let store = ts.store();
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.grant_refresh("fresh-1", StdDuration::ZERO).await;
    let channel = linkedin_channel(store.as_ref(), t0() + Duration::minutes(1)).await;
    as_admin(&url, &ts, FAIL_THE_NEXT_CHANNEL_UPDATE, None).await;
    let connector = fake.connector();
    let keeper = ChannelTokens::new(store, clock);
    Some((ts, fake, channel, connector, keeper))
}

/// From now on the token endpoint grants `fresh-2` (and `refresh-3`) for
/// the grant's rotated `refresh-2` only, and refuses any other refresh
/// token, as LinkedIn does once it rotated them.
async fn honour_only_the_rotated_refresh_token(fake: &Fake) {
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(OAUTH))
        .and(wiremock::matchers::body_string_contains(
            "refresh_token=refresh-2",
        ))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": "fresh-2",
                "expires_in": 5_184_000,
                "refresh_token": "refresh-3",
                "refresh_token_expires_in": 31_536_000
            })),
        )
        .with_priority(2)
        .mount(&fake.server)
        .await;
    fake.refuse_refresh().await;
}

/// LinkedIn rotates refresh tokens: a grant whose write fails is not
/// dropped (the old refresh token may no longer be honoured), it is used for
/// the call and the calls after it, and stored by the first call 5 s or
/// more later (not at every call), with no second refresh; another process
/// then reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_could_not_be_stored_is_stored_at_the_next_call() {
    let Some((ts, fake, channel, connector, keeper)) = a_grant_whose_write_fails().await else {
        return;
    };
    let store = ts.store();
    let stored_token = async || {
        let stored = store
            .get_channel(channel.tenant_id, channel.id)
            .await
            .unwrap();
        let token = |t: Option<SecretString>| t.unwrap().expose().to_owned();
        (
            token(stored.credentials.access_token),
            token(stored.credentials.refresh_token),
        )
    };

    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(
        ctx.access_token.expose(),
        "fresh-1",
        "the call uses the grant"
    );
    assert_eq!(
        stored_token().await,
        ("old-token".into(), "refresh-1".into())
    );

    // A call right after uses the grant and does not try to store it yet
    // (no channel lease taken per call while the database fails).
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");
    assert_eq!(
        stored_token().await,
        ("old-token".into(), "refresh-1".into())
    );

    // The next call 5 s later, from a caller holding the old copy: the
    // grant is stored.
    fake.clock.advance(Duration::seconds(5));
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");
    assert_eq!(stored_token().await, ("fresh-1".into(), "refresh-2".into()));
    // Another process reads it: still one refresh in all.
    let other = ChannelTokens::new(Arc::clone(&store), fake.clock.clone());
    let ctx = other.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");
    assert_eq!(fake.count("POST", OAUTH).await, 1, "one refresh call");
    ts.cleanup().await;
}

/// A grant that could not be stored never overwrites a token a person
/// stored meanwhile by reconnecting the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstored_grant_never_overwrites_a_reconnection() {
    let Some((ts, fake, channel, connector, keeper)) = a_grant_whose_write_fails().await else {
        return;
    };
    let store = ts.store();
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");

    let person = Credentials {
        access_token: Some(SecretString::new("person-token")),
        refresh_token: Some(SecretString::new("person-refresh")),
        expires_at: Some(t0() + Duration::days(60)),
    };
    store
        .reconnect_channel(channel.tenant_id, channel.id, person, t0())
        .await
        .unwrap();
    // The next try to store the grant, 5 s after the failed one.
    fake.clock.advance(Duration::seconds(5));
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "person-token");
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(
        stored.credentials.access_token.unwrap().expose(),
        "person-token"
    );
    assert_eq!(
        stored.credentials.refresh_token.unwrap().expose(),
        "person-refresh"
    );
    assert_eq!(fake.count("POST", OAUTH).await, 1);
    ts.cleanup().await;
}

/// The platform refuses the token of a grant that could not be stored (a
/// 401 on `fresh-1`). LinkedIn rotated the refresh token with that grant:
/// the stored `refresh-1` is no longer honoured, only the grant's
/// `refresh-2` is. The refresh after the 401 is made with `refresh-2`, and
/// its grant stored. Before, the waiting grant was dropped with its token,
/// the refresh was made with `refresh-1`, refused, and the channel paused
/// until a person reconnected it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_refused_before_it_was_stored_lends_its_refresh_token() {
    let Some((ts, fake, channel, connector, keeper)) = a_grant_whose_write_fails().await else {
        return;
    };
    let store = ts.store();
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");

    // From now on the platform honours only the rotated refresh token.
    fake.server.reset().await;
    honour_only_the_rotated_refresh_token(&fake).await;

    let used = SecretString::new("fresh-1");
    let refreshed = keeper
        .after_unauthorized(&channel, Some(&used), |c| async move {
            connector_refresh(connector.as_ref(), &c).await
        })
        .await
        .unwrap();
    assert_eq!(
        refreshed.credentials.access_token.unwrap().expose(),
        "fresh-2"
    );
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Active);
    assert_eq!(stored.credentials.access_token.unwrap().expose(), "fresh-2");
    assert_eq!(
        stored.credentials.refresh_token.unwrap().expose(),
        "refresh-3"
    );
    assert_eq!(
        fake.count("POST", OAUTH).await,
        1,
        "one refresh after the 401"
    );
    ts.cleanup().await;
}

/// As above, but the refresh after the 401 fails (the token endpoint
/// answers 503 once): the refused grant is kept, and 5 s later a call gets
/// neither its refused token nor a refusal: the grant is stored for its
/// refresh token (as expired) and the call's refresh is made with
/// `refresh-2`. Before, the kept grant came back as usable and was handed to
/// the call with the token the platform had refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_whose_refresh_failed_is_never_handed_out() {
    let Some((ts, fake, channel, connector, keeper)) = a_grant_whose_write_fails().await else {
        return;
    };
    let store = ts.store();
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-1");

    fake.server.reset().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(OAUTH))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake.server)
        .await;
    honour_only_the_rotated_refresh_token(&fake).await;

    let used = SecretString::new("fresh-1");
    let failed = keeper
        .after_unauthorized(&channel, Some(&used), |c| {
            let connector = Arc::clone(&connector);
            async move { connector_refresh(connector.as_ref(), &c).await }
        })
        .await;
    assert!(
        matches!(failed, Err(TokenError::Failed { .. })),
        "{failed:?}"
    );

    fake.clock.advance(Duration::seconds(5));
    let ctx = keeper.context(connector.as_ref(), &channel).await.unwrap();
    assert_eq!(ctx.access_token.expose(), "fresh-2");
    let stored = store
        .get_channel(channel.tenant_id, channel.id)
        .await
        .unwrap();
    assert_eq!(stored.status, ChannelStatus::Active);
    assert_eq!(
        stored.credentials.refresh_token.unwrap().expose(),
        "refresh-3"
    );
    assert_eq!(
        fake.count("POST", OAUTH).await,
        2,
        "the failed and the good refresh"
    );
    ts.cleanup().await;
}
