//! The deliveries of a broadcast on Postgres: made, claimed one at a time
//! and finished under the post's claim, and moved by status webhooks (see
//! [`BroadcastStore`](crate::BroadcastStore)). Every operation is
//! tenant-scoped.

use chrono::{DateTime, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastCounts, BroadcastDelivery, BroadcastDeliveryId, ClaimedDelivery,
    DeliveryOutcome, DeliveryStatus, PostId, TenantId, normalize_recipient, validate,
};
use uuid::Uuid;

use super::broadcast_rows::{DeliveryRow, PostBroadcastRow, claimed_post, counts};
use super::error::db;
use super::{PgStore, bound};
use crate::broadcast::{DELIVERY_OUTCOME_UNKNOWN, OPTED_OUT};
use crate::error::Result;
use crate::outbox::OUTCOME_UNKNOWN_PREFIX;

impl PgStore {
    pub(super) async fn deliveries_prepare(
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
        // Its own broadcast, or its series template's.
        let spec: Option<PostBroadcastRow> = sqlx::query_as(
            "SELECT b.* FROM post_broadcasts b \
             WHERE b.tenant_id = $1 AND (b.post_id = $2 OR b.post_id = \
                 (SELECT series_id FROM scheduled_posts WHERE tenant_id = $1 AND id = $2)) \
             ORDER BY b.post_id = $2 DESC LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(spec) = spec.map(PostBroadcastRow::into_entity).transpose()? else {
            return Ok(None);
        };
        // The audience is read once, at the post's first claim: a later pass
        // (or a claim after a stopped worker) sends to the deliveries made
        // then, not to members added since.
        let made: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM broadcast_deliveries WHERE post_id = $1)",
        )
        .bind(post.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let recipients: Vec<String> = match spec.audience {
            _ if made => Vec::new(),
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

    pub(super) async fn deliveries_claim_next(
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
        // The next pending delivery in order (migration 0035's index); one
        // whose recipient opted out since the deliveries were made is failed,
        // never sent, and the next one taken. Only the deliveries reached are
        // read (the opt-out is probed for the one picked, by its key): a
        // claim costs the same at the first recipient and the last.
        let row = loop {
            let next: Option<NextDelivery> = sqlx::query_as(
                "WITH pick AS ( \
                     SELECT d.id, d.tenant_id, d.recipient FROM broadcast_deliveries d \
                     WHERE d.post_id = $1 AND d.state = 'pending' \
                         AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= $2) \
                     ORDER BY d.created_at, d.recipient LIMIT 1), \
                 next AS ( \
                     SELECT pick.id, EXISTS (SELECT 1 FROM broadcast_contacts c \
                         WHERE c.tenant_id = pick.tenant_id AND c.channel_id = $3 \
                             AND c.recipient = pick.recipient AND c.opted_out_at IS NOT NULL) \
                         AS opted_out \
                     FROM pick) \
                 UPDATE broadcast_deliveries d SET \
                     state = CASE WHEN next.opted_out THEN 'failed' ELSE 'sending' END, \
                     attempts = d.attempts + CASE WHEN next.opted_out THEN 0 ELSE 1 END, \
                     error = CASE WHEN next.opted_out THEN $4 ELSE d.error END, \
                     updated_at = $2 \
                 FROM next WHERE d.id = next.id \
                 RETURNING d.*, next.opted_out",
            )
            .bind(post.as_uuid())
            .bind(bound(now))
            .bind(channel)
            .bind(OPTED_OUT)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            match next {
                Some(NextDelivery {
                    opted_out: true, ..
                }) => continue,
                Some(NextDelivery { row, .. }) => break Some(row),
                None => break None,
            }
        };
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

    pub(super) async fn deliveries_finish(
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
        // A message that went out is recorded even over an "unknown" failure;
        // then its post, if already settled, takes the account again.
        let done: Option<(Uuid, bool)> = sqlx::query_as(
            "UPDATE broadcast_deliveries d SET state = $3, error = $4, next_attempt_at = $5, \
                 provider_message_id = COALESCE($6, d.provider_message_id), \
                 delivery_status = CASE WHEN $3 = 'sent' \
                     THEN COALESCE(d.delivery_status, 'sent') ELSE d.delivery_status END, \
                 updated_at = $7 \
             FROM (SELECT id, state, error FROM broadcast_deliveries \
                 WHERE tenant_id = $1 AND id = $2 FOR UPDATE) o \
             WHERE d.id = o.id AND (o.state = 'sending' \
                 OR ($3 = 'sent' AND o.state = 'failed' AND starts_with(o.error, $8))) \
             RETURNING d.post_id, o.state = 'failed'",
        )
        .bind(tenant.as_uuid())
        .bind(delivery.as_uuid())
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(message_id)
        .bind(bound(at))
        .bind(OUTCOME_UNKNOWN_PREFIX)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some((post, true)) = done {
            resettle_broadcasts(&mut tx, &[post], at)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(done.is_some())
    }

    pub(super) async fn deliveries_apply_status(
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
                 state = CASE WHEN o.went_out THEN 'sent' ELSE d.state END, \
                 error = CASE WHEN o.went_out THEN NULL ELSE d.error END, \
                 provider_message_id = CASE WHEN o.went_out THEN $2 \
                     ELSE d.provider_message_id END, \
                 delivery_status = CASE WHEN d.delivery_status IS NULL \
                     OR (d.delivery_status <> 'failed' AND {new} > {old}) \
                     THEN $4 ELSE d.delivery_status END, \
                 updated_at = $6 \
             FROM (SELECT id, $5 AND (state = 'sending' \
                     OR (state = 'failed' AND starts_with(error, $7))) AS went_out \
                 FROM broadcast_deliveries \
                 WHERE tenant_id = $1 AND (provider_message_id = $2 OR id = $3) \
                 LIMIT 1 FOR UPDATE) o \
             WHERE d.id = o.id \
             RETURNING d.*, o.went_out",
            new = ranks("$4"),
            old = ranks("d.delivery_status"),
        );
        let mut tx = self.scoped(tenant).await?;
        let row: Option<StatusApplied> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(provider_message_id)
            .bind(reference.map(|r| r.as_uuid()))
            .bind(status.as_str())
            .bind(went_out)
            .bind(bound(at))
            .bind(OUTCOME_UNKNOWN_PREFIX)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(StatusApplied { row, went_out }) = row else {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        };
        let delivery = row.into_entity()?;
        if went_out {
            resettle_broadcasts(&mut tx, &[delivery.post_id.as_uuid()], at)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(delivery))
    }
}

/// A delivery updated by a status, and whether it turned out sent.
#[derive(sqlx::FromRow)]
struct StatusApplied {
    #[sqlx(flatten)]
    row: DeliveryRow,
    went_out: bool,
}

/// Deliveries of `posts` have just turned out sent after all (a status
/// webhook, or a send recorded late): each post already settled for good
/// takes its deliveries' account again, as the publish queue's last pass
/// would have. `failed` (nobody received it) becomes `published` now, with
/// the broadcast's platform id, and its content job, `failed` with this
/// post, becomes `published` too; a published post's summary
/// (`error_message`) is brought up to date. A post still being published,
/// or with deliveries not yet settled, is left to its pass.
///
/// A post still `publishing` is passed over without waiting for its lock
/// (the statement's snapshot decides), so a status routed while a worker
/// publishes the post never waits for that worker; when the worker then
/// settles it `failed` from a count made before, `settle_posts` runs this
/// again in the settlement's transaction and sees the delivery, provided
/// the transaction that changed it has committed by then (RELIABILITY.md
/// names the remaining window).
pub(super) async fn resettle_broadcasts(
    conn: &mut sqlx::PgConnection,
    posts: &[Uuid],
    at: DateTime<Utc>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "WITH c AS ( \
             SELECT d.tenant_id, d.post_id, \
                 count(*) FILTER (WHERE d.state = 'sent') AS sent, \
                 count(*) FILTER (WHERE d.state = 'failed') AS failed, \
                 count(*) AS total, \
                 bool_and(d.state IN ('sent', 'failed')) AS settled \
             FROM broadcast_deliveries d WHERE d.post_id = ANY($1) \
             GROUP BY 1, 2 \
         ), p AS ( \
             UPDATE scheduled_posts s SET \
                 status = 'published', \
                 platform_post_id = $3 || s.id, \
                 published_at = COALESCE(s.published_at, $2), \
                 stop_at = COALESCE(s.stop_at, $2), \
                 next_check_at = NULL, next_attempt_at = NULL, \
                 error_message = CASE WHEN c.failed > 0 THEN \
                     format('%s of %s recipients sent, %s failed', c.sent, c.total, c.failed) \
                 END, \
                 updated_at = $2 \
             FROM c \
             WHERE s.tenant_id = c.tenant_id AND s.id = c.post_id AND c.settled AND c.sent > 0 \
                 AND (s.status = 'failed' \
                     OR (s.status = 'published' AND s.platform_post_id = $3 || s.id)) \
             RETURNING s.tenant_id, s.id, s.content_job_id, s.platform_post_id, s.published_at \
         ) \
         UPDATE content_jobs j SET status = 'published', \
             platform_post_id = p.platform_post_id, published_at = p.published_at, \
             error_message = NULL, updated_at = $2 \
         FROM p \
         WHERE j.tenant_id = p.tenant_id AND j.id = p.content_job_id \
             AND j.status = 'failed' AND j.scheduled_post_id = p.id",
    )
    .bind(posts)
    .bind(bound(at))
    .bind(BROADCAST_PREFIX)
    .execute(conn)
    .await?;
    Ok(())
}

/// What [`broadcast_platform_post_id`](nexiom_core::broadcast_platform_post_id)
/// puts before the post id.
const BROADCAST_PREFIX: &str = "broadcast:";

/// A delivery the claim reached, and whether its recipient had opted out
/// (then it was failed, not claimed).
#[derive(sqlx::FromRow)]
struct NextDelivery {
    #[sqlx(flatten)]
    row: DeliveryRow,
    opted_out: bool,
}
