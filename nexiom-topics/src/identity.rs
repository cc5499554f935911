//! Topic identity across runs: today's clusters matched to the topics already
//! known, so that a topic keeps its id (and its history of daily sizes).

use crate::cluster::dot;

/// Matches each new centroid to at most one previous centroid, greedily by
/// decreasing cosine similarity, keeping only pairs at least `threshold`
/// alike; each previous topic is matched at most once. Returns, for each new
/// centroid, the index of its previous topic. Ties break on the indices, so
/// the result is deterministic.
///
/// Greedy matching is within a factor 2 of the optimal assignment's total
/// similarity, and in practice equal to it: topics are far apart, so each new
/// cluster has at most one previous topic above the threshold.
pub fn match_topics(previous: &[&[f32]], current: &[&[f32]], threshold: f32) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (c, cur) in current.iter().enumerate() {
        for (p, prev) in previous.iter().enumerate() {
            if prev.len() != cur.len() {
                continue;
            }
            let s = dot(prev, cur);
            if s >= threshold {
                pairs.push((s, c, p));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = vec![None; current.len()];
    let mut taken = vec![false; previous.len()];
    for (_, c, p) in pairs {
        if out[c].is_none() && !taken[p] {
            out[c] = Some(p);
            taken[p] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_pairs_first_each_used_once() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let ab = [0.8, 0.6];
        let prev: Vec<&[f32]> = vec![&a, &b];
        let cur: Vec<&[f32]> = vec![&ab, &a, &[0.6, -0.8], &[1.0, 0.0, 0.0]];
        assert_eq!(
            match_topics(&prev, &cur, 0.5),
            vec![Some(1), Some(0), None, None]
        );
        assert_eq!(match_topics(&[], &cur, 0.5), vec![None; 4]);
    }
}
