//! Clustering unit vectors into topics: HDBSCAN on a bounded sample, merging
//! of near-identical clusters, then assignment of the other points to their
//! nearest cluster when close enough.
//!
//! 1. **Sample.** At most [`ClusterConfig::sample_size`] points, drawn with a
//!    seeded generator (the same input and seed give the same result).
//! 2. **Density clusters.** [`hdbscan`](crate::hdbscan) over the
//!    cosine distances (`1 − cos`) of the sample, exact in any dimension.
//! 3. **Merge.** Clusters whose centroids are at least
//!    [`ClusterConfig::merge_similarity`] alike are one topic (HDBSCAN splits a
//!    topic that people phrase in a few distinct ways).
//! 4. **Assign.** Every point that is not in a cluster yet (outside the sample,
//!    or noise inside it) joins the cluster whose centroid it is most similar
//!    to, if that similarity reaches the cluster's own bar: the
//!    [`ClusterConfig::assign_quantile`] of its members' similarities (never
//!    below [`ClusterConfig::min_similarity`]). Other points stay unassigned:
//!    noise is never forced into a topic.
//!
//! Clusters are returned largest first.

use crate::hdbscan::{DistanceMatrix, HdbscanParams, hdbscan};

/// How to cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// The most points HDBSCAN sees (time and memory grow with its square).
    pub sample_size: usize,
    /// The smallest cluster, in sample points; `None`: a 300th of the
    /// sample, at least 5.
    pub min_cluster_size: Option<usize>,
    /// HDBSCAN's `min_samples`.
    pub min_samples: usize,
    /// Clusters whose centroids are at least this similar are merged.
    pub merge_similarity: f32,
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
            merge_similarity: 0.25,
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

fn centroid<'a>(vectors: impl Iterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut c = vec![0.0_f32; dim];
    for v in vectors {
        for (x, y) in c.iter_mut().zip(v) {
            *x += y;
        }
    }
    crate::embed::normalize(&mut c);
    c
}

/// Clusters unit vectors (all of one dimension; a vector of another length
/// or with a non-finite value stays unassigned).
pub fn cluster(vectors: &[Vec<f32>], config: &ClusterConfig) -> Clustering {
    let n = vectors.len();
    let dim = vectors.first().map_or(0, Vec::len);
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
    let min_cluster_size = config.min_cluster_size.unwrap_or((m / 300).max(5));
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

    // Groups of sample points, then merged by centroid similarity.
    let groups = labels.iter().flatten().max().map_or(0, |k| k + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, label) in labels.iter().enumerate() {
        if let Some(k) = label {
            members[*k].push(sample[i]);
        }
    }
    let mut members = merge(vectors, members, dim, config.merge_similarity);
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

/// Merges groups whose centroids are at least `threshold` alike (single
/// linkage over centroids, with a union-find).
fn merge(
    vectors: &[Vec<f32>],
    groups: Vec<Vec<usize>>,
    dim: usize,
    threshold: f32,
) -> Vec<Vec<usize>> {
    let centroids: Vec<Vec<f32>> = groups
        .iter()
        .map(|g| centroid(g.iter().map(|&i| vectors[i].as_slice()), dim))
        .collect();
    let mut parent: Vec<usize> = (0..groups.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for a in 0..groups.len() {
        for b in (a + 1)..groups.len() {
            if dot(&centroids[a], &centroids[b]) >= threshold {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                if ra != rb {
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
    }
    let mut merged: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    for (g, group) in groups.into_iter().enumerate() {
        let root = find(&mut parent, g);
        merged[root].extend(group);
    }
    merged
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_unstable();
            g
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
}
