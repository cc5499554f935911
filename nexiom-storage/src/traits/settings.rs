//! Application settings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Application settings (secret values).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The setting, if present.
    async fn get_setting(&self, key: &str) -> Result<Option<AppSetting>>;
    /// Creates or replaces the setting.
    async fn set_setting(
        &self,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<AppSetting>;
    /// Deletes the setting; returns whether it existed.
    async fn delete_setting(&self, key: &str) -> Result<bool>;
    /// Every setting key, sorted.
    async fn list_setting_keys(&self) -> Result<Vec<String>>;
}
