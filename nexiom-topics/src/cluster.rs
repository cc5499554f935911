//! Clustering unit vectors into topics: HDBSCAN on a bounded sample for dense
//! groups, average-linkage merging of the groups into topics, then assignment
//! of the other points to their nearest topic when close enough.
//!
//! 1. **Sample.** At most [`ClusterConfig::sample_size`] points, drawn with a
//!    seeded generator (the same input and seed give the same result).
//! 2. **Dense groups.** [`hdbscan`](crate::hdbscan) over the cosine distances
//!    (`1 − cos`) of the sample, exact in any dimension, with a small
//!    [`ClusterConfig::min_cluster_size`]: groups of near-identical messages
//!    (people write one subject in a few distinct ways, and each way forms its
//!    own dense group). Its noise stays out of the groups. When it finds no
//!    group at all (its root never splits: every text alike, or one subject
//!    among strays), the sample points at least
//!    [`ClusterConfig::min_similarity`] alike to the sample's centroid (at
//!    most [`FALLBACK_POINTS`]), one group each, merged as the next step
//!    merges groups; scattered texts stay apart.
//! 3. **Merge.** Groups are merged by average linkage (UPGMA): the two groups
//!    whose members are, on average, the most alike are merged first, while
//!    that average cosine similarity reaches
//!    [`ClusterConfig::merge_similarity`]. Average linkage does not chain: two
//!    groups merge on what all their members share, not on their two closest
//!    members.
//! 4. **Floor.** A merged cluster with fewer sample members than
//!    [`ClusterConfig::topic_floor`] is dissolved (a subject written a few
//!    times that day is not a topic yet); its points go to the next step.
//! 5. **Assign.** Every point that is not in a cluster yet (outside the sample,
//!    HDBSCAN noise, or from a dissolved cluster) joins the cluster whose
//!    centroid it is most similar to, if that similarity reaches the
//!    cluster's own bar: the [`ClusterConfig::assign_quantile`] of its
//!    members' similarities (never below [`ClusterConfig::min_similarity`]).
//!    Other points stay unassigned: noise is never forced into a topic.
//!
//! Clusters are returned largest first.

use crate::hdbscan::{DistanceMatrix, HdbscanParams, hdbscan};

/// How to cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// The most points HDBSCAN sees (time and memory grow with its square).
    pub sample_size: usize,
    /// HDBSCAN's smallest dense group, in sample points; `None`: a 600th of
    /// the sample, at least 5.
    pub min_cluster_size: Option<usize>,
    /// HDBSCAN's `min_samples`.
    pub min_samples: usize,
    /// Two groups merge when the average cosine similarity of their pairs of
    /// members reaches this. The default suits the local embedder (two
    /// messages of the evaluation set average about 0.015); a dense semantic
    /// embedder, whose unrelated texts are more alike, needs a higher bar.
    pub merge_similarity: f32,
    /// The smallest topic, in sample points, after merging; `None`: a 300th
    /// of the sample, at least 5.
    pub topic_floor: Option<usize>,
    /// A point joins a cluster when at least as similar to its centroid as
    /// this quantile of the cluster's members.
    pub assign_quantile: f32,
    /// A floor under every cluster's bar.
    pub min_similarity: f32,
    /// Seed of the sampling.
    pub seed: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            sample_size: 3000,
            min_cluster_size: None,
            min_samples: 3,
            merge_similarity: 0.14,
            topic_floor: None,
            assign_quantile: 0.1,
            min_similarity: 0.2,
            seed: 0x6e78_746f_7069_6373,
        }
    }
}

/// One cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Unit centroid.
    pub centroid: Vec<f32>,
    /// Members: point index and similarity to the centroid, most similar first.
    pub members: Vec<(usize, f32)>,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clustering {
    /// Clusters, largest first.
    pub clusters: Vec<Cluster>,
    /// Each point's cluster index (`None`: unassigned).
    pub assignments: Vec<Option<usize>>,
}

/// Dot product (cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0_f32; 8];
    let chunks = a.len().min(b.len()) / 8;
    for c in 0..chunks {
        for k in 0..8 {
            acc[k] += a[c * 8 + k] * b[c * 8 + k];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len().min(b.len()) {
        sum += a[i] * b[i];
    }
    sum
}

/// The most sample points the fallback of [`cluster`] merges (average
/// linkage costs the cube of their number).
pub const FALLBACK_POINTS: usize = 300;

/// The sum of vectors of length `dim`.
fn sum_of<'a>(vectors: impl Iterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut c = vec![0.0_f32; dim];
    for v in vectors {
        for (x, y) in c.iter_mut().zip(v) {
            *x += y;
        }
    }
    c
}

/// The most common non-zero length among `vectors` (the longer on a tie), so
/// that one odd vector, first or not, leaves the others usable.
fn common_length(vectors: &[Vec<f32>]) -> usize {
    most_common(vectors.iter().map(Vec::len))
}

/// The most common non-zero length (the longer on a tie).
fn most_common(lengths: impl Iterator<Item = usize>) -> usize {
    let mut counts: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for len in lengths.filter(|len| *len > 0) {
        *counts.entry(len).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(len, count)| (count, len))
        .map_or(0, |(len, _)| len)
}

/// When HDBSCAN finds no dense group (its root, never selected, did not
/// split: every text alike, or one subject among strays), the groups that
/// average linkage makes of the sample points at least
/// [`ClusterConfig::min_similarity`] alike to the sample's centroid (at
/// most [`FALLBACK_POINTS`] of them), each point a group to begin with and
/// merged while the average similarity reaches
/// [`ClusterConfig::merge_similarity`], as any groups are: thirty identical
/// texts make one group, scattered texts or small unrelated subjects only
/// groups the topic floor dissolves.
fn alike_groups(
    vectors: &[Vec<f32>],
    sample: &[usize],
    dim: usize,
    config: &ClusterConfig,
) -> Vec<Vec<usize>> {
    let c = centroid(sample.iter().map(|&i| vectors[i].as_slice()), dim);
    let singletons: Vec<Vec<usize>> = sample
        .iter()
        .copied()
        .filter(|&i| dot(&vectors[i], &c) >= config.min_similarity)
        .take(FALLBACK_POINTS)
        .map(|i| vec![i])
        .collect();
    merge_groups(
        vectors,
        singletons,
        MergeUntil::Below(config.merge_similarity),
    )
    .into_iter()
    .filter(|g| g.len() >= 2)
    .collect()
}

fn centroid<'a>(vectors: impl Iterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut c = sum_of(vectors, dim);
    crate::embed::normalize(&mut c);
    c
}

/// Clusters unit vectors (of one dimension, the most common length among
/// them; a vector of another length or with a non-finite value stays
/// unassigned).
pub fn cluster(vectors: &[Vec<f32>], config: &ClusterConfig) -> Clustering {
    let n = vectors.len();
    let dim = common_length(vectors);
    let usable: Vec<usize> = (0..n)
        .filter(|&i| {
            vectors[i].len() == dim
                && vectors[i].iter().all(|x| x.is_finite())
                && vectors[i].iter().any(|x| *x != 0.0)
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut sample = usable.clone();
    if sample.len() > config.sample_size {
        // A partial Fisher–Yates shuffle, then the chosen points in input order.
        for i in 0..config.sample_size {
            let j = rng.usize(i..sample.len());
            sample.swap(i, j);
        }
        sample.truncate(config.sample_size);
        sample.sort_unstable();
    }
    let m = sample.len();
    let min_cluster_size = config.min_cluster_size.unwrap_or((m / 600).max(5));
    let min_topic_size = config.topic_floor.unwrap_or((m / 300).max(5));
    let dist = DistanceMatrix::from_fn(m, |i, j| {
        1.0 - dot(&vectors[sample[i]], &vectors[sample[j]])
    });
    let labels = hdbscan(
        &dist,
        HdbscanParams {
            min_samples: config.min_samples,
            min_cluster_size,
        },
    );
    drop(dist);

    // Dense groups of sample points, merged by average linkage, then the
    // clusters under the floor dissolved.
    let groups = labels.iter().flatten().max().map_or(0, |k| k + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, label) in labels.iter().enumerate() {
        if let Some(k) = label {
            members[*k].push(sample[i]);
        }
    }
    if members.is_empty() {
        members = alike_groups(vectors, &sample, dim, config);
    }
    let mut members: Vec<Vec<usize>> =
        merge_groups(vectors, members, MergeUntil::Below(config.merge_similarity))
            .into_iter()
            .filter(|g| g.len() >= min_topic_size)
            .collect();
    members.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));

    let mut assignments = vec![None; n];
    let mut clusters: Vec<Cluster> = Vec::with_capacity(members.len());
    let mut bars = Vec::with_capacity(members.len());
    for (k, group) in members.iter().enumerate() {
        let c = centroid(group.iter().map(|&i| vectors[i].as_slice()), dim);
        let mut sims: Vec<f32> = group.iter().map(|&i| dot(&vectors[i], &c)).collect();
        sims.sort_by(f32::total_cmp);
        let q = ((sims.len() as f32 - 1.0) * config.assign_quantile.clamp(0.0, 1.0)) as usize;
        bars.push(
            sims.get(q)
                .copied()
                .unwrap_or(1.0)
                .max(config.min_similarity),
        );
        for &i in group {
            assignments[i] = Some(k);
        }
        clusters.push(Cluster {
            centroid: c,
            members: Vec::new(),
        });
    }
    for &i in &usable {
        if assignments[i].is_some() {
            continue;
        }
        let best = clusters
            .iter()
            .enumerate()
            .map(|(k, c)| (k, dot(&vectors[i], &c.centroid)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((k, sim)) = best
            && sim >= bars[k]
        {
            assignments[i] = Some(k);
        }
    }
    for (i, a) in assignments.iter().enumerate() {
        if let Some(k) = a {
            let sim = dot(&vectors[i], &clusters[*k].centroid);
            clusters[*k].members.push((i, sim));
        }
    }
    for c in &mut clusters {
        c.members
            .sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    Clustering {
        clusters,
        assignments,
    }
}

/// When [`merge_groups`] stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MergeUntil {
    /// The two most alike groups are, on average over their pairs of
    /// members, less similar than this.
    Below(f32),
    /// This many groups are left (at least one; empty input groups count
    /// until the end, when they are dropped).
    Groups(usize),
}

/// Average-linkage (UPGMA) merging of groups of unit vectors (each group a
/// list of indices into `vectors`): the two most alike groups, on average
/// over their pairs of members, become one, until `until`. The average
/// similarity of two groups is the dot product of their member sums over
/// the product of their sizes; after a merge, the merged group's
/// similarities follow from its parts' (Lance–Williams), so the whole costs
/// O(g²) memory and O(g³) time for g groups (a few hundred). Returns the
/// non-empty groups, members sorted.
pub fn merge_groups(
    vectors: &[Vec<f32>],
    groups: Vec<Vec<usize>>,
    until: MergeUntil,
) -> Vec<Vec<usize>> {
    // The members' most common length (one may be odd).
    let dim = most_common(groups.iter().flatten().map(|&i| vectors[i].len()));
    let g = groups.len();
    let sums: Vec<Vec<f32>> = groups
        .iter()
        .map(|grp| sum_of(grp.iter().map(|&i| vectors[i].as_slice()), dim))
        .collect();
    let mut size: Vec<f32> = groups.iter().map(|grp| grp.len() as f32).collect();
    let mut sim = vec![0.0_f32; g * g];
    for a in 0..g {
        for b in (a + 1)..g {
            let s = dot(&sums[a], &sums[b]) / (size[a] * size[b]).max(1.0);
            sim[a * g + b] = s;
            sim[b * g + a] = s;
        }
    }
    let mut alive = vec![true; g];
    let mut left = g;
    let mut groups = groups;
    loop {
        if let MergeUntil::Groups(k) = until
            && left <= k
        {
            break;
        }
        let mut best: Option<(usize, usize, f32)> = None;
        for a in (0..g).filter(|&a| alive[a]) {
            for b in ((a + 1)..g).filter(|&b| alive[b]) {
                let s = sim[a * g + b];
                let enough = match until {
                    MergeUntil::Below(bar) => s >= bar,
                    MergeUntil::Groups(_) => true,
                };
                if enough && best.is_none_or(|(_, _, t)| s > t) {
                    best = Some((a, b, s));
                }
            }
        }
        let Some((a, b, _)) = best else {
            break;
        };
        let (sa, sb) = (size[a], size[b]);
        for c in (0..g).filter(|&c| alive[c] && c != a && c != b) {
            let s = (sa * sim[a * g + c] + sb * sim[b * g + c]) / (sa + sb);
            sim[a * g + c] = s;
            sim[c * g + a] = s;
        }
        size[a] = sa + sb;
        alive[b] = false;
        left -= 1;
        let moved = std::mem::take(&mut groups[b]);
        groups[a].extend(moved);
    }
    groups
        .into_iter()
        .filter(|grp| !grp.is_empty())
        .map(|mut grp| {
            grp.sort_unstable();
            grp
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        crate::embed::normalize(&mut v);
        v
    }

    #[test]
    fn clusters_assigns_and_keeps_outliers_out() {
        let mut vectors = Vec::new();
        for i in 0..40 {
            let e = (i % 7) as f32 * 0.01;
            vectors.push(unit(&[1.0, e, 0.0, 0.0]));
            vectors.push(unit(&[0.0, 1.0, e, 0.0]));
            vectors.push(unit(&[0.0, 0.0, 1.0, e]));
        }
        vectors.push(unit(&[0.0, 0.0, 0.0, 1.0]));
        vectors.push(vec![f32::NAN; 4]);
        vectors.push(vec![0.0; 3]);
        let config = ClusterConfig {
            sample_size: 60,
            ..ClusterConfig::default()
        };
        let result = cluster(&vectors, &config);
        assert_eq!(result.clusters.len(), 3);
        for g in 0..3 {
            let first = result.assignments[g];
            assert!((0..40).all(|i| result.assignments[i * 3 + g] == first));
        }
        assert_eq!(&result.assignments[120..], &[None, None, None]);
        assert_eq!(result, cluster(&vectors, &config), "deterministic");
        assert_eq!(cluster(&[], &config), Clustering::default());
    }

    #[test]
    fn one_odd_vector_first_or_every_vector_alike_still_clusters() {
        let config = ClusterConfig {
            sample_size: 60,
            ..ClusterConfig::default()
        };
        // The first vector of another length: only it stays out.
        let mut vectors = vec![vec![1.0; 2]];
        for i in 0..40 {
            let e = (i % 7) as f32 * 0.01;
            vectors.push(unit(&[1.0, e, 0.0, 0.0]));
            vectors.push(unit(&[0.0, 1.0, e, 0.0]));
            vectors.push(unit(&[0.0, 0.0, 1.0, e]));
        }
        let result = cluster(&vectors, &config);
        assert_eq!(result.clusters.len(), 3, "{result:?}");
        assert_eq!(result.assignments[0], None);
        assert_eq!(
            result.assignments[1..],
            cluster(&vectors[1..], &config).assignments,
            "the others as if it were not there"
        );
        // Thirty identical messages (a giveaway's "Participating!"): one topic.
        let same = vec![unit(&[0.0, 1.0, 0.0]); 30];
        let result = cluster(&same, &config);
        assert_eq!(result.clusters.len(), 1, "{result:?}");
        assert!(result.assignments.iter().all(|a| *a == Some(0)));
        // Mostly duplicates and some near ones: all in the one topic.
        let mut near = vec![unit(&[0.0, 1.0, 0.0]); 24];
        near.extend((0..6).map(|i| unit(&[0.02 * (i + 1) as f32, 1.0, 0.0])));
        let result = cluster(&near, &config);
        assert_eq!(result.clusters.len(), 1, "{result:?}");
        assert!(result.assignments.iter().all(|a| *a == Some(0)));
        // One subject and two strays: one topic without them.
        let mut strays = vec![unit(&[1.0, 0.0, 0.0, 0.0]); 20];
        strays.push(unit(&[0.0, 0.0, 1.0, 0.0]));
        strays.push(unit(&[0.0, 0.0, 0.0, 1.0]));
        let result = cluster(&strays, &config);
        assert_eq!(result.clusters.len(), 1, "{result:?}");
        assert!(result.assignments[..20].iter().all(|a| *a == Some(0)));
        assert_eq!(result.assignments[20..], [None, None]);
        // Texts with nothing in common: no topic at all.
        let scattered: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                let mut v = vec![0.0; 20];
                v[i] = 1.0;
                v
            })
            .collect();
        let result = cluster(&scattered, &config);
        assert!(result.clusters.is_empty(), "{result:?}");
        // Five small subjects with nothing in common, four texts each (too
        // small for HDBSCAN's groups, too small for topics): none either.
        let small: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                let mut v = vec![0.0; 5];
                v[i / 4] = 1.0;
                v
            })
            .collect();
        let result = cluster(&small, &config);
        assert!(result.clusters.is_empty(), "{result:?}");
    }

    #[test]
    fn average_linkage_merges_alike_groups_without_chaining() {
        // 0 and 1 are 0.8 alike, 1 and 2 are 0.6, 0 and 2 not at all: single
        // linkage over a bar of 0.5 would chain all three, average linkage
        // merges 0 and 1, then finds {0, 1} and 2 only 0.3 alike.
        let vectors = vec![
            unit(&[1.0, 0.0, 0.0]),
            unit(&[0.8, 0.6, 0.0]),
            unit(&[0.0, 1.0, 0.0]),
        ];
        let groups = vec![vec![0], vec![1], vec![2]];
        let merged = |until| merge_groups(&vectors, groups.clone(), until);
        assert_eq!(merged(MergeUntil::Below(0.5)), vec![vec![0, 1], vec![2]]);
        assert_eq!(merged(MergeUntil::Below(0.95)), groups);
        assert_eq!(merged(MergeUntil::Below(-1.0)), vec![vec![0, 1, 2]]);
        // Down to a count: the most alike pair first, then the rest.
        assert_eq!(merged(MergeUntil::Groups(2)), vec![vec![0, 1], vec![2]]);
        assert_eq!(merged(MergeUntil::Groups(1)), vec![vec![0, 1, 2]]);
        assert_eq!(merged(MergeUntil::Groups(5)), groups);
    }
}
