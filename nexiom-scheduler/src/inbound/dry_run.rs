//! Dry run: how a candidate rule set would decide a tenant's recent items,
//! next to what was decided, writing nothing.

use std::collections::HashMap;

use nexiom_core::{AiRule, DecisionSubject, RuleId, TenantId, Triage};
use nexiom_triage::TriageEngine;
use serde::{Deserialize, Serialize};

use super::{InboundError, InboundPipeline};

/// One side of a comparison: a triage, the rule that decided and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionSummary {
    /// The outcome.
    pub triage: Triage,
    /// The deciding rule's name (for a stored decision: the rule's current
    /// name, or its id when the rule was deleted).
    pub rule: Option<String>,
    /// The reason (`escalate_rule`, `similar_to_ignore_example`, …).
    pub reason: String,
    /// The confidence.
    pub confidence: f64,
}

/// One item replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunItem {
    /// The message or comment.
    pub subject: DecisionSubject,
    /// Its text.
    pub text: String,
    /// The stored decision.
    pub before: DecisionSummary,
    /// What the candidate rule set decides.
    pub after: DecisionSummary,
    /// Whether the outcome, the rule or the reason differs.
    pub changed: bool,
}

/// The result of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunReport {
    /// Every item replayed, newest decision first.
    pub items: Vec<DryRunItem>,
    /// How many of them would change.
    pub changed: usize,
}

impl DryRunReport {
    /// Only the items whose decision would change.
    pub fn changes(&self) -> impl Iterator<Item = &DryRunItem> {
        self.items.iter().filter(|i| i.changed)
    }
}

impl InboundPipeline {
    /// Replays `candidate` (a whole rule set, as it would be stored: build the
    /// ids of new rules with `RuleId::generate()`) against the tenant's last
    /// `last_n` triaged messages and comments (newest decision first), with
    /// the tenant's current ignore-examples and AI control, and returns how
    /// each decision would change. Nothing is written and no reply generator
    /// is called: an AUTO_REPLY candidate is finished with the generator
    /// confidence recorded in the stored decision's snapshot. A candidate that
    /// does not compile is `InboundError::Rules`, naming the rule at fault.
    ///
    /// Items never triaged have no "before" and are not replayed. An item a
    /// person answered before its triage (reason
    /// [`REASON_ANSWERED_BY_PERSON`](super::REASON_ANSWERED_BY_PERSON)) is
    /// decided so whatever the rules: it is listed unchanged.
    pub async fn dry_run_rules(
        &self,
        tenant: TenantId,
        candidate: &[AiRule],
        last_n: u32,
    ) -> Result<DryRunReport, InboundError> {
        let examples = self.store.list_ignore_examples(tenant).await?;
        // The tenant's own threshold and default outcome, as live triage.
        let settings = self.configs.get(tenant).await?;
        let config = nexiom_triage::TriageConfig::from(&settings.triage);
        let engine = TriageEngine::compile(candidate, &examples, config)?;
        let ai_control_on = self.store.get_ai_control(tenant).await?.enabled;
        let stored_rules: HashMap<RuleId, String> = self
            .store
            .list_rules(tenant, false)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        let decisions = self.store.list_decisions(tenant, None, last_n).await?;
        let mut items = Vec::with_capacity(decisions.len());
        for stored in decisions {
            let (text, has_media) = match stored.subject {
                DecisionSubject::Message(id) => {
                    let m = self.store.get_message(tenant, id).await?;
                    (m.text, m.has_media)
                }
                DecisionSubject::Comment(id) => {
                    (self.store.get_comment(tenant, id).await?.text, false)
                }
            };
            let generator_confidence = stored
                .snapshot
                .get("generator_confidence")
                .and_then(serde_json::Value::as_f64);
            let decision = engine
                .classify(&text, has_media)
                .finish(generator_confidence, ai_control_on);
            let before = DecisionSummary {
                triage: stored.triage,
                rule: stored.rule_id.map(|id| {
                    stored_rules
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| id.to_string())
                }),
                reason: stored.reason,
                confidence: stored.confidence,
            };
            let after = if before.reason == super::REASON_ANSWERED_BY_PERSON {
                before.clone()
            } else {
                DecisionSummary {
                    triage: decision.triage,
                    rule: decision.rule.map(|r| r.name),
                    reason: decision.reason.as_str().to_owned(),
                    confidence: decision.confidence,
                }
            };
            let changed = before.triage != after.triage
                || before.rule != after.rule
                || before.reason != after.reason;
            items.push(DryRunItem {
                subject: stored.subject,
                text,
                before,
                after,
                changed,
            });
        }
        let changed = items.iter().filter(|i| i.changed).count();
        Ok(DryRunReport { items, changed })
    }
}
