//! The stable, short counterpart of the `triage_compile` fuzz target: arbitrary
//! rules (keywords, regex patterns, confidence floors, priorities) and
//! ignore-examples compile to an engine or a named error, and the engine's
//! decisions keep the documented guarantees, never a panic.

use chrono::{DateTime, Utc};
use nexiom_core::{AiRule, IgnoreExample, IgnoreExampleId, RuleId, RuleType, TenantId, Triage};
use nexiom_triage::{TriageConfig, TriageEngine, TriageInput};
use proptest::prelude::*;

fn words() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("remboursement".to_owned()),
        Just("Problème".to_owned()),
        Just("horaires".to_owned()),
        Just("c++".to_owned()),
        Just(" ".to_owned()),
        Just("\u{301}".to_owned()),
        ".{0,12}",
    ]
}

fn patterns() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r"\bcommande\s+\d+".to_owned()),
        Just("(".to_owned()),
        Just("a{1000}{1000}".to_owned()),
        Just(r"\p{Greek}+".to_owned()),
        Just("(?-u:\\xFF)".to_owned()),
        "[a-z()|*+?\\\\.{}\\[\\]^$0-9]{0,12}",
    ]
}

fn rule() -> impl Strategy<Value = AiRule> {
    (
        prop::sample::select(RuleType::ALL),
        ".{0,8}",
        prop::collection::vec(words(), 0..4),
        prop::collection::vec(patterns(), 0..3),
        prop::option::of(prop_oneof![0.0..=1.0, any::<f64>()]),
        any::<bool>(),
        any::<i32>(),
    )
        .prop_map(
            |(rule_type, name, keywords, patterns, confidence_min, enabled, priority)| AiRule {
                id: RuleId::generate(),
                tenant_id: TenantId::generate(),
                rule_type,
                name,
                keywords,
                patterns,
                confidence_min,
                enabled,
                priority,
                created_at: DateTime::<Utc>::UNIX_EPOCH,
                updated_at: DateTime::<Utc>::UNIX_EPOCH,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_rule_sets_compile_or_refuse(
        rules in prop::collection::vec(rule(), 0..6),
        examples in prop::collection::vec(words(), 0..4),
        threshold in prop_oneof![0.0..=1.0, any::<f64>()],
        texts in prop::collection::vec((words(), any::<bool>(), any::<bool>()), 0..4),
    ) {
        let examples: Vec<IgnoreExample> = examples
            .into_iter()
            .map(|text| IgnoreExample {
                id: IgnoreExampleId::generate(),
                tenant_id: TenantId::generate(),
                text,
                created_at: DateTime::<Utc>::UNIX_EPOCH,
            })
            .collect();
        let config = TriageConfig { similarity_threshold: threshold, default_outcome: Triage::AutoReply };
        let engine = match TriageEngine::compile(&rules, &examples, config) {
            Ok(engine) => engine,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        for (text, has_media, ai_control_on) in &texts {
            let decision = engine.decide(&TriageInput {
                text,
                has_media: *has_media,
                generator_confidence: Some(0.5),
                ai_control_on: *ai_control_on,
            });
            prop_assert!((0.0..=1.0).contains(&decision.confidence));
            if !ai_control_on {
                prop_assert_ne!(decision.triage, Triage::AutoReply);
            }
        }
    }
}

/// Found by the property test above: a tiny positive similarity threshold made
/// the length window's upper bound `n / threshold` saturate to `usize::MAX`, and
/// the `+ 1` after it overflowed (a panic in debug builds; in release the window
/// wrapped to empty and an exact copy of an ignore-example was not ignored).
#[test]
fn tiny_similarity_threshold_still_finds_the_example() {
    let example = IgnoreExample {
        id: IgnoreExampleId::generate(),
        tenant_id: TenantId::generate(),
        text: "remboursement".into(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    };
    for threshold in [6.375_819_918_625_546e-96, f64::MIN_POSITIVE, 5e-324] {
        let config = TriageConfig {
            similarity_threshold: threshold,
            default_outcome: Triage::AutoReply,
        };
        let engine = TriageEngine::compile(&[], std::slice::from_ref(&example), config)
            .expect("a tiny threshold is in range");
        let decision = engine.decide(&TriageInput {
            text: "remboursement",
            has_media: false,
            generator_confidence: None,
            ai_control_on: true,
        });
        assert_eq!(decision.triage, Triage::Ignore, "threshold {threshold}");
        assert_eq!(
            decision.reason,
            nexiom_triage::Reason::SimilarToIgnoreExample
        );
    }
}
