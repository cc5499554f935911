//! Conformance tests of tenants and channels, and of input validation (a
//! refused input leaves no partial write).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, assert_unknown, event, mins, post, t0, world,
};
use crate::{StorageError, Store};

pub async fn tenants_and_channels(store: Arc<dyn Store>) {
    let s = &*store;
    let mut new = NewTenant::new("Acme", t0());
    new.time_zone = chrono_tz::America::New_York;
    let acme = s.create_tenant(new).await.unwrap();
    assert_eq!(s.get_tenant(acme.id).await.unwrap(), acme);
    assert_eq!(acme.time_zone, chrono_tz::America::New_York);
    let globex = s
        .create_tenant(NewTenant::new("Globex", t0() + mins(1)))
        .await
        .unwrap();
    assert_eq!(
        s.list_tenants().await.unwrap(),
        vec![acme.clone(), globex.clone()]
    );
    assert_not_found(s.get_tenant(TenantId::generate()).await);

    let new_channel = |tenant: TenantId, platform: Platform, account: &str| NewChannel {
        tenant_id: tenant,
        platform,
        external_account_id: account.into(),
        name: "Main".into(),
        credentials: Credentials {
            access_token: Some(SecretString::new("at")),
            refresh_token: Some(SecretString::new("rt")),
            expires_at: Some(t0() + Duration::days(60)),
        },
        created_at: t0(),
    };
    let wa = s
        .create_channel(new_channel(acme.id, Platform::WhatsApp, "106540352242922"))
        .await
        .unwrap();
    assert_eq!(wa.status, ChannelStatus::Active);
    assert_eq!(
        wa.credentials.refresh_token.as_ref().unwrap().expose(),
        "rt"
    );
    let custom = Platform::custom("mastodon").unwrap();
    let masto = s
        .create_channel(new_channel(
            acme.id,
            custom.clone(),
            "@brand@mastodon.social",
        ))
        .await
        .unwrap();
    assert_eq!(s.get_channel(acme.id, wa.id).await.unwrap(), wa);
    assert_eq!(
        s.list_channels(acme.id).await.unwrap(),
        vec![wa.clone(), masto.clone()]
    );
    assert_eq!(
        s.find_channel_by_account(&Platform::WhatsApp, "106540352242922")
            .await
            .unwrap(),
        Some(wa.clone())
    );
    assert_eq!(
        s.find_channel_by_account(&custom, "@brand@mastodon.social")
            .await
            .unwrap(),
        Some(masto.clone())
    );
    assert_eq!(
        s.find_channel_by_account(&Platform::Facebook, "106540352242922")
            .await
            .unwrap(),
        None
    );
    // The same lookup without the credentials: tenant and id.
    assert_eq!(
        s.find_channel_ref_by_account(&Platform::WhatsApp, "106540352242922")
            .await
            .unwrap(),
        Some((acme.id, wa.id))
    );
    assert_eq!(
        s.find_channel_ref_by_account(&Platform::Facebook, "106540352242922")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        s.find_channel_ref_by_account(&Platform::WhatsApp, "bad\u{1}id")
            .await,
        Err(StorageError::Invalid(_))
    ));

    // The same account cannot be connected twice, even by another tenant.
    assert_conflict(
        s.create_channel(new_channel(
            globex.id,
            Platform::WhatsApp,
            "106540352242922",
        ))
        .await,
    );
    assert_unknown(
        s.create_channel(new_channel(TenantId::generate(), Platform::Facebook, "1"))
            .await,
        "tenant",
    );
    // Another tenant's channel is not found.
    assert_not_found(s.get_channel(globex.id, wa.id).await);
    // Many at once: the tenant's among the ids, once each; others left out.
    let mut many = s
        .get_channels(acme.id, &[masto.id, wa.id, wa.id, ChannelId::generate()])
        .await
        .unwrap();
    many.sort_by_key(|c| c.id);
    let mut both = vec![wa.clone(), masto.clone()];
    both.sort_by_key(|c| c.id);
    assert_eq!(many, both);
    assert!(
        s.get_channels(globex.id, &[wa.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.get_channels(acme.id, &[]).await.unwrap().is_empty());

    let updated = s
        .update_channel_credentials(
            acme.id,
            wa.id,
            Credentials {
                access_token: Some(SecretString::new("at-2")),
                refresh_token: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated.credentials.access_token.as_ref().unwrap().expose(),
        "at-2"
    );
    assert_eq!(updated.credentials.refresh_token, None);
    assert_eq!(s.get_channel(acme.id, wa.id).await.unwrap(), updated);
    let reauth = s
        .set_channel_status(acme.id, wa.id, ChannelStatus::NeedsReauth)
        .await
        .unwrap();
    assert_eq!(reauth.status, ChannelStatus::NeedsReauth);
    assert_not_found(
        s.set_channel_status(globex.id, wa.id, ChannelStatus::Disabled)
            .await,
    );
    assert_not_found(
        s.update_channel_credentials(globex.id, wa.id, Credentials::default())
            .await,
    );
    assert_eq!(
        s.get_channel(acme.id, wa.id).await.unwrap().status,
        ChannelStatus::NeedsReauth
    );
}

pub async fn bad_input_is_refused_without_partial_writes(store: Arc<dyn Store>) {
    let s = &*store;
    assert_invalid(s.create_tenant(NewTenant::new("", t0())).await, "name");
    assert!(s.list_tenants().await.unwrap().is_empty());
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;

    let long = "x".repeat(validate::MAX_KEY_LEN + 1);
    let mut ch = NewChannel {
        tenant_id: w.tenant.id,
        platform: Platform::Instagram,
        external_account_id: long.clone(),
        name: "IG".into(),
        credentials: Credentials::default(),
        created_at: t0(),
    };
    assert_invalid(s.create_channel(ch.clone()).await, "external_account_id");
    ch.external_account_id = String::new();
    assert_invalid(s.create_channel(ch).await, "external_account_id");
    assert_eq!(s.list_channels(w.tenant.id).await.unwrap().len(), 1);

    // Events: over-long key, empty key, NUL in the payload, unknown channel.
    let mut e = event(&w, &long, EventKind::Message, t0());
    assert_invalid(s.insert_event(e.clone()).await, "event_id");
    e.event_id = "  ".into();
    assert_invalid(s.insert_event(e.clone()).await, "event_id");
    e.event_id = "m1".into();
    e.payload = json!({"text": "a\u{0}b"});
    assert_invalid(s.insert_event(e.clone()).await, "payload");
    e.payload = json!({});
    e.channel_id = ChannelId::generate();
    assert_unknown(s.insert_event(e.clone()).await, "channel");
    e.channel_id = w.channel.id;
    e.tenant_id = TenantId::generate();
    assert!(matches!(
        s.insert_event(e.clone()).await,
        Err(StorageError::UnknownReference { .. })
    ));
    // A channel whose platform differs from the event's.
    e.tenant_id = w.tenant.id;
    e.platform = Platform::WhatsApp;
    assert_unknown(s.insert_event(e).await, "channel");
    assert!(s.list_unrouted_events(None, 100).await.unwrap().is_empty());

    // Posts on an unknown channel, runs of unknown posts, rules with bad numbers.
    let mut p = post(&w, "hello", t0());
    p.channel_id = ChannelId::generate();
    assert_unknown(s.insert_post(p).await, "channel");
    let mut p = post(&w, "bad\u{0}text", t0());
    assert_invalid(s.insert_post(p.clone()).await, "text");
    p.content.text = "ok".into();
    p.tenant_id = TenantId::generate();
    assert!(matches!(
        s.insert_post(p).await,
        Err(StorageError::UnknownReference { .. })
    ));
    assert!(
        s.list_posts(w.tenant.id, PostFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_unknown(
        s.insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: PostId::generate(),
            attempt: 1,
            started_at: t0(),
        })
        .await,
        "post",
    );
    let rule = NewAiRule {
        tenant_id: w.tenant.id,
        rule_type: RuleType::Auto,
        name: "prices".into(),
        keywords: vec!["prix".into()],
        patterns: vec![],
        confidence_min: Some(1.5),
        enabled: true,
        priority: 1,
        at: t0(),
    };
    assert_invalid(s.create_rule(rule).await, "confidence_min");
    assert!(s.list_rules(w.tenant.id, false).await.unwrap().is_empty());
    let bad_mission = NewMission {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        name: "Launch".into(),
        status: MissionStatus::Active,
        objective_priority: ObjectivePriority::High,
        start_date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        created_at: t0(),
    };
    assert_invalid(s.create_mission(bad_mission).await, "end_date");
    assert_invalid(s.set_setting("", SecretString::new("v"), t0()).await, "key");
    assert_invalid(s.set_worker_flag(&long, true, t0()).await, "worker_name");
    assert!(s.list_worker_flags().await.unwrap().is_empty());
}
