//! Routing webhook events into contacts, conversations, messages, delivery
//! statuses, comments and comment moderations (applied after the batch's
//! other events), under the store's one lock (so each call is atomic and
//! concurrent callers never route an event twice).

use chrono::{DateTime, Utc};
use nexiom_core::{
    CommentId, ConversationId, DiscoveredPost, EventKind, MessageDirection, NewComment,
    NewContactChannel, NewMessage, Platform, PostId, RoutingReport, TenantId, WebhookEvent,
    WebhookEventId,
};

use super::{Inner, get_scoped};
use crate::error::Result;

impl Inner {
    pub(super) fn route_unrouted_events(
        &mut self,
        platform: Option<&Platform>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<RoutingReport> {
        // Moderations after the batch's other events, so a comment and its
        // moderation in one batch both count whatever their order.
        let (moderations, ids): (Vec<WebhookEvent>, Vec<WebhookEvent>) = self
            .list_unrouted_events(platform, limit)
            .into_iter()
            .partition(|e| e.kind == EventKind::Moderation);
        let mut report = RoutingReport::default();
        for e in ids.into_iter().chain(moderations) {
            self.route_one(e.id, at, &mut report)?;
        }
        self.expire_early_statuses(at);
        Ok(report)
    }

    pub(super) fn route_event(
        &mut self,
        tenant: TenantId,
        id: WebhookEventId,
        at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        get_scoped(&self.events, tenant, &id, "event")?;
        self.route_one(id, at, &mut RoutingReport::default())?;
        self.expire_early_statuses(at);
        get_scoped(&self.events, tenant, &id, "event").cloned()
    }

    /// Routes one event (nothing when it is routed already).
    fn route_one(
        &mut self,
        id: WebhookEventId,
        at: DateTime<Utc>,
        report: &mut RoutingReport,
    ) -> Result<()> {
        let Some(event) = self.events.get(&id).filter(|e| e.routed_at.is_none()) else {
            return Ok(());
        };
        let event = event.clone();
        let conversation = match event.kind {
            EventKind::Message => self.route_message(&event, at, report)?,
            EventKind::Status => {
                let broadcast = self.route_broadcast_status(&event, at);
                let conversation = self.route_status(&event)?;
                if conversation.is_none() && !broadcast {
                    self.keep_early_status(&event, at);
                }
                conversation
            }
            EventKind::Preference => {
                self.route_preference(&event)?;
                None
            }
            EventKind::Comment | EventKind::CommentReply => {
                self.route_comment(&event, at, report)?;
                None
            }
            EventKind::Moderation => {
                self.route_moderation(&event);
                None
            }
            EventKind::Other => None,
        };
        self.set_routed(id, at, conversation);
        report.processed += 1;
        Ok(())
    }

    fn route_message(
        &mut self,
        event: &WebhookEvent,
        at: DateTime<Utc>,
        report: &mut RoutingReport,
    ) -> Result<Option<ConversationId>> {
        let Some(sender) = &event.sender_id else {
            return Ok(None);
        };
        if let Some(existing) = self
            .message_by_provider
            .get(&(event.channel_id, event.event_id.clone()))
            .and_then(|id| self.messages.get(id))
        {
            return Ok(Some(existing.conversation_id));
        }
        let handle = self
            .insert_contact_channel(NewContactChannel {
                tenant_id: event.tenant_id,
                platform: event.platform.clone(),
                external_handle: sender.clone(),
                display_name: event.sender_name.clone(),
                created_at: at,
            })?
            .record;
        let conversation = self
            .insert_open_conversation(event.tenant_id, handle.contact_id, event.channel_id, at)?
            .record;
        let message = self.insert_message(NewMessage {
            tenant_id: event.tenant_id,
            conversation_id: conversation.id,
            direction: MessageDirection::Inbound,
            text: event.text.clone().unwrap_or_default(),
            has_media: event.has_media,
            provider_message_id: Some(event.event_id.clone()),
            in_reply_to: None,
            delivery_status: None,
            created_at: event.occurred_at,
            stored_at: at,
        })?;
        if message.created {
            report.messages_created += 1;
        }
        Ok(Some(message.record.conversation_id))
    }

    fn route_status(&mut self, event: &WebhookEvent) -> Result<Option<ConversationId>> {
        let (Some(target), Some(status)) = (&event.target_id, event.delivery_status) else {
            return Ok(None);
        };
        Ok(self
            .update_delivery_status(event.tenant_id, event.channel_id, target, status)?
            .map(|m| m.conversation_id))
    }

    /// A comment hidden, shown again or removed on the platform: its stored
    /// comment (on any post of the channel with that platform id) records
    /// it, unless it recorded a moderation that happened later.
    fn route_moderation(&mut self, event: &WebhookEvent) {
        let (Some(target), Some(comment), Some(verb)) =
            (&event.target_id, &event.parent_id, event.text.as_deref())
        else {
            return;
        };
        let hidden = match verb {
            "hide" | "remove" => true,
            "unhide" => false,
            _ => return,
        };
        let ids: Vec<CommentId> = self
            .posts
            .values()
            .filter(|p| {
                p.tenant_id == event.tenant_id
                    && p.channel_id == event.channel_id
                    && p.platform_post_id.as_deref() == Some(target)
            })
            .filter_map(|p| self.comment_by_key.get(&(p.id, comment.clone())).copied())
            .collect();
        for id in ids {
            let latest = self
                .comment_moderated_at
                .entry(id)
                .or_insert(event.occurred_at);
            if *latest > event.occurred_at {
                continue;
            }
            *latest = event.occurred_at;
            if let Some(c) = self.comments.get_mut(&id) {
                c.hidden = hidden;
            }
        }
    }

    fn route_comment(
        &mut self,
        event: &WebhookEvent,
        at: DateTime<Utc>,
        report: &mut RoutingReport,
    ) -> Result<()> {
        let Some(target) = &event.target_id else {
            return Ok(());
        };
        let existing = self
            .post_by_platform_id(event.tenant_id, event.channel_id, target)
            .map(|p| p.id);
        let mut comment = NewComment {
            tenant_id: event.tenant_id,
            post_id: existing.unwrap_or_else(PostId::generate),
            platform_comment_id: event.event_id.clone(),
            parent_platform_comment_id: event.parent_id.clone(),
            author_id: event.sender_id.clone(),
            author_name: event.sender_name.clone(),
            text: event.text.clone().unwrap_or_default(),
            created_at: event.occurred_at,
            stored_at: at,
            hidden: false,
        };
        if existing.is_none() {
            // A post made elsewhere: recorded once, known from its comment
            // (checked first, so a refused comment records no post).
            comment.validate()?;
            let external = DiscoveredPost {
                platform_post_id: target.clone(),
                url: None,
                text: None,
                published_at: None,
            };
            external.validate()?;
            comment.post_id = self
                .create_external_post(
                    event.tenant_id,
                    event.channel_id,
                    &external,
                    event.occurred_at,
                    None,
                    at,
                )
                .id;
            report.external_posts_created += 1;
        }
        let comment = self.insert_comment(comment)?;
        if comment.created {
            report.comments_created += 1;
        }
        Ok(())
    }
}
