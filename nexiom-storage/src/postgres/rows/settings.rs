//! Rows of `app_settings`.

use chrono::{DateTime, Utc};
use nexiom_core::{AppSetting, SecretString};

use super::convert::redacted;

/// `app_settings`. Setting values are secrets (API keys): `Debug` redacts them.
#[derive(sqlx::FromRow)]
pub(in crate::postgres) struct SettingRow {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for SettingRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingRow")
            .field("key", &self.key)
            .field("value", &redacted(Some(&self.value)))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl SettingRow {
    pub(in crate::postgres) fn into_entity(self) -> AppSetting {
        AppSetting {
            key: self.key,
            value: SecretString::new(self.value),
            updated_at: self.updated_at,
        }
    }
}
