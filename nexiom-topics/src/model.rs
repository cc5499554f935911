//! [`find_topics`]: clusters plus their c-TF-IDF terms, the pure core of a run.

use crate::cluster::{ClusterConfig, cluster};
use crate::label::{c_tf_idf, terms_label};

/// How topics are found.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// The clustering.
    pub cluster: ClusterConfig,
    /// Terms kept per topic.
    pub top_terms: usize,
    /// A new cluster keeps a known topic's id when their centroids are at
    /// least this similar.
    pub match_similarity: f32,
    /// Clusters smaller than this (after assignment) are dropped: their items
    /// stay unassigned.
    pub min_topic_size: usize,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            cluster: ClusterConfig::default(),
            top_terms: 5,
            match_similarity: 0.5,
            min_topic_size: 5,
        }
    }
}

/// A topic found in one set of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundTopic {
    /// The terms label (top three terms).
    pub label: String,
    /// Top distinguishing terms, best first.
    pub terms: Vec<String>,
    /// Unit centroid.
    pub centroid: Vec<f32>,
    /// Members: text index and similarity to the centroid, most similar first.
    pub members: Vec<(usize, f32)>,
}

/// Clusters `vectors` (one per text) and labels each cluster from its texts.
/// Topics come largest first.
pub fn find_topics(
    texts: &[String],
    vectors: &[Vec<f32>],
    config: &TopicConfig,
) -> Vec<FoundTopic> {
    let clustering = cluster(vectors, &config.cluster);
    let kept: Vec<_> = clustering
        .clusters
        .into_iter()
        .filter(|c| c.members.len() >= config.min_topic_size.max(1))
        .collect();
    let member_texts: Vec<Vec<&str>> = kept
        .iter()
        .map(|c| {
            c.members
                .iter()
                .filter_map(|(i, _)| texts.get(*i).map(String::as_str))
                .collect()
        })
        .collect();
    let terms = c_tf_idf(&member_texts, config.top_terms);
    kept.into_iter()
        .zip(terms)
        .map(|(c, terms)| FoundTopic {
            label: terms_label(&terms),
            terms,
            centroid: c.centroid,
            members: c.members,
        })
        .collect()
}

/// Each text's topic index in `topics` (`None`: unassigned).
pub fn assignments(topics: &[FoundTopic], texts: usize) -> Vec<Option<usize>> {
    let mut out = vec![None; texts];
    for (k, t) in topics.iter().enumerate() {
        for (i, _) in &t.members {
            if let Some(slot) = out.get_mut(*i) {
                *slot = Some(k);
            }
        }
    }
    out
}
