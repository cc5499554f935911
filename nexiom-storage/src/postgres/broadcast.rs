//! [`BroadcastStore`] on Postgres: `broadcast_contacts`, `audiences`,
//! `audience_members`, `post_broadcasts` and `broadcast_deliveries`. Every
//! operation is tenant-scoped (one transaction with the tenant set).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, AudienceId, BroadcastAudience, BroadcastContact, BroadcastContactId, BroadcastCounts,
    BroadcastDelivery, BroadcastDeliveryId, BroadcastTemplate, ChannelId, ClaimedDelivery,
    CoreError, DeliveryOutcome, DeliveryStatus, NewAudience, OptChange, PostBroadcast, PostId,
    TenantId, normalize_recipient, validate,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::error::{corrupt, db};
use super::rows::{all, parse};
use super::{PgStore, bound};
use crate::broadcast::{BroadcastStore, DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT};
use crate::error::{Result, StorageError};

#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    recipient: String,
    opted_in_at: Option<DateTime<Utc>>,
    opt_in_source: Option<String>,
    opted_out_at: Option<DateTime<Utc>>,
    opt_out_reason: Option<String>,
    updated_at: DateTime<Utc>,
}

impl ContactRow {
    fn into_entity(self) -> BroadcastContact {
        BroadcastContact {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            recipient: self.recipient,
            opted_in_at: self.opted_in_at,
            opt_in_source: self.opt_in_source,
            opted_out_at: self.opted_out_at,
            opt_out_reason: self.opt_out_reason,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AudienceRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct PostBroadcastRow {
    post_id: Uuid,
    tenant_id: Uuid,
    audience_id: Option<Uuid>,
    recipients: Option<Vec<String>>,
    template: Option<Json<BroadcastTemplate>>,
}

impl PostBroadcastRow {
    fn into_entity(self) -> Result<PostBroadcast> {
        let audience = match (self.audience_id, self.recipients) {
            (Some(id), None) => BroadcastAudience::Stored {
                audience_id: id.into(),
            },
            (None, Some(recipients)) => BroadcastAudience::Recipients { recipients },
            _ => {
                return Err(corrupt(
                    "post broadcast",
                    "neither or both of audience and recipients",
                ));
            }
        };
        Ok(PostBroadcast {
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            audience,
            template: self.template.map(|t| t.0),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    tenant_id: Uuid,
    post_id: Uuid,
    recipient: String,
    state: String,
    attempts: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    error: Option<String>,
    provider_message_id: Option<String>,
    delivery_status: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DeliveryRow {
    fn into_entity(self) -> Result<BroadcastDelivery> {
        Ok(BroadcastDelivery {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            post_id: self.post_id.into(),
            recipient: self.recipient,
            state: parse("delivery state", &self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at,
            error: self.error,
            provider_message_id: self.provider_message_id,
            delivery_status: self
                .delivery_status
                .as_deref()
                .map(|s| parse("delivery status", s))
                .transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CountsRow {
    pending: i64,
    sending: i64,
    sent: i64,
    failed: i64,
    next_attempt_at: Option<DateTime<Utc>>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The post's delivery counts, in `tx`.
async fn counts(tx: &mut super::Scoped, post: PostId) -> Result<BroadcastCounts> {
    let row: CountsRow = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending') AS pending, \
             count(*) FILTER (WHERE state = 'sending') AS sending, \
             count(*) FILTER (WHERE state = 'sent') AS sent, \
             count(*) FILTER (WHERE state = 'failed') AS failed, \
             min(next_attempt_at) FILTER (WHERE state = 'pending') AS next_attempt_at \
         FROM broadcast_deliveries WHERE post_id = $1",
    )
    .bind(post.as_uuid())
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(BroadcastCounts {
        pending: count(row.pending),
        sending: count(row.sending),
        sent: count(row.sent),
        failed: count(row.failed),
        next_attempt_at: row.next_attempt_at,
    })
}

/// The post's channel when it is `publishing` under `owner`'s lease unexpired
/// at `now`, the row locked against a concurrent prepare or claim.
async fn claimed_post(
    tx: &mut super::Scoped,
    tenant: TenantId,
    post: PostId,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT channel_id FROM scheduled_posts \
         WHERE tenant_id = $1 AND id = $2 AND status = 'publishing' \
             AND lease_owner = $3 AND lease_expires_at > $4 \
         FOR NO KEY UPDATE",
    )
    .bind(tenant.as_uuid())
    .bind(post.as_uuid())
    .bind(owner)
    .bind(bound(now))
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)
}

async fn channel_exists(
    tx: &mut super::Scoped,
    tenant: TenantId,
    channel: ChannelId,
) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2)")
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .fetch_one(&mut **tx)
        .await
        .map_err(db)
}

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
        Ok(Audience {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            channel_id: row.channel_id.into(),
            name: row.name,
            created_at: row.created_at,
        })
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
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM audiences WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(audience.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if !exists {
            return Err(StorageError::not_found("audience", audience));
        }
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
        validate::key("lease_owner", lease_owner)?;
        let mut tx = self.scoped(tenant).await?;
        let Some(channel) = claimed_post(&mut tx, tenant, post, lease_owner, now).await? else {
            return Ok(None);
        };
        let spec: Option<PostBroadcastRow> =
            sqlx::query_as("SELECT * FROM post_broadcasts WHERE tenant_id = $1 AND post_id = $2")
                .bind(tenant.as_uuid())
                .bind(post.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let Some(spec) = spec.map(PostBroadcastRow::into_entity).transpose()? else {
            return Ok(None);
        };
        let recipients: Vec<String> = match spec.audience {
            BroadcastAudience::Recipients { recipients } => {
                recipients.iter().map(|r| normalize_recipient(r)).collect()
            }
            BroadcastAudience::Stored { audience_id } => sqlx::query_scalar(
                "SELECT c.recipient FROM audience_members m \
                 JOIN broadcast_contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id \
                 WHERE m.tenant_id = $1 AND m.audience_id = $2 \
                     AND c.opted_in_at IS NOT NULL AND c.opted_out_at IS NULL \
                 ORDER BY c.recipient",
            )
            .bind(tenant.as_uuid())
            .bind(audience_id.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?,
        };
        // A delivery left `sending` by an earlier claim may have gone out.
        sqlx::query(
            "UPDATE broadcast_deliveries SET state = 'failed', error = $2, updated_at = $3 \
             WHERE post_id = $1 AND state = 'sending'",
        )
        .bind(post.as_uuid())
        .bind(DELIVERY_OUTCOME_UNKNOWN)
        .bind(bound(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let ids: Vec<Uuid> = recipients
            .iter()
            .map(|_| BroadcastDeliveryId::generate().as_uuid())
            .collect();
        sqlx::query(
            "INSERT INTO broadcast_deliveries (id, tenant_id, post_id, recipient, state, \
                 attempts, error, created_at, updated_at) \
             SELECT u.id, $1, $2, u.recipient, \
                 CASE WHEN o.opted_out THEN 'failed' ELSE 'pending' END, 0, \
                 CASE WHEN o.opted_out THEN $6 END, $5, $5 \
             FROM UNNEST($3::uuid[], $4::text[]) AS u(id, recipient) \
             CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM broadcast_contacts c \
                 WHERE c.tenant_id = $1 AND c.channel_id = $7 AND c.recipient = u.recipient \
                     AND c.opted_out_at IS NOT NULL) AS opted_out) o \
             ON CONFLICT (post_id, recipient) DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .bind(&ids)
        .bind(&recipients)
        .bind(bound(now))
        .bind(OPTED_OUT)
        .bind(channel)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let counts = counts(&mut tx, post).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(counts))
    }

    async fn claim_next_delivery(
        &self,
        tenant: TenantId,
        post: PostId,
        lease_owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedDelivery>> {
        validate::key("lease_owner", lease_owner)?;
        let mut tx = self.scoped(tenant).await?;
        let Some(channel) = claimed_post(&mut tx, tenant, post, lease_owner, now).await? else {
            return Ok(None);
        };
        // Opted out since the deliveries were made: failed, never sent.
        sqlx::query(
            "UPDATE broadcast_deliveries d SET state = 'failed', error = $3, updated_at = $4 \
             FROM broadcast_contacts c \
             WHERE d.post_id = $1 AND d.state = 'pending' \
                 AND c.tenant_id = d.tenant_id AND c.channel_id = $2 \
                 AND c.recipient = d.recipient AND c.opted_out_at IS NOT NULL",
        )
        .bind(post.as_uuid())
        .bind(channel)
        .bind(OPTED_OUT)
        .bind(bound(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row: Option<DeliveryRow> = sqlx::query_as(
            "UPDATE broadcast_deliveries SET state = 'sending', attempts = attempts + 1, \
                 updated_at = $2 \
             WHERE id = (SELECT id FROM broadcast_deliveries \
                 WHERE post_id = $1 AND state = 'pending' \
                     AND (next_attempt_at IS NULL OR next_attempt_at <= $2) \
                 ORDER BY created_at, recipient LIMIT 1) \
             RETURNING *",
        )
        .bind(post.as_uuid())
        .bind(bound(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        };
        let delivery = row.into_entity()?;
        let last_inbound_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT max(m.created_at) FROM contact_channels cc \
             JOIN conversations c ON c.tenant_id = cc.tenant_id AND c.contact_id = cc.contact_id \
                 AND c.channel_id = $2 \
             JOIN messages m ON m.tenant_id = c.tenant_id AND m.conversation_id = c.id \
                 AND m.direction = 'inbound' \
             WHERE cc.tenant_id = $1 AND cc.platform = 'whatsapp' AND cc.external_handle = $3",
        )
        .bind(tenant.as_uuid())
        .bind(channel)
        .bind(&delivery.recipient)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(ClaimedDelivery {
            delivery,
            last_inbound_at,
        }))
    }

    async fn finish_delivery(
        &self,
        tenant: TenantId,
        delivery: BroadcastDeliveryId,
        outcome: DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        outcome.validate()?;
        let (state, error, next, message_id) = match &outcome {
            DeliveryOutcome::Sent {
                provider_message_id,
            } => ("sent", None, None, Some(provider_message_id.as_str())),
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => (
                "pending",
                Some(error.as_str()),
                Some(bound(*next_attempt_at)),
                None,
            ),
            DeliveryOutcome::Failed { error } => ("failed", Some(error.as_str()), None, None),
        };
        let mut tx = self.scoped(tenant).await?;
        // A message that went out is recorded even over an "unknown" failure.
        let done = sqlx::query(
            "UPDATE broadcast_deliveries SET state = $3, error = $4, next_attempt_at = $5, \
                 provider_message_id = COALESCE($6, provider_message_id), \
                 delivery_status = CASE WHEN $3 = 'sent' \
                     THEN COALESCE(delivery_status, 'sent') ELSE delivery_status END, \
                 updated_at = $7 \
             WHERE tenant_id = $1 AND id = $2 \
                 AND (state = 'sending' OR ($3 = 'sent' AND state = 'failed' AND error = $8))",
        )
        .bind(tenant.as_uuid())
        .bind(delivery.as_uuid())
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(message_id)
        .bind(bound(at))
        .bind(DELIVERY_OUTCOME_UNKNOWN)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(done > 0)
    }

    async fn list_deliveries(
        &self,
        tenant: TenantId,
        post: PostId,
    ) -> Result<Vec<BroadcastDelivery>> {
        let mut tx = self.scoped(tenant).await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM scheduled_posts WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if !exists {
            return Err(StorageError::not_found("post", post));
        }
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
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM scheduled_posts WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if !exists {
            return Err(StorageError::not_found("post", post));
        }
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
        validate::key("provider_message_id", provider_message_id)?;
        let went_out = matches!(
            status,
            DeliveryStatus::Sent | DeliveryStatus::Delivered | DeliveryStatus::Read
        );
        let ranks = |column: &str| {
            format!(
                "CASE {column} WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 \
                 WHEN 'read' THEN 3 WHEN 'failed' THEN 4 END"
            )
        };
        let sql = format!(
            "UPDATE broadcast_deliveries d SET \
                 state = CASE WHEN $5 AND (d.state = 'sending' \
                     OR (d.state = 'failed' AND d.error = $7)) THEN 'sent' ELSE d.state END, \
                 error = CASE WHEN $5 AND (d.state = 'sending' \
                     OR (d.state = 'failed' AND d.error = $7)) THEN NULL ELSE d.error END, \
                 provider_message_id = CASE WHEN $5 AND (d.state = 'sending' \
                     OR (d.state = 'failed' AND d.error = $7)) THEN $2 \
                     ELSE d.provider_message_id END, \
                 delivery_status = CASE WHEN d.delivery_status IS NULL \
                     OR (d.delivery_status <> 'failed' AND {new} > {old}) \
                     THEN $4 ELSE d.delivery_status END, \
                 updated_at = $6 \
             WHERE d.id = (SELECT id FROM broadcast_deliveries \
                 WHERE tenant_id = $1 AND (provider_message_id = $2 OR id = $3) LIMIT 1) \
             RETURNING d.*",
            new = ranks("$4"),
            old = ranks("d.delivery_status"),
        );
        let mut tx = self.scoped(tenant).await?;
        let row: Option<DeliveryRow> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(provider_message_id)
            .bind(reference.map(|r| r.as_uuid()))
            .bind(status.as_str())
            .bind(went_out)
            .bind(bound(at))
            .bind(DELIVERY_OUTCOME_UNKNOWN)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(DeliveryRow::into_entity).transpose()
    }
}
