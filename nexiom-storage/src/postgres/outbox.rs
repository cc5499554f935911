//! [`OutboxStore`] on Postgres: `notification_endpoints`, `notifications`
//! and `notification_deliveries` (migration 0025). Notifications are enqueued
//! by the SQL function `nexiom_enqueue_notification`, which the triggers of
//! the causes call in the causing transaction and which
//! [`OutboxStore::enqueue_notification`] calls too; endpoint secrets are
//! sealed like channel tokens.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ClaimedNotification, DeliveryAttempt, EndpointId, Inserted, NewNotification,
    NewNotificationEndpoint, Notification, NotificationDelivery, NotificationDeliveryId,
    NotificationDeliveryState, NotificationEndpoint, NotificationId, NotificationKind,
    SecretString, TenantId, validate,
};
use uuid::Uuid;

use super::error::{WriteFailure, db, write_error};
use super::outbox_endpoints::EndpointRow;
use super::{PgStore, bound, limit, require_row};
use crate::error::{Result, StorageError};
use crate::outbox::OutboxStore;

/// When the deliveries of an endpoint whose secret a claimer cannot open
/// are due again.
const UNREADABLE_SECRET_RETRY: Duration = Duration::minutes(5);

/// How long after the first hand-back a delivery whose endpoint's secret no
/// claimer could open is handed back before it is dead.
const UNREADABLE_SECRET_DEADLINE: Duration = Duration::hours(24);

/// The error of a delivery dead that way.
const UNREADABLE_SECRET_ERROR: &str = "the endpoint's secret or Slack URL could not be opened with \
     the keys of the processes that claimed it for 24 hours: configure the key it was sealed with, \
     or give the endpoint its target again (set_notification_endpoint_target)";

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    tenant_id: Uuid,
    kind: String,
    key: String,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    tenant_id: Uuid,
    notification_id: Uuid,
    endpoint_id: Uuid,
    state: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
}

impl NotificationRow {
    fn into_entity(self) -> Result<Notification> {
        Ok(Notification {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            kind: self.kind.parse()?,
            key: self.key,
            payload: self.payload,
            occurred_at: self.occurred_at,
        })
    }
}

impl DeliveryRow {
    fn into_entity(self) -> Result<NotificationDelivery> {
        Ok(NotificationDelivery {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            notification_id: self.notification_id.into(),
            endpoint_id: self.endpoint_id.into(),
            state: self.state.parse()?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            lease_until: self.lease_until,
            last_error: self.last_error,
            delivered_at: self.delivered_at,
        })
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn create_notification_endpoint(
        &self,
        new: NewNotificationEndpoint,
    ) -> Result<NotificationEndpoint> {
        self.insert_endpoint(new).await
    }

    async fn list_notification_endpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<NotificationEndpoint>> {
        self.endpoints_of(tenant).await
    }

    async fn set_notification_endpoint_enabled(
        &self,
        tenant: TenantId,
        id: EndpointId,
        enabled: bool,
    ) -> Result<NotificationEndpoint> {
        self.enable_endpoint(tenant, id, enabled).await
    }

    async fn set_notification_endpoint_target(
        &self,
        tenant: TenantId,
        id: EndpointId,
        url: String,
        secret: Option<SecretString>,
    ) -> Result<NotificationEndpoint> {
        self.retarget_endpoint(tenant, id, url, secret).await
    }

    async fn enqueue_notification(&self, new: NewNotification) -> Result<Inserted<Notification>> {
        new.validate()?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let created: std::result::Result<Option<Uuid>, _> =
            sqlx::query_scalar("SELECT nexiom_enqueue_notification($1, $2, $3, $4, $5)")
                .bind(new.tenant_id.as_uuid())
                .bind(new.kind.as_str())
                .bind(&new.key)
                .bind(&new.payload)
                .bind(new.occurred_at)
                .fetch_one(&mut *tx)
                .await;
        let created = match created {
            Ok(created) => created,
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
        };
        let row: NotificationRow =
            sqlx::query_as("SELECT * FROM notifications WHERE tenant_id = $1 AND key = $2")
                .bind(new.tenant_id.as_uuid())
                .bind(&new.key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let notification = row.into_entity()?;
        Ok(if created.is_some() {
            Inserted::created(notification)
        } else {
            Inserted::existing(notification)
        })
    }

    async fn notify_subscribers(
        &self,
        kind: NotificationKind,
        key: &str,
        payload: serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Result<u64> {
        let check = NewNotification {
            tenant_id: TenantId::generate(),
            kind,
            key: key.to_owned(),
            payload,
            occurred_at,
        };
        check.validate()?;
        // A cross-tenant write: on the scan pool, one statement.
        let created: i64 = sqlx::query_scalar(
            "SELECT count(nexiom_enqueue_notification(t.tenant_id, $1, $2, $3, $4)) \
             FROM (SELECT DISTINCT tenant_id FROM notification_endpoints \
                   WHERE enabled AND $1 = ANY (kinds) ORDER BY tenant_id) t",
        )
        .bind(kind.as_str())
        .bind(key)
        .bind(&check.payload)
        .bind(occurred_at)
        .fetch_one(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(created).unwrap_or(0))
    }

    async fn list_notifications(
        &self,
        tenant: TenantId,
        kind: Option<NotificationKind>,
        max: u32,
    ) -> Result<Vec<Notification>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT * FROM notifications \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR kind = $2) \
             ORDER BY occurred_at, id LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(kind.map(NotificationKind::as_str))
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(NotificationRow::into_entity).collect()
    }

    async fn list_notification_deliveries(
        &self,
        tenant: TenantId,
        notification: NotificationId,
    ) -> Result<Vec<NotificationDelivery>> {
        let mut tx = self.scoped(tenant).await?;
        require_row(
            &mut tx,
            "notifications",
            "notification",
            tenant,
            notification.as_uuid(),
        )
        .await?;
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT * FROM notification_deliveries \
             WHERE tenant_id = $1 AND notification_id = $2 ORDER BY id",
        )
        .bind(tenant.as_uuid())
        .bind(notification.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(DeliveryRow::into_entity).collect()
    }

    async fn claim_notification_deliveries(
        &self,
        now: DateTime<Utc>,
        max: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedNotification>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // A cross-tenant worker queue: on the scan pool, skipping what another
        // claimer holds.
        let mut tx = self.scan_pool.begin().await.map_err(db)?;
        // The candidates: the oldest due deliveries of each enabled endpoint
        // (at most MAX_CLAIM_PER_ENDPOINT each, through the partial index of
        // migration 0042); of those, the oldest `max` not held by a
        // concurrent claimer, locked (each row checked again once locked).
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "WITH c AS ( \
                 SELECT d.id FROM notification_deliveries d \
                 WHERE d.id = ANY(ARRAY( \
                         SELECT x.id FROM notification_endpoints e \
                         CROSS JOIN LATERAL ( \
                             SELECT p.id FROM notification_deliveries p \
                             WHERE p.endpoint_id = e.id AND p.tenant_id = e.tenant_id \
                                 AND p.state = 'pending' \
                                 AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= $1) \
                                 AND (p.lease_until IS NULL OR p.lease_until <= $1) \
                             ORDER BY p.id LIMIT $4) x \
                         WHERE e.enabled)) \
                     AND d.state = 'pending' \
                     AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= $1) \
                     AND (d.lease_until IS NULL OR d.lease_until <= $1) \
                 ORDER BY d.id LIMIT $2 \
                 FOR UPDATE OF d SKIP LOCKED \
             ) \
             UPDATE notification_deliveries d SET lease_until = $3 \
             FROM c WHERE d.id = c.id RETURNING d.*",
        )
        .bind(bound(now))
        .bind(limit(max))
        .bind(bound(
            now.checked_add_signed(lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ))
        .bind(i64::from(crate::outbox::MAX_CLAIM_PER_ENDPOINT))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if rows.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let notification_ids: Vec<Uuid> = rows.iter().map(|r| r.notification_id).collect();
        let endpoint_ids: Vec<Uuid> = rows.iter().map(|r| r.endpoint_id).collect();
        let notifications: Vec<NotificationRow> =
            sqlx::query_as("SELECT * FROM notifications WHERE id = ANY($1)")
                .bind(&notification_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let endpoints: Vec<EndpointRow> =
            sqlx::query_as("SELECT * FROM notification_endpoints WHERE id = ANY($1)")
                .bind(&endpoint_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        // An endpoint whose secret this store's keys cannot open (a key
        // rotated away, a process started without the older key): its
        // deliveries are handed back in the claim's transaction, with no
        // attempt counted, due again in UNREADABLE_SECRET_RETRY, for a
        // process that has the key; UNREADABLE_SECRET_DEADLINE after the
        // first such hand-back (`unreadable_since`, migration 0042) they are
        // dead, so a secret nobody can open ends.
        let mut unreadable = HashSet::new();
        let mut endpoints_by_id: HashMap<Uuid, NotificationEndpoint> = HashMap::new();
        for row in endpoints {
            let id = row.id;
            match self.endpoint(row) {
                Ok(endpoint) => {
                    endpoints_by_id.insert(id, endpoint);
                }
                Err(error @ StorageError::Secret { .. }) => {
                    tracing::error!(endpoint = %id, %error,
                        "a notification endpoint's secret or Slack URL cannot be opened with this store's keys; \
                         its deliveries are left for a process that can");
                    unreadable.insert(id);
                }
                Err(other) => return Err(other),
            }
        }
        let endpoints = endpoints_by_id;
        let (rows, handed_back): (Vec<DeliveryRow>, Vec<DeliveryRow>) = rows
            .into_iter()
            .partition(|r| !unreadable.contains(&r.endpoint_id));
        if !handed_back.is_empty() {
            let ids: Vec<Uuid> = handed_back.iter().map(|r| r.id).collect();
            sqlx::query(
                "UPDATE notification_deliveries d SET lease_until = NULL, \
                     unreadable_since = COALESCE(d.unreadable_since, $5), \
                     next_attempt_at = CASE WHEN COALESCE(d.unreadable_since, $5) < $3 \
                         THEN NULL ELSE $2 END, \
                     state = CASE WHEN COALESCE(d.unreadable_since, $5) < $3 \
                         THEN 'dead' ELSE d.state END, \
                     last_error = CASE WHEN COALESCE(d.unreadable_since, $5) < $3 \
                         THEN $4 ELSE d.last_error END \
                 WHERE d.id = ANY($1)",
            )
            .bind(&ids)
            .bind(bound(now + UNREADABLE_SECRET_RETRY))
            .bind(bound(now - UNREADABLE_SECRET_DEADLINE))
            .bind(UNREADABLE_SECRET_ERROR)
            .bind(bound(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        let notifications: HashMap<Uuid, Notification> = notifications
            .into_iter()
            .map(|n| Ok((n.id, n.into_entity()?)))
            .collect::<Result<_>>()?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(notification), Some(endpoint)) = (
                notifications.get(&row.notification_id),
                endpoints.get(&row.endpoint_id),
            ) else {
                return Err(StorageError::backend(format!(
                    "notification delivery {} lost its notification or endpoint",
                    row.id
                )));
            };
            claimed.push(ClaimedNotification {
                notification: notification.clone(),
                endpoint: endpoint.clone(),
                delivery: row.into_entity()?,
            });
        }
        claimed.sort_by_key(|c| c.delivery.id);
        Ok(claimed)
    }

    async fn finish_notification_delivery(
        &self,
        tenant: TenantId,
        id: NotificationDeliveryId,
        lease_until: DateTime<Utc>,
        attempt: DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> Result<Option<NotificationDelivery>> {
        let (state, next_at, error, delivered_at) = match &attempt {
            DeliveryAttempt::Delivered => {
                (NotificationDeliveryState::Delivered, None, None, Some(at))
            }
            DeliveryAttempt::Failed { error, retry_at } => {
                validate::text("error", error)?;
                let state = if retry_at.is_some() {
                    NotificationDeliveryState::Pending
                } else {
                    NotificationDeliveryState::Dead
                };
                (state, *retry_at, Some(error.as_str()), None)
            }
        };
        let mut tx = self.scoped(tenant).await?;
        let row: Option<DeliveryRow> = sqlx::query_as(
            "UPDATE notification_deliveries SET state = $4, attempts = attempts + 1, \
                 next_attempt_at = $5, lease_until = NULL, unreadable_since = NULL, \
                 last_error = COALESCE($6, last_error), delivered_at = $7 \
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending' AND lease_until = $3 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(bound(lease_until))
        .bind(state.as_str())
        .bind(next_at.map(bound))
        .bind(error)
        .bind(delivered_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if row.is_none() {
            require_row(
                &mut tx,
                "notification_deliveries",
                "notification delivery",
                tenant,
                id.as_uuid(),
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        row.map(DeliveryRow::into_entity).transpose()
    }

    async fn renew_notification_leases(
        &self,
        ids: &[NotificationDeliveryId],
        held_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        // A cross-tenant heartbeat, keyed by ids, on the scan pool as the
        // claim is; `lease_until = $2` keeps apart the deliveries another
        // worker claimed after this claim lapsed (they carry another lease).
        let renewed = sqlx::query(
            "UPDATE notification_deliveries SET lease_until = $3 \
             WHERE id = ANY($1) AND state = 'pending' AND lease_until = $2",
        )
        .bind(&ids)
        .bind(bound(held_until))
        .bind(bound(expires_at))
        .execute(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(renewed.rows_affected())
    }
}
