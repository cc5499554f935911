//! [`BroadcastStore`] on Postgres: `broadcast_contacts`, `audiences`,
//! `audience_members`, `post_broadcasts` and `broadcast_deliveries`. Every
//! operation is tenant-scoped (one transaction with the tenant set).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, AudienceId, BroadcastAudience, BroadcastContact, BroadcastContactId, BroadcastCounts,
    BroadcastDelivery, BroadcastDeliveryId, BroadcastTemplate, ChannelId, ClaimedDelivery,
    CoreError, DeliveryOutcome, DeliveryStatus, NewAudience, NewScheduledPost, OptChange,
    PostBroadcast, PostId, ScheduledPost, TenantId, normalize_recipient,
};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::broadcast_rows::{
    AudienceRow, ContactRow, DeliveryRow, PostBroadcastRow, channel_exists, counts,
};
use super::error::{WriteFailure, db, missing_ref, write_error};
use super::post::post_refs;
use super::rows::PostRow;
use super::rows::all;
use super::{PgStore, bound};
use crate::broadcast::BroadcastStore;
use crate::error::{Result, StorageError};

/// Applies an opt change to the contact `(channel, recipient)`, created when
/// absent, unless it has a later change: `$1` a fresh id, `$2` tenant, `$3`
/// channel, `$4` recipient (normalized), `$5` opted in, `$6` source or
/// reason, `$7` time. Returns the row when written.
pub(super) const APPLY_OPT_CHANGE: &str = "INSERT INTO broadcast_contacts AS c (id, tenant_id, \
         channel_id, recipient, opted_in_at, opt_in_source, opted_out_at, opt_out_reason, \
         updated_at) \
     VALUES ($1, $2, $3, $4, \
         CASE WHEN $5 THEN $7 END, CASE WHEN $5 THEN $6 END, \
         CASE WHEN $5 THEN NULL ELSE $7 END, CASE WHEN $5 THEN NULL ELSE $6 END, $7) \
     ON CONFLICT (channel_id, recipient) DO UPDATE SET \
         opted_in_at = CASE WHEN $5 THEN $7 ELSE c.opted_in_at END, \
         opt_in_source = CASE WHEN $5 THEN $6 ELSE c.opt_in_source END, \
         opted_out_at = CASE WHEN $5 THEN NULL ELSE $7 END, \
         opt_out_reason = CASE WHEN $5 THEN NULL ELSE $6 END, \
         updated_at = $7 \
     WHERE c.tenant_id = $2 AND c.updated_at <= $7 \
     RETURNING *";

#[async_trait]
impl BroadcastStore for PgStore {
    async fn apply_opt_change(&self, change: OptChange) -> Result<BroadcastContact> {
        change.validate()?;
        let mut tx = self.scoped(change.tenant_id).await?;
        if !channel_exists(&mut tx, change.tenant_id, change.channel_id).await? {
            return Err(StorageError::unknown("channel", change.channel_id));
        }
        // Insert-if-absent, then apply the change unless a later one was.
        let row: Option<ContactRow> = sqlx::query_as(APPLY_OPT_CHANGE)
            .bind(BroadcastContactId::generate().as_uuid())
            .bind(change.tenant_id.as_uuid())
            .bind(change.channel_id.as_uuid())
            .bind(normalize_recipient(&change.recipient))
            .bind(change.opted_in)
            .bind(&change.source)
            .bind(bound(change.at))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let row = match row {
            Some(row) => row,
            // An older change: the stored contact stays as it is.
            None => sqlx::query_as(
                "SELECT * FROM broadcast_contacts WHERE channel_id = $1 AND recipient = $2",
            )
            .bind(change.channel_id.as_uuid())
            .bind(normalize_recipient(&change.recipient))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?,
        };
        tx.commit().await.map_err(db)?;
        Ok(row.into_entity())
    }

    async fn get_broadcast_contact(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        recipient: &str,
    ) -> Result<Option<BroadcastContact>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ContactRow> = sqlx::query_as(
            "SELECT * FROM broadcast_contacts \
             WHERE tenant_id = $1 AND channel_id = $2 AND recipient = $3",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .bind(normalize_recipient(recipient))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row.map(ContactRow::into_entity))
    }

    async fn create_audience(&self, new: NewAudience) -> Result<Audience> {
        new.validate()?;
        let mut tx = self.scoped(new.tenant_id).await?;
        if !channel_exists(&mut tx, new.tenant_id, new.channel_id).await? {
            return Err(StorageError::unknown("channel", new.channel_id));
        }
        let row: Option<AudienceRow> = sqlx::query_as(
            "INSERT INTO audiences (id, tenant_id, channel_id, name, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel_id, name) DO NOTHING \
             RETURNING *",
        )
        .bind(AudienceId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.channel_id.as_uuid())
        .bind(&new.name)
        .bind(bound(new.created_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(StorageError::conflict("audience", new.name));
        };
        tx.commit().await.map_err(db)?;
        Ok(row.into_entity())
    }

    async fn add_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
        recipients: &[String],
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut normalized = Vec::with_capacity(recipients.len());
        for r in recipients {
            nexiom_core::validate_recipient("recipients", r)?;
            normalized.push(normalize_recipient(r));
        }
        let mut tx = self.scoped(tenant).await?;
        let channel: Option<Uuid> =
            sqlx::query_scalar("SELECT channel_id FROM audiences WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(audience.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let Some(channel) = channel else {
            return Err(StorageError::not_found("audience", audience));
        };
        // Every recipient must be a contact of the channel currently opted in.
        let missing: Option<String> = sqlx::query_scalar(
            "SELECT r FROM UNNEST($3::text[]) AS r \
             WHERE NOT EXISTS (SELECT 1 FROM broadcast_contacts c \
                 WHERE c.tenant_id = $1 AND c.channel_id = $2 AND c.recipient = r \
                     AND c.opted_in_at IS NOT NULL AND c.opted_out_at IS NULL) \
             LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(channel)
        .bind(&normalized)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(r) = missing {
            return Err(CoreError::invalid(
                "recipients",
                format!("{r} is not a contact of the channel who opted in"),
            )
            .into());
        }
        let added = sqlx::query(
            "INSERT INTO audience_members (tenant_id, audience_id, contact_id, added_at) \
             SELECT $1, $2, c.id, $5 FROM broadcast_contacts c \
             WHERE c.tenant_id = $1 AND c.channel_id = $3 AND c.recipient = ANY($4) \
             ON CONFLICT (audience_id, contact_id) DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(audience.as_uuid())
        .bind(channel)
        .bind(&normalized)
        .bind(bound(at))
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(added)
    }

    async fn list_audience_members(
        &self,
        tenant: TenantId,
        audience: AudienceId,
    ) -> Result<Vec<BroadcastContact>> {
        let mut tx = self.scoped(tenant).await?;
        super::require_row(&mut tx, "audiences", "audience", tenant, audience.as_uuid()).await?;
        let rows: Vec<ContactRow> = sqlx::query_as(
            "SELECT c.* FROM audience_members m \
             JOIN broadcast_contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.audience_id = $2 \
             ORDER BY c.recipient",
        )
        .bind(tenant.as_uuid())
        .bind(audience.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(ContactRow::into_entity).collect())
    }

    async fn insert_broadcast_post(
        &self,
        new: NewScheduledPost,
        audience: BroadcastAudience,
        template: Option<BroadcastTemplate>,
    ) -> Result<(ScheduledPost, PostBroadcast)> {
        if new.series_id.is_some() {
            return Err(CoreError::invalid(
                "series_id",
                "an occurrence uses its series' audience; create the series instead",
            )
            .into());
        }
        new.validate()?;
        let tenant = new.tenant_id;
        let mut spec = PostBroadcast {
            tenant_id: tenant,
            post_id: PostId::generate(),
            audience,
            template,
        };
        spec.validate()?;
        let refs = post_refs(&new);
        let mut tx = self.scoped(tenant).await?;
        if let Some(missing) = missing_ref(&mut *tx, tenant, &refs[..1]).await? {
            return Err(missing);
        }
        audience_on_channel(&mut tx, tenant, &spec.audience, new.channel_id).await?;
        let row = match insert_template(&mut tx, spec.post_id, &new).await {
            Ok(row) => row,
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        };
        insert_post_broadcast(&mut tx, &spec).await?;
        tx.commit().await.map_err(db)?;
        let post = row.into_entity()?;
        spec.post_id = post.id;
        Ok((post, spec))
    }

    async fn set_post_broadcast(&self, broadcast: PostBroadcast) -> Result<PostBroadcast> {
        broadcast.validate()?;
        let tenant = broadcast.tenant_id;
        let mut tx = self.scoped(tenant).await?;
        let channel: Option<Uuid> = sqlx::query_scalar(
            "SELECT channel_id FROM scheduled_posts WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(broadcast.post_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(channel) = channel else {
            return Err(StorageError::unknown("post", broadcast.post_id));
        };
        let (audience, recipients) = match &broadcast.audience {
            BroadcastAudience::Stored { audience_id } => {
                let same_channel: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM audiences \
                     WHERE tenant_id = $1 AND id = $2 AND channel_id = $3)",
                )
                .bind(tenant.as_uuid())
                .bind(audience_id.as_uuid())
                .bind(channel)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                if !same_channel {
                    return Err(StorageError::unknown("audience", audience_id));
                }
                (Some(audience_id.as_uuid()), None)
            }
            BroadcastAudience::Recipients { recipients } => (None, Some(recipients.clone())),
        };
        sqlx::query(
            "INSERT INTO post_broadcasts (post_id, tenant_id, audience_id, recipients, template) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (post_id) DO UPDATE SET audience_id = EXCLUDED.audience_id, \
                 recipients = EXCLUDED.recipients, template = EXCLUDED.template",
        )
        .bind(broadcast.post_id.as_uuid())
        .bind(tenant.as_uuid())
        .bind(audience)
        .bind(recipients)
        .bind(broadcast.template.as_ref().map(Json))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(broadcast)
    }

    async fn get_post_broadcast(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Option<PostBroadcast>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<PostBroadcastRow> =
            sqlx::query_as("SELECT * FROM post_broadcasts WHERE tenant_id = $1 AND post_id = $2")
                .bind(tenant.as_uuid())
                .bind(post.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(PostBroadcastRow::into_entity).transpose()
    }

    async fn prepare_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BroadcastCounts>> {
        self.deliveries_prepare(tenant, post, lease_owner, now)
            .await
    }

    async fn claim_next_delivery(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedDelivery>> {
        self.deliveries_claim_next(tenant, post, lease_owner, now)
            .await
    }

    async fn finish_delivery(
        &self,
        tenant: TenantId,
        delivery: BroadcastDeliveryId,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.deliveries_finish(tenant, delivery, outcome, at).await
    }

    async fn close_cancelled_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.scoped(tenant).await?;
        super::require_row(&mut tx, "scheduled_posts", "post", tenant, post.as_uuid()).await?;
        let closed = sqlx::query(
            "UPDATE broadcast_deliveries d SET state = 'failed', \
                 error = CASE WHEN d.state = 'sending' THEN $4 ELSE $3 END, \
                 next_attempt_at = NULL, updated_at = $5 \
             WHERE d.tenant_id = $1 AND d.post_id = $2 AND d.state IN ('pending', 'sending') \
                 AND EXISTS (SELECT 1 FROM scheduled_posts p \
                     WHERE p.tenant_id = $1 AND p.id = $2 AND p.status = 'cancelled')",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .bind(crate::BROADCAST_CANCELLED)
        .bind(crate::DELIVERY_OUTCOME_UNKNOWN)
        .bind(super::bound(at))
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(closed)
    }

    async fn list_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Vec<BroadcastDelivery>> {
        let mut tx = self.scoped(tenant).await?;
        super::require_row(&mut tx, "scheduled_posts", "post", tenant, post.as_uuid()).await?;
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT * FROM broadcast_deliveries WHERE tenant_id = $1 AND post_id = $2 \
             ORDER BY recipient",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, DeliveryRow::into_entity)
    }

    async fn broadcast_counts(&self, tenant: TenantId, post: PostId) -> Result<BroadcastCounts> {
        let mut tx = self.scoped(tenant).await?;
        super::require_row(&mut tx, "scheduled_posts", "post", tenant, post.as_uuid()).await?;
        let counts = counts(&mut tx, post).await?;
        tx.commit().await.map_err(db)?;
        Ok(counts)
    }

    async fn apply_delivery_status(
        &self,
        tenant: TenantId,
        provider_message_id: &str,
        reference: Option<BroadcastDeliveryId>,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    ) -> Result<Option<BroadcastDelivery>> {
        self.deliveries_apply_status(tenant, provider_message_id, reference, status, at)
            .await
    }
}

/// Refuses a stored audience that is not the tenant's or not on `channel`
/// (`UnknownReference`).
pub(super) async fn audience_on_channel(
    conn: &mut PgConnection,
    tenant: TenantId,
    audience: &BroadcastAudience,
    channel: ChannelId,
) -> Result<()> {
    let BroadcastAudience::Stored { audience_id } = audience else {
        return Ok(());
    };
    let same_channel: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM audiences \
         WHERE tenant_id = $1 AND id = $2 AND channel_id = $3)",
    )
    .bind(tenant.as_uuid())
    .bind(audience_id.as_uuid())
    .bind(channel.as_uuid())
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    if !same_channel {
        return Err(StorageError::unknown("audience", audience_id));
    }
    Ok(())
}

/// Inserts `new` as the `queued` post `id`: a one-off post or a series
/// template, never an occurrence. The error is the statement's, for
/// [`write_error`] once the transaction is dropped.
pub(super) async fn insert_template(
    conn: &mut PgConnection,
    id: PostId,
    new: &NewScheduledPost,
) -> std::result::Result<PostRow, sqlx::Error> {
    let recurrence = new.recurrence.as_ref();
    sqlx::query_as(
        "INSERT INTO scheduled_posts (id, tenant_id, channel_id, content, publish_at, rrule, \
             dtstart, time_zone, series_id, occurrence_at, status, retry_count, mission_id, \
             content_job_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, 'queued', 0, $9, $10, $11, $11) \
         RETURNING *",
    )
    .bind(id.as_uuid())
    .bind(new.tenant_id.as_uuid())
    .bind(new.channel_id.as_uuid())
    .bind(Json(&new.content))
    .bind(new.publish_at)
    .bind(recurrence.map(|r| r.rrule.as_str()))
    .bind(recurrence.map(|r| r.dtstart))
    .bind(recurrence.map(|r| r.time_zone.name()))
    .bind(new.mission_id.map(|m| m.as_uuid()))
    .bind(new.content_job_id.map(|j| j.as_uuid()))
    .bind(new.created_at)
    .fetch_one(&mut *conn)
    .await
}

/// Inserts the post's audience and template (`spec.post_id` just inserted).
pub(super) async fn insert_post_broadcast(
    conn: &mut PgConnection,
    spec: &PostBroadcast,
) -> Result<()> {
    let (audience_id, recipients) = match &spec.audience {
        BroadcastAudience::Stored { audience_id } => (Some(audience_id.as_uuid()), None),
        BroadcastAudience::Recipients { recipients } => (None, Some(recipients.clone())),
    };
    sqlx::query(
        "INSERT INTO post_broadcasts (post_id, tenant_id, audience_id, recipients, template) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(spec.post_id.as_uuid())
    .bind(spec.tenant_id.as_uuid())
    .bind(audience_id)
    .bind(recipients)
    .bind(spec.template.as_ref().map(Json))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
