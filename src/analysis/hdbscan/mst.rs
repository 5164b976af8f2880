//! Minimum spanning tree of the HDBSCAN mutual-reachability graph `max(core(a), core(b), d(a, b))`:
//! a static kd-tree (median splits), core distances by k-nearest-neighbour search on it, and
//! Boruvka rounds in which each point looks for its cheapest edge to another component, pruning
//! subtrees that lie in its own component or cannot beat the component's best edge (node minimum
//! core distance and box distance as lower bounds; McInnes & Healy 2017, "Accelerated
//! Hierarchical Density Clustering", without the dual-tree traversal). Exact: every Boruvka
//! choice is a true minimum edge; ties are broken by processing order, and equal-weight cycles
//! are dropped by the union-find, which keeps the total weight minimal.

use super::super::cluster::UnionFind;

/// Squared core distances: squared distance to the `k`-th nearest point, self counted first.
/// Queries run leaf by leaf; each is seeded with its own leaf's points, which makes the bound
/// tight before the descent from the root.
pub(super) fn core_distances2(t: &KdTree, coords: &[[f64; 2]], k: usize) -> Vec<f64> {
    let mut out = vec![0.0; coords.len()];
    let mut best = Vec::with_capacity(k + 1);
    for (leaf, nd) in t
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, nd)| nd.kids.is_none())
    {
        if leaf % 256 == 0 {
            crate::cancel::checkpoint();
        }
        let own = &t.idx[nd.lo as usize..nd.hi as usize];
        for &p in own {
            let c = coords[p as usize];
            best.clear();
            for &q in own {
                push_best(&mut best, k, dist2(c, coords[q as usize]));
            }
            t.knn2(0, leaf as u32, coords, c, k, &mut best);
            out[p as usize] = best.last().copied().unwrap_or(0.0);
        }
    }
    out
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Keeps the `k` smallest values of `best` in ascending order after offering `d2`.
fn push_best(best: &mut Vec<f64>, k: usize, d2: f64) {
    if best.len() < k || d2 < best[k - 1] {
        let at = best.partition_point(|&x| x <= d2);
        best.insert(at, d2);
        best.truncate(k);
    }
}

const LEAF: usize = 24;
/// Marker for "no point / no component".
pub(super) const NONE: u32 = u32::MAX;

struct Node {
    lo: u32,
    hi: u32,
    bb: [f64; 4],
    kids: Option<(u32, u32)>,
}

/// A static kd-tree over point indices (median split on the wider axis), nodes in pre-order.
pub(super) struct KdTree {
    /// Point indices in leaf order.
    pub(super) idx: Vec<u32>,
    nodes: Vec<Node>,
}

impl KdTree {
    pub(super) fn new(coords: &[[f64; 2]]) -> Self {
        let mut t = KdTree {
            idx: (0..coords.len() as u32).collect(),
            nodes: Vec::new(),
        };
        t.build(coords, 0, coords.len());
        t
    }

    fn build(&mut self, coords: &[[f64; 2]], lo: usize, hi: usize) -> u32 {
        let mut bb = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for &i in &self.idx[lo..hi] {
            let c = coords[i as usize];
            bb = [
                bb[0].min(c[0]),
                bb[1].min(c[1]),
                bb[2].max(c[0]),
                bb[3].max(c[1]),
            ];
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            lo: lo as u32,
            hi: hi as u32,
            bb,
            kids: None,
        });
        if hi - lo > LEAF {
            let axis = usize::from(bb[3] - bb[1] > bb[2] - bb[0]);
            let mid = (lo + hi) / 2;
            self.idx[lo..hi].select_nth_unstable_by(mid - lo, |a, b| {
                coords[*a as usize][axis].total_cmp(&coords[*b as usize][axis])
            });
            let l = self.build(coords, lo, mid);
            let r = self.build(coords, mid, hi);
            self.nodes[id as usize].kids = Some((l, r));
        }
        id
    }

    /// Offers the squared distances from `p` to the points under `node` (except leaf `skip`) to
    /// the `k`-best list `best`.
    fn knn2(
        &self,
        node: u32,
        skip: u32,
        coords: &[[f64; 2]],
        p: [f64; 2],
        k: usize,
        best: &mut Vec<f64>,
    ) {
        let nd = &self.nodes[node as usize];
        if node == skip || (best.len() == k && min_dist2(&nd.bb, p) >= best[k - 1]) {
            return;
        }
        match nd.kids {
            Some((l, r)) => {
                let dl = min_dist2(&self.nodes[l as usize].bb, p);
                let dr = min_dist2(&self.nodes[r as usize].bb, p);
                let (a, b) = if dl <= dr { (l, r) } else { (r, l) };
                self.knn2(a, skip, coords, p, k, best);
                self.knn2(b, skip, coords, p, k, best);
            }
            None => {
                for &q in &self.idx[nd.lo as usize..nd.hi as usize] {
                    push_best(best, k, dist2(p, coords[q as usize]));
                }
            }
        }
    }

    /// Per node: the minimum of `v` over its points (children come after parents).
    fn node_min(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![f64::MAX; self.nodes.len()];
        for (k, nd) in self.nodes.iter().enumerate().rev() {
            out[k] = match nd.kids {
                Some((l, r)) => out[l as usize].min(out[r as usize]),
                None => self.idx[nd.lo as usize..nd.hi as usize]
                    .iter()
                    .map(|&i| v[i as usize])
                    .fold(f64::MAX, f64::min),
            };
        }
        out
    }

    /// Per node: the component shared by all its points, or `NONE`.
    fn node_comp(&self, comp: &[u32]) -> Vec<u32> {
        let mut out = vec![NONE; self.nodes.len()];
        for (k, nd) in self.nodes.iter().enumerate().rev() {
            out[k] = match nd.kids {
                Some((l, r)) if out[l as usize] == out[r as usize] => out[l as usize],
                Some(_) => NONE,
                None => {
                    let s = &self.idx[nd.lo as usize..nd.hi as usize];
                    let c = comp[s[0] as usize];
                    if s.iter().all(|&i| comp[i as usize] == c) {
                        c
                    } else {
                        NONE
                    }
                }
            };
        }
        out
    }
}

fn min_dist2(bb: &[f64; 4], p: [f64; 2]) -> f64 {
    let dx = (bb[0] - p[0]).max(p[0] - bb[2]).max(0.0);
    let dy = (bb[1] - p[1]).max(p[1] - bb[3]).max(0.0);
    dx * dx + dy * dy
}

/// Everything a nearest-other-component search needs.
struct Search<'a> {
    t: &'a KdTree,
    coords: &'a [[f64; 2]],
    core2: &'a [f64],
    comp: &'a [u32],
    node_comp: &'a [u32],
    node_core: &'a [f64],
}

impl Search<'_> {
    /// Lowers `best = (w², q)` to the cheapest mutual-reachability edge from `p` to another
    /// component, looking only where it can beat `best`.
    fn run(&self, node: u32, p: u32, best: &mut (f64, u32)) {
        let nd = &self.t.nodes[node as usize];
        let (cp, pc) = (self.comp[p as usize], self.coords[p as usize]);
        if self.node_comp[node as usize] == cp {
            return;
        }
        let lb = min_dist2(&nd.bb, pc)
            .max(self.node_core[node as usize])
            .max(self.core2[p as usize]);
        if lb >= best.0 {
            return;
        }
        match nd.kids {
            Some((l, r)) => {
                let dl = min_dist2(&self.t.nodes[l as usize].bb, pc);
                let dr = min_dist2(&self.t.nodes[r as usize].bb, pc);
                let (a, b) = if dl <= dr { (l, r) } else { (r, l) };
                self.run(a, p, best);
                self.run(b, p, best);
            }
            None => {
                for &q in &self.t.idx[nd.lo as usize..nd.hi as usize] {
                    if self.comp[q as usize] == cp {
                        continue;
                    }
                    let c = self.coords[q as usize];
                    let d2 = (c[0] - pc[0]).powi(2) + (c[1] - pc[1]).powi(2);
                    let w = d2.max(self.core2[p as usize]).max(self.core2[q as usize]);
                    if w < best.0 {
                        *best = (w, q);
                    }
                }
            }
        }
    }
}

/// Exact minimum spanning tree of the mutual-reachability graph by Boruvka rounds; edges
/// `(a, b, distance_m)`.
pub(super) fn boruvka_mst(t: &KdTree, coords: &[[f64; 2]], core2: &[f64]) -> Vec<(u32, u32, f64)> {
    let n = coords.len();
    let node_core = t.node_min(core2);
    let mut uf = UnionFind::new(n);
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    while edges.len() + 1 < n {
        let comp: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
        let node_comp = t.node_comp(&comp);
        let s = Search {
            t,
            coords,
            core2,
            comp: &comp,
            node_comp: &node_comp,
            node_core: &node_core,
        };
        crate::cancel::checkpoint();
        let mut best = vec![(f64::INFINITY, NONE, NONE); n];
        for &p in &t.idx {
            let b = &mut best[comp[p as usize] as usize];
            if core2[p as usize] >= b.0 {
                continue;
            }
            let mut cand = (b.0, NONE);
            s.run(0, p, &mut cand);
            if cand.1 != NONE {
                *b = (cand.0, p, cand.1);
            }
        }
        let mut round: Vec<(f64, u32, u32)> = best.into_iter().filter(|b| b.1 != NONE).collect();
        round.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let before = edges.len();
        for (w2, a, b) in round {
            if uf.union(a, b) {
                edges.push((a, b, w2.sqrt()));
            }
        }
        if edges.len() == before {
            break; // cannot happen for finite input; guards against an endless loop
        }
    }
    edges
}
