//! [`TenantSettingsStore`]: each tenant's [`TenantSettings`] and its secret
//! settings (sealed like channel tokens, readable one by one, never listed
//! with their values).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{SecretString, TenantId, TenantSettings};

use crate::error::Result;

/// Per-tenant settings.
#[async_trait]
pub trait TenantSettingsStore: Send + Sync {
    /// The tenant's settings, or `None` when it never saved any (callers use
    /// their defaults). `NotFound` for an unknown tenant.
    async fn get_tenant_settings(&self, tenant: TenantId) -> Result<Option<TenantSettings>>;

    /// Replaces the tenant's settings after [`TenantSettings::validate`]
    /// (`Invalid` otherwise, nothing written). `UnknownReference` for an
    /// unknown tenant.
    async fn put_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &TenantSettings,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Creates or replaces one secret setting of the tenant (stored sealed on
    /// Postgres). The key is a setting key (non-empty, at most 255 bytes);
    /// the value must not be empty.
    async fn set_tenant_secret(
        &self,
        tenant: TenantId,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// One secret setting's value, for the code that uses it.
    async fn get_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<Option<SecretString>>;

    /// Deletes a secret setting; whether it existed.
    async fn delete_tenant_secret(&self, tenant: TenantId, key: &str) -> Result<bool>;

    /// The keys of the tenant's secret settings, sorted; never their values.
    async fn list_tenant_secret_keys(&self, tenant: TenantId) -> Result<Vec<String>>;
}
