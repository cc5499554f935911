//! Rows and small helpers of the broadcast tables on Postgres.

use chrono::{DateTime, Utc};
use nexiom_core::{
    Audience, BroadcastAudience, BroadcastContact, BroadcastCounts, BroadcastDelivery,
    BroadcastTemplate, ChannelId, PostBroadcast, PostId, TenantId,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::bound;
use super::error::{corrupt, db};
use super::rows::parse;
use crate::error::Result;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ContactRow {
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
    pub(super) fn into_entity(self) -> BroadcastContact {
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
pub(super) struct AudienceRow {
    id: Uuid,
    tenant_id: Uuid,
    channel_id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl AudienceRow {
    pub(super) fn into_entity(self) -> Audience {
        Audience {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            name: self.name,
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PostBroadcastRow {
    post_id: Uuid,
    tenant_id: Uuid,
    audience_id: Option<Uuid>,
    recipients: Option<Vec<String>>,
    template: Option<Json<BroadcastTemplate>>,
}

impl PostBroadcastRow {
    pub(super) fn into_entity(self) -> Result<PostBroadcast> {
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
pub(super) struct DeliveryRow {
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
    pub(super) fn into_entity(self) -> Result<BroadcastDelivery> {
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
pub(super) struct CountsRow {
    pending: i64,
    sending: i64,
    sent: i64,
    failed: i64,
    undelivered: i64,
    next_attempt_at: Option<DateTime<Utc>>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The post's delivery counts, in `tx`.
pub(super) async fn counts(tx: &mut super::Scoped, post: PostId) -> Result<BroadcastCounts> {
    let row: CountsRow = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending') AS pending, \
             count(*) FILTER (WHERE state = 'sending') AS sending, \
             count(*) FILTER (WHERE state = 'sent') AS sent, \
             count(*) FILTER (WHERE state = 'failed') AS failed, \
             count(*) FILTER (WHERE state = 'sent' AND delivery_status = 'failed') \
                 AS undelivered, \
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
        undelivered: count(row.undelivered),
        next_attempt_at: row.next_attempt_at,
    })
}

/// The post's channel when it is `publishing` under `owner`'s lease unexpired
/// at `now`, the row locked against a concurrent prepare or claim.
pub(super) async fn claimed_post(
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

pub(super) async fn channel_exists(
    tx: &mut super::Scoped,
    tenant: TenantId,
    channel: ChannelId,
) -> Result<bool> {
    super::row_exists(tx, "channels", tenant, channel.as_uuid()).await
}
