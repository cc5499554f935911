//! [`EventStore`] on Postgres: `webhook_events`, `contacts`, `contact_channels`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Contact, ContactChannel, ContactChannelId, ContactId, ConversationId, Inserted,
    NewContactChannel, NewWebhookEvent, Platform, RoutingReport, TenantId, WebhookEvent,
    WebhookEventId, validate,
};

use super::error::{Ref, WriteFailure, db, require_refs, write_error};
use super::routing::{self, Pick};
use super::rows::{ContactChannelRow, ContactRow, EventRow, all};
use super::{PgStore, limit};
use crate::error::{Result, StorageError};
use crate::traits::EventStore;

#[async_trait]
impl EventStore for PgStore {
    async fn insert_event(&self, new: NewWebhookEvent) -> Result<Inserted<WebhookEvent>> {
        new.validate()?;
        let refs = [Ref::ChannelOn(new.channel_id, new.platform.clone())];
        // The table is partitioned by month of `occurred_at`, so its unique
        // key holds the time: a key stored at another time, or by another
        // tenant (whose rows the tenant's policies hide from the insert), is
        // looked up first, across tenants.
        let held = self.event_key_held(&new.platform, &new.event_id).await?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let inserted: std::result::Result<Option<EventRow>, _> = if held {
            Ok(None)
        } else {
            sqlx::query_as(
                "INSERT INTO webhook_events (id, tenant_id, channel_id, platform, event_id, kind, \
                 sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id, \
                 occurred_at, payload, received_at, routed_at, conversation_id) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 NULL, NULL \
             WHERE EXISTS (SELECT 1 FROM channels c \
                 WHERE c.tenant_id = $2 AND c.id = $3 AND c.platform = $4) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_events w \
                     WHERE w.platform = $4 AND w.event_id = $5) \
             ON CONFLICT (platform, event_id, occurred_at) DO NOTHING \
             RETURNING *",
            )
            .bind(WebhookEventId::generate().as_uuid())
            .bind(new.tenant_id.as_uuid())
            .bind(new.channel_id.as_uuid())
            .bind(new.platform.as_str())
            .bind(&new.event_id)
            .bind(new.kind.as_str())
            .bind(new.sender_id.as_deref())
            .bind(new.sender_name.as_deref())
            .bind(new.text.as_deref())
            .bind(new.has_media)
            .bind(new.delivery_status.map(|s| s.as_str()))
            .bind(new.target_id.as_deref())
            .bind(new.parent_id.as_deref())
            .bind(new.occurred_at)
            .bind(&new.payload)
            .bind(new.received_at)
            .fetch_optional(&mut *tx)
            .await
        };
        match inserted {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::created(row.into_entity()?));
            }
            Ok(None) => {}
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        }
        // Nothing inserted: the channel is not the tenant's on this platform
        // (the statement's check; migration 0030), or the key is taken. The
        // references are checked first, then the stored event is returned
        // unchanged.
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        tx.commit().await.map_err(db)?;
        // A cross-tenant lookup: `(platform, event_id)` is global, and the event
        // holding it may be another tenant's (which the tenant's policies hide).
        // The table is partitioned by `occurred_at`, so its unique key holds
        // the time too: the insert's `NOT EXISTS` keeps the key global (two
        // writers racing with one key at two times could both insert; the
        // first stored answers here).
        let existing: Option<EventRow> = sqlx::query_as(
            "SELECT * FROM webhook_events WHERE platform = $1 AND event_id = $2 \
             ORDER BY received_at, id LIMIT 1",
        )
        .bind(new.platform.as_str())
        .bind(&new.event_id)
        .fetch_optional(&self.scan_pool)
        .await
        .map_err(db)?;
        match existing {
            Some(row) if row.tenant_id() == new.tenant_id.as_uuid() => {
                Ok(Inserted::existing(row.into_entity()?))
            }
            // Another tenant's event under the same platform key: never returned.
            Some(_) => Err(StorageError::conflict(
                "event",
                format!("platform {} and event id {:?}", new.platform, new.event_id),
            )),
            None => Err(StorageError::backend(format!(
                "postgres: event {}/{} conflicted but cannot be read",
                new.platform, new.event_id
            ))),
        }
    }

    async fn get_event(&self, tenant: TenantId, id: WebhookEventId) -> Result<WebhookEvent> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<EventRow> =
            sqlx::query_as("SELECT * FROM webhook_events WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("event", id))?
            .into_entity()
    }

    async fn find_event(
        &self,
        tenant: TenantId,
        platform: &Platform,
        event_id: &str,
    ) -> Result<Option<WebhookEvent>> {
        validate::key("event_id", event_id)?;
        let mut tx = self.scoped(tenant).await?;
        let row: Option<EventRow> = sqlx::query_as(
            "SELECT * FROM webhook_events \
             WHERE tenant_id = $1 AND platform = $2 AND event_id = $3 \
             ORDER BY received_at, id LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(platform.as_str())
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(EventRow::into_entity).transpose()
    }

    async fn list_unrouted_events(
        &self,
        platform: Option<&Platform>,
        max: u32,
    ) -> Result<Vec<WebhookEvent>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant scan.
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT * FROM webhook_events \
             WHERE routed_at IS NULL AND ($1::text IS NULL OR platform = $1) \
             ORDER BY received_at, id \
             LIMIT $2",
        )
        .bind(platform.map(Platform::as_str))
        .bind(limit(max))
        .fetch_all(&self.scan_pool)
        .await
        .map_err(db)?;
        all(rows, EventRow::into_entity)
    }

    async fn mark_event_routed(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        conversation_id: Option<ConversationId>,
        routed_at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        let mut tx = self.scoped(tenant).await?;
        // The first routing wins: `routed_at` and `conversation_id` in SET read
        // the values before the update. An unrouted event is marked only with
        // a conversation of its tenant (checked here: the events' table has
        // no foreign key to conversations, which routing would pay for every
        // event it marks; conversations are never deleted).
        let row: Option<EventRow> = sqlx::query_as(
            "UPDATE webhook_events e SET \
                 routed_at = COALESCE(e.routed_at, $3), \
                 conversation_id = CASE WHEN e.routed_at IS NULL THEN $4 \
                     ELSE e.conversation_id END \
             WHERE e.tenant_id = $1 AND e.id = $2 \
                 AND (e.routed_at IS NOT NULL OR $4::uuid IS NULL OR EXISTS ( \
                     SELECT 1 FROM conversations c WHERE c.tenant_id = $1 AND c.id = $4)) \
             RETURNING e.*",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(routed_at)
        .bind(conversation_id.map(|c| c.as_uuid()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(row) = row {
            tx.commit().await.map_err(db)?;
            return row.into_entity();
        }
        // Not marked: an unknown event, or an unknown conversation.
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if exists {
            let refs: Vec<Ref> = conversation_id.map(Ref::Conversation).into_iter().collect();
            require_refs(&mut *tx, tenant, &refs).await?;
        }
        Err(StorageError::not_found("event", id))
    }

    async fn route_unrouted_events(
        &self,
        platform: Option<&Platform>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<RoutingReport> {
        if limit == 0 {
            return Ok(RoutingReport::default());
        }
        routing::route(self, Pick::Unrouted { platform, limit }, at).await
    }

    async fn route_event(
        &self,
        tenant: TenantId,
        id: WebhookEventId,
        at: DateTime<Utc>,
    ) -> Result<WebhookEvent> {
        routing::route(self, Pick::One { tenant, id }, at).await?;
        self.get_event(tenant, id).await
    }

    async fn insert_contact_channel(
        &self,
        new: NewContactChannel,
    ) -> Result<Inserted<ContactChannel>> {
        new.validate()?;
        let mut tx = self.scoped(new.tenant_id).await?;
        // The handle is inserted first; its contact only when the handle was new
        // (the foreign key to the contact is checked at the end of the statement).
        let inserted: std::result::Result<Option<ContactChannelRow>, _> = sqlx::query_as(
            "WITH cc AS ( \
                 INSERT INTO contact_channels (id, tenant_id, contact_id, platform, \
                     external_handle, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, platform, external_handle) DO NOTHING \
                 RETURNING * \
             ), contact AS ( \
                 INSERT INTO contacts (id, tenant_id, display_name, created_at) \
                 SELECT contact_id, tenant_id, $7, created_at FROM cc \
             ) \
             SELECT * FROM cc",
        )
        .bind(ContactChannelId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(ContactId::generate().as_uuid())
        .bind(new.platform.as_str())
        .bind(&new.external_handle)
        .bind(new.created_at)
        .bind(new.display_name.as_deref())
        .fetch_optional(&mut *tx)
        .await;
        match inserted {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::created(row.into_entity()?));
            }
            Ok(None) => {}
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &[],
                        conflict: None,
                    },
                )
                .await);
            }
        }
        let existing: Option<ContactChannelRow> = sqlx::query_as(
            "SELECT * FROM contact_channels \
             WHERE tenant_id = $1 AND platform = $2 AND external_handle = $3",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.platform.as_str())
        .bind(&new.external_handle)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(format!(
                "postgres: contact channel {}/{} conflicted but cannot be read",
                new.platform, new.external_handle
            ))),
        }
    }

    async fn get_contact(&self, tenant: TenantId, id: ContactId) -> Result<Contact> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ContactRow> =
            sqlx::query_as("SELECT * FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("contact", id))?
            .into_entity()
    }

    async fn list_contact_channels(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Vec<ContactChannel>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<ContactChannelRow> = sqlx::query_as(
            "SELECT * FROM contact_channels \
             WHERE tenant_id = $1 AND contact_id = $2 \
             ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .bind(contact.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, ContactChannelRow::into_entity)
    }
}

impl PgStore {
    /// Whether an event holds `(platform, event_id)`, whatever its tenant
    /// and time (a cross-tenant read, on the scan pool).
    async fn event_key_held(&self, platform: &Platform, event_id: &str) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE platform = $1 AND event_id = $2)",
        )
        .bind(platform.as_str())
        .bind(event_id)
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)
    }
}
