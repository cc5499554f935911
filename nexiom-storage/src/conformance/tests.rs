//! The conformance test functions. Each takes a fresh, empty store.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexiom_core::*;
use serde_json::json;

use crate::{StorageError, Store};

// ----------------------------------------------------------------- fixtures

/// 2026-03-01 09:00:00 UTC: every test's time zero (whole seconds, so that both
/// backends store it exactly).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn mins(n: i64) -> Duration {
    Duration::minutes(n)
}

/// A tenant and one channel of it.
pub struct World {
    pub tenant: Tenant,
    pub channel: Channel,
}

pub async fn world(store: &dyn Store, name: &str, platform: Platform, account: &str) -> World {
    let tenant = store
        .create_tenant(NewTenant::new(name, t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform,
            external_account_id: account.to_owned(),
            name: format!("{name} {account}"),
            credentials: Credentials {
                access_token: Some(SecretString::new("token-1")),
                refresh_token: None,
                expires_at: None,
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    World { tenant, channel }
}

pub(super) fn event(
    w: &World,
    event_id: &str,
    kind: EventKind,
    received_at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        platform: w.channel.platform.clone(),
        event_id: event_id.to_owned(),
        kind,
        sender_id: Some("15550001".into()),
        sender_name: Some("Alex".into()),
        text: Some("Bonjour".into()),
        has_media: false,
        delivery_status: None,
        target_id: None,
        parent_id: None,
        occurred_at: received_at,
        payload: json!({"id": event_id}),
        received_at,
    }
}

/// A message of `conversation` at `at` (the time stored too), with its
/// provider id.
pub fn new_message(
    tenant: TenantId,
    conversation: ConversationId,
    direction: MessageDirection,
    provider_id: Option<&str>,
    at: DateTime<Utc>,
) -> NewMessage {
    message(tenant, conversation, direction, provider_id, at)
}

fn message(
    tenant: TenantId,
    conversation: ConversationId,
    direction: MessageDirection,
    provider_id: Option<&str>,
    at: DateTime<Utc>,
) -> NewMessage {
    NewMessage {
        tenant_id: tenant,
        conversation_id: conversation,
        direction,
        text: format!("{direction} at {at}"),
        has_media: false,
        provider_message_id: provider_id.map(str::to_owned),
        in_reply_to: None,
        delivery_status: (direction == MessageDirection::Outbound)
            .then_some(DeliveryStatus::Pending),
        created_at: at,
        stored_at: at,
    }
}

fn post(w: &World, text: &str, publish_at: DateTime<Utc>) -> NewScheduledPost {
    NewScheduledPost::one_off(
        w.tenant.id,
        w.channel.id,
        Content::text(text),
        publish_at,
        t0(),
    )
}

pub async fn conversation(
    store: &dyn Store,
    w: &World,
    handle: &str,
) -> (ContactChannel, Conversation) {
    let cc = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: w.tenant.id,
            platform: w.channel.platform.clone(),
            external_handle: handle.into(),
            display_name: Some(handle.into()),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = store
        .insert_open_conversation(w.tenant.id, cc.contact_id, w.channel.id, t0())
        .await
        .unwrap()
        .record;
    (cc, conv)
}

pub(super) async fn published_post(store: &dyn Store, w: &World, text: &str) -> ScheduledPost {
    let p = store.insert_post(post(w, text, t0())).await.unwrap().record;
    store
        .update_post(
            w.tenant.id,
            p.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some(format!("pp-{}", p.id))),
                published_at: Some(Some(t0())),
                next_check_at: Some(Some(t0())),
                stop_at: Some(Some(t0() + Duration::days(7))),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap()
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StorageError>, field: &str) {
    match r {
        Err(StorageError::Invalid(CoreError::Invalid { field: f, .. })) if f == field => {}
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

#[track_caller]
fn assert_unknown<T: std::fmt::Debug>(r: Result<T, StorageError>, entity: &str) {
    match r {
        Err(StorageError::UnknownReference { entity: e, .. }) if e == entity => {}
        other => panic!("expected UnknownReference({entity}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

// ----------------------------------------------------------------- tenants

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

// ----------------------------------------------------------------- events

pub async fn events_are_stored_once_and_marked_routed(store: Arc<dyn Store>) {
    let s = &*store;
    let wa = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let first = s
        .insert_event(event(&wa, "wamid.A", EventKind::Message, t0()))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.routed_at, None);
    // A redelivery with another payload changes nothing.
    let mut again = event(&wa, "wamid.A", EventKind::Message, t0() + mins(5));
    again.payload = json!({"id": "wamid.A", "retry": true});
    let second = s.insert_event(again).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    assert_eq!(
        s.get_event(wa.tenant.id, first.record.id).await.unwrap(),
        first.record
    );
    assert_eq!(
        s.find_event(wa.tenant.id, &Platform::WhatsApp, "wamid.A")
            .await
            .unwrap(),
        Some(first.record.clone())
    );
    assert_eq!(
        s.find_event(wa.tenant.id, &Platform::WhatsApp, "nope")
            .await
            .unwrap(),
        None
    );

    let b = s
        .insert_event(event(&wa, "wamid.B", EventKind::Status, t0() - mins(1)))
        .await
        .unwrap();
    let ig = world(s, "Globex", Platform::Instagram, "ig-1").await;
    let c = s
        .insert_event(event(&ig, "ig.C", EventKind::Comment, t0() + mins(1)))
        .await
        .unwrap();
    // Same event id on another platform is another event.
    let d = s
        .insert_event(event(&ig, "wamid.A", EventKind::Comment, t0() + mins(2)))
        .await
        .unwrap();
    assert!(d.created);

    let ids = |v: Vec<WebhookEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_unrouted_events(None, 10).await.unwrap()),
        vec![b.record.id, first.record.id, c.record.id, d.record.id]
    );
    assert_eq!(
        ids(s.list_unrouted_events(None, 2).await.unwrap()),
        vec![b.record.id, first.record.id]
    );
    assert_eq!(
        ids(s
            .list_unrouted_events(Some(&Platform::Instagram), 10)
            .await
            .unwrap()),
        vec![c.record.id, d.record.id]
    );
    assert!(s.list_unrouted_events(None, 0).await.unwrap().is_empty());

    let (_, conv) = conversation(s, &wa, "15550001").await;
    let routed = s
        .mark_event_routed(wa.tenant.id, first.record.id, Some(conv.id), t0() + mins(3))
        .await
        .unwrap();
    assert_eq!(routed.routed_at, Some(t0() + mins(3)));
    assert_eq!(routed.conversation_id, Some(conv.id));
    // Marking again keeps the first mark.
    let again = s
        .mark_event_routed(wa.tenant.id, first.record.id, None, t0() + mins(9))
        .await
        .unwrap();
    assert_eq!(again, routed);
    assert_eq!(
        ids(s
            .list_unrouted_events(Some(&Platform::WhatsApp), 10)
            .await
            .unwrap()),
        vec![b.record.id]
    );
    assert_not_found(
        s.mark_event_routed(ig.tenant.id, b.record.id, None, t0())
            .await,
    );
    assert_not_found(s.get_event(ig.tenant.id, b.record.id).await);
    assert_eq!(
        s.find_event(ig.tenant.id, &Platform::WhatsApp, "wamid.A")
            .await
            .unwrap(),
        None
    );
}

pub async fn contact_channels_are_resolved_once(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let new = NewContactChannel {
        tenant_id: w.tenant.id,
        platform: Platform::WhatsApp,
        external_handle: "33612345678".into(),
        display_name: Some("Zoé".into()),
        created_at: t0(),
    };
    let a = s.insert_contact_channel(new.clone()).await.unwrap();
    assert!(a.created);
    let contact = s
        .get_contact(w.tenant.id, a.record.contact_id)
        .await
        .unwrap();
    assert_eq!(contact.display_name.as_deref(), Some("Zoé"));
    let b = s.insert_contact_channel(new.clone()).await.unwrap();
    assert!(!b.created);
    assert_eq!(b.record, a.record);
    assert_eq!(
        s.list_contact_channels(w.tenant.id, contact.id)
            .await
            .unwrap(),
        vec![a.record.clone()]
    );
    // The same handle for another tenant is another contact.
    let other = world(s, "Globex", Platform::Facebook, "page-9").await;
    let c = s
        .insert_contact_channel(NewContactChannel {
            tenant_id: other.tenant.id,
            ..new.clone()
        })
        .await
        .unwrap();
    assert!(c.created);
    assert_ne!(c.record.contact_id, a.record.contact_id);
    assert_not_found(s.get_contact(other.tenant.id, contact.id).await);
    assert!(
        s.list_contact_channels(other.tenant.id, contact.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_unknown(
        s.insert_contact_channel(NewContactChannel {
            tenant_id: TenantId::generate(),
            ..new
        })
        .await,
        "tenant",
    );
}

// ----------------------------------------------------------------- conversations

pub async fn conversations_and_messages(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (cc, conv) = conversation(s, &w, "33600000001").await;
    assert_eq!(conv.status, ConversationStatus::Open);
    assert_eq!(conv.last_message_at, None);
    let same = s
        .insert_open_conversation(t, cc.contact_id, w.channel.id, t0() + mins(1))
        .await
        .unwrap();
    assert!(!same.created);
    assert_eq!(same.record, conv);

    // Out-of-order inbound messages: last_message_at is the latest of them.
    let m2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.2"),
            t0() + mins(10),
        ))
        .await
        .unwrap();
    assert!(m2.created);
    assert_eq!(m2.record.channel_id, w.channel.id);
    let m1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.1"),
            t0() + mins(5),
        ))
        .await
        .unwrap();
    assert!(m1.created);
    assert_eq!(
        s.get_conversation(t, conv.id)
            .await
            .unwrap()
            .last_message_at,
        Some(t0() + mins(10))
    );
    // Duplicate provider id: the stored message, nothing new.
    let dup = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.2"),
            t0() + mins(50),
        ))
        .await
        .unwrap();
    assert!(!dup.created);
    assert_eq!(dup.record, m2.record);
    assert_eq!(
        s.get_conversation(t, conv.id)
            .await
            .unwrap()
            .last_message_at,
        Some(t0() + mins(10))
    );

    // Outbound reply, unique per inbound message.
    let mut reply = message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.out"),
        t0() + mins(12),
    );
    reply.in_reply_to = Some(m2.record.id);
    let r = s.insert_message(reply.clone()).await.unwrap();
    assert!(r.created);
    reply.provider_message_id = Some("wamid.out-2".into());
    let r2 = s.insert_message(reply).await.unwrap();
    assert!(
        !r2.created,
        "a second reply to the same inbound message is not stored"
    );
    assert_eq!(r2.record, r.record);
    // Messages without provider id are always stored.
    let n1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0() + mins(13),
        ))
        .await
        .unwrap();
    let n2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0() + mins(13),
        ))
        .await
        .unwrap();
    assert!(n1.created && n2.created);
    assert_ne!(n1.record.id, n2.record.id);

    assert_eq!(s.get_message(t, m1.record.id).await.unwrap(), m1.record);
    assert_eq!(
        s.find_message_by_provider_id(t, w.channel.id, "wamid.1")
            .await
            .unwrap(),
        Some(m1.record.clone())
    );
    let listed: Vec<_> = s
        .list_messages(t, conv.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        listed,
        vec![
            m1.record.id,
            m2.record.id,
            r.record.id,
            n1.record.id,
            n2.record.id
        ]
    );
    assert_eq!(s.list_messages(t, conv.id, 2).await.unwrap().len(), 2);
    let inbound: Vec<_> = s
        .list_messages_since(t, MessageDirection::Inbound, t0() + mins(6), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(inbound, vec![m2.record.id]);
    assert_eq!(
        s.list_messages_since(t, MessageDirection::Outbound, t0(), 10)
            .await
            .unwrap()
            .len(),
        3
    );

    let decision = s
        .insert_decision(NewAiDecision {
            tenant_id: t,
            subject: DecisionSubject::Message(m1.record.id),
            triage: Triage::Escalate,
            confidence: 1.0,
            rule_id: None,
            reason: "rule".into(),
            snapshot: json!({}),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let triaged = s
        .set_message_triage(t, m1.record.id, Triage::Escalate, 1.0, Some(decision.id))
        .await
        .unwrap();
    assert_eq!(triaged.triage, Some(Triage::Escalate));
    assert_eq!(triaged.confidence, Some(1.0));
    assert_eq!(triaged.ai_decision_id, Some(decision.id));
    assert_eq!(s.get_message(t, m1.record.id).await.unwrap(), triaged);

    // Closing makes the next open create a new conversation.
    let closed = s.close_conversation(t, conv.id).await.unwrap();
    assert_eq!(closed.status, ConversationStatus::Closed);
    let fresh = s
        .insert_open_conversation(t, cc.contact_id, w.channel.id, t0() + mins(60))
        .await
        .unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.record.id, conv.id);
    let open_ids: Vec<_> = s
        .list_conversations(t, Some(ConversationStatus::Open), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open_ids, vec![fresh.record.id]);
    let all: Vec<_> = s
        .list_conversations(t, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        all,
        vec![conv.id, fresh.record.id],
        "messaged first, never-messaged last"
    );

    // References must be the tenant's.
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    assert_unknown(
        s.insert_message(message(
            other.tenant.id,
            conv.id,
            MessageDirection::Inbound,
            Some("x"),
            t0(),
        ))
        .await,
        "conversation",
    );
    assert_unknown(
        s.insert_open_conversation(other.tenant.id, cc.contact_id, other.channel.id, t0())
            .await,
        "contact",
    );
    assert_unknown(
        s.insert_open_conversation(t, cc.contact_id, other.channel.id, t0())
            .await,
        "channel",
    );
    assert_not_found(s.get_conversation(other.tenant.id, conv.id).await);
    assert_not_found(s.close_conversation(other.tenant.id, conv.id).await);
    assert_not_found(
        s.set_message_triage(other.tenant.id, m1.record.id, Triage::Ignore, 1.0, None)
            .await,
    );
}

pub async fn message_delivery_status_is_monotonic(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (_, conv) = conversation(s, &w, "33600000001").await;
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Outbound,
        Some("wamid.out"),
        t0(),
    ))
    .await
    .unwrap();
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("wamid.in"),
        t0(),
    ))
    .await
    .unwrap();
    let status = |m: Option<Message>| m.and_then(|m| m.delivery_status);
    let up = |st| s.update_delivery_status(t, w.channel.id, "wamid.out", st);
    assert_eq!(
        status(up(DeliveryStatus::Delivered).await.unwrap()),
        Some(DeliveryStatus::Delivered)
    );
    // "sent" arriving after "delivered" does not move it back.
    assert_eq!(
        status(up(DeliveryStatus::Sent).await.unwrap()),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(
        status(up(DeliveryStatus::Read).await.unwrap()),
        Some(DeliveryStatus::Read)
    );
    assert_eq!(
        status(up(DeliveryStatus::Failed).await.unwrap()),
        Some(DeliveryStatus::Failed)
    );
    assert_eq!(
        status(up(DeliveryStatus::Read).await.unwrap()),
        Some(DeliveryStatus::Failed)
    );
    assert_eq!(
        s.update_delivery_status(t, w.channel.id, "unknown", DeliveryStatus::Read)
            .await
            .unwrap(),
        None
    );
    // Inbound messages have no delivery status to update.
    let inbound = s
        .update_delivery_status(t, w.channel.id, "wamid.in", DeliveryStatus::Read)
        .await
        .unwrap();
    assert_eq!(status(inbound), None);
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    assert_eq!(
        s.update_delivery_status(
            other.tenant.id,
            w.channel.id,
            "wamid.out",
            DeliveryStatus::Read
        )
        .await
        .unwrap(),
        None
    );
}

pub async fn concurrent_routing_writes_yield_one_row(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::WhatsApp, "pn-1").await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let w = Arc::clone(&w);
        tasks.push(tokio::spawn(async move {
            let s = &*store;
            let ev = s
                .insert_event(event(&w, "wamid.same", EventKind::Message, t0()))
                .await
                .unwrap();
            let cc = s
                .insert_contact_channel(NewContactChannel {
                    tenant_id: w.tenant.id,
                    platform: Platform::WhatsApp,
                    external_handle: "33699999999".into(),
                    display_name: None,
                    created_at: t0(),
                })
                .await
                .unwrap();
            let conv = s
                .insert_open_conversation(w.tenant.id, cc.record.contact_id, w.channel.id, t0())
                .await
                .unwrap();
            let msg = s
                .insert_message(message(
                    w.tenant.id,
                    conv.record.id,
                    MessageDirection::Inbound,
                    Some("wamid.same"),
                    t0() + mins(i),
                ))
                .await
                .unwrap();
            (ev, cc, conv, msg)
        }));
    }
    let mut created = [0; 4];
    let mut ids = [
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    ];
    for task in tasks {
        let (ev, cc, conv, msg) = task.await.unwrap();
        for (i, (c, id)) in [
            (ev.created, ev.record.id.as_uuid()),
            (cc.created, cc.record.id.as_uuid()),
            (conv.created, conv.record.id.as_uuid()),
            (msg.created, msg.record.id.as_uuid()),
        ]
        .into_iter()
        .enumerate()
        {
            created[i] += usize::from(c);
            ids[i].insert(id);
        }
    }
    assert_eq!(created, [1, 1, 1, 1], "exactly one caller creates each row");
    assert!(
        ids.iter().all(|s| s.len() == 1),
        "every caller sees the same row"
    );
}

// ----------------------------------------------------------------- routing

/// A message event from `sender` (its event id is the provider message id).
fn inbound_event(
    w: &World,
    event_id: &str,
    sender: &str,
    text: &str,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> NewWebhookEvent {
    NewWebhookEvent {
        sender_id: Some(sender.into()),
        sender_name: Some(format!("{sender} name")),
        text: Some(text.into()),
        occurred_at,
        ..event(w, event_id, EventKind::Message, received_at)
    }
}

/// Every inbound message of the tenant, oldest first.
async fn all_inbound(s: &dyn Store, tenant: TenantId) -> Vec<Message> {
    s.list_messages_since(
        tenant,
        MessageDirection::Inbound,
        t0() - Duration::days(3650),
        u32::MAX,
    )
    .await
    .unwrap()
}

pub async fn routing_turns_events_into_messages_statuses_and_comments(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let fb = world(s, "Acme FB", Platform::Facebook, "page-1").await;
    let post = published_post(s, &w, "launch").await;
    let pp = post.platform_post_id.clone().unwrap();
    // An outbound message the statuses name.
    let (_, out_conv) = conversation(s, &w, "33600000009").await;
    let outbound = s
        .insert_message(message(
            w.tenant.id,
            out_conv.id,
            MessageDirection::Outbound,
            Some("wamid.out"),
            t0(),
        ))
        .await
        .unwrap()
        .record;

    let at = t0() + mins(60);
    let mut evs = vec![
        // Received in this order; A's second message happened earlier.
        inbound_event(&w, "m1", "A", "first", t0() + mins(10), t0() + mins(1)),
        inbound_event(&w, "m2", "A", "earlier", t0() + mins(5), t0() + mins(2)),
        NewWebhookEvent {
            text: None,
            has_media: true,
            ..inbound_event(&w, "m3", "B", "", t0() + mins(3), t0() + mins(3))
        },
        NewWebhookEvent {
            sender_id: None,
            ..inbound_event(&w, "m4", "C", "no sender", t0(), t0() + mins(4))
        },
    ];
    for (id, status, minute) in [
        ("s1", DeliveryStatus::Read, 5),
        ("s2", DeliveryStatus::Delivered, 6),
    ] {
        evs.push(NewWebhookEvent {
            delivery_status: Some(status),
            target_id: Some("wamid.out".into()),
            ..event(&w, id, EventKind::Status, t0() + mins(minute))
        });
    }
    evs.push(NewWebhookEvent {
        delivery_status: Some(DeliveryStatus::Read),
        target_id: Some("wamid.unknown".into()),
        ..event(&w, "s3", EventKind::Status, t0() + mins(7))
    });
    evs.push(NewWebhookEvent {
        target_id: Some(pp.clone()),
        text: Some("Nice post".into()),
        ..event(&w, "c1", EventKind::Comment, t0() + mins(8))
    });
    evs.push(NewWebhookEvent {
        target_id: Some(pp.clone()),
        parent_id: Some("c1".into()),
        text: Some("Agreed".into()),
        ..event(&w, "c2", EventKind::CommentReply, t0() + mins(9))
    });
    evs.push(NewWebhookEvent {
        target_id: Some("pp-not-ours".into()),
        ..event(&w, "c3", EventKind::Comment, t0() + mins(10))
    });
    evs.push(event(&w, "o1", EventKind::Other, t0() + mins(11)));
    // Another platform's event, left alone by a platform filter.
    evs.push(inbound_event(&fb, "f1", "A", "hello", t0(), t0()));
    for e in evs {
        s.insert_event(e).await.unwrap();
    }

    // Oldest first, up to the limit, one platform.
    let report = s
        .route_unrouted_events(Some(&Platform::WhatsApp), 2, at)
        .await
        .unwrap();
    assert_eq!(report.processed, 2);
    assert_eq!(report.messages_created, 2);
    let report = s
        .route_unrouted_events(Some(&Platform::WhatsApp), 100, at)
        .await
        .unwrap();
    assert_eq!(
        report,
        RoutingReport {
            processed: 9,
            messages_created: 1,
            comments_created: 3,
            external_posts_created: 1,
        }
    );
    let unrouted = s.list_unrouted_events(None, 10).await.unwrap();
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0].event_id, "f1");

    // Messages: one per message event with a sender, text and media kept.
    let inbound = all_inbound(s, w.tenant.id).await;
    let pids: Vec<_> = inbound
        .iter()
        .map(|m| m.provider_message_id.clone().unwrap())
        .collect();
    assert_eq!(pids, vec!["m3", "m2", "m1"]);
    let m3 = &inbound[0];
    assert!(m3.has_media);
    assert_eq!(m3.text, "");
    assert_eq!(m3.created_at, t0() + mins(3));
    assert_eq!(m3.stored_at, at);
    // A's two messages share one conversation, whose last_message_at is the
    // later message time although it arrived first.
    let conv_a = s
        .get_conversation(w.tenant.id, inbound[2].conversation_id)
        .await
        .unwrap();
    assert_eq!(inbound[1].conversation_id, conv_a.id);
    assert_eq!(conv_a.last_message_at, Some(t0() + mins(10)));
    assert_eq!(conv_a.channel_id, w.channel.id);
    assert_eq!(conv_a.created_at, at);
    let contact = s.get_contact(w.tenant.id, conv_a.contact_id).await.unwrap();
    assert_eq!(contact.display_name.as_deref(), Some("A name"));
    assert_ne!(m3.conversation_id, conv_a.id);

    let ev = |id: &'static str| {
        let store = Arc::clone(&store);
        let tenant = w.tenant.id;
        async move {
            store
                .find_event(tenant, &Platform::WhatsApp, id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(ev("m1").await.conversation_id, Some(conv_a.id));
    assert_eq!(ev("m1").await.routed_at, Some(at));
    assert_eq!(ev("m4").await.conversation_id, None);
    assert!(ev("m4").await.routed_at.is_some());
    assert_eq!(ev("s1").await.conversation_id, Some(out_conv.id));
    assert_eq!(ev("s3").await.conversation_id, None);
    assert_eq!(ev("c1").await.conversation_id, None);
    assert!(ev("o1").await.routed_at.is_some());

    // Statuses: the highest wins whatever the order.
    let out = s.get_message(w.tenant.id, outbound.id).await.unwrap();
    assert_eq!(out.delivery_status, Some(DeliveryStatus::Read));

    // Comments on the known post, threads kept; the comment on a post made
    // elsewhere records that post once, as an external post, and is stored
    // on it.
    let external = s
        .find_post_by_platform_id(w.tenant.id, w.channel.id, "pp-not-ours")
        .await
        .unwrap()
        .expect("the external post is recorded");
    assert_eq!(external.origin, PostOrigin::External);
    assert_eq!(external.status, PostStatus::Published);
    assert_eq!(
        external.publish_at,
        t0() + mins(10),
        "its first comment's time"
    );
    assert_eq!(
        (
            external.published_at,
            external.next_check_at,
            external.stop_at
        ),
        (None, None, None),
        "known from a comment only: not polled"
    );
    assert_eq!(external.created_at, at);
    let on_external = s.list_comments(w.tenant.id, external.id, 10).await.unwrap();
    assert_eq!(on_external.len(), 1);
    assert_eq!(on_external[0].platform_comment_id, "c3");
    assert_eq!(on_external[0].channel_id, w.channel.id);
    assert_eq!(
        s.find_post_by_platform_id(w.tenant.id, w.channel.id, &pp)
            .await
            .unwrap()
            .map(|p| (p.id, p.origin)),
        Some((post.id, PostOrigin::Scheduled))
    );
    let comments = s.list_comments(w.tenant.id, post.id, 10).await.unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].platform_comment_id, "c1");
    assert_eq!(comments[0].text, "Nice post");
    assert_eq!(comments[0].author_id.as_deref(), Some("15550001"));
    assert_eq!(
        comments[1].parent_platform_comment_id.as_deref(),
        Some("c1")
    );
    assert_eq!(comments[1].created_at, t0() + mins(9));

    // Routing again does nothing.
    let again = s.route_unrouted_events(None, 100, at).await.unwrap();
    assert_eq!(again.processed, 1, "only the Facebook event was left");
    assert_eq!(
        s.route_unrouted_events(None, 100, at).await.unwrap(),
        RoutingReport::default()
    );

    // Single-event routing: the same rules; a routed event stays as it was.
    let later = at + mins(30);
    let routed = s
        .route_event(w.tenant.id, ev("m1").await.id, later)
        .await
        .unwrap();
    assert_eq!(routed.routed_at, Some(at));
    assert_eq!(routed.conversation_id, Some(conv_a.id));
    assert_not_found(s.route_event(fb.tenant.id, ev("m1").await.id, later).await);

    // A closed conversation: the next message opens a new one.
    s.close_conversation(w.tenant.id, conv_a.id).await.unwrap();
    let m5 = s
        .insert_event(inbound_event(&w, "m5", "A", "back", t0() + mins(70), later))
        .await
        .unwrap()
        .record;
    let routed = s.route_event(w.tenant.id, m5.id, later).await.unwrap();
    assert_eq!(routed.routed_at, Some(later));
    let new_conv = routed.conversation_id.unwrap();
    assert_ne!(new_conv, conv_a.id);
    let new_conv = s.get_conversation(w.tenant.id, new_conv).await.unwrap();
    assert_eq!(new_conv.contact_id, conv_a.contact_id);
    assert_eq!(new_conv.status, ConversationStatus::Open);
    assert_eq!(new_conv.last_message_at, Some(t0() + mins(70)));

    // A message stored already (by any path): routing only marks the event.
    let (_, conv_d) = conversation(s, &w, "D").await;
    let pre = s
        .insert_message(message(
            w.tenant.id,
            conv_d.id,
            MessageDirection::Inbound,
            Some("m6"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let m6 = s
        .insert_event(inbound_event(&w, "m6", "Z", "dup", t0(), later))
        .await
        .unwrap()
        .record;
    let report = s.route_unrouted_events(None, 10, later).await.unwrap();
    assert_eq!(
        report,
        RoutingReport {
            processed: 1,
            messages_created: 0,
            comments_created: 0,
            external_posts_created: 0,
        }
    );
    let m6 = s.get_event(w.tenant.id, m6.id).await.unwrap();
    assert_eq!(m6.conversation_id, Some(pre.conversation_id));
    let handles = s
        .list_contact_channels(w.tenant.id, conv_d.contact_id)
        .await
        .unwrap();
    assert_eq!(handles.len(), 1, "no contact is created for sender Z");
    assert_eq!(all_inbound(s, w.tenant.id).await.len(), 5);
}

pub async fn concurrent_routing_routes_each_event_once(store: Arc<dyn Store>) {
    let w = Arc::new(world(&*store, "Acme", Platform::WhatsApp, "pn-1").await);
    let n = 120;
    let mut ids = Vec::new();
    for i in 0..n {
        let e = inbound_event(
            &w,
            &format!("wamid.{i}"),
            &format!("sender-{}", i % 12),
            "hello",
            t0() + Duration::seconds(i),
            t0() + Duration::seconds((i * 7) % n),
        );
        ids.push(store.insert_event(e).await.unwrap().record.id);
    }
    let at = t0() + mins(60);
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let store = Arc::clone(&store);
        let w = Arc::clone(&w);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut total = RoutingReport::default();
            if worker == 0 {
                // One worker routes single events, the others in batches.
                for id in ids.iter().rev().take(40) {
                    store.route_event(w.tenant.id, *id, at).await.unwrap();
                }
            }
            loop {
                let r = store.route_unrouted_events(None, 7, at).await.unwrap();
                if r.processed == 0 {
                    break total;
                }
                total.add(r);
            }
        }));
    }
    let mut total = RoutingReport::default();
    for t in tasks {
        total.add(t.await.unwrap());
    }
    let s = &*store;
    assert!(s.list_unrouted_events(None, 10).await.unwrap().is_empty());
    let inbound = all_inbound(s, w.tenant.id).await;
    assert_eq!(inbound.len(), n as usize, "exactly one message per event");
    let distinct: HashSet<_> = inbound
        .iter()
        .map(|m| m.provider_message_id.clone())
        .collect();
    assert_eq!(distinct.len(), n as usize);
    // Batches never count an event twice (single routing is not counted).
    assert!(total.processed <= n as u64);
    let convs = s.list_conversations(w.tenant.id, None, 100).await.unwrap();
    assert_eq!(convs.len(), 12, "one conversation per sender");
    for conv in convs {
        let msgs = s.list_messages(w.tenant.id, conv.id, 100).await.unwrap();
        assert_eq!(msgs.len(), 10);
        assert_eq!(
            conv.last_message_at,
            msgs.iter().map(|m| m.created_at).max()
        );
    }
    for id in ids {
        let e = s.get_event(w.tenant.id, id).await.unwrap();
        assert_eq!(e.routed_at, Some(at));
        assert!(e.conversation_id.is_some());
    }
}

pub async fn triage_queues_sent_records_and_comment_replies(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let other = world(s, "Globex", Platform::WhatsApp, "pn-2").await;
    let (_, conv) = conversation(s, &w, "A").await;
    let mut inbound = Vec::new();
    for i in 0..3 {
        inbound.push(
            s.insert_message(message(
                w.tenant.id,
                conv.id,
                MessageDirection::Inbound,
                Some(&format!("in-{i}")),
                t0() + mins(i),
            ))
            .await
            .unwrap()
            .record,
        );
    }
    let out = s
        .insert_message(NewMessage {
            in_reply_to: Some(inbound[0].id),
            ..message(w.tenant.id, conv.id, MessageDirection::Outbound, None, t0())
        })
        .await
        .unwrap()
        .record;
    let untriaged = s.list_untriaged_messages(w.tenant.id, 10).await.unwrap();
    assert_eq!(
        untriaged.iter().map(|m| m.id).collect::<Vec<_>>(),
        inbound.iter().map(|m| m.id).collect::<Vec<_>>(),
        "inbound only, oldest first"
    );
    assert_eq!(
        s.list_untriaged_messages(w.tenant.id, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.list_untriaged_messages(other.tenant.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.set_message_triage(w.tenant.id, inbound[1].id, Triage::AutoReply, 0.9, None)
        .await
        .unwrap();
    s.set_message_triage(w.tenant.id, inbound[2].id, Triage::Ignore, 1.0, None)
        .await
        .unwrap();
    assert_eq!(
        s.list_untriaged_messages(w.tenant.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let auto = s
        .list_messages_by_triage(w.tenant.id, Triage::AutoReply, t0(), 10)
        .await
        .unwrap();
    assert_eq!(
        auto.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![inbound[1].id]
    );
    assert!(
        s.list_messages_by_triage(w.tenant.id, Triage::AutoReply, t0() + mins(2), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Recording a send: provider id once, status forward only.
    let sent = s
        .record_message_sent(
            w.tenant.id,
            out.id,
            Some("wamid.sent"),
            DeliveryStatus::Sent,
        )
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id.as_deref(), Some("wamid.sent"));
    assert_eq!(sent.delivery_status, Some(DeliveryStatus::Sent));
    assert_eq!(
        s.find_message_by_provider_id(w.tenant.id, w.channel.id, "wamid.sent")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(out.id)
    );
    let again = s
        .record_message_sent(
            w.tenant.id,
            out.id,
            Some("wamid.other"),
            DeliveryStatus::Pending,
        )
        .await
        .unwrap();
    assert_eq!(again.provider_message_id.as_deref(), Some("wamid.sent"));
    assert_eq!(again.delivery_status, Some(DeliveryStatus::Sent));
    let out2 = s
        .insert_message(message(
            w.tenant.id,
            conv.id,
            MessageDirection::Outbound,
            None,
            t0(),
        ))
        .await
        .unwrap()
        .record;
    assert_conflict(
        s.record_message_sent(
            w.tenant.id,
            out2.id,
            Some("wamid.sent"),
            DeliveryStatus::Sent,
        )
        .await,
    );
    assert_not_found(
        s.record_message_sent(other.tenant.id, out.id, None, DeliveryStatus::Sent)
            .await,
    );
    assert_invalid(
        s.record_message_sent(w.tenant.id, out.id, Some(""), DeliveryStatus::Sent)
            .await,
        "provider_message_id",
    );

    // Comments: the triage queue and the reply claim.
    let post = published_post(s, &w, "launch").await;
    let mut comments = Vec::new();
    for i in 0..2 {
        comments.push(
            s.insert_comment(NewComment {
                tenant_id: w.tenant.id,
                post_id: post.id,
                platform_comment_id: format!("c{i}"),
                parent_platform_comment_id: None,
                author_id: None,
                author_name: None,
                text: "nice".into(),
                created_at: t0() + mins(i),
                stored_at: t0(),
            })
            .await
            .unwrap()
            .record,
        );
    }
    assert_eq!(
        s.list_untriaged_comments(w.tenant.id, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    s.set_comment_triage(w.tenant.id, comments[0].id, Triage::AutoReply, 0.8, None)
        .await
        .unwrap();
    let queue = s.list_untriaged_comments(w.tenant.id, 10).await.unwrap();
    assert_eq!(
        queue.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![comments[1].id]
    );
    let auto = s
        .list_comments_by_triage(w.tenant.id, Triage::AutoReply, t0(), 10)
        .await
        .unwrap();
    assert_eq!(
        auto.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![comments[0].id]
    );

    let claim = |text: &str| NewCommentReply {
        tenant_id: w.tenant.id,
        comment_id: comments[0].id,
        text: text.into(),
        created_at: t0(),
    };
    let first = s.insert_comment_reply(claim("Thanks!")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.record.status, DeliveryStatus::Pending);
    let second = s
        .insert_comment_reply(claim("Thanks again!"))
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    let done = s
        .finish_comment_reply(
            w.tenant.id,
            comments[0].id,
            DeliveryStatus::Sent,
            Some("reply-1"),
            None,
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(done.status, DeliveryStatus::Sent);
    assert_eq!(done.platform_comment_id.as_deref(), Some("reply-1"));
    assert_eq!(done.updated_at, t0() + mins(1));
    assert_eq!(
        s.find_comment_reply(w.tenant.id, comments[0].id)
            .await
            .unwrap(),
        Some(done)
    );
    assert_eq!(
        s.find_comment_reply(other.tenant.id, comments[0].id)
            .await
            .unwrap(),
        None
    );
    assert_not_found(
        s.finish_comment_reply(
            w.tenant.id,
            comments[1].id,
            DeliveryStatus::Failed,
            None,
            Some("boom"),
            t0(),
        )
        .await,
    );
    assert_unknown(
        s.insert_comment_reply(NewCommentReply {
            tenant_id: other.tenant.id,
            ..claim("x")
        })
        .await,
        "comment",
    );
    assert_invalid(
        s.insert_comment_reply(NewCommentReply {
            comment_id: comments[1].id,
            ..claim("a\0b")
        })
        .await,
        "text",
    );
}

// ----------------------------------------------------------------- posts

pub async fn posts_occurrences_and_patches(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::LinkedIn, "urn:li:organization:1").await;
    let t = w.tenant.id;
    let later = s
        .insert_post(post(&w, "later", t0() + mins(60)))
        .await
        .unwrap();
    assert!(later.created);
    let p = later.record;
    assert_eq!(p.status, PostStatus::Queued);
    assert_eq!(p.retry_count, 0);
    assert_eq!(s.get_post(t, p.id).await.unwrap(), p);
    let earlier = s
        .insert_post(post(&w, "earlier", t0()))
        .await
        .unwrap()
        .record;

    // A series template and its occurrences, unique by (series, instant).
    let mut template = post(&w, "weekly", t0() + mins(30));
    template.recurrence = Some(Recurrence {
        rrule: "FREQ=WEEKLY;BYDAY=MO".into(),
        dtstart: NaiveDate::from_ymd_opt(2026, 3, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        time_zone: chrono_tz::Europe::Paris,
    });
    let series = s.insert_post(template).await.unwrap().record;
    assert_eq!(
        series.recurrence.as_ref().unwrap().rrule,
        "FREQ=WEEKLY;BYDAY=MO"
    );
    let occurrence = |at: DateTime<Utc>| {
        let mut o = post(&w, "weekly", at);
        o.series_id = Some(series.id);
        o.occurrence_at = Some(at);
        o
    };
    let o1 = s
        .insert_post(occurrence(t0() + Duration::days(1)))
        .await
        .unwrap();
    assert!(o1.created);
    let o1again = s
        .insert_post(occurrence(t0() + Duration::days(1)))
        .await
        .unwrap();
    assert!(!o1again.created);
    assert_eq!(o1again.record, o1.record);
    let o2 = s
        .insert_post(occurrence(t0() + Duration::days(8)))
        .await
        .unwrap();
    assert!(o2.created);
    let mut orphan = occurrence(t0());
    orphan.series_id = Some(PostId::generate());
    assert_unknown(s.insert_post(orphan).await, "post");

    let all: Vec<_> = s
        .list_posts(t, PostFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        all,
        vec![earlier.id, series.id, p.id, o1.record.id, o2.record.id]
    );
    let of_series: Vec<_> = s
        .list_posts(
            t,
            PostFilter {
                series_id: Some(series.id),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(of_series, vec![o1.record.id, o2.record.id]);
    let window: Vec<_> = s
        .list_posts(
            t,
            PostFilter {
                from: Some(t0() + mins(30)),
                to: Some(t0() + Duration::days(1)),
                limit: Some(5),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(window, vec![series.id, p.id]);
    assert_eq!(
        s.list_posts(
            t,
            PostFilter {
                limit: Some(2),
                ..PostFilter::default()
            }
        )
        .await
        .unwrap()
        .len(),
        2
    );
    let queued = [
        PostStatus::Queued,
        PostStatus::Publishing,
        PostStatus::Published,
    ];
    assert_eq!(
        s.count_posts(t, w.channel.id, t0(), t0() + mins(61), &queued)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_posts(t, w.channel.id, t0(), t0() + mins(60), &queued)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            t0(),
            t0() + mins(61),
            &[PostStatus::Failed]
        )
        .await
        .unwrap(),
        0
    );

    // Patches: set and clear, guards.
    let patched = s
        .update_post(
            t,
            p.id,
            PostPatch {
                error_message: Some(Some("HTTP 500".into())),
                retry_count: Some(1),
                next_attempt_at: Some(Some(t0() + mins(61))),
                content: Some(Content::text("edited")),
                publish_at: Some(t0() + mins(90)),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(patched.error_message.as_deref(), Some("HTTP 500"));
    assert_eq!(patched.retry_count, 1);
    assert_eq!(patched.content.text, "edited");
    assert_eq!(patched.publish_at, t0() + mins(90));
    assert_eq!(patched.updated_at, t0() + mins(1));
    assert_eq!(s.get_post(t, p.id).await.unwrap(), patched);
    let cleared = s
        .update_post(
            t,
            p.id,
            PostPatch {
                error_message: Some(None),
                next_attempt_at: Some(None),
                expect_status: Some(PostStatus::Queued),
                ..PostPatch::default()
            },
            t0() + mins(2),
        )
        .await
        .unwrap();
    assert_eq!(cleared.error_message, None);
    assert_eq!(cleared.next_attempt_at, None);
    assert_eq!(cleared.retry_count, 1);
    let guarded = s
        .update_post(
            t,
            p.id,
            PostPatch {
                status: Some(PostStatus::Cancelled),
                expect_status: Some(PostStatus::Publishing),
                ..PostPatch::default()
            },
            t0() + mins(3),
        )
        .await;
    assert!(
        matches!(guarded, Err(StorageError::Precondition { .. })),
        "{guarded:?}"
    );
    let lease_guarded = s
        .update_post(
            t,
            p.id,
            PostPatch {
                status: Some(PostStatus::Published),
                expect_lease_owner: Some("worker-1".into()),
                ..PostPatch::default()
            },
            t0() + mins(3),
        )
        .await;
    assert!(
        matches!(lease_guarded, Err(StorageError::Precondition { .. })),
        "{lease_guarded:?}"
    );
    assert_eq!(
        s.get_post(t, p.id).await.unwrap(),
        cleared,
        "a failed guard writes nothing"
    );

    let other = world(s, "Globex", Platform::LinkedIn, "urn:li:organization:2").await;
    assert_not_found(s.get_post(other.tenant.id, p.id).await);
    assert_not_found(
        s.update_post(other.tenant.id, p.id, PostPatch::default(), t0())
            .await,
    );
    assert_eq!(
        s.count_posts(
            other.tenant.id,
            w.channel.id,
            t0(),
            t0() + Duration::days(30),
            &queued
        )
        .await
        .unwrap(),
        0
    );
}

pub async fn claims_leases_and_stale_release(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::Facebook, "page-1").await;
    let b = world(s, "Globex", Platform::Facebook, "page-2").await;
    // p3 is on a third channel: a claimer never takes a channel another
    // claimer is publishing on.
    let c = world(s, "Initech", Platform::Facebook, "page-3").await;
    let p1 = s
        .insert_post(post(&a, "1", t0() - mins(2)))
        .await
        .unwrap()
        .record;
    let p2 = s
        .insert_post(post(&b, "2", t0() - mins(1)))
        .await
        .unwrap()
        .record;
    let p3 = s.insert_post(post(&c, "3", t0())).await.unwrap().record;
    let future = s
        .insert_post(post(&a, "future", t0() + mins(1)))
        .await
        .unwrap()
        .record;
    // Due, but its next attempt is later (backoff).
    let backoff = s
        .insert_post(post(&a, "backoff", t0() - mins(5)))
        .await
        .unwrap()
        .record;
    s.update_post(
        a.tenant.id,
        backoff.id,
        PostPatch {
            next_attempt_at: Some(Some(t0() + mins(10))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    // Cancelled posts are never claimed.
    let cancelled = s
        .insert_post(post(&a, "cancelled", t0() - mins(9)))
        .await
        .unwrap()
        .record;
    s.update_post(
        a.tenant.id,
        cancelled.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();

    let lease = Duration::minutes(5);
    let first = s.claim_due_posts(t0(), 2, "worker-a", lease).await.unwrap();
    assert_eq!(
        first.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p1.id, p2.id]
    );
    for p in &first {
        assert_eq!(p.status, PostStatus::Publishing);
        assert_eq!(p.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(p.lease_expires_at, Some(t0() + lease));
    }
    let second = s
        .claim_due_posts(t0(), 10, "worker-b", lease)
        .await
        .unwrap();
    assert_eq!(second.iter().map(|p| p.id).collect::<Vec<_>>(), vec![p3.id]);
    assert!(
        s.claim_due_posts(t0(), 10, "worker-c", lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_due_posts(t0(), 0, "worker-c", lease)
            .await
            .unwrap()
            .is_empty()
    );
    let later = s
        .claim_due_posts(t0() + mins(10), 10, "worker-c", lease)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![backoff.id, future.id]
    );

    // The holder completes p1 under its lease; another owner is refused.
    let stolen = s
        .update_post(
            a.tenant.id,
            p1.id,
            PostPatch {
                status: Some(PostStatus::Published),
                expect_lease_owner: Some("worker-b".into()),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await;
    assert!(matches!(stolen, Err(StorageError::Precondition { .. })));
    let done = s
        .update_post(
            a.tenant.id,
            p1.id,
            PostPatch {
                status: Some(PostStatus::Published),
                release_lease: true,
                expect_lease_owner: Some("worker-a".into()),
                expect_status: Some(PostStatus::Publishing),
                ..PostPatch::default()
            },
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(done.lease_owner, None);
    assert_eq!(done.lease_expires_at, None);

    // Leases not yet expired stay; expired ones return to the queue.
    assert_eq!(s.release_stale_leases(t0() + lease).await.unwrap(), 0);
    assert_eq!(
        s.release_stale_leases(t0() + lease + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    let p2_now = s.get_post(b.tenant.id, p2.id).await.unwrap();
    assert_eq!(p2_now.status, PostStatus::Queued);
    assert_eq!(p2_now.lease_owner, None);
    assert_eq!(p2_now.lease_expires_at, None);
    assert_eq!(
        s.get_post(a.tenant.id, p1.id).await.unwrap().status,
        PostStatus::Published
    );
    let reclaimed = s
        .claim_due_posts(t0() + mins(6), 10, "worker-d", lease)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2.id, p3.id]
    );
    assert_eq!(
        s.get_post(a.tenant.id, cancelled.id).await.unwrap().status,
        PostStatus::Cancelled
    );
}

pub async fn concurrent_claims_claim_every_post_exactly_once(store: Arc<dyn Store>) {
    const POSTS: usize = 1_000;
    let w = world(&*store, "Acme", Platform::Facebook, "page-1").await;
    for i in 0..POSTS {
        let at = t0() - Duration::seconds(i as i64);
        store
            .insert_post(post(&w, &format!("post {i}"), at))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due_posts(t0(), 25, &owner, Duration::minutes(5))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(
                    batch
                        .iter()
                        .all(|p| p.lease_owner.as_deref() == Some(owner.as_str()))
                );
                mine.extend(batch.into_iter().map(|p| p.id));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "post {id} claimed twice");
        }
    }
    assert_eq!(total, POSTS);
    assert_eq!(seen.len(), POSTS);
    let still_queued = store
        .list_posts(
            w.tenant.id,
            PostFilter {
                status: Some(PostStatus::Queued),
                ..PostFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(still_queued.is_empty());
}

pub async fn post_runs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let p = s.insert_post(post(&w, "x", t0())).await.unwrap().record;
    let run1 = s
        .insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(run1.status, PostRunStatus::Running);
    assert_eq!(run1.finished_at, None);
    assert_conflict(
        s.insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await,
    );
    assert_invalid(
        s.insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 0,
            started_at: t0(),
        })
        .await,
        "attempt",
    );
    let failed = s
        .finish_post_run(
            w.tenant.id,
            run1.id,
            PostRunStatus::Failed,
            Some("HTTP 503".into()),
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, PostRunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("HTTP 503"));
    assert_eq!(failed.finished_at, Some(t0() + mins(1)));
    let run2 = s
        .insert_post_run(NewPostRun {
            tenant_id: w.tenant.id,
            post_id: p.id,
            attempt: 2,
            started_at: t0() + mins(2),
        })
        .await
        .unwrap();
    let ok = s
        .finish_post_run(
            w.tenant.id,
            run2.id,
            PostRunStatus::Success,
            None,
            t0() + mins(3),
        )
        .await
        .unwrap();
    assert_eq!(
        s.list_post_runs(w.tenant.id, p.id).await.unwrap(),
        vec![failed, ok]
    );
    let other = world(s, "Globex", Platform::Instagram, "ig-2").await;
    assert!(
        s.list_post_runs(other.tenant.id, p.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.finish_post_run(other.tenant.id, run2.id, PostRunStatus::Failed, None, t0())
            .await,
    );
    assert_unknown(
        s.insert_post_run(NewPostRun {
            tenant_id: other.tenant.id,
            post_id: p.id,
            attempt: 3,
            started_at: t0(),
        })
        .await,
        "post",
    );
}

pub async fn polling_queue(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Instagram, "ig-1").await;
    let a = published_post(s, &w, "a").await;
    let b = published_post(s, &w, "b").await;
    // b is next polled later; a queued post is never polled.
    s.update_post(
        w.tenant.id,
        b.id,
        PostPatch {
            next_check_at: Some(Some(t0() + mins(5))),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    s.insert_post(post(&w, "queued", t0())).await.unwrap();
    let ids = |v: Vec<ScheduledPost>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_posts_due_for_polling(t0(), 10).await.unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 10)
            .await
            .unwrap()),
        vec![a.id, b.id]
    );
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 1)
            .await
            .unwrap()),
        vec![a.id]
    );
    // At stop_at, polling stops.
    let stop = t0() + Duration::days(7);
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(stop - Duration::seconds(1), 10)
            .await
            .unwrap())
        .len(),
        2
    );
    assert!(
        s.list_posts_due_for_polling(stop, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Cleared next_check_at: never again.
    s.update_post(
        w.tenant.id,
        a.id,
        PostPatch {
            next_check_at: Some(None),
            last_check_at: Some(Some(t0() + mins(5))),
            ..PostPatch::default()
        },
        t0() + mins(5),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(s
            .list_posts_due_for_polling(t0() + mins(5), 10)
            .await
            .unwrap()),
        vec![b.id]
    );
}

// ----------------------------------------------------------------- comments

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
    };
    assert_eq!(s.save_checkpoint(cp.clone()).await.unwrap(), cp);
    let cp2 = CommentCheckpoint {
        last_cursor: None,
        updated_at: t0() + mins(10),
        ..cp.clone()
    };
    assert_eq!(s.save_checkpoint(cp2.clone()).await.unwrap(), cp2);
    assert_eq!(s.get_checkpoint(t, p.id).await.unwrap(), Some(cp2));

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

// ----------------------------------------------------------------- triage data

pub async fn rules_examples_decisions_and_ai_control(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let rule = |name: &str, rule_type: RuleType, priority: i32| NewAiRule {
        tenant_id: t,
        rule_type,
        name: name.into(),
        keywords: vec!["remboursement".into(), "mise en demeure".into()],
        patterns: vec![r"(?i)\bcommande\s+\d+".into()],
        confidence_min: (rule_type == RuleType::Auto).then_some(0.8),
        enabled: true,
        priority,
        at: t0(),
    };
    let auto = s.create_rule(rule("faq", RuleType::Auto, 5)).await.unwrap();
    let esc = s
        .create_rule(rule("legal", RuleType::Escalate, 1))
        .await
        .unwrap();
    let deny = s
        .create_rule(rule("spam", RuleType::Deny, 1))
        .await
        .unwrap();
    let esc2 = s
        .create_rule(rule("angry", RuleType::Escalate, 1))
        .await
        .unwrap();
    assert_eq!(
        auto.keywords,
        vec!["remboursement".to_owned(), "mise en demeure".to_owned()]
    );
    assert_eq!(auto.confidence_min, Some(0.8));
    assert_eq!(s.get_rule(t, auto.id).await.unwrap(), auto);
    assert_conflict(s.create_rule(rule("faq", RuleType::Deny, 9)).await);
    let order: Vec<_> = s
        .list_rules(t, false)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(order, vec!["spam", "angry", "legal", "faq"]);

    let mut disabled = rule("faq", RuleType::Auto, 5);
    disabled.enabled = false;
    disabled.at = t0() + mins(1);
    let updated = s.update_rule(auto.id, disabled).await.unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.created_at, auto.created_at);
    assert_eq!(updated.updated_at, t0() + mins(1));
    assert_conflict(
        s.update_rule(auto.id, rule("legal", RuleType::Auto, 5))
            .await,
    );
    let enabled: Vec<_> = s
        .list_rules(t, true)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(enabled, vec![deny.id, esc2.id, esc.id]);
    s.delete_rule(t, esc2.id).await.unwrap();
    assert_not_found(s.delete_rule(t, esc2.id).await);
    assert_not_found(s.get_rule(t, esc2.id).await);

    let ex1 = s
        .add_ignore_example(t, "merci beaucoup !", t0())
        .await
        .unwrap();
    let ex2 = s.add_ignore_example(t, "👍", t0() + mins(1)).await.unwrap();
    assert_eq!(
        s.list_ignore_examples(t).await.unwrap(),
        vec![ex1.clone(), ex2.clone()]
    );
    s.delete_ignore_example(t, ex1.id).await.unwrap();
    assert_eq!(s.list_ignore_examples(t).await.unwrap(), vec![ex2]);
    assert_not_found(s.delete_ignore_example(t, ex1.id).await);

    // Decisions: one per subject.
    let (_, conv) = conversation(s, &w, "336").await;
    let m1 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("a"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let m2 = s
        .insert_message(message(
            t,
            conv.id,
            MessageDirection::Inbound,
            Some("b"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let decide = |subject, triage, at| NewAiDecision {
        tenant_id: t,
        subject,
        triage,
        confidence: 1.0,
        rule_id: Some(esc.id),
        reason: "rule".into(),
        snapshot: json!({"text": "remboursement", "rules": ["legal"]}),
        created_at: at,
    };
    let d1 = s
        .insert_decision(decide(
            DecisionSubject::Message(m1.id),
            Triage::Escalate,
            t0(),
        ))
        .await
        .unwrap();
    assert!(d1.created);
    assert_eq!(d1.record.snapshot["rules"][0], "legal");
    let again = s
        .insert_decision(decide(
            DecisionSubject::Message(m1.id),
            Triage::AutoReply,
            t0() + mins(1),
        ))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record, d1.record);
    let d2 = s
        .insert_decision(decide(
            DecisionSubject::Message(m2.id),
            Triage::Ignore,
            t0() + mins(2),
        ))
        .await
        .unwrap()
        .record;
    assert_eq!(s.get_decision(t, d2.id).await.unwrap(), d2);
    assert_eq!(
        s.find_decision(t, DecisionSubject::Message(m1.id))
            .await
            .unwrap(),
        Some(d1.record.clone())
    );
    assert_eq!(
        s.list_decisions(t, None, 10).await.unwrap(),
        vec![d2.clone(), d1.record.clone()]
    );
    assert_eq!(
        s.list_decisions(t, Some(Triage::Escalate), 10)
            .await
            .unwrap(),
        vec![d1.record.clone()]
    );
    assert!(
        s.list_decisions(t, Some(Triage::AutoReply), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.list_decisions(t, None, 1).await.unwrap(), vec![d2]);
    assert_unknown(
        s.insert_decision(decide(
            DecisionSubject::Comment(CommentId::generate()),
            Triage::Ignore,
            t0(),
        ))
        .await,
        "comment",
    );
    let mut nan = decide(DecisionSubject::Message(m2.id), Triage::Ignore, t0());
    nan.confidence = f64::NAN;
    assert_invalid(s.insert_decision(nan).await, "confidence");

    // AI control: OFF until switched on.
    let off = s.get_ai_control(t).await.unwrap();
    assert!(!off.enabled);
    assert_eq!(off.updated_at, None);
    let on = s
        .set_ai_control(t, true, Some("ops@acme".into()), t0())
        .await
        .unwrap();
    assert!(on.enabled);
    assert_eq!(on.updated_by.as_deref(), Some("ops@acme"));
    assert_eq!(s.get_ai_control(t).await.unwrap(), on);
    let off_again = s
        .set_ai_control(t, false, None, t0() + mins(1))
        .await
        .unwrap();
    assert!(!s.get_ai_control(t).await.unwrap().enabled);
    assert_eq!(off_again.updated_at, Some(t0() + mins(1)));
    assert_not_found(s.get_ai_control(TenantId::generate()).await);
    assert!(matches!(
        s.set_ai_control(TenantId::generate(), true, None, t0())
            .await,
        Err(StorageError::UnknownReference { .. } | StorageError::NotFound { .. })
    ));
}

// ----------------------------------------------------------------- KPIs

pub async fn kpi_rows_upsert_on_window_start(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let row = |start: DateTime<Utc>, messages: i64| Kpi2h {
        tenant_id: w.tenant.id,
        window_start: start,
        window_end: start + Duration::hours(2),
        messages_count: messages,
        comments_count: 2,
        frt_p50_seconds: Some(90),
        auto_reply_rate: Some(0.333),
        escalate_count: 1,
        ignored_count: 0,
        posts_active: 1,
        computed_at: t0(),
    };
    let w0 = s.upsert_kpi(row(t0(), 5)).await.unwrap();
    let w1 = s
        .upsert_kpi(row(t0() + Duration::hours(2), 7))
        .await
        .unwrap();
    let mut replaced = row(t0(), 6);
    replaced.frt_p50_seconds = None;
    replaced.auto_reply_rate = None;
    let w0b = s.upsert_kpi(replaced.clone()).await.unwrap();
    assert_eq!(w0b, replaced);
    assert_eq!(
        s.list_kpis(w.tenant.id, t0(), t0() + Duration::hours(4))
            .await
            .unwrap(),
        vec![w1.clone(), w0b]
    );
    assert_eq!(
        s.list_kpis(
            w.tenant.id,
            t0() + Duration::hours(2),
            t0() + Duration::hours(4)
        )
        .await
        .unwrap(),
        vec![w1]
    );
    assert!(
        s.list_kpis(w.tenant.id, t0(), t0())
            .await
            .unwrap()
            .is_empty()
    );
    assert_ne!(w0.messages_count, 6);
    let mut bad = row(t0(), 1);
    bad.auto_reply_rate = Some(2.0);
    assert_invalid(s.upsert_kpi(bad).await, "auto_reply_rate");
    let mut unknown = row(t0(), 1);
    unknown.tenant_id = TenantId::generate();
    assert_unknown(s.upsert_kpi(unknown).await, "tenant");
}

// ----------------------------------------------------------------- missions

pub async fn missions_content_jobs_and_reports(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let mission = |name: &str, start: u32, end: u32, status| NewMission {
        tenant_id: t,
        channel_id: w.channel.id,
        name: name.into(),
        status,
        objective_priority: ObjectivePriority::High,
        start_date: day(start),
        end_date: day(end),
        created_at: t0(),
    };
    let spring = s
        .create_mission(mission("Spring", 1, 10, MissionStatus::Active))
        .await
        .unwrap();
    let easter = s
        .create_mission(mission("Easter", 5, 20, MissionStatus::Paused))
        .await
        .unwrap();
    let single = s
        .create_mission(mission("Flash", 3, 3, MissionStatus::Active))
        .await
        .unwrap();
    assert_eq!(s.get_mission(t, spring.id).await.unwrap(), spring);
    let ids = |v: Vec<Mission>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_missions(t, MissionFilter::default()).await.unwrap()),
        vec![spring.id, single.id, easter.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    status: Some(MissionStatus::Active),
                    active_on: Some(day(3)),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![spring.id, single.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    active_on: Some(day(11)),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![easter.id]
    );
    assert_eq!(
        ids(s
            .list_missions(
                t,
                MissionFilter {
                    limit: Some(1),
                    channel_id: Some(w.channel.id),
                    ..Default::default()
                }
            )
            .await
            .unwrap()),
        vec![spring.id]
    );
    let resumed = s
        .set_mission_status(t, easter.id, MissionStatus::Active)
        .await
        .unwrap();
    assert_eq!(resumed.status, MissionStatus::Active);

    let job = |mission: Option<MissionId>, phase, at| NewContentJob {
        tenant_id: t,
        mission_id: mission,
        channel_id: w.channel.id,
        phase,
        status: ContentJobStatus::Ready,
        content: Content::text("content"),
        source_ref: Some("prepared_facebook_post:42".into()),
        created_at: at,
    };
    let j1 = s
        .create_content_job(job(Some(spring.id), Phase::Intro, t0()))
        .await
        .unwrap();
    let j2 = s
        .create_content_job(job(Some(spring.id), Phase::Closing, t0() + mins(1)))
        .await
        .unwrap();
    let j3 = s
        .create_content_job(job(None, Phase::Intro, t0() + mins(2)))
        .await
        .unwrap();
    assert_eq!(j1.mission_id, Some(spring.id));
    assert_eq!(j1.source_ref.as_deref(), Some("prepared_facebook_post:42"));
    assert_eq!(s.get_content_job(t, j1.id).await.unwrap(), j1);
    let jids = |v: Vec<ContentJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    mission_id: Some(spring.id),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j1.id, j2.id]
    );
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    phase: Some(Phase::Intro),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j1.id, j3.id]
    );
    let p = s
        .insert_post(post(&w, "from job", t0()))
        .await
        .unwrap()
        .record;
    let scheduled = s
        .update_content_job(
            t,
            j1.id,
            ContentJobStatus::Scheduled,
            Some(p.id),
            t0() + mins(5),
        )
        .await
        .unwrap();
    assert_eq!(scheduled.status, ContentJobStatus::Scheduled);
    assert_eq!(scheduled.scheduled_post_id, Some(p.id));
    assert_eq!(scheduled.updated_at, t0() + mins(5));
    assert_eq!(
        jids(
            s.list_content_jobs(
                t,
                ContentJobFilter {
                    status: Some(ContentJobStatus::Ready),
                    limit: Some(1),
                    ..Default::default()
                }
            )
            .await
            .unwrap()
        ),
        vec![j2.id]
    );
    let published = s
        .update_content_job(t, j1.id, ContentJobStatus::Published, None, t0() + mins(6))
        .await
        .unwrap();
    assert_eq!(
        published.scheduled_post_id,
        Some(p.id),
        "None keeps the post link"
    );
    assert_unknown(
        s.update_content_job(
            t,
            j2.id,
            ContentJobStatus::Scheduled,
            Some(PostId::generate()),
            t0(),
        )
        .await,
        "post",
    );

    assert_eq!(s.latest_report(t, spring.id).await.unwrap(), None);
    s.add_report(t, spring.id, json!({"reach": 10}), t0())
        .await
        .unwrap();
    let r2 = s
        .add_report(t, spring.id, json!({"reach": 25}), t0() + mins(1))
        .await
        .unwrap();
    assert_eq!(
        s.latest_report(t, spring.id).await.unwrap(),
        Some(r2.clone())
    );
    assert_eq!(r2.report["reach"], 25);

    // References must be the tenant's, and a job's mission must be on its channel.
    let other = world(s, "Globex", Platform::Facebook, "page-2").await;
    let mut foreign = job(Some(spring.id), Phase::Intro, t0());
    foreign.tenant_id = other.tenant.id;
    foreign.channel_id = other.channel.id;
    assert_unknown(s.create_content_job(foreign).await, "mission");
    let second_channel = s
        .create_channel(NewChannel {
            tenant_id: t,
            platform: Platform::Instagram,
            external_account_id: "ig-7".into(),
            name: "IG".into(),
            credentials: Credentials::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let mut cross = job(Some(spring.id), Phase::Intro, t0());
    cross.channel_id = second_channel.id;
    assert_unknown(s.create_content_job(cross).await, "mission");
    let mut m = mission("Elsewhere", 1, 2, MissionStatus::Active);
    m.channel_id = other.channel.id;
    assert_unknown(s.create_mission(m).await, "channel");
    assert_not_found(s.get_mission(other.tenant.id, spring.id).await);
    assert_not_found(s.get_content_job(other.tenant.id, j1.id).await);
    assert_eq!(
        s.latest_report(other.tenant.id, spring.id).await.unwrap(),
        None
    );
    assert_unknown(
        s.add_report(other.tenant.id, spring.id, json!({}), t0())
            .await,
        "mission",
    );
}

/// One mission on `w`'s channel from March `start` to `end`.
async fn orch_mission(
    s: &dyn Store,
    w: &World,
    name: &str,
    start: u32,
    end: u32,
    status: MissionStatus,
) -> Mission {
    s.create_mission(NewMission {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        name: name.into(),
        status,
        objective_priority: ObjectivePriority::Medium,
        start_date: NaiveDate::from_ymd_opt(2026, 3, start).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, end).unwrap(),
        created_at: t0(),
    })
    .await
    .unwrap()
}

async fn orch_job(
    s: &dyn Store,
    w: &World,
    mission: Option<MissionId>,
    phase: Phase,
    status: ContentJobStatus,
    at: DateTime<Utc>,
) -> ContentJob {
    s.create_content_job(NewContentJob {
        tenant_id: w.tenant.id,
        mission_id: mission,
        channel_id: w.channel.id,
        phase,
        status,
        content: Content::text(format!("{phase} at {at}")),
        source_ref: None,
        created_at: at,
    })
    .await
    .unwrap()
}

/// The UTC day of March `d` (the tests use UTC days; the planner maps local days).
fn utc_day(d: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap();
    (start, start + Duration::days(1))
}

fn orch_query(w: &World, first: u32, last: u32, per_phase: u32) -> OrchestrationQuery {
    OrchestrationQuery {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        first_date: NaiveDate::from_ymd_opt(2026, 3, first).unwrap(),
        last_date: NaiveDate::from_ymd_opt(2026, 3, last).unwrap(),
        from: utc_day(first).0,
        to: utc_day(last).1,
        jobs_per_phase: per_phase,
    }
}

fn commit_for(
    w: &World,
    d: u32,
    cap: u32,
    expected: Vec<PostId>,
    entries: Vec<PlannedPost>,
) -> OrchestrationCommit {
    let (from, to) = utc_day(d);
    OrchestrationCommit {
        tenant_id: w.tenant.id,
        channel_id: w.channel.id,
        from,
        to,
        max_posts_per_day: cap,
        expected_posts: expected,
        entries,
        at: t0() + mins(30),
    }
}

fn at_hour(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

pub async fn orchestration_snapshot_reads_what_the_planner_needs(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let a = orch_mission(s, &w, "A", 1, 10, MissionStatus::Active).await;
    let paused = orch_mission(s, &w, "Paused", 5, 6, MissionStatus::Paused).await;
    let _later = orch_mission(s, &w, "Later", 20, 25, MissionStatus::Active).await;
    // Ready jobs of A: three intro (oldest two kept with 2 per phase), one closing.
    let i3 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(3),
    )
    .await;
    let i1 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(1),
    )
    .await;
    let i2 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(2),
    )
    .await;
    let c1 = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Closing,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let _draft = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Nurture,
        ContentJobStatus::Draft,
        t0(),
    )
    .await;
    let _loose = orch_job(s, &w, None, Phase::Intro, ContentJobStatus::Ready, t0()).await;
    let p1 = orch_job(
        s,
        &w,
        Some(paused.id),
        Phase::Nurture,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;

    // Posts: two counted on the 5th, one cancelled, one on the 7th.
    let mut counted = post(&w, "counted", at_hour(5, 9));
    counted.mission_id = Some(a.id);
    let counted = s.insert_post(counted).await.unwrap().record;
    let other = s
        .insert_post(post(&w, "other", at_hour(5, 8)))
        .await
        .unwrap()
        .record;
    let cancelled = s
        .insert_post(post(&w, "cancelled", at_hour(5, 10)))
        .await
        .unwrap()
        .record;
    s.update_post(
        t,
        cancelled.id,
        PostPatch {
            status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        },
        t0(),
    )
    .await
    .unwrap();
    s.insert_post(post(&w, "next day", at_hour(7, 9)))
        .await
        .unwrap();

    let snap = s
        .orchestration_snapshot(orch_query(&w, 5, 6, 2))
        .await
        .unwrap();
    assert_eq!(
        snap.missions.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![a.id, paused.id],
        "missions overlapping the dates, any status, by start date"
    );
    let mut expected_jobs = vec![
        (a.id, 0, i1.id),
        (a.id, 0, i2.id),
        (a.id, 2, c1.id),
        (paused.id, 1, p1.id),
    ];
    expected_jobs.sort_by_key(|(m, p, _)| (*m, *p));
    assert_eq!(
        snap.ready_jobs
            .iter()
            .map(|j| (j.mission_id, j.phase.index(), j.id))
            .collect::<Vec<_>>(),
        expected_jobs
    );
    assert!(
        !snap.ready_jobs.iter().any(|j| j.id == i3.id),
        "only 2 per phase"
    );
    assert_eq!(
        snap.posts,
        vec![
            DayPost {
                id: other.id,
                mission_id: None,
                publish_at: at_hour(5, 8)
            },
            DayPost {
                id: counted.id,
                mission_id: Some(a.id),
                publish_at: at_hour(5, 9)
            },
        ]
    );

    // Another tenant reads nothing of this one.
    let globex = world(s, "Globex", Platform::Facebook, "page-2").await;
    let mut foreign = orch_query(&w, 1, 30, 5);
    foreign.tenant_id = globex.tenant.id;
    assert_eq!(
        s.orchestration_snapshot(foreign).await.unwrap(),
        OrchestrationSnapshot::default()
    );
    let mut bad = orch_query(&w, 6, 5, 1);
    assert_invalid(s.orchestration_snapshot(bad.clone()).await, "last_date");
    bad = orch_query(&w, 5, 6, 0);
    assert_invalid(s.orchestration_snapshot(bad).await, "jobs_per_phase");
}

pub async fn orchestration_commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    let a = orch_mission(s, &w, "A", 1, 10, MissionStatus::Active).await;
    let b = orch_mission(s, &w, "B", 1, 10, MissionStatus::Active).await;
    let ja = orch_job(
        s,
        &w,
        Some(a.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let jb = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0(),
    )
    .await;
    let jb2 = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Intro,
        ContentJobStatus::Ready,
        t0() + mins(1),
    )
    .await;
    let existing = s
        .insert_post(post(&w, "existing", at_hour(5, 8)))
        .await
        .unwrap()
        .record;
    let entry = |m: &Mission, j: &ContentJob, h| PlannedPost {
        mission_id: m.id,
        content_job_id: j.id,
        publish_at: at_hour(5, h),
    };

    // Invalid plans are refused before anything is read.
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            2,
            vec![existing.id],
            vec![entry(&a, &ja, 9), entry(&b, &jb, 10)],
        ))
        .await,
        "entries",
    );
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            5,
            vec![existing.id],
            vec![entry(&b, &jb, 9), entry(&b, &jb2, 10)],
        ))
        .await,
        "entries",
    );
    assert_invalid(
        s.commit_orchestration(commit_for(
            &w,
            5,
            5,
            vec![existing.id],
            vec![
                entry(&a, &ja, 9),
                PlannedPost {
                    publish_at: at_hour(6, 9),
                    ..entry(&b, &jb, 9)
                },
            ],
        ))
        .await,
        "publish_at",
    );

    // A plan that did not see the existing post is stale and writes nothing.
    let stale = s
        .commit_orchestration(commit_for(&w, 5, 3, vec![], vec![entry(&a, &ja, 9)]))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        s.get_content_job(t, ja.id).await.unwrap().status,
        ContentJobStatus::Ready
    );

    // A job that is not ready makes the whole plan stale.
    let drafted = orch_job(
        s,
        &w,
        Some(b.id),
        Phase::Nurture,
        ContentJobStatus::Draft,
        t0(),
    )
    .await;
    let stale = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&a, &ja, 9), entry(&b, &drafted, 10)],
        ))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");
    assert_eq!(
        s.get_content_job(t, ja.id).await.unwrap().status,
        ContentJobStatus::Ready
    );
    // So does a job of another mission than the entry says.
    let stale = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&a, &jb, 9)],
        ))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Stale { .. }), "{stale:?}");

    // The right plan commits: posts in entry order, jobs scheduled and linked.
    let done = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&b, &jb, 10), entry(&a, &ja, 9)],
        ))
        .await
        .unwrap();
    let CommitOutcome::Committed(posts) = done else {
        panic!("expected a commit, got {done:?}")
    };
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].content_job_id, Some(jb.id));
    assert_eq!(posts[0].mission_id, Some(b.id));
    assert_eq!(posts[0].publish_at, at_hour(5, 10));
    assert_eq!(posts[0].status, PostStatus::Queued);
    assert_eq!(posts[0].content, jb.content);
    assert_eq!(posts[0].created_at, t0() + mins(30));
    assert_eq!(posts[1].content_job_id, Some(ja.id));
    assert_eq!(s.get_post(t, posts[1].id).await.unwrap(), posts[1]);
    let job = s.get_content_job(t, ja.id).await.unwrap();
    assert_eq!(job.status, ContentJobStatus::Scheduled);
    assert_eq!(job.scheduled_post_id, Some(posts[1].id));
    assert_eq!(job.updated_at, t0() + mins(30));

    // Replaying the same commit is stale: the day changed and the jobs are taken.
    let replay = s
        .commit_orchestration(commit_for(
            &w,
            5,
            3,
            vec![existing.id],
            vec![entry(&b, &jb, 10), entry(&a, &ja, 9)],
        ))
        .await
        .unwrap();
    assert!(matches!(replay, CommitOutcome::Stale { .. }));
    // Seeing the day as it is now, mission B may not post twice.
    let now_there = vec![existing.id, posts[0].id, posts[1].id];
    let twice = s
        .commit_orchestration(commit_for(
            &w,
            5,
            4,
            now_there.clone(),
            vec![entry(&b, &jb2, 11)],
        ))
        .await
        .unwrap();
    assert!(matches!(twice, CommitOutcome::Stale { .. }), "{twice:?}");
    // An empty plan against the right state commits nothing.
    assert_eq!(
        s.commit_orchestration(commit_for(&w, 5, 3, now_there, vec![]))
            .await
            .unwrap(),
        CommitOutcome::Committed(vec![])
    );
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        3
    );
}

pub async fn concurrent_orchestration_commits_never_exceed_the_cap(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::Facebook, "page-1").await;
    let t = w.tenant.id;
    // Eight racers, each with three missions of its own and the same view of the
    // (empty) day; the cap is 3, so exactly one racer may commit.
    let mut plans = Vec::new();
    for r in 0..8u32 {
        let mut entries = Vec::new();
        for k in 0..3u32 {
            let m = orch_mission(s, &w, &format!("m{r}-{k}"), 1, 10, MissionStatus::Active).await;
            let j = orch_job(
                s,
                &w,
                Some(m.id),
                Phase::Intro,
                ContentJobStatus::Ready,
                t0(),
            )
            .await;
            entries.push(PlannedPost {
                mission_id: m.id,
                content_job_id: j.id,
                publish_at: at_hour(5, 9 + k),
            });
        }
        plans.push(commit_for(&w, 5, 3, vec![], entries));
    }
    let mut tasks = Vec::new();
    for plan in plans {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.commit_orchestration(plan).await.unwrap()
        }));
    }
    let mut committed = 0;
    for task in tasks {
        if let CommitOutcome::Committed(posts) = task.await.unwrap() {
            assert_eq!(posts.len(), 3);
            committed += 1;
        }
    }
    assert_eq!(committed, 1);
    assert_eq!(
        s.count_posts(
            t,
            w.channel.id,
            utc_day(5).0,
            utc_day(5).1,
            &COUNTED_POST_STATUSES
        )
        .await
        .unwrap(),
        3
    );
}

// ----------------------------------------------------------------- settings, workers

pub async fn settings(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.get_setting("OPENROUTER_API_KEY").await.unwrap(), None);
    let set = s
        .set_setting("OPENROUTER_API_KEY", SecretString::new("sk-1"), t0())
        .await
        .unwrap();
    assert_eq!(set.value.expose(), "sk-1");
    s.set_setting("META_APP_SECRET", SecretString::new("app"), t0())
        .await
        .unwrap();
    let replaced = s
        .set_setting(
            "OPENROUTER_API_KEY",
            SecretString::new("sk-2"),
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(
        s.get_setting("OPENROUTER_API_KEY").await.unwrap(),
        Some(replaced)
    );
    assert_eq!(
        s.list_setting_keys().await.unwrap(),
        vec![
            "META_APP_SECRET".to_owned(),
            "OPENROUTER_API_KEY".to_owned()
        ]
    );
    assert!(s.delete_setting("META_APP_SECRET").await.unwrap());
    assert!(!s.delete_setting("META_APP_SECRET").await.unwrap());
    assert_eq!(
        s.list_setting_keys().await.unwrap(),
        vec!["OPENROUTER_API_KEY".to_owned()]
    );
}

pub async fn worker_flags_and_execution_logs(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.get_worker_flag("enqueue_due_posts").await.unwrap(), None);
    s.set_worker_flag("poll_comments", true, t0())
        .await
        .unwrap();
    let off = s
        .set_worker_flag("enqueue_due_posts", false, t0())
        .await
        .unwrap();
    assert!(!off.enabled);
    let on = s
        .set_worker_flag("enqueue_due_posts", true, t0() + mins(1))
        .await
        .unwrap();
    assert_eq!(
        s.get_worker_flag("enqueue_due_posts").await.unwrap(),
        Some(on)
    );
    let names: Vec<_> = s
        .list_worker_flags()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.worker_name)
        .collect();
    assert_eq!(names, vec!["enqueue_due_posts", "poll_comments"]);

    let run1 = s.start_execution("enqueue_due_posts", t0()).await.unwrap();
    assert_eq!(run1.status, RunStatus::Running);
    let done = s
        .finish_execution(
            run1.id,
            ExecutionOutcome {
                status: RunStatus::Completed,
                finished_at: t0() + Duration::milliseconds(1_250),
                items_processed: 12,
                items_failed: 1,
                results: json!({"claimed": 12}),
                error: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.duration_ms, Some(1_250));
    assert_eq!(done.items_processed, 12);
    assert_eq!(done.results["claimed"], 12);
    let run2 = s
        .start_execution("poll_comments", t0() + Duration::days(2))
        .await
        .unwrap();
    let run3 = s
        .start_execution("enqueue_due_posts", t0() + Duration::days(3))
        .await
        .unwrap();
    let ids = |v: Vec<TaskExecutionLog>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_executions(None, 10).await.unwrap()),
        vec![run3.id, run2.id, run1.id]
    );
    assert_eq!(
        ids(s
            .list_executions(Some("enqueue_due_posts"), 10)
            .await
            .unwrap()),
        vec![run3.id, run1.id]
    );
    assert_eq!(
        ids(s.list_executions(None, 1).await.unwrap()),
        vec![run3.id]
    );
    assert_eq!(
        s.delete_executions_before(t0() + Duration::days(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ids(s.list_executions(None, 10).await.unwrap()),
        vec![run3.id, run2.id]
    );
    assert_not_found(
        s.finish_execution(
            ExecutionId::generate(),
            ExecutionOutcome {
                status: RunStatus::Failed,
                finished_at: t0(),
                items_processed: 0,
                items_failed: 0,
                results: json!(null),
                error: Some("boom".into()),
            },
        )
        .await,
    );
}

// ----------------------------------------------------------------- isolation

/// Tenant A gets a row of every kind; tenant B must see none of them through
/// any read, and cannot change them.
pub async fn tenant_isolation(store: Arc<dyn Store>) {
    let s = &*store;
    let a = world(s, "Acme", Platform::WhatsApp, "pn-a").await;
    let b = world(s, "Globex", Platform::WhatsApp, "pn-b").await;
    let ta = a.tenant.id;
    let tb = b.tenant.id;

    let ev = s
        .insert_event(event(&a, "wamid.iso", EventKind::Message, t0()))
        .await
        .unwrap()
        .record;
    let (cc, conv) = conversation(s, &a, "33611111111").await;
    let msg = s
        .insert_message(message(
            ta,
            conv.id,
            MessageDirection::Inbound,
            Some("wamid.iso"),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    let p = published_post(s, &a, "iso").await;
    let run = s
        .insert_post_run(NewPostRun {
            tenant_id: ta,
            post_id: p.id,
            attempt: 1,
            started_at: t0(),
        })
        .await
        .unwrap();
    let comment = s
        .insert_comment(NewComment {
            tenant_id: ta,
            post_id: p.id,
            platform_comment_id: "c-iso".into(),
            parent_platform_comment_id: None,
            author_id: None,
            author_name: None,
            text: "hi".into(),
            created_at: t0(),
            stored_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let rule = s
        .create_rule(NewAiRule {
            tenant_id: ta,
            rule_type: RuleType::Deny,
            name: "spam".into(),
            keywords: vec!["casino".into()],
            patterns: vec![],
            confidence_min: None,
            enabled: true,
            priority: 0,
            at: t0(),
        })
        .await
        .unwrap();
    let example = s.add_ignore_example(ta, "ok", t0()).await.unwrap();
    let decision = s
        .insert_decision(NewAiDecision {
            tenant_id: ta,
            subject: DecisionSubject::Comment(comment.id),
            triage: Triage::Ignore,
            confidence: 1.0,
            rule_id: Some(rule.id),
            reason: "rule".into(),
            snapshot: json!({}),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    s.set_ai_control(ta, true, None, t0()).await.unwrap();
    s.upsert_kpi(Kpi2h {
        tenant_id: ta,
        window_start: t0(),
        window_end: t0() + Duration::hours(2),
        messages_count: 1,
        comments_count: 1,
        frt_p50_seconds: None,
        auto_reply_rate: None,
        escalate_count: 0,
        ignored_count: 1,
        posts_active: 1,
        computed_at: t0(),
    })
    .await
    .unwrap();
    let mission = s
        .create_mission(NewMission {
            tenant_id: ta,
            channel_id: a.channel.id,
            name: "M".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::Low,
            start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let job = s
        .create_content_job(NewContentJob {
            tenant_id: ta,
            mission_id: Some(mission.id),
            channel_id: a.channel.id,
            phase: Phase::Intro,
            status: ContentJobStatus::Ready,
            content: Content::text("x"),
            source_ref: None,
            created_at: t0(),
        })
        .await
        .unwrap();
    s.add_report(ta, mission.id, json!({}), t0()).await.unwrap();

    // Every read of tenant B, with A's ids.
    let far = t0() + Duration::days(365);
    let past = t0() - Duration::days(365);
    assert_not_found(s.get_channel(tb, a.channel.id).await);
    assert_eq!(s.list_channels(tb).await.unwrap(), vec![b.channel.clone()]);
    assert_not_found(s.get_event(tb, ev.id).await);
    assert_eq!(
        s.find_event(tb, &Platform::WhatsApp, "wamid.iso")
            .await
            .unwrap(),
        None
    );
    assert_not_found(s.get_contact(tb, cc.contact_id).await);
    assert!(
        s.list_contact_channels(tb, cc.contact_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_conversation(tb, conv.id).await);
    assert!(
        s.list_conversations(tb, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_message(tb, msg.id).await);
    assert_eq!(
        s.find_message_by_provider_id(tb, a.channel.id, "wamid.iso")
            .await
            .unwrap(),
        None
    );
    assert!(s.list_messages(tb, conv.id, 100).await.unwrap().is_empty());
    assert!(
        s.list_messages_since(tb, MessageDirection::Inbound, past, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(s.get_post(tb, p.id).await);
    assert!(
        s.list_posts(tb, PostFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.count_posts(tb, a.channel.id, past, far, PostStatus::ALL)
            .await
            .unwrap(),
        0
    );
    assert!(s.list_post_runs(tb, p.id).await.unwrap().is_empty());
    assert_not_found(
        s.finish_post_run(tb, run.id, PostRunStatus::Success, None, t0())
            .await,
    );
    assert_not_found(s.get_comment(tb, comment.id).await);
    assert!(s.list_comments(tb, p.id, 100).await.unwrap().is_empty());
    assert!(
        s.list_comments_since(tb, past, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.set_comment_triage(tb, comment.id, Triage::Escalate, 1.0, None)
            .await,
    );
    assert_eq!(s.get_checkpoint(tb, p.id).await.unwrap(), None);
    assert_not_found(s.get_rule(tb, rule.id).await);
    assert!(s.list_rules(tb, false).await.unwrap().is_empty());
    assert_not_found(s.delete_rule(tb, rule.id).await);
    assert!(matches!(
        s.update_rule(
            rule.id,
            NewAiRule {
                tenant_id: tb,
                rule_type: RuleType::Auto,
                name: "hijack".into(),
                keywords: vec![],
                patterns: vec![],
                confidence_min: None,
                enabled: true,
                priority: 0,
                at: t0(),
            }
        )
        .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(s.list_ignore_examples(tb).await.unwrap().is_empty());
    assert_not_found(s.delete_ignore_example(tb, example.id).await);
    assert_not_found(s.get_decision(tb, decision.id).await);
    assert_eq!(
        s.find_decision(tb, DecisionSubject::Comment(comment.id))
            .await
            .unwrap(),
        None
    );
    assert!(s.list_decisions(tb, None, 100).await.unwrap().is_empty());
    assert!(!s.get_ai_control(tb).await.unwrap().enabled);
    assert!(s.list_kpis(tb, past, far).await.unwrap().is_empty());
    assert_not_found(s.get_mission(tb, mission.id).await);
    assert!(
        s.list_missions(tb, MissionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.set_mission_status(tb, mission.id, MissionStatus::Cancelled)
            .await,
    );
    assert_not_found(s.get_content_job(tb, job.id).await);
    assert!(
        s.list_content_jobs(tb, ContentJobFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        s.update_content_job(tb, job.id, ContentJobStatus::Cancelled, None, t0())
            .await,
    );
    assert_eq!(s.latest_report(tb, mission.id).await.unwrap(), None);

    // And A's rows are intact.
    assert_eq!(s.get_rule(ta, rule.id).await.unwrap(), rule);
    assert_eq!(
        s.get_mission(ta, mission.id).await.unwrap().status,
        MissionStatus::Active
    );
    assert_eq!(
        s.get_content_job(ta, job.id).await.unwrap().status,
        ContentJobStatus::Ready
    );
    assert!(s.get_ai_control(ta).await.unwrap().enabled);
}

// ----------------------------------------------------------------- time bounds

/// The extreme instants of `chrono` work as range bounds on every backend
/// ("since the beginning", "until the end of time").
pub async fn extreme_time_bounds_are_accepted(store: Arc<dyn Store>) {
    let s = &*store;
    let w = world(s, "Acme", Platform::WhatsApp, "pn-1").await;
    let t = w.tenant.id;
    let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let (_, conv) = conversation(s, &w, "336").await;
    s.insert_message(message(
        t,
        conv.id,
        MessageDirection::Inbound,
        Some("m"),
        t0(),
    ))
    .await
    .unwrap();
    assert_eq!(
        s.list_messages_since(t, MessageDirection::Inbound, min, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let p = published_post(s, &w, "x").await;
    s.insert_comment(NewComment {
        tenant_id: t,
        post_id: p.id,
        platform_comment_id: "c".into(),
        parent_platform_comment_id: None,
        author_id: None,
        author_name: None,
        text: "hi".into(),
        created_at: t0(),
        stored_at: t0(),
    })
    .await
    .unwrap();
    assert_eq!(s.list_comments_since(t, min, 10).await.unwrap().len(), 1);
    let filter = PostFilter {
        from: Some(min),
        to: Some(max),
        ..PostFilter::default()
    };
    assert_eq!(s.list_posts(t, filter).await.unwrap().len(), 1);
    assert_eq!(
        s.count_posts(t, w.channel.id, min, max, PostStatus::ALL)
            .await
            .unwrap(),
        1
    );
    assert!(s.list_kpis(t, min, max).await.unwrap().is_empty());
    assert_eq!(s.delete_executions_before(min).await.unwrap(), 0);
    assert_eq!(s.release_stale_leases(max).await.unwrap(), 0);
}
