//! Fixtures shared by the conformance tests: time zero, a tenant with one
//! channel ([`World`]), events, messages, posts, conversations, and the
//! assertions on the error kinds.
#![allow(clippy::unwrap_used, missing_docs)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use serde_json::json;

use crate::{StorageError, Store};

/// 2026-03-01 09:00:00 UTC: every test's time zero (whole seconds, so that both
/// backends store it exactly).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

pub(super) fn mins(n: i64) -> Duration {
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

pub(super) fn message(
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

pub(super) fn post(w: &World, text: &str, publish_at: DateTime<Utc>) -> NewScheduledPost {
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
pub(super) fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StorageError>, field: &str) {
    match r {
        Err(StorageError::Invalid(CoreError::Invalid { field: f, .. })) if f == field => {}
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_unknown<T: std::fmt::Debug>(r: Result<T, StorageError>, entity: &str) {
    match r {
        Err(StorageError::UnknownReference { entity: e, .. }) if e == entity => {}
        other => panic!("expected UnknownReference({entity}), got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::Conflict { .. }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}
