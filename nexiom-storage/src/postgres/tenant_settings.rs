//! [`TenantSettingsStore`] on Postgres: `tenant_settings` (one JSON document
//! per tenant) and `tenant_secrets` (sealed values). Every operation runs in
//! a transaction scoped to its tenant.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{SecretString, TenantId, TenantSettings, validate};

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use crate::checks;
use crate::error::{Result, StorageError};
use crate::secrets::Slot;
use crate::tenant_settings::TenantSettingsStore;

/// The sealing slot of a tenant secret.
pub(super) const TENANT_SECRET_VALUE: &str = "tenant_secrets.value";

pub(super) fn secret_slot(tenant: TenantId, key: &str) -> Slot {
    Slot::tenant(TENANT_SECRET_VALUE, tenant, key)
}

#[async_trait]
impl TenantSettingsStore for PgStore {
    async fn get_tenant_settings(&self, tenant: TenantId) -> Result<Option<TenantSettings>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<(Option<serde_json::Value>,)> = sqlx::query_as(
            "SELECT s.settings FROM tenants t \
             LEFT JOIN tenant_settings s ON s.tenant_id = t.id WHERE t.id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let Some((settings,)) = row else {
            return Err(StorageError::not_found("tenant", tenant));
        };
        settings
            .map(|json| {
                serde_json::from_value(json).map_err(|e| {
                    StorageError::backend(format!(
                        "postgres: tenant {tenant}'s stored settings do not read: {e}"
                    ))
                })
            })
            .transpose()
    }

    async fn put_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &TenantSettings,
        at: DateTime<Utc>,
    ) -> Result<()> {
        settings.validate()?;
        let json = serde_json::to_value(settings)
            .map_err(|e| StorageError::backend(format!("tenant settings: {e}")))?;
        let mut tx = self.scoped(tenant).await?;
        let result = sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET \
                 settings = EXCLUDED.settings, updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant.as_uuid())
        .bind(json)
        .bind(at)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => tx.commit().await.map_err(db),
            Err(err) => {
                drop(tx);
                Err(write_error(self, err, failure(tenant)).await)
            }
        }
    }

    async fn set_tenant_secret(
        &self,
        tenant: TenantId,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<()> {
        checks::tenant_secret(key, &value)?;
        let sealed = self.seal(secret_slot(tenant, key), Some(&value))?;
        let mut tx = self.scoped(tenant).await?;
        let result = sqlx::query(
            "INSERT INTO tenant_secrets (tenant_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, key) DO UPDATE SET \
                 value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant.as_uuid())
        .bind(key)
        .bind(sealed)
        .bind(at)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => tx.commit().await.map_err(db),
            Err(err) => {
                drop(tx);
                Err(write_error(self, err, failure(tenant)).await)
            }
        }
    }

    async fn get_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<Option<SecretString>> {
        validate::key("key", key)?;
        let mut tx = self.scoped(tenant).await?;
        let value: Option<String> = sqlx::query_scalar(
            "SELECT value FROM tenant_secrets WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.as_uuid())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        value
            .map(|v| self.open(&secret_slot(tenant, key), SecretString::new(v)))
            .transpose()
    }

    async fn delete_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<bool> {
        validate::key("key", key)?;
        let mut tx = self.scoped(tenant).await?;
        let done = sqlx::query("DELETE FROM tenant_secrets WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.as_uuid())
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_tenant_secret_keys(&self, tenant: TenantId) -> Result<Vec<String>> {
        let mut tx = self.scoped(tenant).await?;
        let keys = sqlx::query_scalar(
            "SELECT key FROM tenant_secrets WHERE tenant_id = $1 ORDER BY key COLLATE \"C\"",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(keys)
    }
}

fn failure(tenant: TenantId) -> WriteFailure<'static> {
    WriteFailure {
        tenant: Some(tenant),
        refs: &[],
        conflict: None,
    }
}
