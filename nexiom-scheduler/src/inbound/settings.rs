//! The settings the family knows, and which of them are set: presence only,
//! never values.

use std::collections::BTreeMap;

use nexiom_core::SecretString;
use nexiom_triage::{DEFAULT_OPENAI_BASE_URL, OpenAiConfig};
use serde::{Deserialize, Serialize};

use super::{InboundError, InboundPipeline};

/// The chat-completions API root (optional; default OpenRouter's).
pub const OPENROUTER_BASE_URL: &str = "OPENROUTER_BASE_URL";

/// Every setting the crates read: those of the design (webhooks, WhatsApp,
/// the reply generator), those the connectors read (Meta app, per-platform
/// base URLs and verify tokens, LinkedIn app), and the generator's base URL.
pub const KNOWN_SETTINGS: &[&str] = &[
    "WHATSAPP_VERIFY_TOKEN",
    "META_APP_SECRET",
    "OPENROUTER_API_KEY",
    "NEXIOM_DEFAULT_CHAT_MODEL",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_API_BASE_URL",
    "META_APP_ID",
    "META_GRAPH_VERSION",
    "FACEBOOK_API_BASE_URL",
    "FACEBOOK_VERIFY_TOKEN",
    "INSTAGRAM_API_BASE_URL",
    "INSTAGRAM_VERIFY_TOKEN",
    "LINKEDIN_API_BASE_URL",
    "LINKEDIN_OAUTH_BASE_URL",
    "LINKEDIN_VERSION",
    "LINKEDIN_CLIENT_ID",
    "LINKEDIN_CLIENT_SECRET",
    "LINKEDIN_APPLICATION_ID",
    OPENROUTER_BASE_URL,
];

/// Whether one known setting is set. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingPresence {
    /// The setting's key.
    pub key: String,
    /// Stored in the settings store with a non-empty value.
    pub in_store: bool,
    /// Set, non-empty, in the process environment (where the connectors'
    /// `from_env` builders read it).
    pub in_env: bool,
}

impl SettingPresence {
    /// Present and non-empty somewhere.
    pub fn present(&self) -> bool {
        self.in_store || self.in_env
    }
}

/// The seed's settings overview: each of [`KNOWN_SETTINGS`] → whether it is
/// present and non-empty (in the settings store or the environment). It
/// serializes to that JSON object (`{"META_APP_SECRET": true, …}`) and never
/// holds a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SettingsOverview(pub BTreeMap<String, bool>);

impl SettingsOverview {
    /// Whether `key` is present (`None`: not a known setting).
    pub fn get(&self, key: &str) -> Option<bool> {
        self.0.get(key).copied()
    }
}

/// Non-empty once trimmed.
fn non_empty(value: &str) -> bool {
    !value.trim().is_empty()
}

impl InboundPipeline {
    /// The seed's overview: each of [`KNOWN_SETTINGS`] → present and
    /// non-empty, in the store or the environment.
    pub async fn settings_overview(&self) -> Result<SettingsOverview, InboundError> {
        Ok(SettingsOverview(
            self.settings_presence()
                .await?
                .into_iter()
                .map(|p| {
                    let present = p.present();
                    (p.key, present)
                })
                .collect(),
        ))
    }

    /// The seed's overview as one tenant sees it: [`settings_overview`]
    /// where each known setting the tenant stored as its own secret (for
    /// example its own `OPENROUTER_API_KEY`) is present too, plus the
    /// tenant's other secret keys. Values are never read into the answer.
    ///
    /// [`settings_overview`]: InboundPipeline::settings_overview
    pub async fn tenant_settings_overview(
        &self,
        tenant: nexiom_core::TenantId,
    ) -> Result<SettingsOverview, InboundError> {
        let mut overview = self.settings_overview().await?;
        for key in self.store.list_tenant_secret_keys(tenant).await? {
            overview.0.insert(key, true);
        }
        Ok(overview)
    }

    /// For each of [`KNOWN_SETTINGS`], whether it is present and non-empty in
    /// the settings store and in the environment. Values are never read into
    /// the answer.
    pub async fn settings_presence(&self) -> Result<Vec<SettingPresence>, InboundError> {
        let mut overview = Vec::with_capacity(KNOWN_SETTINGS.len());
        for key in KNOWN_SETTINGS {
            let in_store = self
                .store
                .get_setting(key)
                .await?
                .is_some_and(|s| non_empty(s.value.expose()));
            let in_env = std::env::var(key).is_ok_and(|v| non_empty(&v));
            overview.push(SettingPresence {
                key: (*key).to_owned(),
                in_store,
                in_env,
            });
        }
        Ok(overview)
    }
}

/// The chat-completions configuration from the settings store:
/// `OPENROUTER_API_KEY`, `NEXIOM_DEFAULT_CHAT_MODEL` and (optional)
/// [`OPENROUTER_BASE_URL`]. `None` when the key or the model is missing or
/// empty: the caller then falls back to templates.
pub async fn openai_config_from_settings(
    store: &dyn nexiom_storage::Store,
) -> Result<Option<OpenAiConfig>, InboundError> {
    let get = |key: &'static str| async move {
        Ok::<_, InboundError>(
            store
                .get_setting(key)
                .await?
                .map(|s| s.value)
                .filter(|v| non_empty(v.expose())),
        )
    };
    let (Some(key), Some(model)) = (
        get("OPENROUTER_API_KEY").await?,
        get("NEXIOM_DEFAULT_CHAT_MODEL").await?,
    ) else {
        return Ok(None);
    };
    let base_url = get(OPENROUTER_BASE_URL).await?.map_or_else(
        || DEFAULT_OPENAI_BASE_URL.to_owned(),
        |v| v.expose().trim().to_owned(),
    );
    Ok(Some(
        OpenAiConfig::new(
            SecretString::new(key.expose().trim()),
            model.expose().trim(),
        )
        .with_base_url(base_url),
    ))
}
