//! Dry run of a candidate rule set: the changes it would make, nothing written.

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use nexiom_scheduler::inbound::InboundError;
use nexiom_storage::conformance::TestStore;

use super::fixture::{self, t0};
use super::support::{ScriptedGenerator, pipeline, receive, rule};

pub async fn dry_run_shows_changes_and_writes_nothing<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<TestStore>>,
{
    let Some(ts) = factory().await else { return };
    let store = ts.store();
    let s = fixture::setup(&*store).await;
    let tenant = s.tenant.id;
    let complaints = store
        .create_rule(rule(
            tenant,
            RuleType::Escalate,
            "complaints",
            &["remboursement"],
            1,
        ))
        .await
        .unwrap();
    store
        .set_ai_control(tenant, true, None, t0())
        .await
        .unwrap();
    let (p, _) = pipeline(Arc::clone(&store), Arc::new(ScriptedGenerator::default()));
    let texts = [
        "remboursement svp",
        "colis en retard",
        "super promo ici",
        "bonjour",
    ];
    for (i, text) in texts.iter().enumerate() {
        receive(
            &p,
            &s,
            &format!("d{i}"),
            "client",
            text,
            t0() + Duration::minutes(i as i64),
        )
        .await;
    }
    p.triage_new_items(100).await.unwrap();
    let decisions_before = store.list_decisions(tenant, None, 100).await.unwrap();
    let rules_before = store.list_rules(tenant, false).await.unwrap();

    let mut candidate = rules_before.clone();
    candidate[0].keywords.push("retard".into());
    let spam = AiRule {
        id: RuleId::generate(),
        tenant_id: tenant,
        rule_type: RuleType::Deny,
        name: "spam".into(),
        keywords: vec!["promo".into()],
        patterns: vec![],
        confidence_min: None,
        enabled: true,
        priority: 0,
        created_at: t0(),
        updated_at: t0(),
    };
    candidate.push(spam);
    let report = p.dry_run_rules(tenant, &candidate, 100).await.unwrap();
    assert_eq!(report.items.len(), 4);
    assert_eq!(report.changed, 2);
    let by_text = |t: &str| report.items.iter().find(|i| i.text == t).unwrap();
    let late = by_text("colis en retard");
    assert!(late.changed);
    assert_eq!(
        (late.before.triage, late.before.reason.as_str()),
        (Triage::AutoReply, "default")
    );
    assert_eq!(late.after.triage, Triage::Escalate);
    assert_eq!(late.after.rule.as_deref(), Some("complaints"));
    let promo = by_text("super promo ici");
    assert_eq!(
        (promo.after.triage, promo.after.reason.as_str()),
        (Triage::Ignore, "deny_rule")
    );
    assert_eq!(promo.after.rule.as_deref(), Some("spam"));
    let refund = by_text("remboursement svp");
    assert!(!refund.changed);
    assert_eq!(refund.before.rule.as_deref(), Some("complaints"));
    assert_eq!(report.changes().count(), 2);

    // Nothing was written.
    assert_eq!(
        store.list_decisions(tenant, None, 100).await.unwrap(),
        decisions_before
    );
    assert_eq!(store.list_rules(tenant, false).await.unwrap(), rules_before);
    let _ = complaints;

    // A candidate that does not compile names its rule.
    let mut broken = candidate.clone();
    broken[0].patterns.push("(oops".into());
    match p.dry_run_rules(tenant, &broken, 100).await {
        Err(InboundError::Rules(e)) => assert!(e.to_string().contains("complaints"), "{e}"),
        other => panic!("expected a rules error, got {other:?}"),
    }
    ts.cleanup().await;
}
