//! The baseline: plain word TF-IDF and k-means (k-means++ seeding, Lloyd
//! iterations, cosine on unit vectors).

use std::collections::HashMap;

use crate::cluster::dot;
use crate::embed::normalize;
use crate::features::words;

/// Word-only TF-IDF vectors (no character n-grams, no word pairs), hashed
/// into `dimension` buckets and L2-normalized: the "simple TF-IDF" baseline.
pub fn word_tfidf(texts: &[String], dimension: usize) -> Vec<Vec<f32>> {
    let dimension = dimension.max(1);
    let docs: Vec<Vec<String>> = texts.iter().map(|t| words(t)).collect();
    let mut df: HashMap<&str, f32> = HashMap::new();
    for d in &docs {
        let mut seen: Vec<&str> = d.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for w in seen {
            *df.entry(w).or_insert(0.0) += 1.0;
        }
    }
    let n = docs.len() as f32;
    docs.iter()
        .map(|d| {
            let mut v = vec![0.0_f32; dimension];
            for w in d {
                let idf =
                    ((1.0 + n) / (1.0 + df.get(w.as_str()).copied().unwrap_or(0.0))).ln() + 1.0;
                let h = crate::features::hash(b'w', &[w]);
                v[usize::try_from(h % dimension as u64).unwrap_or(0)] += idf;
            }
            normalize(&mut v);
            v
        })
        .collect()
}

/// k-means with `k` clusters over unit vectors (cosine), k-means++ seeding
/// from `seed`, at most 50 iterations. Every point is assigned.
pub fn kmeans(vectors: &[Vec<f32>], k: usize, seed: u64) -> Vec<Option<usize>> {
    let n = vectors.len();
    if n == 0 || k == 0 {
        return vec![None; n];
    }
    let k = k.min(n);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut centroids: Vec<Vec<f32>> = vec![vectors[rng.usize(..n)].clone()];
    let mut nearest = vec![f32::INFINITY; n];
    while centroids.len() < k {
        let last = &centroids[centroids.len() - 1];
        for (i, v) in vectors.iter().enumerate() {
            nearest[i] = nearest[i].min((1.0 - dot(v, last)).max(0.0));
        }
        let total: f32 = nearest.iter().sum();
        let mut target = rng.f32() * total;
        let mut chosen = n - 1;
        for (i, d) in nearest.iter().enumerate() {
            target -= d;
            if target <= 0.0 {
                chosen = i;
                break;
            }
        }
        centroids.push(vectors[chosen].clone());
    }
    let dim = vectors[0].len();
    let mut assign = vec![0usize; n];
    for _ in 0..50 {
        let mut changed = false;
        for (i, v) in vectors.iter().enumerate() {
            let best = (0..k)
                .max_by(|&a, &b| {
                    dot(v, &centroids[a])
                        .total_cmp(&dot(v, &centroids[b]))
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            if best != assign[i] {
                assign[i] = best;
                changed = true;
            }
        }
        let mut sums = vec![vec![0.0_f32; dim]; k];
        for (i, v) in vectors.iter().enumerate() {
            for (s, x) in sums[assign[i]].iter_mut().zip(v) {
                *s += x;
            }
        }
        for (c, mut s) in centroids.iter_mut().zip(sums) {
            if s.iter().any(|x| *x != 0.0) {
                normalize(&mut s);
                *c = s;
            }
        }
        if !changed {
            break;
        }
    }
    assign.into_iter().map(Some).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_obvious_groups() {
        let texts: Vec<String> = [
            "colis retard",
            "retard colis",
            "horaires samedi",
            "samedi horaires",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let v = word_tfidf(&texts, 64);
        let a = kmeans(&v, 2, 1);
        assert_eq!(a[0], a[1]);
        assert_eq!(a[2], a[3]);
        assert_ne!(a[0], a[2]);
    }
}
