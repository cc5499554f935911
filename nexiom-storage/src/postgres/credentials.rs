//! [`CredentialStore`] on Postgres: the refresh lease is the channel's row
//! lock (`FOR NO KEY UPDATE`, so inserts referencing the channel are not
//! blocked), held by the lease's open transaction until it stores, refuses or
//! is dropped (rolled back).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Channel, ChannelId, Credentials, NewNotification, TenantId, validate};
use uuid::Uuid;

use super::error::db;
use super::rows::ChannelRow;
use super::secrets::{ACCESS_TOKEN, REFRESH_TOKEN, token_slot};
use super::{PgStore, Scoped, bound, limit};
use crate::credentials::{CredentialLease, CredentialStore};
use crate::error::{Result, StorageError};

struct PgLease<'a> {
    store: &'a PgStore,
    tx: Scoped,
    channel: Channel,
}

impl PgStore {
    /// Writes sealed `credentials` (and, with `reconnected_at`, the channel
    /// back to `active`) in `tx`, and returns the channel as stored.
    async fn write_credentials(
        &self,
        tx: &mut Scoped,
        tenant: TenantId,
        id: ChannelId,
        credentials: &Credentials,
        reconnected_at: Option<DateTime<Utc>>,
    ) -> Result<Channel> {
        credentials.validate()?;
        let access = self.seal(
            token_slot(ACCESS_TOKEN, tenant, id),
            credentials.access_token.as_ref(),
        )?;
        let refresh = self.seal(
            token_slot(REFRESH_TOKEN, tenant, id),
            credentials.refresh_token.as_ref(),
        )?;
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET access_token = $3, refresh_token = $4, expires_at = $5, \
                 status = CASE WHEN $6::timestamptz IS NULL THEN status ELSE 'active' END, \
                 status_reason = CASE WHEN $6::timestamptz IS NULL THEN status_reason END, \
                 status_changed_at = COALESCE($6, status_changed_at) \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(access)
        .bind(refresh)
        .bind(credentials.expires_at)
        .bind(reconnected_at)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
        self.open_channel(
            row.ok_or_else(|| StorageError::not_found("channel", id))?
                .into_entity()?,
        )
    }

    /// The channel, row-locked in `tx` until it ends.
    async fn lock_channel_row(
        &self,
        tx: &mut Scoped,
        tenant: TenantId,
        id: ChannelId,
    ) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(
            "SELECT * FROM channels WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
        self.open_channel(
            row.ok_or_else(|| StorageError::not_found("channel", id))?
                .into_entity()?,
        )
    }
}

#[async_trait]
impl CredentialLease for PgLease<'_> {
    fn channel(&self) -> &Channel {
        &self.channel
    }

    async fn store(mut self: Box<Self>, credentials: Credentials) -> Result<Channel> {
        let (tenant, id) = (self.channel.tenant_id, self.channel.id);
        let channel = self
            .store
            .write_credentials(&mut self.tx, tenant, id, &credentials, None)
            .await?;
        self.tx.commit().await.map_err(db)?;
        Ok(channel)
    }

    async fn refuse(mut self: Box<Self>, reason: &str, at: DateTime<Utc>) -> Result<Channel> {
        validate::text("reason", reason)?;
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET status = 'needs_reauth', status_reason = $3, \
                 status_changed_at = $4 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(self.channel.tenant_id.as_uuid())
        .bind(self.channel.id.as_uuid())
        .bind(reason)
        .bind(at)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        let row = row.ok_or_else(|| StorageError::not_found("channel", self.channel.id))?;
        // The application is told in the same transaction (the outbox).
        let notice = NewNotification::channel_needs_reauth(
            self.channel.tenant_id,
            self.channel.id,
            reason,
            at,
        );
        notice.validate()?;
        sqlx::query("SELECT nexiom_enqueue_notification($1, $2, $3, $4, $5)")
            .bind(notice.tenant_id.as_uuid())
            .bind(notice.kind.as_str())
            .bind(&notice.key)
            .bind(&notice.payload)
            .bind(notice.occurred_at)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.tx.commit().await.map_err(db)?;
        self.store.open_channel(row.into_entity()?)
    }
}

#[async_trait]
impl CredentialStore for PgStore {
    async fn lock_credentials<'a>(
        &'a self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> Result<Box<dyn CredentialLease + 'a>> {
        let mut tx = self.scoped(tenant).await?;
        let channel = self.lock_channel_row(&mut tx, tenant, channel).await?;
        Ok(Box::new(PgLease {
            store: self,
            tx,
            channel,
        }))
    }

    async fn list_expiring_channels(
        &self,
        before: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<(TenantId, ChannelId)>> {
        // A cross-tenant scan, through ix_channels_expiring.
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT tenant_id, id FROM channels \
             WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at < $1 \
             ORDER BY expires_at, id LIMIT $2",
        )
        .bind(bound(before))
        .bind(limit(max))
        .fetch_all(self.scan_pool())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(t, c)| (t.into(), c.into()))
            .collect())
    }

    async fn reconnect_channel(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: Credentials,
        at: DateTime<Utc>,
    ) -> Result<Channel> {
        credentials.validate()?;
        let mut tx = self.scoped(tenant).await?;
        // Locked without opening the tokens it replaces: reconnecting is how
        // a channel whose stored token no longer opens is mended.
        let locked: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(channel.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if locked.is_none() {
            return Err(StorageError::not_found("channel", channel));
        }
        let stored = self
            .write_credentials(&mut tx, tenant, channel, &credentials, Some(at))
            .await?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }
}
