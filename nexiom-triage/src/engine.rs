//! [`TriageEngine`]: a tenant's rules and ignore-examples, compiled once and
//! reused for every item.

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use nexiom_core::{AiRule, IgnoreExample, IgnoreExampleId, RuleId, RuleType, Triage};
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::error::TriageError;
use crate::similarity::{self, Example, Examples, Probe, SimilarityStats};
use crate::text::fold_for_matching;

/// The similarity above which an item is ignored as a near-copy of an
/// ignore-example, by default.
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.70;

/// Tenant-level settings of triage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TriageConfig {
    /// Similarity (strictly) above which an item is ignored. Default 0.70.
    pub similarity_threshold: f64,
    /// Outcome when no auto rule matches. Default AUTO_REPLY.
    pub default_outcome: Triage,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            default_outcome: Triage::AutoReply,
        }
    }
}

impl From<&nexiom_core::TriageSettings> for TriageConfig {
    /// A tenant's triage settings as the engine's configuration.
    fn from(settings: &nexiom_core::TriageSettings) -> Self {
        TriageConfig {
            similarity_threshold: settings.similarity_threshold,
            default_outcome: settings.default_outcome,
        }
    }
}

/// Why triage decided what it did. Stored as the decision's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No text and no media.
    Empty,
    /// A deny rule matched.
    DenyRule,
    /// An escalate rule matched.
    EscalateRule,
    /// Close to an ignore-example.
    SimilarToIgnoreExample,
    /// An auto rule matched.
    AutoRule,
    /// No auto rule matched: the tenant's default outcome.
    Default,
    /// The reply generator's confidence was below the rule's `confidence_min`, or
    /// missing.
    LowConfidence,
    /// AI control is OFF, so an AUTO_REPLY became IGNORE.
    AiControlOff,
}

impl Reason {
    /// The lower-case string form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::DenyRule => "deny_rule",
            Reason::EscalateRule => "escalate_rule",
            Reason::SimilarToIgnoreExample => "similar_to_ignore_example",
            Reason::AutoRule => "auto_rule",
            Reason::Default => "default",
            Reason::LowConfidence => "low_confidence",
            Reason::AiControlOff => "ai_control_off",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule that decided, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// Id.
    pub id: RuleId,
    /// Name.
    pub name: String,
    /// Type.
    pub rule_type: RuleType,
}

/// Steps 1–4 of triage (everything that depends on the text alone). Call
/// [`Classification::finish`] with the generator's confidence and the AI-control
/// switch for the decision. Knowing the candidate first lets a pipeline call the
/// (costly) reply generator only for AUTO_REPLY candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The outcome so far.
    pub triage: Triage,
    /// Why.
    pub reason: Reason,
    /// The deciding rule, if any.
    pub rule: Option<RuleRef>,
    /// `confidence_min` of the deciding auto rule.
    pub confidence_min: Option<f64>,
    /// Confidence: 1.0 for empty text and deny / escalate rules, the similarity for
    /// a near-copy; for AUTO_REPLY it is replaced by the generator's confidence.
    pub confidence: f64,
    /// The closest ignore-example above the threshold, with its similarity.
    pub similar_example: Option<(IgnoreExampleId, f64)>,
    /// Names of every enabled rule that matched, in evaluation order.
    pub matched_rules: Vec<String>,
}

impl Classification {
    /// Whether the reply generator's confidence matters for this item (an
    /// AUTO_REPLY candidate).
    pub fn wants_reply(&self) -> bool {
        self.triage == Triage::AutoReply
    }

    /// Steps 5 and 6: the `confidence_min` check and the AI-control switch.
    pub fn finish(self, generator_confidence: Option<f64>, ai_control_on: bool) -> Decision {
        let mut triage = self.triage;
        let mut reason = self.reason;
        let mut confidence = self.confidence;
        if triage == Triage::AutoReply {
            confidence = generator_confidence.unwrap_or(confidence);
            if let Some(min) = self.confidence_min {
                let enough = generator_confidence.is_some_and(|c| c >= min);
                if !enough {
                    triage = Triage::Escalate;
                    reason = Reason::LowConfidence;
                }
            }
        }
        if !ai_control_on && triage == Triage::AutoReply {
            triage = Triage::Ignore;
            reason = Reason::AiControlOff;
        }
        Decision {
            triage,
            confidence,
            reason,
            rule: self.rule,
            candidate: self.triage,
            candidate_reason: self.reason,
            matched_rules: self.matched_rules,
            similar_example: self.similar_example,
            generator_confidence,
            confidence_min: self.confidence_min,
            ai_control_on,
        }
    }
}

/// The outcome of triage for one item, with what was evaluated to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Ignore, escalate or auto-reply.
    pub triage: Triage,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// Why.
    pub reason: Reason,
    /// The deciding rule, if any.
    pub rule: Option<RuleRef>,
    /// The outcome of steps 1-4, before `confidence_min` and AI control.
    pub candidate: Triage,
    /// The reason of steps 1-4.
    pub candidate_reason: Reason,
    /// Names of every enabled rule that matched, in evaluation order.
    pub matched_rules: Vec<String>,
    /// The closest ignore-example above the threshold, with its similarity.
    pub similar_example: Option<(IgnoreExampleId, f64)>,
    /// The reply generator's confidence, when one was given.
    pub generator_confidence: Option<f64>,
    /// `confidence_min` of the deciding auto rule.
    pub confidence_min: Option<f64>,
    /// The AI-control switch as evaluated.
    pub ai_control_on: bool,
}

impl Decision {
    /// The snapshot stored with the decision: everything that was evaluated, as
    /// JSON. Built on request, so deciding stays allocation-light.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "candidate": self.candidate,
            "candidate_reason": self.candidate_reason,
            "matched_rules": self.matched_rules,
            "similar_example": self.similar_example.map(|(id, s)| serde_json::json!({"id": id, "similarity": s})),
            "generator_confidence": self.generator_confidence,
            "confidence_min": self.confidence_min,
            "ai_control_on": self.ai_control_on,
        })
    }
}

/// One item to triage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriageInput<'a> {
    /// The text as received.
    pub text: &'a str,
    /// Whether it carries media.
    pub has_media: bool,
    /// The reply generator's confidence in its draft, when one was made.
    pub generator_confidence: Option<f64>,
    /// The tenant's AI-control switch.
    pub ai_control_on: bool,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    id: RuleId,
    name: String,
    rule_type: RuleType,
    confidence_min: Option<f64>,
    matches_everything: bool,
}

/// A keyword of the automaton: the rules that hold it, and whether its edges need
/// a word boundary (an edge that is a letter or digit does).
#[derive(Debug, Clone)]
struct Keyword {
    rules: Vec<usize>,
    boundary_start: bool,
    boundary_end: bool,
}

/// A tenant's triage rules and ignore-examples, compiled once: every keyword of
/// every enabled rule in one Aho-Corasick automaton, every pattern in one
/// `RegexSet`, every example prepared for the similarity filters. Cheap to share
/// (`Send + Sync`) and reuse for any number of items.
///
/// Evaluation order (first that applies wins):
/// 1. empty text and no media → IGNORE (`empty`);
/// 2. enabled deny and escalate rules by ascending priority (ties: deny first,
///    then by name) → IGNORE / ESCALATE, confidence 1.0;
/// 3. similarity to the closest ignore-example strictly above the threshold →
///    IGNORE, confidence = the similarity;
/// 4. enabled auto rules by ascending priority (then name): the first match is
///    the AUTO_REPLY candidate; none → the tenant's default outcome;
/// 5. an AUTO_REPLY candidate whose rule has `confidence_min` becomes ESCALATE
///    (`low_confidence`) when the generator's confidence is below it or missing;
/// 6. AI control OFF turns an AUTO_REPLY into IGNORE (`ai_control_off`).
#[derive(Debug, Clone)]
pub struct TriageEngine {
    rules: Vec<CompiledRule>,
    guard_rules: usize,
    automaton: Option<AhoCorasick>,
    keywords: Vec<Keyword>,
    patterns: RegexSet,
    pattern_rules: Vec<usize>,
    example_ids: Vec<IgnoreExampleId>,
    examples: Examples,
    config: TriageConfig,
}

fn type_rank(t: RuleType) -> u8 {
    match t {
        RuleType::Deny => 0,
        RuleType::Escalate => 1,
        RuleType::Auto => 2,
    }
}

impl TriageEngine {
    /// Compiles the enabled rules and the examples. Refuses an invalid pattern, an
    /// empty keyword or an out-of-range number with an error naming the rule.
    pub fn compile(
        rules: &[AiRule],
        examples: &[IgnoreExample],
        config: TriageConfig,
    ) -> Result<TriageEngine, TriageError> {
        let threshold = config.similarity_threshold;
        if !(threshold.is_finite() && (0.0..=1.0).contains(&threshold)) {
            return Err(TriageError::InvalidThreshold(threshold));
        }
        let mut enabled: Vec<&AiRule> = rules.iter().filter(|r| r.enabled).collect();
        // Guard rules (deny, escalate) first, then auto rules; each group by
        // priority, type, name, id.
        enabled.sort_by(|a, b| {
            let group = |r: &AiRule| u8::from(r.rule_type == RuleType::Auto);
            (group(a), a.priority, type_rank(a.rule_type), &a.name, a.id).cmp(&(
                group(b),
                b.priority,
                type_rank(b.rule_type),
                &b.name,
                b.id,
            ))
        });
        let guard_rules = enabled
            .iter()
            .filter(|r| r.rule_type != RuleType::Auto)
            .count();

        let mut compiled = Vec::with_capacity(enabled.len());
        let mut keyword_index: std::collections::HashMap<String, usize> = Default::default();
        let mut keyword_texts: Vec<String> = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut pattern_texts: Vec<String> = Vec::new();
        let mut pattern_rules = Vec::new();
        for (index, rule) in enabled.iter().enumerate() {
            if let Some(min) = rule.confidence_min
                && !(min.is_finite() && (0.0..=1.0).contains(&min))
            {
                return Err(TriageError::InvalidConfidence {
                    rule: rule.name.clone(),
                    value: min,
                });
            }
            for keyword in &rule.keywords {
                let folded = fold_for_matching(keyword);
                if folded.is_empty() {
                    return Err(TriageError::EmptyKeyword {
                        rule: rule.name.clone(),
                        keyword: keyword.clone(),
                    });
                }
                let slot = *keyword_index.entry(folded.clone()).or_insert_with(|| {
                    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                    keywords.push(Keyword {
                        rules: Vec::new(),
                        boundary_start: is_word(folded.chars().next()),
                        boundary_end: is_word(folded.chars().next_back()),
                    });
                    keyword_texts.push(folded);
                    keywords.len() - 1
                });
                if keywords[slot].rules.last() != Some(&index) {
                    keywords[slot].rules.push(index);
                }
            }
            for pattern in &rule.patterns {
                let case_insensitive = format!("(?i:{pattern})");
                if let Err(e) = regex::Regex::new(&case_insensitive) {
                    return Err(TriageError::InvalidPattern {
                        rule: rule.name.clone(),
                        pattern: pattern.clone(),
                        message: e.to_string(),
                    });
                }
                pattern_texts.push(case_insensitive);
                pattern_rules.push(index);
            }
            compiled.push(CompiledRule {
                id: rule.id,
                name: rule.name.clone(),
                rule_type: rule.rule_type,
                confidence_min: rule.confidence_min,
                matches_everything: rule.keywords.is_empty() && rule.patterns.is_empty(),
            });
        }
        let automaton = if keyword_texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    // A full DFA: more memory (a few MB for thousands of
                    // keywords), fastest search; it is built once per rule set.
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&keyword_texts)
                    .map_err(|e| TriageError::TooLarge(e.to_string()))?,
            )
        };
        let patterns =
            RegexSet::new(&pattern_texts).map_err(|e| TriageError::TooLarge(e.to_string()))?;
        let example_ids = examples.iter().map(|e| e.id).collect();
        let examples = Examples::new(
            examples
                .iter()
                .map(|e| Example::new(&fold_for_matching(&e.text)))
                .collect(),
        );
        Ok(TriageEngine {
            rules: compiled,
            guard_rules,
            automaton,
            keywords,
            patterns,
            pattern_rules,
            example_ids,
            examples,
            config,
        })
    }

    /// The configuration it was compiled with.
    pub fn config(&self) -> TriageConfig {
        self.config
    }

    /// Triage in one call: [`classify`](Self::classify) then
    /// [`finish`](Classification::finish).
    pub fn decide(&self, input: &TriageInput<'_>) -> Decision {
        self.classify(input.text, input.has_media)
            .finish(input.generator_confidence, input.ai_control_on)
    }

    /// Steps 1–4, from the text alone.
    pub fn classify(&self, text: &str, has_media: bool) -> Classification {
        self.classify_with_stats(text, has_media, &mut SimilarityStats::default())
    }

    /// [`classify`](Self::classify), counting the similarity work in `stats`.
    pub fn classify_with_stats(
        &self,
        text: &str,
        has_media: bool,
        stats: &mut SimilarityStats,
    ) -> Classification {
        let folded = fold_for_matching(text);
        if folded.is_empty() && !has_media {
            return Classification {
                triage: Triage::Ignore,
                reason: Reason::Empty,
                rule: None,
                confidence_min: None,
                confidence: 1.0,
                similar_example: None,
                matched_rules: Vec::new(),
            };
        }
        let matched = self.matching_rules(text, &folded);
        let matched_rules = matched
            .iter()
            .zip(&self.rules)
            .filter(|(m, _)| **m)
            .map(|(_, r)| r.name.clone())
            .collect();
        let rule_ref = |r: &CompiledRule| RuleRef {
            id: r.id,
            name: r.name.clone(),
            rule_type: r.rule_type,
        };

        if let Some(rule) = (0..self.guard_rules)
            .find(|&i| matched[i])
            .map(|i| &self.rules[i])
        {
            let (triage, reason) = match rule.rule_type {
                RuleType::Deny => (Triage::Ignore, Reason::DenyRule),
                _ => (Triage::Escalate, Reason::EscalateRule),
            };
            return Classification {
                triage,
                reason,
                rule: Some(rule_ref(rule)),
                confidence_min: None,
                confidence: 1.0,
                similar_example: None,
                matched_rules,
            };
        }

        if !folded.is_empty() && !self.examples.is_empty() {
            let probe = Probe::new(&folded);
            if let Some((index, similarity)) = similarity::best_match(
                &probe,
                &self.examples,
                self.config.similarity_threshold,
                stats,
            ) {
                return Classification {
                    triage: Triage::Ignore,
                    reason: Reason::SimilarToIgnoreExample,
                    rule: None,
                    confidence_min: None,
                    confidence: similarity,
                    similar_example: Some((self.example_ids[index], similarity)),
                    matched_rules,
                };
            }
        }

        match (self.guard_rules..self.rules.len())
            .find(|&i| matched[i])
            .map(|i| &self.rules[i])
        {
            Some(rule) => Classification {
                triage: Triage::AutoReply,
                reason: Reason::AutoRule,
                rule: Some(rule_ref(rule)),
                confidence_min: rule.confidence_min,
                confidence: 1.0,
                similar_example: None,
                matched_rules,
            },
            None => Classification {
                triage: self.config.default_outcome,
                reason: Reason::Default,
                rule: None,
                confidence_min: None,
                confidence: 1.0,
                similar_example: None,
                matched_rules,
            },
        }
    }

    /// Which compiled rules match: one automaton pass over the folded text, one
    /// regex-set pass over the original text.
    fn matching_rules(&self, original: &str, folded: &str) -> Vec<bool> {
        let mut matched: Vec<bool> = self.rules.iter().map(|r| r.matches_everything).collect();
        if let Some(automaton) = &self.automaton {
            for m in automaton.find_overlapping_iter(folded) {
                let keyword = &self.keywords[m.pattern().as_usize()];
                if keyword.rules.iter().all(|&r| matched[r]) {
                    continue;
                }
                let before_ok = !keyword.boundary_start
                    || !folded[..m.start()]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_alphanumeric);
                let after_ok = !keyword.boundary_end
                    || !folded[m.end()..]
                        .chars()
                        .next()
                        .is_some_and(char::is_alphanumeric);
                if before_ok && after_ok {
                    for &r in &keyword.rules {
                        matched[r] = true;
                    }
                }
            }
        }
        // `is_match` first: it can use the patterns' literal prefilter and stops
        // at the first match, while `matches` runs every pattern to the end
        // (slowly on non-ASCII text when patterns use Unicode `\b`). Most items
        // match no pattern.
        if !self.pattern_rules.is_empty() && self.patterns.is_match(original) {
            for p in self.patterns.matches(original).iter() {
                matched[self.pattern_rules[p]] = true;
            }
        }
        matched
    }
}
