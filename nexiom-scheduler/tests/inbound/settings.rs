//! The settings overview: which settings are present, never their values.

use std::future::Future;
use std::sync::Arc;

use nexiom_core::*;
use nexiom_scheduler::inbound::{KNOWN_SETTINGS, openai_config_from_settings};
use nexiom_storage::conformance::TestStore;
use nexiom_triage::TemplateGenerator;

use super::fixture::t0;
use super::support::pipeline;

pub async fn settings_overview_reports_presence_never_values<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let (p, _) = pipeline(Arc::clone(&store), Arc::new(TemplateGenerator::new()));
    store
        .set_setting(
            "OPENROUTER_API_KEY",
            SecretString::new("sk-or-secret-value"),
            t0(),
        )
        .await
        .unwrap();
    store
        .set_setting("NEXIOM_DEFAULT_CHAT_MODEL", SecretString::new("  "), t0())
        .await
        .unwrap();
    let seed = p.settings_overview().await.unwrap();
    assert_eq!(seed.0.len(), KNOWN_SETTINGS.len());
    assert_eq!(seed.get("OPENROUTER_API_KEY"), Some(true));
    assert_eq!(seed.get("NEXIOM_DEFAULT_CHAT_MODEL"), Some(false), "blank");
    assert_eq!(seed.get("NOT_A_SETTING"), None);
    let json = serde_json::to_value(&seed).unwrap();
    assert_eq!(json["OPENROUTER_API_KEY"], true);
    assert!(!json.to_string().contains("sk-or-secret-value"));
    let overview = p.settings_presence().await.unwrap();
    assert_eq!(
        overview.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
        KNOWN_SETTINGS.to_vec()
    );
    for key in [
        "WHATSAPP_VERIFY_TOKEN",
        "META_APP_SECRET",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_API_BASE_URL",
        "LINKEDIN_CLIENT_SECRET",
    ] {
        assert!(KNOWN_SETTINGS.contains(&key), "{key}");
    }
    let get = |k: &str| overview.iter().find(|s| s.key == k).unwrap();
    assert!(get("OPENROUTER_API_KEY").in_store);
    assert!(
        !get("NEXIOM_DEFAULT_CHAT_MODEL").in_store,
        "blank is not present"
    );
    assert!(!get("META_APP_SECRET").in_store);
    let shown = format!("{overview:?} {}", serde_json::to_string(&overview).unwrap());
    assert!(!shown.contains("sk-or-secret-value"));

    assert!(
        openai_config_from_settings(&*store)
            .await
            .unwrap()
            .is_none()
    );
    store
        .set_setting(
            "NEXIOM_DEFAULT_CHAT_MODEL",
            SecretString::new("mistral/small"),
            t0(),
        )
        .await
        .unwrap();
    let config = openai_config_from_settings(&*store).await.unwrap().unwrap();
    assert_eq!(config.model, "mistral/small");
    assert_eq!(config.api_key.expose(), "sk-or-secret-value");
    assert_eq!(config.base_url, nexiom_triage::DEFAULT_OPENAI_BASE_URL);
    assert!(!format!("{config:?}").contains("sk-or-secret-value"));
    ts.cleanup().await;
}
