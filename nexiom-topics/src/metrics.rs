//! Agreement between a clustering and reference labels: adjusted Rand index
//! and normalized mutual information.
//!
//! Predictions are `Option<usize>`: every `None` (unassigned) counts as one
//! more cluster, so leaving everything unassigned scores 0.

use std::collections::HashMap;

/// The contingency table of `truth` × `predicted` (`None` as its own cluster).
fn contingency(
    truth: &[usize],
    predicted: &[Option<usize>],
) -> HashMap<(usize, Option<usize>), f64> {
    let mut table = HashMap::new();
    for (t, p) in truth.iter().zip(predicted) {
        *table.entry((*t, *p)).or_insert(0.0) += 1.0;
    }
    table
}

fn marginals<K: std::hash::Hash + Eq + Copy>(
    table: &HashMap<(usize, Option<usize>), f64>,
    key: impl Fn(&(usize, Option<usize>)) -> K,
) -> HashMap<K, f64> {
    let mut m = HashMap::new();
    for (k, n) in table {
        *m.entry(key(k)).or_insert(0.0) += n;
    }
    m
}

/// Normalized mutual information, arithmetic normalization (`I / mean(H)`),
/// in `0..=1`. Two single-cluster labelings agree fully (1).
pub fn nmi(truth: &[usize], predicted: &[Option<usize>]) -> f64 {
    let n = truth.len().min(predicted.len()) as f64;
    if n == 0.0 {
        return 1.0;
    }
    let table = contingency(truth, predicted);
    let rows = marginals(&table, |k| k.0);
    let cols = marginals(&table, |k| k.1);
    let entropy =
        |values: Vec<f64>| -> f64 { values.iter().map(|c| c / n).map(|p| -p * p.ln()).sum() };
    let (ht, hp) = (
        entropy(rows.values().copied().collect()),
        entropy(cols.values().copied().collect()),
    );
    if ht == 0.0 && hp == 0.0 {
        return 1.0;
    }
    let mi: f64 = table
        .iter()
        .map(|((t, p), c)| {
            let pxy = c / n;
            pxy * (c * n / (rows[t] * cols[p])).ln()
        })
        .sum();
    let mean = (ht + hp) / 2.0;
    if mean <= 0.0 {
        0.0
    } else {
        (mi / mean).clamp(0.0, 1.0)
    }
}

/// Adjusted Rand index: 1 for identical partitions, about 0 for chance.
pub fn ari(truth: &[usize], predicted: &[Option<usize>]) -> f64 {
    let n = truth.len().min(predicted.len()) as f64;
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let table = contingency(truth, predicted);
    let index: f64 = table.values().map(|c| pairs(*c)).sum();
    let a: f64 = marginals(&table, |k| k.0).values().map(|c| pairs(*c)).sum();
    let b: f64 = marginals(&table, |k| k.1).values().map(|c| pairs(*c)).sum();
    let total = pairs(n);
    if total == 0.0 {
        return 1.0;
    }
    let expected = a * b / total;
    let max = (a + b) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let truth = [0, 0, 0, 1, 1, 1];
        let same = [Some(5), Some(5), Some(5), Some(2), Some(2), Some(2)];
        assert!((nmi(&truth, &same) - 1.0).abs() < 1e-9);
        assert!((ari(&truth, &same) - 1.0).abs() < 1e-9);
        let nothing = [None; 6];
        assert_eq!(nmi(&truth, &nothing), 0.0);
        assert!(ari(&truth, &nothing).abs() < 1e-9);
        // sklearn: adjusted_rand_score([0,0,0,1,1,1],[0,0,1,1,2,2]) = 0.24242...
        let pred = [Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)];
        assert!((ari(&truth, &pred) - 0.242_424_242).abs() < 1e-6);
        // By hand: I = (2/3) ln 2, H(truth) = ln 2, H(pred) = ln 3,
        // NMI = I / ((ln 2 + ln 3) / 2) = 0.515804.
        assert!(
            (nmi(&truth, &pred) - 0.515_804).abs() < 1e-5,
            "{}",
            nmi(&truth, &pred)
        );
    }
}
