//! HDBSCAN: hierarchical density-based clustering with excess-of-mass cluster selection.
//!
//! Campello, Moulavi & Sander (2013), "Density-Based Clustering Based on Hierarchical Density
//! Estimates", PAKDD; McInnes, Healy & Astels (2017), "hdbscan: Hierarchical density based
//! clustering", JOSS. This reproduces the `hdbscan` Python package (0.8.x) `HDBSCAN(
//! min_cluster_size, min_samples, metric="euclidean", alpha=1.0, cluster_selection_method="eom",
//! allow_single_cluster=False, cluster_selection_epsilon=0.0)` with an *exact* minimum spanning
//! tree (the package's default Boruvka uses `approx_min_span_tree=True`; the reference fixtures
//! are made with `approx_min_span_tree=False`):
//! 1. core distance = distance to the `min_samples`-th nearest *other* point, i.e. the
//!    `(m + 1)`-th nearest point with the point itself counted first, `m = min(min_samples, n - 1)`.
//!    This is what the package's kd-tree paths (`boruvka_kdtree`, `prims_kdtree`) do (they query
//!    `k = min_samples + 1`); scikit-learn's `sklearn.cluster.HDBSCAN` counts the point itself
//!    instead, so its core distances are one neighbour shorter. Found with the kd-tree below
//!    (an rstar nearest-neighbour iterator took 6 s of a 9 s run at 1M points);
//! 2. mutual reachability `max(core(a), core(b), d(a, b))` and its minimum spanning tree by
//!    Boruvka's algorithm on a kd-tree whose nodes carry their component (if uniform) and minimum
//!    core distance, so that whole subtrees are pruned (as in McInnes & Healy 2017, "Accelerated
//!    Hierarchical Density Clustering"); O(n log n)-ish;
//! 3. the single-linkage tree, condensed with `min_cluster_size` (`condense_tree`), stabilities
//!    `Σ (λ_p − λ_birth)·size` with `λ = 1/distance` (`compute_stability`), and excess-of-mass
//!    selection without the root (`get_clusters`);
//! 4. a point's label is its nearest selected ancestor in the condensed tree, else noise.
//!
//! Per cluster we report the EOM `stability` and the package's `cluster_persistence_`
//! (`stability / (size · max λ)`, or 1 when max λ is 0 or infinite).
//!
//! Cost: 1M points (clustered, min_cluster_size = min_samples = 20) take about 3.3 s and 176 MB
//! on the 2-core development machine; the package needs ~66 s and 1.9 GB there.
//!
//! **Cluster ids** differ from the package's (which follow its tree's internal numbering): ours
//! are `0, 1, ...` in the order of each cluster's lowest input index, stable for the same points in
//! the same order. Tied mutual-reachability distances admit several minimum spanning trees; all
//! give the same single-linkage levels, so labels agree up to those ties (tested with the adjusted
//! Rand index against the package).

use serde::Serialize;

use super::cluster::{ClusterError, UnionFind};

#[path = "hdbscan/mst.rs"]
mod mst;
use mst::{KdTree, NONE, boruvka_mst, core_distances2};

/// Output of [`hdbscan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HdbscanResult {
    /// Cluster id per input point, `None` for noise.
    pub labels: Vec<Option<u32>>,
    /// Number of clusters (ids are `0..n_clusters`).
    pub n_clusters: u32,
    /// Excess-of-mass stability per cluster id (can be infinite when >= `min_samples` points
    /// coincide, as in the package).
    pub stability: Vec<f64>,
    /// The package's `cluster_persistence_` per cluster id.
    pub persistence: Vec<f64>,
}

/// Runs HDBSCAN (see module docs) on `coords` in metres.
///
/// Errors: `min_cluster_size < 2`, `min_samples < 1`, non-finite coordinates. Fewer than two
/// points give no clusters.
pub fn hdbscan(
    coords: &[[f64; 2]],
    min_cluster_size: usize,
    min_samples: usize,
) -> Result<HdbscanResult, ClusterError> {
    if min_cluster_size < 2 {
        return Err(ClusterError::InvalidMinClusterSize(min_cluster_size));
    }
    if min_samples < 1 {
        return Err(ClusterError::InvalidMinSamples(min_samples));
    }
    if let Some(i) = coords
        .iter()
        .position(|c| !(c[0].is_finite() && c[1].is_finite()))
    {
        return Err(ClusterError::NonFiniteCoordinate(i));
    }
    let n = coords.len();
    if n < 2 {
        let labels = vec![None; n];
        return Ok(HdbscanResult {
            labels,
            n_clusters: 0,
            stability: vec![],
            persistence: vec![],
        });
    }
    // Work in kd-tree order (coordinates copied so leaves are contiguous in memory), then map
    // the MST back to input indices.
    let mut t = KdTree::new(coords);
    let input_of = std::mem::replace(&mut t.idx, (0..n as u32).collect());
    let sorted: Vec<[f64; 2]> = input_of.iter().map(|&i| coords[i as usize]).collect();
    let core2 = core_distances2(&t, &sorted, min_samples.min(n - 1) + 1);
    let mut mst: Vec<(u32, u32, f64)> = boruvka_mst(&t, &sorted, &core2)
        .into_iter()
        .map(|(a, b, w)| (input_of[a as usize], input_of[b as usize], w))
        .collect();
    mst.sort_by(|a, b| a.2.total_cmp(&b.2));
    let hierarchy = single_linkage(n, &mst);
    let tree = condense(n, &hierarchy, min_cluster_size);
    Ok(select_eom(n, &tree))
}

/// One merge of the single-linkage tree (scipy format): children, distance, size.
struct Merge {
    left: u32,
    right: u32,
    dist: f64,
    size: u32,
}

/// Single-linkage tree from MST edges sorted by weight (hdbscan `label`); node `n + i` is merge i.
fn single_linkage(n: usize, mst: &[(u32, u32, f64)]) -> Vec<Merge> {
    let mut uf = UnionFind::new(n);
    let mut node_of = (0..n as u32).collect::<Vec<u32>>(); // set root -> tree node
    let mut size = vec![1u32; n];
    mst.iter()
        .enumerate()
        .map(|(i, &(a, b, dist))| {
            let (ra, rb) = (uf.find(a), uf.find(b));
            let m = Merge {
                left: node_of[ra as usize],
                right: node_of[rb as usize],
                dist,
                size: size[ra as usize] + size[rb as usize],
            };
            uf.union(ra, rb);
            let r = uf.find(ra) as usize;
            node_of[r] = (n + i) as u32;
            size[r] = m.size;
            m
        })
        .collect()
}

/// A row of the condensed tree (`parent`, `child`, `lambda_val`, `child_size`).
struct Cond {
    parent: u32,
    child: u32,
    lambda: f64,
    size: u32,
}

fn subtree_bfs(n: usize, h: &[Merge], root: u32) -> Vec<u32> {
    let mut out = vec![root];
    let mut k = 0;
    while k < out.len() {
        let x = out[k] as usize;
        if x >= n {
            out.push(h[x - n].left);
            out.push(h[x - n].right);
        }
        k += 1;
    }
    out
}

/// hdbscan `condense_tree`: points fall out of clusters smaller than `mcs`; labels from `n`.
fn condense(n: usize, h: &[Merge], mcs: usize) -> Vec<Cond> {
    let root = 2 * (n - 1);
    let mut relabel = vec![0u32; root + 1];
    relabel[root] = n as u32;
    let mut next = n as u32 + 1;
    let mut ignore = vec![false; root + 1];
    let mut out = Vec::with_capacity(n);
    let count = |x: u32| {
        if (x as usize) < n {
            1
        } else {
            h[x as usize - n].size as usize
        }
    };
    for node in subtree_bfs(n, h, root as u32) {
        let node = node as usize;
        if ignore[node] || node < n {
            continue;
        }
        let m = &h[node - n];
        let lambda = if m.dist > 0.0 {
            1.0 / m.dist
        } else {
            f64::INFINITY
        };
        let parent = relabel[node];
        let (lc, rc) = (count(m.left), count(m.right));
        let mut fall_out = |sub: u32, out: &mut Vec<Cond>| {
            for x in subtree_bfs(n, h, sub) {
                if (x as usize) < n {
                    out.push(Cond {
                        parent,
                        child: x,
                        lambda,
                        size: 1,
                    });
                }
                ignore[x as usize] = true;
            }
        };
        if lc >= mcs && rc >= mcs {
            for (c, sz) in [(m.left, lc), (m.right, rc)] {
                relabel[c as usize] = next;
                out.push(Cond {
                    parent,
                    child: next,
                    lambda,
                    size: sz as u32,
                });
                next += 1;
            }
        } else if lc < mcs && rc < mcs {
            fall_out(m.left, &mut out);
            fall_out(m.right, &mut out);
        } else if lc < mcs {
            relabel[m.right as usize] = parent;
            fall_out(m.left, &mut out);
        } else {
            relabel[m.left as usize] = parent;
            fall_out(m.right, &mut out);
        }
    }
    out
}

/// Stabilities, excess-of-mass selection (root excluded) and labels; see module docs.
fn select_eom(n: usize, tree: &[Cond]) -> HdbscanResult {
    let n_nodes = tree
        .iter()
        .map(|r| r.parent as usize + 1 - n)
        .max()
        .unwrap_or(1);
    let mut birth = vec![0.0; n_nodes];
    let mut parent_of = vec![NONE; n_nodes];
    let mut kids: Vec<Vec<u32>> = vec![Vec::new(); n_nodes];
    let mut point_parent = vec![NONE; n];
    for r in tree {
        if r.size > 1 {
            let c = r.child as usize - n;
            birth[c] = r.lambda;
            parent_of[c] = r.parent - n as u32;
            kids[r.parent as usize - n].push(c as u32);
        } else {
            point_parent[r.child as usize] = r.parent - n as u32;
        }
    }
    let mut stab = vec![0.0; n_nodes];
    for r in tree {
        let p = r.parent as usize - n;
        stab[p] += (r.lambda - birth[p]) * r.size as f64;
    }
    let mut selected = vec![true; n_nodes];
    selected[0] = false;
    for c in (1..n_nodes).rev() {
        let sub: f64 = kids[c].iter().map(|&k| stab[k as usize]).sum();
        if sub > stab[c] {
            selected[c] = false;
            stab[c] = sub;
        } else {
            let mut stack = kids[c].clone();
            while let Some(k) = stack.pop() {
                selected[k as usize] = false;
                stack.extend_from_slice(&kids[k as usize]);
            }
        }
    }
    // Nearest selected ancestor; parents have smaller labels than children.
    let mut owner = vec![NONE; n_nodes];
    for c in 1..n_nodes {
        owner[c] = if selected[c] {
            c as u32
        } else {
            owner[parent_of[c] as usize]
        };
    }
    number_clusters(n, tree, &point_parent, &owner, &stab)
}

/// Renumbers the selected clusters by lowest member index and computes persistence.
fn number_clusters(
    n: usize,
    tree: &[Cond],
    point_parent: &[u32],
    owner: &[u32],
    stab: &[f64],
) -> HdbscanResult {
    let mut id_of = vec![NONE; owner.len()];
    let mut labels = vec![None; n];
    let mut ids: Vec<u32> = Vec::new();
    for i in 0..n {
        // Every point leaves the condensed tree exactly once; NONE would mean a bug, so noise.
        let o = owner.get(point_parent[i] as usize).copied().unwrap_or(NONE);
        if o == NONE {
            continue;
        }
        if id_of[o as usize] == NONE {
            id_of[o as usize] = ids.len() as u32;
            ids.push(o);
        }
        labels[i] = Some(id_of[o as usize]);
    }
    let mut sizes = vec![0usize; ids.len()];
    labels
        .iter()
        .flatten()
        .for_each(|&l| sizes[l as usize] += 1);
    let max_lambda = tree.iter().map(|r| r.lambda).fold(0.0, f64::max);
    let stability: Vec<f64> = ids.iter().map(|&c| stab[c as usize]).collect();
    let persistence = stability
        .iter()
        .zip(&sizes)
        .map(|(&s, &sz)| {
            if max_lambda.is_infinite() || max_lambda == 0.0 || sz == 0 {
                1.0
            } else {
                s / (sz as f64 * max_lambda)
            }
        })
        .collect();
    HdbscanResult {
        labels,
        n_clusters: ids.len() as u32,
        stability,
        persistence,
    }
}
