//! Scores the topic clustering on the labelled evaluation set, beside the
//! TF-IDF + k-means baseline.
//!
//! ```sh
//! cargo run --release -p nexiom-topics --example topics_eval [-- SIZE SEED]
//! ```
//!
//! Prints ARI and NMI per language and overall (unassigned messages count as
//! one cluster), the share of off-topic messages left unassigned and the share
//! kept out of on-topic clusters (unassigned or in a cluster of mostly
//! off-topic messages), the topics
//! found with their labels, and the same scores for k-means (k = the true
//! number of topics) on plain word TF-IDF (the baseline) and on the local
//! embedding (to tell the embedding's share of the gain from the clustering's),
//! and a reference: one cluster per phrasing of the data file, off-topic
//! unassigned (what a method scores when it finds every phrasing exactly but
//! never tells that two phrasings of a topic are one subject).

use std::time::Instant;

use nexiom_topics::eval::{EvalSet, Scores, generate, kmeans, score, word_tfidf};
use nexiom_topics::{
    DEFAULT_DIMENSION, LocalEmbedder, MergeUntil, TopicConfig, assignments, find_topics,
    merge_groups,
};

fn print(name: &str, s: &Scores, seconds: f64) {
    println!(
        "{name:<34} fr ARI {:.3} NMI {:.3} | en ARI {:.3} NMI {:.3} | all ARI {:.3} NMI {:.3} | off-topic unassigned {:>5.1}%, kept out of topics {:>5.1}% | clusters {:>3} | {seconds:.2} s",
        s.fr.ari,
        s.fr.nmi,
        s.en.ari,
        s.en.nmi,
        s.overall.ari,
        s.overall.nmi,
        s.noise_unassigned * 100.0,
        s.noise_kept_out * 100.0,
        s.clusters,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2400);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2026);
    let set: EvalSet = generate(size, seed);
    let texts: Vec<String> = set.messages.iter().map(|m| m.text.clone()).collect();
    let noise = set.messages.iter().filter(|m| m.topic.is_none()).count();
    println!(
        "evaluation set: {} messages ({} fr, {} en), {} topics, {} off-topic; seed {seed}",
        texts.len(),
        set.scores_fr(),
        texts.len() - set.scores_fr(),
        set.topics.len(),
        noise
    );
    for sample in set.messages.iter().take(8) {
        println!("  e.g. {:?}", sample.text);
    }

    let started = Instant::now();
    let embedder = LocalEmbedder::default().fit(&texts);
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedder.embed_one(t)).collect();
    let topics = find_topics(&texts, &vectors, &TopicConfig::default());
    let ours = assignments(&topics, texts.len());
    let ours_time = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let baseline_vectors = word_tfidf(&texts, DEFAULT_DIMENSION);
    let baseline = kmeans(&baseline_vectors, set.topics.len(), seed);
    let baseline_time = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let kmeans_local = kmeans(&vectors, set.topics.len(), seed);
    let kmeans_local_time = started.elapsed().as_secs_f64();

    // The ceiling of a method that cannot tell that two phrasings of a topic
    // are one subject: one cluster per phrasing, off-topic unassigned.
    let by_phrasing: Vec<Option<usize>> = set
        .messages
        .iter()
        .map(|m| m.topic.map(|_| m.phrasing))
        .collect();

    // What merging phrasings by their words can reach on this embedding:
    // the true phrasings (off-topic unassigned), merged by average linkage
    // of the local vectors down to `k` clusters. Above it, a method needs
    // to know that phrasings sharing no word are one subject.
    let merged_phrasings: Vec<(usize, Vec<Option<usize>>)> = [20, 40, 100]
        .into_iter()
        .map(|k| (k, merge_phrasings(&set, &vectors, k)))
        .collect();

    println!();
    print("HDBSCAN, local embedder", &score(&set, &ours), ours_time);
    print(
        "baseline: word TF-IDF + k-means",
        &score(&set, &baseline),
        baseline_time,
    );
    print(
        "k-means on the local embedder",
        &score(&set, &kmeans_local),
        kmeans_local_time,
    );
    print(
        "reference: one cluster per phrasing",
        &score(&set, &by_phrasing),
        0.0,
    );
    for (k, merged) in &merged_phrasings {
        print(
            &format!("reference: phrasings merged to {k}"),
            &score(&set, merged),
            0.0,
        );
    }

    println!("\ntopics found ({}):", topics.len());
    let labels = set.labels();
    for t in &topics {
        let mut counts = vec![0usize; set.topics.len() + 1];
        for (i, _) in &t.members {
            counts[labels[*i]] += 1;
        }
        let (best, n) = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| (k, *n))
            .unwrap_or((0, 0));
        let name = set.topics.get(best).map_or("off-topic", String::as_str);
        println!(
            "  {:>4} members, {:>5.1}% {:<18} {}",
            t.members.len(),
            n as f64 * 100.0 / t.members.len().max(1) as f64,
            name,
            t.label
        );
    }
}

trait FrCount {
    fn scores_fr(&self) -> usize;
}

impl FrCount for EvalSet {
    fn scores_fr(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.lang == nexiom_topics::eval::Lang::Fr)
            .count()
    }
}

/// The true phrasings of the on-topic messages merged by average linkage
/// ([`merge_groups`]: the mean similarity of their messages' local vectors)
/// until `k` clusters are left; off-topic messages unassigned.
fn merge_phrasings(set: &EvalSet, vectors: &[Vec<f32>], k: usize) -> Vec<Option<usize>> {
    let mut by_phrasing: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, m) in set.messages.iter().enumerate() {
        if m.topic.is_some() {
            by_phrasing.entry(m.phrasing).or_default().push(i);
        }
    }
    let groups = by_phrasing.into_values().collect();
    let mut out = vec![None; set.messages.len()];
    for (c, members) in merge_groups(vectors, groups, MergeUntil::Groups(k))
        .into_iter()
        .enumerate()
    {
        for i in members {
            out[i] = Some(c);
        }
    }
    out
}
