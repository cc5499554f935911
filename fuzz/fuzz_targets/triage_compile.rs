//! Arbitrary rules (keywords, regex patterns, priorities, thresholds) and
//! ignore-examples into `TriageEngine::compile`, then arbitrary texts into
//! `decide`: a compile error naming the problem, or decisions that keep the
//! documented guarantees (AI control OFF never answers automatically,
//! confidences stay within 0..=1), never a panic.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use nexiom_core::{AiRule, IgnoreExample, IgnoreExampleId, RuleId, RuleType, TenantId, Triage};
use nexiom_triage::{TriageConfig, TriageEngine, TriageInput};

#[derive(Debug, Arbitrary)]
struct Rule {
    rule_type: u8,
    name: String,
    keywords: Vec<String>,
    patterns: Vec<String>,
    confidence_min: Option<f64>,
    enabled: bool,
    priority: i32,
}

#[derive(Debug, Arbitrary)]
struct Item {
    text: String,
    has_media: bool,
    generator_confidence: Option<f64>,
    ai_control_on: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    rules: Vec<Rule>,
    examples: Vec<String>,
    /// Out of 255, or a raw value (NaN, negative, above 1).
    threshold: Result<u8, f64>,
    default_outcome: u8,
    items: Vec<Item>,
}

fuzz_target!(|input: Input| {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
    let rules: Vec<AiRule> = input
        .rules
        .into_iter()
        .take(16)
        .enumerate()
        .map(|(i, r)| AiRule {
            id: RuleId::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
            tenant_id: tenant,
            rule_type: RuleType::ALL[usize::from(r.rule_type) % RuleType::ALL.len()],
            name: r.name,
            keywords: r.keywords,
            patterns: r.patterns,
            confidence_min: r.confidence_min,
            enabled: r.enabled,
            priority: r.priority,
            created_at: at,
            updated_at: at,
        })
        .collect();
    let examples: Vec<IgnoreExample> = input
        .examples
        .into_iter()
        .take(16)
        .enumerate()
        .map(|(i, text)| IgnoreExample {
            id: IgnoreExampleId::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
            tenant_id: tenant,
            text,
            created_at: at,
        })
        .collect();
    let config = TriageConfig {
        similarity_threshold: match input.threshold {
            Ok(n) => f64::from(n) / 255.0,
            Err(raw) => raw,
        },
        default_outcome: Triage::ALL[usize::from(input.default_outcome) % Triage::ALL.len()],
    };
    let engine = match TriageEngine::compile(&rules, &examples, config) {
        Ok(engine) => engine,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for item in input.items.iter().take(8) {
        let decision = engine.decide(&TriageInput {
            text: &item.text,
            has_media: item.has_media,
            generator_confidence: item.generator_confidence,
            ai_control_on: item.ai_control_on,
        });
        if !item.ai_control_on {
            assert_ne!(
                decision.triage,
                Triage::AutoReply,
                "AI control OFF yet AUTO_REPLY"
            );
        }
        let in_range = |c: f64| (0.0..=1.0).contains(&c);
        if item.generator_confidence.is_none_or(in_range) {
            assert!(
                in_range(decision.confidence),
                "confidence {}",
                decision.confidence
            );
        }
        let _ = decision.snapshot();
    }
});
