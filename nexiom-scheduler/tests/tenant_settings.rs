//! Per-tenant settings through triage and the workers, on both backends:
//! two tenants with different thresholds and default outcomes get different
//! decisions for the same messages; a channel with auto-replies off is
//! decided as with AI control OFF; writes through `TenantConfigs` are seen at
//! once, writes from elsewhere after the cache's lifetime; a tenant can
//! switch the KPI worker off for itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexiom_core::*;
use nexiom_scheduler::inbound::InboundPipeline;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use nexiom_triage::TemplateGenerator;
use serde_json::json;

on_both_backends!(tenants_get_their_own_decisions);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 0).unwrap()
}

struct Shop {
    tenant: TenantId,
    channel: Channel,
}

async fn shop(store: &dyn Store, name: &str, account: &str) -> Shop {
    let tenant = store
        .create_tenant(NewTenant::new(name, t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: account.into(),
            name: account.into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("token")),
                refresh_token: None,
                expires_at: None,
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    store
        .set_ai_control(tenant.id, true, None, t0())
        .await
        .unwrap();
    store
        .add_ignore_example(tenant.id, "thanks a lot, see you soon", t0())
        .await
        .unwrap();
    Shop {
        tenant: tenant.id,
        channel,
    }
}

/// Receives and routes one WhatsApp message; returns its id.
async fn receive(p: &InboundPipeline, shop: &Shop, id: &str, text: &str) -> MessageId {
    let store = p.store();
    let event = store
        .insert_event(NewWebhookEvent {
            tenant_id: shop.tenant,
            channel_id: shop.channel.id,
            platform: Platform::WhatsApp,
            event_id: id.into(),
            kind: EventKind::Message,
            sender_id: Some("33600000001".into()),
            sender_name: Some("Ana".into()),
            text: Some(text.into()),
            has_media: false,
            delivery_status: None,
            target_id: None,
            parent_id: None,
            occurred_at: t0(),
            payload: json!({}),
            received_at: t0(),
        })
        .await
        .unwrap()
        .record;
    p.route_event(shop.tenant, event.id).await.unwrap();
    store
        .find_message_by_provider_id(shop.tenant, shop.channel.id, id)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn triage_of(store: &dyn Store, tenant: TenantId, id: MessageId) -> Option<Triage> {
    store.get_message(tenant, id).await.unwrap().triage
}

async fn tenants_get_their_own_decisions(store: Arc<dyn Store>) {
    let env = common::Env::at(store.clone(), t0() + Duration::hours(1)).await;
    let clock: Arc<dyn Clock> = env.clock.clone();
    let strict = shop(store.as_ref(), "Strict", "pn-strict").await;
    let relaxed = shop(store.as_ref(), "Relaxed", "pn-relaxed").await;
    let configs = TenantConfigs::new(store.clone(), clock.clone());
    // Strict: escalate what no rule decides, ignore only near-copies of an
    // ignore-example. Relaxed: the defaults (auto-reply), and a low bar for
    // "looks like an ignore-example".
    configs
        .update(strict.tenant, |s| {
            s.triage.default_outcome = Triage::Escalate;
            s.triage.similarity_threshold = 0.99;
        })
        .await
        .unwrap();
    configs
        .update(relaxed.tenant, |s| s.triage.similarity_threshold = 0.3)
        .await
        .unwrap();
    assert!(
        configs
            .update(relaxed.tenant, |s| s.triage.similarity_threshold = -1.0)
            .await
            .is_err(),
        "validated before any write"
    );
    let p = InboundPipeline::new(
        store.clone(),
        clock.clone(),
        Arc::new(TemplateGenerator::new().with_default_template("Hello {name}!")),
    )
    .with_tenant_configs(configs.clone());

    let question = "Hello, is the shop open today?";
    let thanks = "thanks a lot, see you tomorrow";
    let sq = receive(&p, &strict, "s-1", question).await;
    let st = receive(&p, &strict, "s-2", thanks).await;
    let rq = receive(&p, &relaxed, "r-1", question).await;
    let rt = receive(&p, &relaxed, "r-2", thanks).await;
    p.triage_new_items(100).await.unwrap();
    let s = store.as_ref();
    assert_eq!(
        triage_of(s, strict.tenant, sq).await,
        Some(Triage::Escalate)
    );
    assert_eq!(
        triage_of(s, strict.tenant, st).await,
        Some(Triage::Escalate)
    );
    assert_eq!(
        triage_of(s, relaxed.tenant, rq).await,
        Some(Triage::AutoReply)
    );
    assert_eq!(triage_of(s, relaxed.tenant, rt).await, Some(Triage::Ignore));

    // Auto-replies off on the relaxed shop's channel: decided as with AI
    // control OFF (never queued for a reply).
    configs
        .update(relaxed.tenant, |s| {
            s.auto_reply_off_channels.insert(relaxed.channel.id);
        })
        .await
        .unwrap();
    let rq2 = receive(&p, &relaxed, "r-3", question).await;
    p.triage_new_items(100).await.unwrap();
    assert_eq!(
        triage_of(s, relaxed.tenant, rq2).await,
        Some(Triage::Ignore)
    );
    let decision = s
        .list_decisions(relaxed.tenant, None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.subject == DecisionSubject::Message(rq2))
        .unwrap();
    assert_eq!(decision.snapshot["auto_reply_on_channel"], false);
    // The reply decided before the switch is not sent either: the queue's
    // claim leaves the switched-off channel's items where they are.
    let replies = p
        .auto_reply_recent_inbound(t0() - Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!(
        (replies.sent, replies.skipped_ai_off),
        (0, 0),
        "{replies:?}"
    );

    // A write from elsewhere (another process) is seen once the cache
    // entry expires; a write through the same configs at once.
    let cached =
        TenantConfigs::new(store.clone(), clock.clone()).with_ttl(StdDuration::from_secs(3600));
    assert_eq!(
        cached
            .get(strict.tenant)
            .await
            .unwrap()
            .triage
            .default_outcome,
        Triage::Escalate
    );
    let mut elsewhere = cached.get(strict.tenant).await.unwrap().as_ref().clone();
    elsewhere.triage.default_outcome = Triage::Ignore;
    s.put_tenant_settings(strict.tenant, &elsewhere, t0())
        .await
        .unwrap();
    assert_eq!(
        cached
            .get(strict.tenant)
            .await
            .unwrap()
            .triage
            .default_outcome,
        Triage::Escalate,
        "served from the cache"
    );
    cached.invalidate(strict.tenant);
    assert_eq!(
        cached
            .get(strict.tenant)
            .await
            .unwrap()
            .triage
            .default_outcome,
        Triage::Ignore
    );

    // Without a cache, a write from elsewhere is seen at once.
    let uncached = TenantConfigs::new(store.clone(), clock.clone()).with_ttl(StdDuration::ZERO);
    elsewhere.triage.default_outcome = Triage::Escalate;
    s.put_tenant_settings(strict.tenant, &elsewhere, t0())
        .await
        .unwrap();
    assert_eq!(
        uncached
            .get(strict.tenant)
            .await
            .unwrap()
            .triage
            .default_outcome,
        Triage::Escalate
    );

    // The seed's overview per tenant: a tenant's own key counts as present
    // for it only, and is never shown.
    configs
        .set_secret(
            strict.tenant,
            "OPENROUTER_API_KEY",
            SecretString::new("sk-strict"),
        )
        .await
        .unwrap();
    let mine = p.tenant_settings_overview(strict.tenant).await.unwrap();
    let theirs = p.tenant_settings_overview(relaxed.tenant).await.unwrap();
    assert_eq!(mine.get("OPENROUTER_API_KEY"), Some(true));
    assert_eq!(theirs.get("OPENROUTER_API_KEY"), Some(false));
    assert!(!serde_json::to_string(&mine).unwrap().contains("sk-strict"));

    // The strict shop switches the KPI worker off for itself.
    configs
        .update(strict.tenant, |s| {
            s.workers.insert(AGGREGATE_KPIS.into(), false);
        })
        .await
        .unwrap();
    assert!(
        !configs
            .worker_enabled(strict.tenant, AGGREGATE_KPIS, true)
            .await
            .unwrap()
    );
    assert!(
        configs
            .worker_enabled(relaxed.tenant, AGGREGATE_KPIS, true)
            .await
            .unwrap()
    );
    let summary = aggregate_kpis(s, clock.as_ref(), &KpiConfig::default())
        .await
        .unwrap();
    // The Env's own tenant, and the relaxed shop; not the strict one.
    assert_eq!(summary.tenants_processed, 2, "{summary:?}");
}
