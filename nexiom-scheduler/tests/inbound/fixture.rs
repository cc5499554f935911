//! The 1,000-event webhook fixture and the comparison of routed states.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_storage::Store;
use serde_json::json;

/// Time zero of the fixture.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 0).unwrap()
}

/// A tenant with a WhatsApp and a Facebook channel, a published Facebook post
/// (`fb-post-1`) and 40 outbound WhatsApp messages (`wamid.out.N`) that status
/// events name.
pub struct Setup {
    pub tenant: Tenant,
    pub whatsapp: Channel,
    pub facebook: Channel,
}

pub async fn setup(store: &dyn Store) -> Setup {
    let tenant = store
        .create_tenant(NewTenant::new("Fixture", t0()))
        .await
        .unwrap();
    let channel = |platform: Platform, account: &str| NewChannel {
        tenant_id: tenant.id,
        platform,
        external_account_id: account.into(),
        name: account.into(),
        credentials: Credentials {
            access_token: Some(SecretString::new("token")),
            refresh_token: None,
            expires_at: None,
        },
        created_at: t0(),
    };
    let whatsapp = store
        .create_channel(channel(Platform::WhatsApp, "pn-fixture"))
        .await
        .unwrap();
    let facebook = store
        .create_channel(channel(Platform::Facebook, "page-fixture"))
        .await
        .unwrap();
    let post = store
        .insert_post(NewScheduledPost::one_off(
            tenant.id,
            facebook.id,
            Content::text("Launch"),
            t0(),
            t0(),
        ))
        .await
        .unwrap()
        .record;
    store
        .update_post(
            tenant.id,
            post.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("fb-post-1".into())),
                published_at: Some(Some(t0())),
                ..PostPatch::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let contact = store
        .insert_contact_channel(NewContactChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_handle: "33699999999".into(),
            display_name: Some("Outbound".into()),
            created_at: t0(),
        })
        .await
        .unwrap()
        .record;
    let conv = store
        .insert_open_conversation(tenant.id, contact.contact_id, whatsapp.id, t0())
        .await
        .unwrap()
        .record;
    for i in 0..40 {
        store
            .insert_message(NewMessage {
                tenant_id: tenant.id,
                conversation_id: conv.id,
                direction: MessageDirection::Outbound,
                text: format!("outbound {i}"),
                has_media: false,
                provider_message_id: Some(format!("wamid.out.{i}")),
                in_reply_to: None,
                delivery_status: Some(DeliveryStatus::Pending),
                created_at: t0(),
                stored_at: t0(),
            })
            .await
            .unwrap();
    }
    Setup {
        tenant,
        whatsapp,
        facebook,
    }
}

/// The 1,000 events: 760 WhatsApp messages from 50 senders (occurring out of
/// order), 40 Facebook DMs, 120 statuses for the outbound messages (in every
/// order, including backwards), 60 comments and replies on the known post, 10
/// comments on a post made elsewhere (recorded once as an external post), 10
/// other events.
pub fn events(s: &Setup) -> Vec<NewWebhookEvent> {
    let base = |channel: &Channel, event_id: String, kind: EventKind, i: i64| NewWebhookEvent {
        tenant_id: s.tenant.id,
        channel_id: channel.id,
        platform: channel.platform.clone(),
        event_id: event_id.clone(),
        kind,
        sender_id: None,
        sender_name: None,
        text: None,
        has_media: false,
        delivery_status: None,
        target_id: None,
        parent_id: None,
        // Occurrence times jump around: messages arrive out of order.
        occurred_at: t0() + Duration::seconds((i * 7919) % 5000),
        payload: json!({"id": event_id}),
        received_at: t0() + Duration::seconds(i),
    };
    let mut out = Vec::with_capacity(1000);
    for i in 0..760 {
        let sender = i % 50;
        out.push(NewWebhookEvent {
            sender_id: Some(format!("336{sender:08}")),
            sender_name: Some(format!("Sender {sender}")),
            text: (i % 13 != 0).then(|| format!("Bonjour, message {i} : horaires ?")),
            has_media: i % 13 == 0,
            ..base(&s.whatsapp, format!("wamid.in.{i}"), EventKind::Message, i)
        });
    }
    for i in 0..40 {
        out.push(NewWebhookEvent {
            sender_id: Some(format!("psid-{}", i % 10)),
            sender_name: Some(format!("Fan {}", i % 10)),
            text: Some(format!("Hello page {i}")),
            ..base(&s.facebook, format!("mid.{i}"), EventKind::Message, 760 + i)
        });
    }
    let statuses = [
        DeliveryStatus::Read,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
    ];
    for i in 0..120 {
        out.push(NewWebhookEvent {
            delivery_status: Some(statuses[(i % 3) as usize]),
            target_id: Some(format!("wamid.out.{}", i / 3)),
            ..base(
                &s.whatsapp,
                format!("status.{i}"),
                EventKind::Status,
                800 + i,
            )
        });
    }
    for i in 0..60 {
        out.push(NewWebhookEvent {
            sender_id: Some(format!("fb-user-{}", i % 7)),
            sender_name: Some(format!("Commenter {}", i % 7)),
            text: Some(format!("Comment {i}")),
            target_id: Some("fb-post-1".into()),
            parent_id: (i % 4 == 3).then(|| format!("fb-comment.{}", i - 1)),
            ..base(
                &s.facebook,
                format!("fb-comment.{i}"),
                if i % 4 == 3 {
                    EventKind::CommentReply
                } else {
                    EventKind::Comment
                },
                920 + i,
            )
        });
    }
    for i in 0..10 {
        out.push(NewWebhookEvent {
            text: Some("elsewhere".into()),
            target_id: Some("fb-post-unknown".into()),
            ..base(
                &s.facebook,
                format!("fb-other-comment.{i}"),
                EventKind::Comment,
                980 + i,
            )
        });
    }
    for i in 0..10 {
        out.push(base(
            &s.whatsapp,
            format!("other.{i}"),
            EventKind::Other,
            990 + i,
        ));
    }
    out
}

/// A deterministic shuffle (xorshift), so a failure replays the same order.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed.max(1);
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// A conversation's key: the channel's account and the contact's handles.
pub type ConversationKey = (String, Vec<String>);

/// A comment: parent, author, text, time.
pub type CommentView = (Option<String>, Option<String>, String, DateTime<Utc>);

/// A message: provider id, direction, text, media, time, delivery status.
pub type MessageView = (
    Option<String>,
    MessageDirection,
    String,
    bool,
    DateTime<Utc>,
    Option<DeliveryStatus>,
);

/// Everything routing produced, keyed by platform values only (no generated
/// ids), so two stores can be compared.
#[derive(Debug, PartialEq)]
pub struct Routed {
    /// (channel account, contact handles) → (status, last_message_at, contact
    /// name, messages as (provider id, direction, text, media, created_at,
    /// delivery status)).
    pub conversations: BTreeMap<ConversationKey, ConversationView>,
    /// Comments by platform id: (parent, author, text, created_at).
    pub comments: BTreeMap<String, CommentView>,
    /// Event ids → whether routed and the conversation's key.
    pub events: BTreeMap<String, (bool, Option<ConversationKey>)>,
}

#[derive(Debug, PartialEq)]
pub struct ConversationView {
    pub status: ConversationStatus,
    pub last_message_at: Option<DateTime<Utc>>,
    pub contact_name: Option<String>,
    pub messages: Vec<MessageView>,
}

pub async fn routed_state(store: &dyn Store, s: &Setup, events: &[NewWebhookEvent]) -> Routed {
    let tenant = s.tenant.id;
    let mut conversations = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for conv in store
        .list_conversations(tenant, None, 10_000)
        .await
        .unwrap()
    {
        let channel = store.get_channel(tenant, conv.channel_id).await.unwrap();
        let handles = store
            .list_contact_channels(tenant, conv.contact_id)
            .await
            .unwrap()
            .into_iter()
            .map(|h| format!("{}:{}", h.platform, h.external_handle))
            .collect::<Vec<_>>();
        let key = (channel.external_account_id, handles);
        let contact = store.get_contact(tenant, conv.contact_id).await.unwrap();
        let messages = store
            .list_messages(tenant, conv.id, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| {
                (
                    m.provider_message_id,
                    m.direction,
                    m.text,
                    m.has_media,
                    m.created_at,
                    m.delivery_status,
                )
            })
            .collect();
        keys.insert(conv.id, key.clone());
        let previous = conversations.insert(
            key,
            ConversationView {
                status: conv.status,
                last_message_at: conv.last_message_at,
                contact_name: contact.display_name,
                messages,
            },
        );
        assert!(
            previous.is_none(),
            "two conversations for one (contact, channel)"
        );
    }
    let mut comments = BTreeMap::new();
    for post in store
        .list_posts(tenant, PostFilter::default())
        .await
        .unwrap()
    {
        for c in store.list_comments(tenant, post.id, 10_000).await.unwrap() {
            let previous = comments.insert(
                c.platform_comment_id,
                (
                    c.parent_platform_comment_id,
                    c.author_id,
                    c.text,
                    c.created_at,
                ),
            );
            assert!(previous.is_none(), "a comment stored twice");
        }
    }
    let mut routed_events = BTreeMap::new();
    for e in events {
        let stored = store
            .find_event(tenant, &e.platform, &e.event_id)
            .await
            .unwrap()
            .expect("every event is stored");
        routed_events.insert(
            format!("{}:{}", e.platform, e.event_id),
            (
                stored.routed_at.is_some(),
                stored.conversation_id.map(|c| keys[&c].clone()),
            ),
        );
    }
    Routed {
        conversations,
        comments,
        events: routed_events,
    }
}
