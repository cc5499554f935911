//! The notice of a token that cannot be renewed, when it cannot be enqueued
//! (on Postgres, where the write can be made to fail).

use std::sync::Arc;

use chrono::Duration;
use nexiom_connectors::ConnectorRegistry;
use nexiom_core::*;
use nexiom_scheduler::*;

use super::fixture::*;
use crate::common::{as_admin, on_postgres, t0};

/// The first notification insert fails, as a full disk would fail it.
const FAIL_THE_NEXT_NOTIFICATION: &str = "
    CREATE SEQUENCE notification_faults;
    CREATE FUNCTION fail_the_first_notification() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF nextval('notification_faults') = 1 THEN
            RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER fail_the_first_notification BEFORE INSERT ON notifications
        FOR EACH ROW EXECUTE FUNCTION fail_the_first_notification();";

/// A renewal the platform refuses while the token works for 2 more hours,
/// whose notice to the tenant cannot be enqueued: the pass counts it
/// failed (not "cannot be renewed", which leaves the channel alone until
/// its token expires), and the pass after the backoff asks again and
/// enqueues the notice. Before, the failure was only logged and the tenant
/// was never told before the channel stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_could_not_be_enqueued_is_enqueued_by_a_later_pass() {
    let Some((url, ts)) = on_postgres().await else {
        return;
    };
    let store = ts.store();
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Fake::start(clock.clone()).await;
    fake.refuse_refresh().await;
    let expires_at = t0() + Duration::hours(2);
    let channel = linkedin_channel(store.as_ref(), expires_at).await;
    as_admin(&url, &ts, FAIL_THE_NEXT_NOTIFICATION, None).await;
    let tokens = ChannelTokens::new(Arc::clone(&store), clock.clone());
    let worker = TokenRefreshWorker::new(tokens, ConnectorRegistry::new().with(fake.connector()));
    let notices = async || {
        store
            .list_notifications(
                channel.tenant_id,
                Some(NotificationKind::ChannelNeedsReauth),
                10,
            )
            .await
            .unwrap()
    };

    let first = worker
        .renew_expiring(store.as_ref(), clock.now(), 10)
        .await
        .unwrap();
    assert_eq!((first.failed, first.unrenewable), (1, 0), "{first:?}");
    assert!(notices().await.is_empty());

    clock.advance(FAILED_BACKOFF);
    let second = worker
        .renew_expiring(store.as_ref(), clock.now(), 10)
        .await
        .unwrap();
    assert_eq!((second.failed, second.unrenewable), (0, 1), "{second:?}");
    let notices = notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].occurred_at, expires_at);
    assert_eq!(
        store
            .get_channel(channel.tenant_id, channel.id)
            .await
            .unwrap()
            .status,
        ChannelStatus::Active
    );
    ts.cleanup().await;
}
