//! Checks on the labelled set, with the local embedder: NMI within each
//! language, at least 5 topics found, the TF-IDF + k-means baseline beaten
//! clearly, off-topic messages kept out of the on-topic clusters; and stable
//! topic ids from one day to the next.
//!
//! The issue asks for NMI ≥ 0.70 within each language. The local embedder
//! does not reach it on this set (about 0.60 in each language, against about
//! 0.24 for the baseline). The set bounds what a lexical method can do: one
//! cluster per phrasing of the data file, exactly, scores about 0.66 (the
//! `topics_eval` example prints it), and going above needs merging phrasings
//! of a topic that often share no word ("the driver seems lost" and "where is
//! my order"); by the same TF-IDF features, the nearest other phrasing is of the
//! same topic about 3 times in 4, the 5 nearest about half the time. The floor
//! asserted here (0.55) guards the measured level against regressions; the
//! 0.70 target stays open (see BENCHMARKS.md).
//!
//! The whole set (2,400 messages) runs in a few seconds even in a debug build
//! (the distance matrix of the sample is the cost), so no subset is needed.
#![allow(clippy::unwrap_used)]

use nexiom_topics::eval::{generate, kmeans, score, word_tfidf};
use nexiom_topics::{
    DEFAULT_DIMENSION, LocalEmbedder, TopicConfig, assignments, find_topics, match_topics,
};

fn embed(texts: &[String]) -> Vec<Vec<f32>> {
    let embedder = LocalEmbedder::default().fit(texts);
    texts.iter().map(|t| embedder.embed_one(t)).collect()
}

#[test]
fn clustering_meets_the_targets_and_beats_the_baseline() {
    let set = generate(2400, 2026);
    let texts: Vec<String> = set.messages.iter().map(|m| m.text.clone()).collect();
    let vectors = embed(&texts);
    let topics = find_topics(&texts, &vectors, &TopicConfig::default());
    let ours = score(&set, &assignments(&topics, texts.len()));
    let baseline = score(
        &set,
        &kmeans(
            &word_tfidf(&texts, DEFAULT_DIMENSION),
            set.topics.len(),
            2026,
        ),
    );
    eprintln!("ours: {ours:?}\nbaseline: {baseline:?}");
    assert!(ours.fr.nmi >= 0.55, "French NMI {}", ours.fr.nmi);
    assert!(ours.en.nmi >= 0.55, "English NMI {}", ours.en.nmi);
    assert!(topics.len() >= 5, "{} topics", topics.len());
    assert!(
        ours.fr.nmi >= baseline.fr.nmi + 0.2,
        "{ours:?} vs {baseline:?}"
    );
    assert!(
        ours.en.nmi >= baseline.en.nmi + 0.2,
        "{ours:?} vs {baseline:?}"
    );
    assert!(
        ours.overall.nmi >= baseline.overall.nmi + 0.2,
        "{ours:?} vs {baseline:?}"
    );
    assert!(
        ours.noise_unassigned >= 0.2,
        "noise unassigned {}",
        ours.noise_unassigned
    );
    assert!(
        ours.noise_kept_out >= 0.8,
        "noise kept out of topics {}",
        ours.noise_kept_out
    );
}

#[test]
fn the_same_data_two_days_in_a_row_keeps_its_topic_ids() {
    // Day 1 and day 2 see the same messages, in another order (so another
    // sample), each with its own fitted embedder, as two daily runs would.
    let set = generate(2400, 99);
    let day1: Vec<String> = set.messages.iter().map(|m| m.text.clone()).collect();
    let mut order: Vec<usize> = (0..day1.len()).collect();
    fastrand::Rng::with_seed(5).shuffle(&mut order);
    let day2: Vec<String> = order.iter().map(|&i| day1[i].clone()).collect();
    let config = TopicConfig::default();
    let t1 = find_topics(&day1, &embed(&day1), &config);
    let t2 = find_topics(&day2, &embed(&day2), &config);
    let c1: Vec<&[f32]> = t1.iter().map(|t| t.centroid.as_slice()).collect();
    let c2: Vec<&[f32]> = t2.iter().map(|t| t.centroid.as_slice()).collect();
    let matched = match_topics(&c1, &c2, config.match_similarity);
    let a1 = assignments(&t1, day1.len());
    let a2 = assignments(&t2, day2.len());
    // A member of day 1 keeps its id when its day-2 topic is matched to its
    // day-1 topic.
    let mut members = 0;
    let mut kept = 0;
    for (pos2, &i) in order.iter().enumerate() {
        if let Some(k1) = a1[i] {
            members += 1;
            if a2[pos2].and_then(|k2| matched[k2]) == Some(k1) {
                kept += 1;
            }
        }
    }
    let share = kept as f64 / members as f64;
    eprintln!("{kept} of {members} members kept their topic id ({share:.3})");
    assert!(share >= 0.9, "{share}");
}
