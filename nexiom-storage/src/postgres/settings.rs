//! [`SettingsStore`] on Postgres: `app_settings`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{AppSetting, SecretString, validate};

use super::PgStore;
use super::error::db;
use super::rows::SettingRow;
use super::secrets::SETTING_VALUE;
use crate::checks;
use crate::error::Result;
use crate::secrets::Slot;
use crate::traits::SettingsStore;

#[async_trait]
impl SettingsStore for PgStore {
    async fn get_setting(&self, key: &str) -> Result<Option<AppSetting>> {
        validate::key("key", key)?;
        let row: Option<SettingRow> = sqlx::query_as("SELECT * FROM app_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| {
            let mut setting = row.into_entity();
            setting.value = self.open(&Slot::global(SETTING_VALUE, key), setting.value)?;
            Ok(setting)
        })
        .transpose()
    }

    async fn set_setting(
        &self,
        key: &str,
        value: SecretString,
        at: DateTime<Utc>,
    ) -> Result<AppSetting> {
        checks::setting(key, &value)?;
        let sealed = self.seal(Slot::global(SETTING_VALUE, key), Some(&value))?;
        let row: SettingRow = sqlx::query_as(
            "INSERT INTO app_settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET \
                 value = EXCLUDED.value, updated_at = EXCLUDED.updated_at \
             RETURNING *",
        )
        .bind(key)
        .bind(sealed)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let mut setting = row.into_entity();
        setting.value = value;
        Ok(setting)
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        validate::key("key", key)?;
        let done = sqlx::query("DELETE FROM app_settings WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_setting_keys(&self) -> Result<Vec<String>> {
        // Bytewise order (COLLATE "C"), as Rust strings sort.
        sqlx::query_scalar("SELECT key FROM app_settings ORDER BY key COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }
}
