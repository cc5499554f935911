//! Table-driven triage cases on the engine alone: deny, escalate, auto,
//! similarity, accents, word boundaries, multi-word keywords, confidence_min, AI
//! control OFF with and without a matching escalate rule, empty text, media-only.

#![allow(clippy::unwrap_used)] // test helpers unwrap: a panic is a failing test

use chrono::{TimeZone, Utc};
use nexiom_core::{AiRule, IgnoreExample, IgnoreExampleId, RuleId, RuleType, TenantId, Triage};
use nexiom_triage::{Reason, TriageConfig, TriageEngine, TriageError, TriageInput};

fn rule(
    name: &str,
    rule_type: RuleType,
    priority: i32,
    keywords: &[&str],
    patterns: &[&str],
    confidence_min: Option<f64>,
) -> AiRule {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    AiRule {
        id: RuleId::generate(),
        tenant_id: TenantId::generate(),
        rule_type,
        name: name.into(),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        confidence_min,
        enabled: true,
        priority,
        created_at: at,
        updated_at: at,
    }
}

fn rules() -> Vec<AiRule> {
    use RuleType::*;
    let mut disabled = rule("disabled", Escalate, 0, &["horaires"], &[], None);
    disabled.enabled = false;
    vec![
        rule(
            "spam",
            Deny,
            1,
            &["casino", "bitcoin gratuit"],
            &[r"https?://bit\.ly/\S+"],
            None,
        ),
        rule(
            "legal",
            Escalate,
            1,
            &["avocat", "mise en demeure", "plainte"],
            &[],
            None,
        ),
        rule("urgent", Escalate, 2, &["urgence", "problème"], &[], None),
        rule("competitor", Deny, 2, &["concurrent"], &[], None),
        rule(
            "refund",
            Escalate,
            0,
            &["refund"],
            &[r"rembours(er|ement)"],
            None,
        ),
        rule(
            "hours",
            Auto,
            5,
            &["horaires", "opening hours", "ouvert"],
            &[],
            None,
        ),
        rule(
            "pricing",
            Auto,
            6,
            &["prix", "price", "tarif"],
            &[],
            Some(0.8),
        ),
        rule(
            "greeting",
            Auto,
            10,
            &[],
            &[r"^\s*(bonjour|hello|hi)\b"],
            Some(0.5),
        ),
        disabled,
    ]
}

fn examples() -> Vec<IgnoreExample> {
    ["merci beaucoup !", "ok merci", "👍👍", "thank you so much"]
        .iter()
        .map(|t| IgnoreExample {
            id: IgnoreExampleId::generate(),
            tenant_id: TenantId::generate(),
            text: (*t).to_owned(),
            created_at: Utc::now(),
        })
        .collect()
}

struct Case {
    text: &'static str,
    media: bool,
    confidence: Option<f64>,
    ai_on: bool,
    triage: Triage,
    reason: Reason,
    rule: Option<&'static str>,
}

const fn case(
    text: &'static str,
    confidence: Option<f64>,
    ai_on: bool,
    triage: Triage,
    reason: Reason,
    rule: Option<&'static str>,
) -> Case {
    Case {
        text,
        media: false,
        confidence,
        ai_on,
        triage,
        reason,
        rule,
    }
}

#[test]
fn triage_table() {
    use Reason::*;
    use Triage::*;
    let on = true;
    let off = false;
    let good = Some(0.9);
    let cases = [
        // 1. Empty text.
        case("", good, on, Ignore, Empty, None),
        case("   \n\t ", good, on, Ignore, Empty, None),
        // Media-only: not empty, no rule applies, the default outcome.
        Case {
            media: true,
            ..case("", good, on, AutoReply, Default, None)
        },
        Case {
            media: true,
            ..case("", good, off, Ignore, AiControlOff, None)
        },
        // 2. Deny rules: keywords, case, multi-word with odd spacing, patterns.
        case(
            "Venez jouer au casino",
            good,
            on,
            Ignore,
            DenyRule,
            Some("spam"),
        ),
        case("CASINO!!!", good, on, Ignore, DenyRule, Some("spam")),
        case(
            "Bitcoin   GRATUIT ici",
            good,
            on,
            Ignore,
            DenyRule,
            Some("spam"),
        ),
        case(
            "voir https://bit.ly/xyz",
            good,
            on,
            Ignore,
            DenyRule,
            Some("spam"),
        ),
        // Escalate rules.
        case(
            "Mon avocat vous contactera",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("legal"),
        ),
        case(
            "Ceci est une mise en demeure.",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("legal"),
        ),
        case(
            "Ceci est une MISE\nEN DEMEURE",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("legal"),
        ),
        // Word boundaries: "demeurer" is not "demeure", "insurgence" not "urgence".
        case("une mise en demeurer", good, on, AutoReply, Default, None),
        case("l'insurgence gronde", good, on, AutoReply, Default, None),
        case(
            "C'est une urgence",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("urgent"),
        ),
        // Accents: keyword "problème" matches with and without them.
        case(
            "Un gros problème",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("urgent"),
        ),
        case(
            "Un gros PROBLEME",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("urgent"),
        ),
        // Priorities: refund (0) before spam (1); at equal priority deny first.
        case(
            "Je veux un remboursement",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("refund"),
        ),
        case(
            "REMBOURSEMENT et casino",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("refund"),
        ),
        case(
            "un concurrent, urgence",
            good,
            on,
            Ignore,
            DenyRule,
            Some("competitor"),
        ),
        // 3. Similarity to ignore-examples, on folded text.
        case(
            "merci beaucoup!",
            good,
            on,
            Ignore,
            SimilarToIgnoreExample,
            None,
        ),
        case(
            "Merçi BEAUCOUP !!",
            good,
            on,
            Ignore,
            SimilarToIgnoreExample,
            None,
        ),
        case("ok merci", good, on, Ignore, SimilarToIgnoreExample, None),
        case(
            "thank you so much!!!",
            good,
            on,
            Ignore,
            SimilarToIgnoreExample,
            None,
        ),
        // Guard rules come before similarity.
        case(
            "merci beaucoup mais problème",
            good,
            on,
            Escalate,
            EscalateRule,
            Some("urgent"),
        ),
        // 4. Auto rules; a disabled escalate rule with the same keyword is ignored.
        case(
            "Quels sont vos horaires ?",
            good,
            on,
            AutoReply,
            AutoRule,
            Some("hours"),
        ),
        case(
            "Quels sont vos horaires ?",
            None,
            on,
            AutoReply,
            AutoRule,
            Some("hours"),
        ),
        case(
            "What are your opening   HOURS?",
            good,
            on,
            AutoReply,
            AutoRule,
            Some("hours"),
        ),
        case(
            "Quels horaires et quel prix ?",
            good,
            on,
            AutoReply,
            AutoRule,
            Some("hours"),
        ),
        case("Ouverte ?", good, on, AutoReply, Default, None),
        case("tarifs", good, on, AutoReply, Default, None),
        case(
            "HELLO there",
            Some(0.6),
            on,
            AutoReply,
            AutoRule,
            Some("greeting"),
        ),
        // 5. confidence_min.
        case(
            "Quel est le prix ?",
            good,
            on,
            AutoReply,
            AutoRule,
            Some("pricing"),
        ),
        case(
            "Quel est le prix ?",
            Some(0.8),
            on,
            AutoReply,
            AutoRule,
            Some("pricing"),
        ),
        case(
            "Quel est le prix ?",
            Some(0.5),
            on,
            Escalate,
            LowConfidence,
            Some("pricing"),
        ),
        case(
            "Quel est le prix ?",
            None,
            on,
            Escalate,
            LowConfidence,
            Some("pricing"),
        ),
        case(
            "Bonjour",
            Some(0.4),
            on,
            Escalate,
            LowConfidence,
            Some("greeting"),
        ),
        // 6. AI control OFF: auto-replies become ignores, escalations stand.
        case(
            "Quel est le prix ?",
            good,
            off,
            Ignore,
            AiControlOff,
            Some("pricing"),
        ),
        case(
            "Quels sont vos horaires ?",
            good,
            off,
            Ignore,
            AiControlOff,
            Some("hours"),
        ),
        case(
            "Mon avocat",
            good,
            off,
            Escalate,
            EscalateRule,
            Some("legal"),
        ),
        case(
            "Quel est le prix ?",
            Some(0.1),
            off,
            Escalate,
            LowConfidence,
            Some("pricing"),
        ),
        case(
            "merci beaucoup",
            good,
            off,
            Ignore,
            SimilarToIgnoreExample,
            None,
        ),
        case("rien de spécial", good, off, Ignore, AiControlOff, None),
    ];
    assert!(cases.len() >= 30);
    let engine = TriageEngine::compile(&rules(), &examples(), TriageConfig::default()).unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let d = engine.decide(&TriageInput {
            text: c.text,
            has_media: c.media,
            generator_confidence: c.confidence,
            ai_control_on: c.ai_on,
        });
        let rule = d.rule.as_ref().map(|r| r.name.as_str());
        if d.triage != c.triage || d.reason != c.reason || rule != c.rule {
            failures.push(format!(
                "case {} {:?} (ai {}, conf {:?}): expected {:?}/{:?}/{:?}, got {:?}/{:?}/{:?}",
                i + 1,
                c.text,
                c.ai_on,
                c.confidence,
                c.triage,
                c.reason,
                c.rule,
                d.triage,
                d.reason,
                rule
            ));
        }
        assert!(
            (0.0..=1.0).contains(&d.confidence),
            "case {}: confidence {}",
            i + 1,
            d.confidence
        );
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn confidences_follow_the_deciding_step() {
    let engine = TriageEngine::compile(&rules(), &examples(), TriageConfig::default()).unwrap();
    let decide = |text, confidence| {
        engine.decide(&TriageInput {
            text,
            has_media: false,
            generator_confidence: confidence,
            ai_control_on: true,
        })
    };
    assert_eq!(decide("casino", Some(0.2)).confidence, 1.0);
    let similar = decide("merci beaucoup!", None);
    let expected = strsim::normalized_levenshtein("merci beaucoup!", "merci beaucoup !");
    assert!((similar.confidence - expected).abs() < 1e-12);
    assert!(
        similar.snapshot()["similar_example"]["similarity"]
            .as_f64()
            .is_some()
    );
    assert_eq!(decide("le prix ?", Some(0.93)).confidence, 0.93);
    let snapshot = decide("prix et casino", Some(0.93)).snapshot();
    assert_eq!(
        snapshot["matched_rules"],
        serde_json::json!(["spam", "pricing"])
    );
}

#[test]
fn the_default_outcome_is_configurable() {
    let config = TriageConfig {
        default_outcome: Triage::Escalate,
        ..TriageConfig::default()
    };
    let engine = TriageEngine::compile(&rules(), &[], config).unwrap();
    let d = engine.decide(&TriageInput {
        text: "rien de spécial",
        has_media: false,
        generator_confidence: Some(1.0),
        ai_control_on: true,
    });
    assert_eq!((d.triage, d.reason), (Triage::Escalate, Reason::Default));
}

#[test]
fn a_rule_without_keywords_or_patterns_matches_everything() {
    let engine = TriageEngine::compile(
        &[rule("catch-all", RuleType::Escalate, 100, &[], &[], None)],
        &[],
        TriageConfig::default(),
    )
    .unwrap();
    let d = engine.decide(&TriageInput {
        text: "anything",
        has_media: false,
        generator_confidence: None,
        ai_control_on: true,
    });
    assert_eq!(d.triage, Triage::Escalate);
}

#[test]
fn bad_rules_are_refused_with_the_rule_name() {
    let err = TriageEngine::compile(
        &[rule("broken", RuleType::Deny, 0, &[], &["(unclosed"], None)],
        &[],
        TriageConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(&err, TriageError::InvalidPattern { rule, .. } if rule == "broken"));
    assert!(err.to_string().contains("broken"));
    let err = TriageEngine::compile(
        &[rule("blank", RuleType::Deny, 0, &["  ", "x"], &[], None)],
        &[],
        TriageConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, TriageError::EmptyKeyword { .. }));
    let err = TriageEngine::compile(
        &[rule("odd", RuleType::Auto, 0, &["x"], &[], Some(1.5))],
        &[],
        TriageConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, TriageError::InvalidConfidence { .. }));
    let config = TriageConfig {
        similarity_threshold: f64::NAN,
        ..TriageConfig::default()
    };
    assert!(matches!(
        TriageEngine::compile(&[], &[], config),
        Err(TriageError::InvalidThreshold(_))
    ));
}
