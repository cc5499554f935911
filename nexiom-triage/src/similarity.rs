//! Similarity of a text to the ignore-examples: normalized Levenshtein on folded
//! text, `1 − distance / longer length` in characters.
//!
//! Comparing a text with every example in full costs O(n·m) each. Two lower
//! bounds on the distance let most examples be skipped without that: the length
//! difference, and the difference of character histograms (each edit fixes at
//! most one surplus character on each side). What survives is compared with a
//! banded Levenshtein that stops as soon as the distance cannot beat the best
//! similarity found so far.

/// Histogram buckets. Folding characters into buckets can only shrink the
/// histogram difference, so the bound stays a true lower bound.
const BUCKETS: usize = 64;

/// A prepared ignore-example.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    chars: Vec<char>,
    histogram: [u16; BUCKETS],
}

impl Example {
    pub(crate) fn new(folded: &str) -> Self {
        let chars: Vec<char> = folded.chars().collect();
        let histogram = histogram(&chars);
        Example { chars, histogram }
    }
}

/// The ignore-examples, sorted by length so that only those whose length can
/// reach the threshold are visited. `order[i]` is the position of the i-th
/// shortest example in the tenant's list (ties go to the earlier one there).
#[derive(Debug, Clone, Default)]
pub(crate) struct Examples {
    sorted: Vec<Example>,
    order: Vec<usize>,
}

impl Examples {
    pub(crate) fn new(examples: Vec<Example>) -> Self {
        let mut indexed: Vec<(usize, Example)> = examples.into_iter().enumerate().collect();
        indexed.sort_by_key(|(i, e)| (e.chars.len(), *i));
        let (order, sorted) = indexed.into_iter().unzip();
        Examples { sorted, order }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// A text prepared for comparison with the examples.
pub(crate) struct Probe {
    chars: Vec<char>,
    histogram: [u16; BUCKETS],
}

impl Probe {
    pub(crate) fn new(folded: &str) -> Self {
        let chars: Vec<char> = folded.chars().collect();
        let histogram = histogram(&chars);
        Probe { chars, histogram }
    }
}

fn histogram(chars: &[char]) -> [u16; BUCKETS] {
    let mut h = [0u16; BUCKETS];
    for &c in chars {
        let slot = &mut h[(c as usize) % BUCKETS];
        *slot = slot.saturating_add(1);
    }
    h
}

/// Counters of how much work the filters saved (for benchmarks and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimilarityStats {
    /// Examples never visited: their length alone rules them out.
    pub skipped_by_length: u64,
    /// Examples skipped by the histogram bound.
    pub skipped_by_histogram: u64,
    /// Examples compared with the (banded) edit distance.
    pub compared: u64,
}

/// The best match so far: position in the tenant's list, distance, longer length.
/// Similarity `1 − d / l` is compared exactly, as fractions of integers.
#[derive(Clone, Copy)]
struct Best {
    index: usize,
    distance: usize,
    longer: usize,
}

/// The example most similar to `probe` with a similarity strictly greater than
/// `threshold`, as `(position in the tenant's list, similarity)`; on a tie, the
/// earlier example of the list.
pub(crate) fn best_match(
    probe: &Probe,
    examples: &Examples,
    threshold: f64,
    stats: &mut SimilarityStats,
) -> Option<(usize, f64)> {
    let n = probe.chars.len();
    // Any example within the threshold has |n − m| < (1 − t)·max(n, m), so
    // t·n < m < n / t. Visit only that window of the sorted list (with a margin
    // of one for rounding; the exact checks below decide).
    let (low, high) = if threshold > 0.0 {
        let low = (threshold * n as f64).floor() as usize;
        let high = ((n as f64 / threshold).ceil() as usize).saturating_add(1);
        (low.saturating_sub(1), high)
    } else {
        (0, usize::MAX)
    };
    let begin = examples.sorted.partition_point(|e| e.chars.len() < low);
    let end = examples.sorted.partition_point(|e| e.chars.len() <= high);
    stats.skipped_by_length += (examples.sorted.len() - (end - begin.min(end))) as u64;

    let mut best: Option<Best> = None;
    for slot in begin..end {
        let example = &examples.sorted[slot];
        let index = examples.order[slot];
        let m = example.chars.len();
        let longer = n.max(m);
        if longer == 0 {
            // Two empty texts are identical: similarity 1.
            if threshold < 1.0 && best.is_none_or(|b| b.distance > 0 || index < b.index) {
                best = Some(Best {
                    index,
                    distance: 0,
                    longer: 0,
                });
            }
            continue;
        }
        // The largest distance that can still win.
        let max_distance = match best {
            None => {
                let limit = (1.0 - threshold) * longer as f64;
                if limit <= 0.0 {
                    continue;
                }
                if limit.fract() == 0.0 {
                    limit as usize - 1
                } else {
                    limit.floor() as usize
                }
            }
            Some(b) if b.longer == 0 => continue,
            Some(b) => {
                // d / longer < b.distance / b.longer, or equal when earlier.
                let scaled = b.distance * longer;
                if index < b.index {
                    scaled / b.longer
                } else if scaled == 0 {
                    continue;
                } else {
                    (scaled - 1) / b.longer
                }
            }
        };
        if n.abs_diff(m) > max_distance {
            stats.skipped_by_length += 1;
            continue;
        }
        // Branch-free so that it vectorizes.
        let (mut surplus_probe, mut surplus_example) = (0u32, 0u32);
        for (a, b) in probe.histogram.iter().zip(example.histogram.iter()) {
            surplus_probe += u32::from(a.saturating_sub(*b));
            surplus_example += u32::from(b.saturating_sub(*a));
        }
        if surplus_probe.max(surplus_example) as usize > max_distance {
            stats.skipped_by_histogram += 1;
            continue;
        }
        stats.compared += 1;
        if let Some(distance) = bounded_levenshtein(&probe.chars, &example.chars, max_distance) {
            let similarity = 1.0 - distance as f64 / longer as f64;
            if best.is_some() || similarity > threshold {
                best = Some(Best {
                    index,
                    distance,
                    longer,
                });
            }
        }
    }
    best.map(|b| {
        let similarity = if b.longer == 0 {
            1.0
        } else {
            1.0 - b.distance as f64 / b.longer as f64
        };
        (b.index, similarity)
    })
}

/// The Levenshtein distance of `a` and `b` when it is at most `k`, else `None`.
/// Only the diagonal band of width `2k + 1` is computed, and the computation stops
/// as soon as every cell of a row exceeds `k`.
pub(crate) fn bounded_levenshtein(a: &[char], b: &[char], k: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > k {
        return None;
    }
    if n == 0 || m == 0 {
        return Some(n.max(m));
    }
    let inf = k + 1;
    let mut prev: Vec<usize> = (0..=m).map(|j| if j <= k { j } else { inf }).collect();
    let mut cur = vec![inf; m + 1];
    for i in 1..=n {
        let lo = i.saturating_sub(k).max(1);
        let hi = (i + k).min(m);
        cur[0] = if i <= k { i } else { inf };
        cur[lo - 1] = if lo == 1 { cur[0] } else { inf };
        let mut row_min = if lo == 1 { cur[0] } else { inf };
        let ai = a[i - 1];
        for j in lo..=hi {
            let substitution = prev[j - 1] + usize::from(ai != b[j - 1]);
            let value = substitution.min(prev[j] + 1).min(cur[j - 1] + 1).min(inf);
            cur[j] = value;
            row_min = row_min.min(value);
        }
        if hi < m {
            cur[hi + 1] = inf;
        }
        if row_min > k {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let distance = prev[m];
    (distance <= k).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the test needs no extra dependency.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn text(&mut self, alphabet: &[char], max_len: u64) -> String {
            let len = self.next() % (max_len + 1);
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn bounded_levenshtein_agrees_with_the_reference() {
        let alphabet = ['a', 'b', 'c', 'é', ' ', 'z'];
        let mut rng = Lcg(42);
        for _ in 0..3_000 {
            let a = rng.text(&alphabet, 14);
            let b = rng.text(&alphabet, 14);
            let k = (rng.next() % 10) as usize;
            let reference = strsim::levenshtein(&a, &b);
            let ac: Vec<char> = a.chars().collect();
            let bc: Vec<char> = b.chars().collect();
            let got = bounded_levenshtein(&ac, &bc, k);
            let expected = (reference <= k).then_some(reference);
            assert_eq!(got, expected, "{a:?} vs {b:?} with k={k}");
        }
    }

    #[test]
    fn best_match_agrees_with_comparing_everything() {
        let alphabet = ['a', 'b', 'c', 'd', ' '];
        let mut rng = Lcg(7);
        for round in 0..300 {
            let examples_text: Vec<String> = (0..12).map(|_| rng.text(&alphabet, 12)).collect();
            let probe_text = if round % 3 == 0 {
                examples_text[round % 12].clone() + "a"
            } else {
                rng.text(&alphabet, 12)
            };
            let examples = Examples::new(examples_text.iter().map(|t| Example::new(t)).collect());
            let mut stats = SimilarityStats::default();
            let got = best_match(&Probe::new(&probe_text), &examples, 0.7, &mut stats);
            let mut expected: Option<(usize, f64)> = None;
            for (i, e) in examples_text.iter().enumerate() {
                let s = strsim::normalized_levenshtein(&probe_text, e);
                if s > expected.map_or(0.7, |(_, b)| b) {
                    expected = Some((i, s));
                }
            }
            match (got, expected) {
                (None, None) => {}
                (Some((gi, gs)), Some((ei, es))) => {
                    assert_eq!(gi, ei, "probe {probe_text:?}");
                    assert!((gs - es).abs() < 1e-12);
                }
                other => panic!("probe {probe_text:?} in {examples_text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn filters_skip_examples_of_other_lengths() {
        let examples = Examples::new(
            ["merci beaucoup pour votre aide precieuse", "merci"]
                .iter()
                .map(|t| Example::new(t))
                .collect(),
        );
        let mut stats = SimilarityStats::default();
        let found = best_match(&Probe::new("merci!"), &examples, 0.7, &mut stats);
        assert_eq!(found.map(|(i, _)| i), Some(1));
        assert_eq!(stats.skipped_by_length, 1);
        assert_eq!(stats.compared, 1);
    }
}
