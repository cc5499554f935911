//! [`TenantStore`] on Postgres: `tenants` and `channels`.

use async_trait::async_trait;
use nexiom_core::{
    Channel, ChannelId, ChannelStatus, Credentials, NewChannel, NewTenant, Platform, Tenant,
    TenantId, validate,
};

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use super::rows::{ChannelRow, TenantRow, all};
use super::secrets::{ACCESS_TOKEN, REFRESH_TOKEN, token_slot};
use crate::error::{Result, StorageError};
use crate::traits::TenantStore;

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant> {
        new.validate()?;
        let id = TenantId::generate();
        let mut tx = self.scoped(id).await?;
        let row: TenantRow = sqlx::query_as(
            "INSERT INTO tenants (id, name, time_zone, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(&new.name)
        .bind(new.time_zone.name())
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
        let mut tx = self.scoped(id).await?;
        let row: Option<TenantRow> = sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("tenant", id))?
            .into_entity()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        // A cross-tenant scan.
        let rows: Vec<TenantRow> = sqlx::query_as("SELECT * FROM tenants ORDER BY created_at, id")
            .fetch_all(&self.scan_pool)
            .await
            .map_err(db)?;
        all(rows, TenantRow::into_entity)
    }

    async fn create_channel(&self, new: NewChannel) -> Result<Channel> {
        new.validate()?;
        let id = ChannelId::generate();
        let access = self.seal(
            token_slot(ACCESS_TOKEN, new.tenant_id, id),
            new.credentials.access_token.as_ref(),
        )?;
        let refresh = self.seal(
            token_slot(REFRESH_TOKEN, new.tenant_id, id),
            new.credentials.refresh_token.as_ref(),
        )?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let result: std::result::Result<ChannelRow, _> = sqlx::query_as(
            "INSERT INTO channels (id, tenant_id, platform, external_account_id, name, \
                 access_token, refresh_token, expires_at, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.platform.as_str())
        .bind(&new.external_account_id)
        .bind(&new.name)
        .bind(access)
        .bind(refresh)
        .bind(new.credentials.expires_at)
        .bind(ChannelStatus::Active.as_str())
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                self.open_channel(row.into_entity()?)
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &[],
                        conflict: Some((
                            "channel",
                            format!(
                                "platform {} and external_account_id {:?}",
                                new.platform, new.external_account_id
                            ),
                        )),
                    },
                )
                .await)
            }
        }
    }

    async fn get_channel(&self, tenant: TenantId, id: ChannelId) -> Result<Channel> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ChannelRow> =
            sqlx::query_as("SELECT * FROM channels WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.open_channel(
            row.ok_or_else(|| StorageError::not_found("channel", id))?
                .into_entity()?,
        )
    }

    async fn get_channels(&self, tenant: TenantId, ids: &[ChannelId]) -> Result<Vec<Channel>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<ChannelRow> =
            sqlx::query_as("SELECT * FROM channels WHERE tenant_id = $1 AND id = ANY($2)")
                .bind(tenant.as_uuid())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // A channel that cannot be opened (a row that does not convert, a
        // token that does not unseal) is left out, not the whole read:
        // `get_channel` answers its error to the caller that needs it.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let id = row.id;
                match row.into_entity().and_then(|c| self.open_channel(c)) {
                    Ok(channel) => Some(channel),
                    Err(err) => {
                        tracing::warn!(channel = %id, error = %err, "a channel could not be read");
                        None
                    }
                }
            })
            .collect())
    }

    async fn find_channel_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<Channel>> {
        validate::key("external_account_id", external_account_id)?;
        // A cross-tenant lookup: a webhook names the account, not the tenant.
        let row: Option<ChannelRow> = sqlx::query_as(
            "SELECT * FROM channels WHERE platform = $1 AND external_account_id = $2",
        )
        .bind(platform.as_str())
        .bind(external_account_id)
        .fetch_optional(&self.scan_pool)
        .await
        .map_err(db)?;
        row.map(|row| self.open_channel(row.into_entity()?))
            .transpose()
    }

    async fn find_channel_ref_by_account(
        &self,
        platform: &Platform,
        external_account_id: &str,
    ) -> Result<Option<(TenantId, ChannelId)>> {
        validate::key("external_account_id", external_account_id)?;
        // A cross-tenant lookup, like `find_channel_by_account`, reading
        // neither token.
        let row: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "SELECT tenant_id, id FROM channels WHERE platform = $1 AND external_account_id = $2",
        )
        .bind(platform.as_str())
        .bind(external_account_id)
        .fetch_optional(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(row.map(|(tenant, id)| (TenantId::from(tenant), ChannelId::from(id))))
    }

    async fn list_channels(&self, tenant: TenantId) -> Result<Vec<Channel>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<ChannelRow> =
            sqlx::query_as("SELECT * FROM channels WHERE tenant_id = $1 ORDER BY created_at, id")
                .bind(tenant.as_uuid())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, |row| self.open_channel(row.into_entity()?))
    }

    async fn update_channel_credentials(
        &self,
        tenant: TenantId,
        id: ChannelId,
        credentials: Credentials,
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
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET access_token = $3, refresh_token = $4, expires_at = $5 \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(access)
        .bind(refresh)
        .bind(credentials.expires_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.open_channel(
            row.ok_or_else(|| StorageError::not_found("channel", id))?
                .into_entity()?,
        )
    }

    async fn set_channel_status(
        &self,
        tenant: TenantId,
        id: ChannelId,
        status: ChannelStatus,
    ) -> Result<Channel> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET status = $3, \
                 status_reason = CASE WHEN $3 = 'active' THEN NULL ELSE status_reason END \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(status.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.open_channel(
            row.ok_or_else(|| StorageError::not_found("channel", id))?
                .into_entity()?,
        )
    }
}
