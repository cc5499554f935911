//! Application settings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{AppSetting, SecretString, validate};

use super::MemoryStore;
use crate::checks;
use crate::error::Result;
use crate::traits::SettingsStore;

#[async_trait]
impl SettingsStore for MemoryStore {
    async fn get_setting(&self, key: &str) -> Result<Option<AppSetting>> {
        validate::key("key", key)?;
        Ok(self.lock().settings.get(key).cloned())
    }

    async fn set_setting(
        &self,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<AppSetting> {
        checks::setting(key, &value)?;
        let setting = AppSetting {
            key: key.to_owned(),
            value,
            updated_at: at,
        };
        self.lock()
            .settings
            .insert(setting.key.clone(), setting.clone());
        Ok(setting)
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        validate::key("key", key)?;
        Ok(self.lock().settings.remove(key).is_some())
    }

    async fn list_setting_keys(&self) -> Result<Vec<String>> {
        // A `BTreeMap<String, _>` iterates in byte order of the keys.
        Ok(self.lock().settings.keys().cloned().collect())
    }
}
