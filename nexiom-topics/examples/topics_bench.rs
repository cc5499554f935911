//! Embeds and clusters N messages of one tenant on one thread, and reports
//! the seconds of each step and the peak memory of the process.
//!
//! ```sh
//! taskset -c 0 cargo run --release -p nexiom-topics --example topics_bench -- 10000
//! taskset -c 0 cargo run --release -p nexiom-topics --example topics_bench -- 100000
//! ```
//!
//! Messages come from the evaluation set's generator (seed 7), so they are as
//! noisy as the evaluation's. Peak memory is the process's high-water mark
//! (`VmHWM` in `/proc/self/status`, Linux only), read at the end; run one size
//! per process.

use std::time::Instant;

use nexiom_topics::eval::generate;
use nexiom_topics::{LocalEmbedder, TopicConfig, assignments, find_topics};

fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let texts: Vec<String> = generate(n, 7)
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();

    let started = Instant::now();
    let embedder = LocalEmbedder::default().fit(&texts);
    let fit = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedder.embed_one(t)).collect();
    let embed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let topics = find_topics(&texts, &vectors, &TopicConfig::default());
    let cluster = started.elapsed().as_secs_f64();
    let assigned = assignments(&topics, texts.len()).iter().flatten().count();

    println!(
        "{} messages: fit {fit:.2} s, embed {embed:.2} s, cluster+label {cluster:.2} s, total {:.2} s; \
         {} topics, {:.1}% assigned; peak memory {} MiB",
        texts.len(),
        fit + embed + cluster,
        topics.len(),
        assigned as f64 * 100.0 / texts.len().max(1) as f64,
        peak_memory_kib().map_or("?".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0)),
    );
}
