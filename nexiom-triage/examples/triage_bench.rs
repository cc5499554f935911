//! Triage throughput, measured against a naive baseline in the same run.
//!
//! ```text
//! cargo run --release -p nexiom-triage --example triage_bench
//! ```
//!
//! Workload: 100,000 messages of 5 to 300 characters in French and English, a tenth
//! of them near-copies of ignore-examples; 200 rules holding 2,000 keywords and 50
//! patterns; 100 ignore-examples. One thread.
//!
//! Baseline: the same rules checked one by one with `str::contains` on the folded
//! text (patterns as individual regexes), no automaton, and every ignore-example
//! compared in full with `strsim::normalized_levenshtein`. The baseline is slow, so
//! it runs on the first `BASELINE_MESSAGES` messages; both figures are decisions
//! per second, and the two engines' decisions are checked to agree on that sample.
//! `-- --engine-only` skips the baseline (for profiling).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use chrono::Utc;
use nexiom_core::{AiRule, IgnoreExample, IgnoreExampleId, RuleId, RuleType, TenantId, Triage};
use nexiom_triage::{SimilarityStats, TriageConfig, TriageEngine, fold_for_matching};

const MESSAGES: usize = 100_000;
const BASELINE_MESSAGES: usize = 5_000;
const RULES: usize = 200;
const KEYWORDS_PER_RULE: usize = 10;
const PATTERNS: usize = 50;
const EXAMPLES: usize = 100;
const GENERATOR_CONFIDENCE: f64 = 0.9;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FRENCH: &[&str] = &[
    "bonjour",
    "merci",
    "commande",
    "livraison",
    "problème",
    "colis",
    "retard",
    "produit",
    "qualité",
    "prix",
    "boutique",
    "magasin",
    "horaires",
    "ouverture",
    "samedi",
    "dimanche",
    "remboursement",
    "échange",
    "taille",
    "couleur",
    "très",
    "content",
    "déçu",
    "service",
    "client",
    "rapide",
    "lent",
    "depuis",
    "semaine",
    "jours",
    "est-ce",
    "que",
    "vous",
    "avez",
    "je",
    "voudrais",
    "savoir",
    "pourquoi",
    "quand",
    "comment",
    "mon",
    "ma",
    "mes",
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "et",
    "ou",
    "mais",
    "donc",
    "car",
    "pas",
    "encore",
    "reçu",
];
const ENGLISH: &[&str] = &[
    "hello",
    "thanks",
    "order",
    "delivery",
    "problem",
    "parcel",
    "late",
    "product",
    "quality",
    "price",
    "shop",
    "store",
    "opening",
    "hours",
    "saturday",
    "sunday",
    "refund",
    "exchange",
    "size",
    "colour",
    "very",
    "happy",
    "disappointed",
    "service",
    "customer",
    "fast",
    "slow",
    "since",
    "week",
    "days",
    "do",
    "you",
    "have",
    "i",
    "would",
    "like",
    "to",
    "know",
    "why",
    "when",
    "how",
    "my",
    "the",
    "a",
    "and",
    "or",
    "but",
    "so",
    "not",
    "yet",
    "received",
];

fn sentence(rng: &mut Rng, min: usize, max: usize) -> String {
    let target = min + rng.below(max - min + 1);
    let vocab = if rng.below(2) == 0 { FRENCH } else { ENGLISH };
    let mut s = String::new();
    while s.chars().count() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        let word = rng.pick(vocab);
        if rng.below(12) == 0 {
            s.push_str(&word.to_uppercase());
        } else {
            s.push_str(word);
        }
        if rng.below(15) == 0 {
            s.push_str(if rng.below(2) == 0 { "," } else { " ?" });
        }
    }
    s.chars().take(target).collect()
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(2) {
        if chars.is_empty() {
            break;
        }
        let i = rng.below(chars.len());
        match rng.below(3) {
            0 => chars[i] = '!',
            1 => {
                chars.remove(i);
            }
            _ => chars.insert(i, 'e'),
        }
    }
    chars.into_iter().collect()
}

fn pseudo_word(rng: &mut Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "zu", "ter", "pra", "vel", "sho", "ne", "qui", "dra", "bex",
    ];
    (0..2 + rng.below(3)).map(|_| rng.pick(SYLLABLES)).collect()
}

fn workload() -> (Vec<AiRule>, Vec<IgnoreExample>, Vec<String>) {
    let mut rng = Rng(2026);
    let now = Utc::now();
    let tenant = TenantId::generate();
    let mut rules = Vec::new();
    let mut pattern_count = 0;
    for i in 0..RULES {
        let rule_type = match i % 10 {
            0 => RuleType::Deny,
            1 | 2 => RuleType::Escalate,
            _ => RuleType::Auto,
        };
        // Mostly invented words (so that most messages match no rule and reach the
        // similarity step, the expensive path), some real ones, some multi-word.
        let keywords = (0..KEYWORDS_PER_RULE)
            .map(|k| match k {
                0 if i % 7 == 0 => rng.pick(FRENCH).to_owned(),
                1 if i % 5 == 0 => format!("{} {}", pseudo_word(&mut rng), rng.pick(ENGLISH)),
                _ => pseudo_word(&mut rng),
            })
            .collect();
        let patterns = if pattern_count < PATTERNS && i % 4 == 0 {
            pattern_count += 1;
            vec![format!(r"\b{}\d{{2,4}}\b", pseudo_word(&mut rng))]
        } else {
            vec![]
        };
        rules.push(AiRule {
            id: RuleId::generate(),
            tenant_id: tenant,
            rule_type,
            name: format!("rule-{i:03}"),
            keywords,
            patterns,
            confidence_min: (rule_type == RuleType::Auto && i % 3 == 0).then_some(0.7),
            enabled: true,
            priority: (i % 17) as i32,
            created_at: now,
            updated_at: now,
        });
    }
    assert_eq!(pattern_count, PATTERNS);
    let examples: Vec<IgnoreExample> = (0..EXAMPLES)
        .map(|_| IgnoreExample {
            id: IgnoreExampleId::generate(),
            tenant_id: tenant,
            text: sentence(&mut rng, 8, 60),
            created_at: now,
        })
        .collect();
    let messages = (0..MESSAGES)
        .map(|i| {
            if i % 10 == 0 {
                let example = &examples[rng.below(EXAMPLES)].text;
                mutate(&mut rng, example)
            } else {
                sentence(&mut rng, 5, 300)
            }
        })
        .collect();
    (rules, examples, messages)
}

/// The naive engine: same order, no automaton, no filters.
struct Baseline {
    guard: Vec<(AiRule, Vec<String>, Vec<regex::Regex>)>,
    auto: Vec<(AiRule, Vec<String>, Vec<regex::Regex>)>,
    examples: Vec<String>,
}

impl Baseline {
    fn new(rules: &[AiRule], examples: &[IgnoreExample]) -> Self {
        let prepare = |r: &AiRule| {
            (
                r.clone(),
                r.keywords.iter().map(|k| fold_for_matching(k)).collect(),
                r.patterns
                    .iter()
                    .map(|p| regex::Regex::new(&format!("(?i:{p})")).unwrap())
                    .collect(),
            )
        };
        let mut sorted: Vec<&AiRule> = rules.iter().collect();
        sorted.sort_by_key(|r| {
            let rank = match r.rule_type {
                RuleType::Deny => 0,
                RuleType::Escalate => 1,
                RuleType::Auto => 2,
            };
            (
                u8::from(r.rule_type == RuleType::Auto),
                r.priority,
                rank,
                r.name.clone(),
            )
        });
        Baseline {
            guard: sorted
                .iter()
                .filter(|r| r.rule_type != RuleType::Auto)
                .map(|r| prepare(r))
                .collect(),
            auto: sorted
                .iter()
                .filter(|r| r.rule_type == RuleType::Auto)
                .map(|r| prepare(r))
                .collect(),
            examples: examples
                .iter()
                .map(|e| fold_for_matching(&e.text))
                .collect(),
        }
    }

    fn classify(&self, text: &str) -> Triage {
        let folded = fold_for_matching(text);
        if folded.is_empty() {
            return Triage::Ignore;
        }
        let matches = |(_, keywords, patterns): &(AiRule, Vec<String>, Vec<regex::Regex>)| {
            keywords.iter().any(|k| contains_word(&folded, k))
                || patterns.iter().any(|p| p.is_match(text))
        };
        if let Some((rule, _, _)) = self.guard.iter().find(|r| matches(r)) {
            return if rule.rule_type == RuleType::Deny {
                Triage::Ignore
            } else {
                Triage::Escalate
            };
        }
        let best = self
            .examples
            .iter()
            .map(|e| strsim::normalized_levenshtein(&folded, e))
            .fold(0.0_f64, f64::max);
        if best > 0.70 {
            return Triage::Ignore;
        }
        // Steps 4 and 5 with the generator confidence the engine is given (0.9).
        match self.auto.iter().find(|r| matches(r)) {
            Some((rule, _, _))
                if rule
                    .confidence_min
                    .is_some_and(|min| GENERATOR_CONFIDENCE < min) =>
            {
                Triage::Escalate
            }
            _ => Triage::AutoReply,
        }
    }
}

/// `str::contains` with the same word-boundary rule as the engine.
fn contains_word(text: &str, keyword: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = text[from..].find(keyword) {
        let start = from + pos;
        let end = start + keyword.len();
        let before = text[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        let after = text[end..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric);
        if !before && !after {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn main() {
    let (rules, examples, messages) = workload();
    let keywords: usize = rules.iter().map(|r| r.keywords.len()).sum();
    let patterns: usize = rules.iter().map(|r| r.patterns.len()).sum();
    println!(
        "workload: {} messages, {} rules ({} keywords, {} patterns), {} ignore-examples",
        messages.len(),
        rules.len(),
        keywords,
        patterns,
        examples.len()
    );

    let compile_start = Instant::now();
    let engine = TriageEngine::compile(&rules, &examples, TriageConfig::default()).unwrap();
    println!(
        "compile: {:.1} ms",
        compile_start.elapsed().as_secs_f64() * 1e3
    );

    let mut stats = SimilarityStats::default();
    let mut counts = [0usize; 3];
    let start = Instant::now();
    for text in &messages {
        let decision = engine
            .classify_with_stats(text, false, &mut stats)
            .finish(Some(GENERATOR_CONFIDENCE), true);
        counts[decision.triage as usize] += 1;
    }
    let engine_secs = start.elapsed().as_secs_f64();
    let engine_rate = messages.len() as f64 / engine_secs;
    println!(
        "engine:   {} decisions in {:.3} s = {:.0} decisions/s (ignore {}, escalate {}, auto_reply {})",
        messages.len(),
        engine_secs,
        engine_rate,
        counts[0],
        counts[1],
        counts[2]
    );
    let considered = stats.skipped_by_length + stats.skipped_by_histogram + stats.compared;
    println!(
        "          similarity: {} example comparisons considered, {} skipped by length, {} by histogram, {} computed ({:.1}%)",
        considered,
        stats.skipped_by_length,
        stats.skipped_by_histogram,
        stats.compared,
        100.0 * stats.compared as f64 / considered.max(1) as f64
    );

    if std::env::args().any(|a| a == "--engine-only") {
        return;
    }
    let baseline = Baseline::new(&rules, &examples);
    let sample = &messages[..BASELINE_MESSAGES];
    let start = Instant::now();
    let baseline_outcomes: Vec<Triage> = sample.iter().map(|t| baseline.classify(t)).collect();
    let baseline_secs = start.elapsed().as_secs_f64();
    let baseline_rate = sample.len() as f64 / baseline_secs;
    println!(
        "baseline: {} decisions in {:.3} s = {:.0} decisions/s",
        sample.len(),
        baseline_secs,
        baseline_rate
    );
    let disagreements = sample
        .iter()
        .zip(&baseline_outcomes)
        .filter(|(text, expected)| {
            engine
                .classify(text, false)
                .finish(Some(GENERATOR_CONFIDENCE), true)
                .triage
                != **expected
        })
        .count();
    println!(
        "agreement on the baseline sample: {} of {} differ",
        disagreements,
        sample.len()
    );
    println!("ratio: {:.1}x the baseline", engine_rate / baseline_rate);
    assert_eq!(disagreements, 0, "the engines disagree");
}
