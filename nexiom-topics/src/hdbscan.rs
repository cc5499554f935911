//! HDBSCAN (Campello, Moulavi, Sander 2013) over a precomputed distance
//! matrix: core distances, the minimum spanning tree of the mutual
//! reachability graph (Prim, O(n²)), the single-linkage hierarchy, the
//! condensed tree for `min_cluster_size`, and the excess-of-mass selection of
//! the most stable clusters. Points of no selected cluster are noise.
//!
//! Working on a distance matrix rather than a spatial tree keeps neighbour
//! search exact in any dimension; the caller bounds `n` (a sample) so that the
//! O(n²) time and memory stay small.

/// The parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HdbscanParams {
    /// Neighbours (the point itself included) that define a point's core
    /// distance; larger is more conservative (more noise).
    pub min_samples: usize,
    /// The smallest group that counts as a cluster.
    pub min_cluster_size: usize,
}

/// A symmetric distance matrix, row-major, `n × n`.
#[derive(Debug, Clone)]
pub struct DistanceMatrix {
    n: usize,
    d: Vec<f32>,
}

impl DistanceMatrix {
    /// Builds the matrix from `f(i, j)` for `i < j` (the diagonal is 0).
    pub fn from_fn(n: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut d = vec![0.0_f32; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let v = f(i, j);
                let v = if v.is_finite() { v.max(0.0) } else { f32::MAX };
                d[i * n + j] = v;
                d[j * n + i] = v;
            }
        }
        DistanceMatrix { n, d }
    }

    /// Points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it has no point.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.d[i * self.n..(i + 1) * self.n]
    }
}

/// The cluster of each point (`None`: noise), clusters numbered from 0.
pub fn hdbscan(dist: &DistanceMatrix, params: HdbscanParams) -> Vec<Option<usize>> {
    let n = dist.len();
    let mcs = params.min_cluster_size.max(2);
    if n < mcs {
        return vec![None; n];
    }
    let core = core_distances(dist, params.min_samples.clamp(1, n));
    let mst = prim_mst(dist, &core);
    let tree = single_linkage(n, mst);
    let condensed = condense(n, &tree, mcs);
    select_and_label(n, &condensed)
}

fn core_distances(dist: &DistanceMatrix, k: usize) -> Vec<f32> {
    let mut buf = Vec::with_capacity(dist.len());
    (0..dist.len())
        .map(|i| {
            buf.clear();
            buf.extend_from_slice(dist.row(i));
            let (_, kth, _) = buf.select_nth_unstable_by(k - 1, f32::total_cmp);
            *kth
        })
        .collect()
}

/// The MST edges `(a, b, weight)` of the mutual reachability graph.
fn prim_mst(dist: &DistanceMatrix, core: &[f32]) -> Vec<(usize, usize, f32)> {
    let n = dist.len();
    let mut in_tree = vec![false; n];
    let mut best = vec![f32::INFINITY; n];
    let mut from = vec![0usize; n];
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    let mut current = 0;
    in_tree[0] = true;
    for _ in 1..n {
        let row = dist.row(current);
        let mut next = usize::MAX;
        let mut next_w = f32::INFINITY;
        for j in 0..n {
            if in_tree[j] {
                continue;
            }
            let w = row[j].max(core[current]).max(core[j]);
            if w < best[j] {
                best[j] = w;
                from[j] = current;
            }
            if best[j] < next_w || next == usize::MAX {
                next_w = best[j];
                next = j;
            }
        }
        in_tree[next] = true;
        edges.push((from[next], next, next_w));
        current = next;
    }
    edges
}

/// A merge of the single-linkage hierarchy: node `n + i` joins `left` and
/// `right` at `distance`; `size` points below.
struct Merge {
    left: usize,
    right: usize,
    distance: f32,
    size: usize,
}

fn single_linkage(n: usize, mut edges: Vec<(usize, usize, f32)>) -> Vec<Merge> {
    edges.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut parent: Vec<usize> = (0..2 * n).collect();
    let mut size = vec![1usize; 2 * n];
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    for (a, b, w) in edges {
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        let node = n + merges.len();
        parent[ra] = node;
        parent[rb] = node;
        size[node] = size[ra] + size[rb];
        merges.push(Merge {
            left: ra,
            right: rb,
            distance: w,
            size: size[node],
        });
    }
    merges
}

/// One edge of the condensed tree: `child` (a point below `n`, or a cluster
/// id from `n` on) leaves `parent` at density `lambda`.
struct Condensed {
    parent: usize,
    child: usize,
    lambda: f32,
    size: usize,
}

fn lambda_of(distance: f32) -> f32 {
    if distance > 1e-9 { 1.0 / distance } else { 1e9 }
}

fn condense(n: usize, merges: &[Merge], mcs: usize) -> Vec<Condensed> {
    let size_of = |node: usize| if node < n { 1 } else { merges[node - n].size };
    let root = n + merges.len() - 1;
    let mut out = Vec::new();
    let mut next_label = n + 1;
    // (node, cluster label it belongs to)
    let mut stack = vec![(root, n)];
    while let Some((node, label)) = stack.pop() {
        if node < n {
            continue;
        }
        let m = &merges[node - n];
        let lambda = lambda_of(m.distance);
        let (ls, rs) = (size_of(m.left), size_of(m.right));
        match (ls >= mcs, rs >= mcs) {
            (true, true) => {
                for (child, size) in [(m.left, ls), (m.right, rs)] {
                    out.push(Condensed {
                        parent: label,
                        child: next_label,
                        lambda,
                        size,
                    });
                    stack.push((child, next_label));
                    next_label += 1;
                }
            }
            (false, false) => {
                for child in [m.left, m.right] {
                    for point in leaves(n, merges, child) {
                        out.push(Condensed {
                            parent: label,
                            child: point,
                            lambda,
                            size: 1,
                        });
                    }
                }
            }
            (true, false) | (false, true) => {
                let (big, small) = if ls >= mcs {
                    (m.left, m.right)
                } else {
                    (m.right, m.left)
                };
                for point in leaves(n, merges, small) {
                    out.push(Condensed {
                        parent: label,
                        child: point,
                        lambda,
                        size: 1,
                    });
                }
                stack.push((big, label));
            }
        }
    }
    out
}

fn leaves(n: usize, merges: &[Merge], node: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(x) = stack.pop() {
        if x < n {
            out.push(x);
        } else {
            stack.push(merges[x - n].left);
            stack.push(merges[x - n].right);
        }
    }
    out
}

fn select_and_label(n: usize, condensed: &[Condensed]) -> Vec<Option<usize>> {
    let max_label = condensed
        .iter()
        .map(|c| c.parent.max(c.child))
        .max()
        .unwrap_or(n);
    let clusters = max_label + 1 - n;
    let mut birth = vec![0.0_f32; clusters];
    let mut parent_of = vec![usize::MAX; clusters];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); clusters];
    for c in condensed.iter().filter(|c| c.child >= n) {
        birth[c.child - n] = c.lambda;
        parent_of[c.child - n] = c.parent - n;
        children[c.parent - n].push(c.child - n);
    }
    let mut stability = vec![0.0_f64; clusters];
    for c in condensed {
        let b = birth[c.parent - n];
        stability[c.parent - n] += f64::from(c.lambda - b) * c.size as f64;
    }
    // Excess of mass, leaves up (children have larger ids than parents); the
    // root is never selected.
    let mut selected = vec![false; clusters];
    let mut subtree = stability.clone();
    for c in (1..clusters).rev() {
        let child_sum: f64 = children[c].iter().map(|k| subtree[*k]).sum();
        if children[c].is_empty() || stability[c] >= child_sum {
            selected[c] = true;
            subtree[c] = stability[c];
            let mut stack = children[c].clone();
            while let Some(k) = stack.pop() {
                selected[k] = false;
                stack.extend(children[k].iter().copied());
            }
        } else {
            subtree[c] = child_sum;
        }
    }
    let mut number = vec![None; clusters];
    let mut next = 0;
    for (c, slot) in number.iter_mut().enumerate() {
        if selected[c] {
            *slot = Some(next);
            next += 1;
        }
    }
    let mut labels = vec![None; n];
    for c in condensed.iter().filter(|c| c.child < n) {
        let mut k = c.parent - n;
        let label = loop {
            if selected[k] {
                break number[k];
            }
            if parent_of[k] == usize::MAX {
                break None;
            }
            k = parent_of[k];
        };
        labels[c.child] = label;
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points_matrix(points: &[(f32, f32)]) -> DistanceMatrix {
        DistanceMatrix::from_fn(points.len(), |i, j| {
            let (a, b) = (points[i], points[j]);
            ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
        })
    }

    #[test]
    fn finds_dense_groups_and_leaves_outliers() {
        let mut points = Vec::new();
        for i in 0..12 {
            let t = i as f32 * 0.05;
            points.push((t.sin() * 0.3, t.cos() * 0.3));
            points.push((10.0 + t.sin() * 0.3, 10.0 + t.cos() * 0.3));
            points.push((-10.0 + t.cos() * 0.2, 5.0 + t.sin() * 0.2));
        }
        points.push((50.0, -50.0));
        points.push((-40.0, 40.0));
        let labels = hdbscan(
            &points_matrix(&points),
            HdbscanParams {
                min_samples: 3,
                min_cluster_size: 5,
            },
        );
        let found: std::collections::BTreeSet<_> = labels.iter().flatten().collect();
        assert_eq!(found.len(), 3, "{labels:?}");
        for g in 0..3 {
            let first = labels[g];
            assert!(first.is_some());
            assert!((0..12).all(|i| labels[i * 3 + g] == first), "{labels:?}");
        }
        assert_eq!(labels[36], None);
        assert_eq!(labels[37], None);
    }

    #[test]
    fn tiny_or_duplicate_inputs_do_not_panic() {
        let params = HdbscanParams {
            min_samples: 3,
            min_cluster_size: 3,
        };
        assert!(hdbscan(&points_matrix(&[]), params).is_empty());
        assert_eq!(hdbscan(&points_matrix(&[(0.0, 0.0)]), params), vec![None]);
        let same = vec![(1.0, 1.0); 10];
        let labels = hdbscan(&points_matrix(&same), params);
        assert_eq!(labels, vec![None; 10], "the root is never a cluster");
    }
}
