//! Conformance tests of per-tenant settings (`TenantSettingsStore`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use nexiom_core::*;

use super::fixtures::world;
use crate::{StorageError, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// Settings are absent until saved, replaced whole, validated before any
/// write, kept per tenant; secret settings are read one by one, listed by
/// key only, replaced and deleted, and never seen by another tenant.
pub async fn tenant_settings_round_trip_and_stay_apart(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = world(s, "Acme", Platform::WhatsApp, "pn-set-a").await;
    let b = world(s, "Beta", Platform::WhatsApp, "pn-set-b").await;
    assert_eq!(s.get_tenant_settings(a.tenant.id).await.unwrap(), None);
    assert!(matches!(
        s.get_tenant_settings(TenantId::generate()).await,
        Err(StorageError::NotFound { .. })
    ));

    let mut settings = TenantSettings::default();
    settings.triage.default_outcome = Triage::Escalate;
    settings.triage.similarity_threshold = 0.55;
    settings.reply.model = Some("mistral/small".into());
    settings.reply.prompt = Some("Tu es la boulangerie Acme. Réponds brièvement.".into());
    settings.reply.temperature = Some(0.3);
    settings.reply.language = Some("fr".into());
    settings.auto_reply_off_channels.insert(a.channel.id);
    settings.workers.insert("aggregate_kpis".into(), false);
    s.put_tenant_settings(a.tenant.id, &settings, t0())
        .await
        .unwrap();
    assert_eq!(
        s.get_tenant_settings(a.tenant.id).await.unwrap(),
        Some(settings.clone())
    );
    assert_eq!(s.get_tenant_settings(b.tenant.id).await.unwrap(), None);

    // Replaced whole; invalid input changes nothing.
    let mut next = TenantSettings::default();
    next.triage.similarity_threshold = 0.9;
    s.put_tenant_settings(a.tenant.id, &next, t0())
        .await
        .unwrap();
    let mut bad = next.clone();
    bad.triage.similarity_threshold = 7.0;
    assert!(matches!(
        s.put_tenant_settings(a.tenant.id, &bad, t0()).await,
        Err(StorageError::Invalid { .. })
    ));
    assert_eq!(
        s.get_tenant_settings(a.tenant.id).await.unwrap(),
        Some(next)
    );
    assert!(
        s.put_tenant_settings(TenantId::generate(), &settings, t0())
            .await
            .is_err()
    );

    // Secrets.
    s.set_tenant_secret(
        a.tenant.id,
        "OPENROUTER_API_KEY",
        SecretString::new("sk-a-1"),
        t0(),
    )
    .await
    .unwrap();
    s.set_tenant_secret(
        a.tenant.id,
        "OPENROUTER_API_KEY",
        SecretString::new("sk-a-2"),
        t0(),
    )
    .await
    .unwrap();
    s.set_tenant_secret(a.tenant.id, "A_SECOND", SecretString::new("v"), t0())
        .await
        .unwrap();
    assert!(matches!(
        s.set_tenant_secret(a.tenant.id, "EMPTY", SecretString::new("  "), t0())
            .await,
        Err(StorageError::Invalid { .. })
    ));
    assert_eq!(
        s.get_tenant_secret(a.tenant.id, "OPENROUTER_API_KEY")
            .await
            .unwrap()
            .map(|v| v.expose().to_owned()),
        Some("sk-a-2".into())
    );
    assert_eq!(
        s.list_tenant_secret_keys(a.tenant.id).await.unwrap(),
        vec!["A_SECOND".to_owned(), "OPENROUTER_API_KEY".to_owned()]
    );
    assert_eq!(
        s.get_tenant_secret(b.tenant.id, "OPENROUTER_API_KEY")
            .await
            .unwrap(),
        None
    );
    assert!(
        s.list_tenant_secret_keys(b.tenant.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !s.delete_tenant_secret(b.tenant.id, "A_SECOND")
            .await
            .unwrap()
    );
    assert!(
        s.delete_tenant_secret(a.tenant.id, "A_SECOND")
            .await
            .unwrap()
    );
    assert_eq!(
        s.list_tenant_secret_keys(a.tenant.id).await.unwrap(),
        vec!["OPENROUTER_API_KEY".to_owned()]
    );
}
