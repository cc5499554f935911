//! Topic labels: the top distinguishing terms of each cluster (c-TF-IDF), and
//! the optional [`Labeller`] that turns them into a short name.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use nexiom_core::TenantId;
use nexiom_triage::{ReplyGenerator, ReplyKind, ReplyRequest};

use crate::features::words;

/// The top `k` terms of each cluster by class-based TF-IDF: a term's share of
/// its cluster's words times `ln(1 + A / f)`, where `A` is the average number
/// of words per cluster and `f` the term's count over all clusters. Terms are
/// the folded words and adjacent word pairs of [`words`]; ties break on the
/// term itself, so labels are deterministic.
pub fn c_tf_idf<S: AsRef<str>>(clusters: &[Vec<S>], k: usize) -> Vec<Vec<String>> {
    let counts: Vec<HashMap<String, f32>> = clusters
        .iter()
        .map(|texts| {
            let mut c: HashMap<String, f32> = HashMap::new();
            for text in texts {
                let w = words(text.as_ref());
                for word in &w {
                    *c.entry(word.clone()).or_insert(0.0) += 1.0;
                }
                for pair in w.windows(2) {
                    *c.entry(format!("{} {}", pair[0], pair[1])).or_insert(0.0) += 0.5;
                }
            }
            c
        })
        .collect();
    let mut total: HashMap<&str, f32> = HashMap::new();
    for c in &counts {
        for (t, n) in c {
            *total.entry(t.as_str()).or_insert(0.0) += n;
        }
    }
    let sizes: Vec<f32> = counts.iter().map(|c| c.values().sum::<f32>()).collect();
    let avg = sizes.iter().sum::<f32>() / sizes.len().max(1) as f32;
    counts
        .iter()
        .zip(&sizes)
        .map(|(c, size)| {
            let mut scored: Vec<(&str, f32)> = c
                .iter()
                .filter(|(_, n)| **n >= 2.0)
                .map(|(t, n)| {
                    let f = total.get(t.as_str()).copied().unwrap_or(*n);
                    (t.as_str(), n / size.max(1.0) * (1.0 + avg / f).ln())
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            let mut chosen: Vec<String> = Vec::with_capacity(k);
            for (t, _) in scored {
                // A pair whose words are both chosen, or a word inside a chosen
                // pair, adds nothing.
                let redundant = chosen.iter().any(|c| c.split(' ').any(|w| w == t))
                    || (t.contains(' ')
                        && t.split(' ')
                            .all(|w| chosen.iter().any(|c| c.split(' ').any(|x| x == w))));
                if !redundant {
                    chosen.push(t.to_owned());
                }
                if chosen.len() == k {
                    break;
                }
            }
            chosen
        })
        .collect()
}

/// The default label: the top three terms joined with ` · `, fitted as
/// [`fit_label`] does.
pub fn terms_label(terms: &[String]) -> String {
    let label = terms
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ");
    fit_label(&label)
}

/// `label` trimmed and cut, at a character boundary, to what a stored topic
/// holds ([`MAX_TOPIC_LABEL_LEN`] bytes, with `…` when cut);
/// `(no distinctive terms)` when nothing is left. A term is a run of letters
/// and digits, so in a script written without spaces one term can be a whole
/// clause: three of them, or a labeller's answer, could pass the limit and
/// make the run unsavable. Control characters (a NUL a labeller's answer
/// may quote from a customer's message, which the store refuses) become
/// spaces.
///
/// [`MAX_TOPIC_LABEL_LEN`]: nexiom_core::MAX_TOPIC_LABEL_LEN
pub fn fit_label(label: &str) -> String {
    const ELLIPSIS: &str = "…";
    let cleaned: String;
    let label = if label.chars().any(char::is_control) {
        cleaned = label
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        cleaned.trim()
    } else {
        label.trim()
    };
    if label.is_empty() {
        return "(no distinctive terms)".to_owned();
    }
    let max = nexiom_core::MAX_TOPIC_LABEL_LEN;
    if label.len() <= max {
        return label.to_owned();
    }
    let mut end = max - ELLIPSIS.len();
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", label[..end].trim_end())
}

/// Names a topic from its top terms and a few of its messages. A labeller
/// that fails is not an error: the terms label stays.
#[async_trait]
pub trait Labeller: Send + Sync + std::fmt::Debug {
    /// A short name, or `None` to keep the terms label.
    async fn label(&self, tenant: TenantId, terms: &[String], examples: &[&str]) -> Option<String>;
}

/// The system prompt of a [`GeneratorLabeller`]'s chat-completions generator
/// (give it as `OpenAiConfig::system_prompt`).
pub const LABEL_SYSTEM_PROMPT: &str = "You name the subject that customers raise in a group \
     of social-media messages. Answer with a JSON object only: {\"reply\": \"<a name of 2 to 5 \
     words, in the messages' language>\", \"confidence\": <0 to 1>}.";

/// A [`Labeller`] through a [`ReplyGenerator`] (for example
/// `nexiom_triage::OpenAiCompatibleGenerator` configured with
/// [`LABEL_SYSTEM_PROMPT`]): the terms and examples are the "message", the
/// draft is the label (at most 60 characters, one line).
#[derive(Debug, Clone)]
pub struct GeneratorLabeller {
    generator: Arc<dyn ReplyGenerator>,
}

impl GeneratorLabeller {
    /// A labeller over `generator`.
    pub fn new(generator: Arc<dyn ReplyGenerator>) -> Self {
        GeneratorLabeller { generator }
    }
}

#[async_trait]
impl Labeller for GeneratorLabeller {
    async fn label(&self, tenant: TenantId, terms: &[String], examples: &[&str]) -> Option<String> {
        let text = format!(
            "Top terms: {}\nMessages:\n- {}",
            terms.join(", "),
            examples.join("\n- ")
        );
        let request = ReplyRequest {
            tenant_id: tenant,
            kind: ReplyKind::Message,
            contact_name: None,
            text: &text,
        };
        match self.generator.generate(&request).await {
            Ok(draft) => {
                let line = draft.text.lines().next().unwrap_or("").trim();
                let label: String = line.chars().take(60).collect();
                (!label.is_empty()).then_some(label)
            }
            Err(e) => {
                tracing::warn!(error = %e, "topic labeller failed; keeping the terms label");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishing_terms_come_first() {
        let clusters = vec![
            vec![
                "colis en retard",
                "livraison en retard",
                "mon colis n'arrive pas",
                "colis perdu",
            ],
            vec![
                "horaires du samedi",
                "ouvert samedi ?",
                "horaires dimanche",
                "horaires svp",
            ],
        ];
        let terms = c_tf_idf(&clusters, 3);
        assert_eq!(terms[0][0], "colis");
        assert!(terms[0].contains(&"retard".to_owned()));
        assert_eq!(terms[1][0], "horaires");
        assert_eq!(terms_label(&terms[1][..1]), "horaires");
        assert_eq!(terms_label(&[]), "(no distinctive terms)");
    }

    #[test]
    fn a_pair_whose_words_are_both_chosen_adds_nothing() {
        let clusters = vec![
            vec!["colis en retard"; 20],
            vec!["horaires du samedi", "horaires dimanche"],
        ];
        let terms = c_tf_idf(&clusters, 3);
        assert!(!terms[0].contains(&"colis retard".to_owned()), "{terms:?}");
        assert!(terms[0].contains(&"colis".to_owned()), "{terms:?}");
        assert!(terms[0].contains(&"retard".to_owned()), "{terms:?}");
    }

    #[test]
    fn labels_fit_what_a_topic_stores() {
        // Three clauses of a script written without spaces: one term each.
        let clause = "配送が遅れている荷物について問い合わせをしたいのですがよろしいでしょうか";
        let label = terms_label(&[clause.to_owned(), clause.to_owned(), clause.to_owned()]);
        assert!(
            label.len() <= nexiom_core::MAX_TOPIC_LABEL_LEN,
            "{}",
            label.len()
        );
        assert!(label.ends_with('…') && label.starts_with(clause));
        assert_eq!(fit_label("  short  "), "short");
        // A labeller's answer quoting a NUL: stored as a space.
        assert_eq!(fit_label("Livraison\u{0} retard\u{7}"), "Livraison  retard");
        assert_eq!(fit_label(" \n "), "(no distinctive terms)");
    }
}
