//! Per-tenant settings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{SecretString, TenantId, TenantSettings, validate};

use super::MemoryStore;
use crate::checks;
use crate::error::Result;
use crate::tenant_settings::TenantSettingsStore;

#[async_trait]
impl TenantSettingsStore for MemoryStore {
    async fn get_tenant_settings(&self, tenant: TenantId) -> Result<Option<TenantSettings>> {
        let inner = self.lock();
        if !inner.tenants.contains_key(&tenant) {
            return Err(crate::StorageError::not_found("tenant", tenant));
        }
        Ok(inner.tenant_settings.get(&tenant).cloned())
    }

    async fn put_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &TenantSettings,
        _at: DateTime<Utc>,
    ) -> Result<()> {
        settings.validate()?;
        let mut inner = self.lock();
        inner.require_tenant(tenant)?;
        inner.tenant_settings.insert(tenant, settings.clone());
        Ok(())
    }

    async fn set_tenant_secret(
        &self,
        tenant: TenantId,
        key: &str,
        value: SecretString,
        _at: DateTime<Utc>,
    ) -> Result<()> {
        checks::tenant_secret(key, &value)?;
        let mut inner = self.lock();
        inner.require_tenant(tenant)?;
        inner.tenant_secrets.insert((tenant, key.to_owned()), value);
        Ok(())
    }

    async fn get_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<Option<SecretString>> {
        validate::key("key", key)?;
        let inner = self.lock();
        Ok(inner.tenant_secrets.get(&(tenant, key.to_owned())).cloned())
    }

    async fn delete_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<bool> {
        validate::key("key", key)?;
        let mut inner = self.lock();
        Ok(inner
            .tenant_secrets
            .remove(&(tenant, key.to_owned()))
            .is_some())
    }

    async fn list_tenant_secret_keys(&self, tenant: TenantId) -> Result<Vec<String>> {
        let inner = self.lock();
        Ok(inner
            .tenant_secrets
            .keys()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, k)| k.clone())
            .collect())
    }
}
