//! Nearest facility per incident (as ArcGIS `NEAR_FID`/`NEAR_DIST`, spatstat `nncross`) and
//! per-facility counts within `radius_m` and in annular rings, with the expected count under
//! the null model, the ratio and a Poisson upper-tail p-value.
//!
//! - Counts: incident i counts for facility f when ‖xᵢ − f‖ ≤ radius_m; an incident near two
//!   facilities counts for both. Rings are **annular**: ring k holds r_{k−1} < d ≤ r_k
//!   (r₋₁ = 0, the first ring includes d = 0), labelled `ring_<inner>_<outer>`.
//! - Expected under CSR: n · area(disc(f, r) ∩ W) / area(W), the disc ∩ window area computed
//!   exactly (see `Window::disc_area`); annulus = difference of discs. Under the baseline
//!   null: n · (Σ weights of baseline points within r of f) / Σ weights.
//! - p-value: one-sided Poisson upper tail P(X ≥ observed | mean = expected) (analytic, not
//!   Monte Carlo), with Benjamini–Hochberg at 5 % over the facilities (`significant_fdr05`).

use super::math::poisson_sf;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

/// Facilities at or below this count are scanned linearly (flat arrays, vectorisable):
/// at 60 facilities that is ~4x faster than the R-tree walk (measured at 1M incidents).
pub const LINEAR_SCAN_MAX: usize = 64;
const BLOCK: usize = 256;

/// Spatial index of facility locations carrying their index: an rstar R-tree, or a flat
/// linear scan for at most [`LINEAR_SCAN_MAX`] facilities.
pub struct FacilityIndex {
    xs: Vec<f64>,
    ys: Vec<f64>,
    tree: Option<RTree<GeomWithData<[f64; 2], usize>>>,
}

impl FacilityIndex {
    /// Builds the index (an R-tree when there are more than [`LINEAR_SCAN_MAX`] facilities).
    pub fn new(points: &[[f64; 2]]) -> Self {
        let tree = (points.len() > LINEAR_SCAN_MAX).then(|| {
            let items = points
                .iter()
                .enumerate()
                .map(|(i, p)| GeomWithData::new(*p, i))
                .collect();
            RTree::bulk_load(items)
        });
        Self {
            xs: points.iter().map(|p| p[0]).collect(),
            ys: points.iter().map(|p| p[1]).collect(),
            tree,
        }
    }

    /// Index of and distance (m) to the nearest facility (ties: lowest index in the linear
    /// scan, any in the R-tree); `(0, ∞)` when there are no facilities.
    pub fn nearest(&self, p: [f64; 2]) -> (usize, f64) {
        if let Some(tree) = &self.tree {
            return tree
                .nearest_neighbor_iter_with_distance_2(&p)
                .next()
                .map_or((0, f64::INFINITY), |(f, d2)| (f.data, d2.sqrt()));
        }
        let (mut best, mut bi) = (f64::INFINITY, 0);
        for (j, (x, y)) in self.xs.iter().zip(&self.ys).enumerate() {
            let (dx, dy) = (x - p[0], y - p[1]);
            let d2 = dx * dx + dy * dy;
            if d2 < best {
                best = d2;
                bi = j;
            }
        }
        (bi, best.sqrt())
    }

    /// Nearest facility of many points at once. In linear-scan mode the points are done in
    /// blocks of 256 with the facility loop outside, so the inner loop vectorises.
    pub fn nearest_many(&self, pts: &[[f64; 2]]) -> Vec<(u32, f64)> {
        if self.tree.is_some() {
            return pts
                .iter()
                .map(|p| self.nearest(*p))
                .map(|(i, d)| (i as u32, d))
                .collect();
        }
        let mut out = Vec::with_capacity(pts.len());
        let (mut px, mut py) = ([0.0; BLOCK], [0.0; BLOCK]);
        for block in pts.chunks(BLOCK) {
            let m = block.len();
            for (i, p) in block.iter().enumerate() {
                px[i] = p[0];
                py[i] = p[1];
            }
            let (mut best, mut bi) = ([f64::INFINITY; BLOCK], [0u32; BLOCK]);
            for (j, (x, y)) in self.xs.iter().zip(&self.ys).enumerate() {
                for i in 0..BLOCK {
                    let (dx, dy) = (x - px[i], y - py[i]);
                    let d2 = dx * dx + dy * dy;
                    let better = d2 < best[i];
                    best[i] = if better { d2 } else { best[i] };
                    bi[i] = if better { j as u32 } else { bi[i] };
                }
            }
            out.extend((0..m).map(|i| (bi[i], best[i].sqrt())));
        }
        out
    }

    /// Calls `f(index, distance)` for every facility within `r` of `p`.
    pub fn for_each_within(&self, p: [f64; 2], r: f64, mut f: impl FnMut(usize, f64)) {
        if let Some(tree) = &self.tree {
            for g in tree.locate_within_distance(p, r * r) {
                let (dx, dy) = (g.geom()[0] - p[0], g.geom()[1] - p[1]);
                f(g.data, (dx * dx + dy * dy).sqrt());
            }
            return;
        }
        let r2 = r * r;
        for (j, (x, y)) in self.xs.iter().zip(&self.ys).enumerate() {
            let (dx, dy) = (x - p[0], y - p[1]);
            let d2 = dx * dx + dy * dy;
            if d2 <= r2 {
                f(j, d2.sqrt());
            }
        }
    }
}

/// Nearest facility of one incident.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NearestFacility {
    /// Index into the facility slice given to the analysis (ArcGIS `NEAR_FID`).
    pub facility_index: u32,
    /// Distance in metres (ArcGIS `NEAR_DIST`).
    pub distance_m: f64,
}

/// Weighted counts per facility: within `radius_m` and per annular ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// Σ weight of points within radius_m, per facility.
    pub within: Vec<f64>,
    /// Σ weight per facility per ring.
    pub rings: Vec<Vec<f64>>,
}

/// Counts the (weighted) points near each facility in one pass over the points.
pub fn count_near(
    index: &FacilityIndex,
    n_facilities: usize,
    points: &[[f64; 2]],
    weights: Option<&[f64]>,
    radius_m: f64,
    rings_m: &[f64],
) -> Counts {
    let mut c = Counts {
        within: vec![0.0; n_facilities],
        rings: vec![vec![0.0; rings_m.len()]; n_facilities],
    };
    let reach = radius_m.max(*rings_m.last().unwrap_or(&0.0));
    for (b, block) in points.chunks(BLOCK).enumerate() {
        let mut add = |i: usize, f: usize, d: f64| {
            let w = weights.map_or(1.0, |w| w[b * BLOCK + i]);
            if d <= radius_m {
                c.within[f] += w;
            }
            let k = rings_m.partition_point(|&r| r < d);
            if k < rings_m.len() {
                c.rings[f][k] += w;
            }
        };
        if index.tree.is_some() {
            for (i, p) in block.iter().enumerate() {
                index.for_each_within(*p, reach, |f, d| add(i, f, d));
            }
            continue;
        }
        let reach2 = reach * reach;
        let mut d2 = [0.0; BLOCK];
        for (f, (x, y)) in index.xs.iter().zip(&index.ys).enumerate() {
            for (i, p) in block.iter().enumerate() {
                let (dx, dy) = (x - p[0], y - p[1]);
                d2[i] = dx * dx + dy * dy;
            }
            for (i, &v) in d2[..block.len()].iter().enumerate() {
                if v <= reach2 {
                    add(i, f, v.sqrt());
                }
            }
        }
    }
    c
}

/// One annular ring of a facility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RingStat {
    /// `ring_<inner>_<outer>`, e.g. `ring_100_250` (metres, rounded).
    pub label: String,
    /// Inner radius (m), exclusive (0 inclusive for the first ring).
    pub inner_m: f64,
    /// Outer radius (m), inclusive.
    pub outer_m: f64,
    /// Incidents in the ring.
    pub count: u64,
    /// Expected under the null.
    pub expected: f64,
    /// count / expected (`None` when expected is 0).
    pub ratio: Option<f64>,
}

/// Results for one facility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacilityStats {
    /// Index into the facility slice.
    pub index: u32,
    /// Facility id.
    pub id: String,
    /// Facility kind.
    pub kind: String,
    /// x (m, dataset metric CRS).
    pub x: f64,
    /// y (m, dataset metric CRS).
    pub y: f64,
    /// Incidents within radius_m.
    pub count: u64,
    /// Expected within radius_m under the null.
    pub expected: f64,
    /// count / expected (`None` when expected is 0, e.g. a facility far outside the window).
    pub ratio: Option<f64>,
    /// Poisson upper-tail p-value P(X ≥ count | expected).
    pub p_value: f64,
    /// Significant after Benjamini–Hochberg at 5 % over all facilities.
    pub significant_fdr05: bool,
    /// Annular rings.
    pub rings: Vec<RingStat>,
}

impl FacilityStats {
    /// Flat GeoJSON properties: the scalar fields plus `ring_<a>_<b>` counts and
    /// `ring_<a>_<b>_expected` values.
    pub fn properties(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        m.remove("rings");
        for r in &self.rings {
            m.insert(r.label.clone(), r.count.into());
            m.insert(format!("{}_expected", r.label), r.expected.into());
        }
        m
    }
}

/// Ring labels `ring_<inner>_<outer>`.
pub fn ring_labels(rings_m: &[f64]) -> Vec<(String, f64, f64)> {
    let mut inner = 0.0_f64;
    rings_m
        .iter()
        .map(|&outer| {
            let l = (
                format!("ring_{}_{}", inner.round(), outer.round()),
                inner,
                outer,
            );
            inner = outer;
            l
        })
        .collect()
}

fn ratio(count: f64, expected: f64) -> Option<f64> {
    (expected > 0.0).then(|| count / expected)
}

/// Assembles per-facility statistics from observed counts and expected counts.
pub fn facility_stats(
    facilities: &[super::ProxFacility],
    observed: &Counts,
    expected: &Counts,
    rings_m: &[f64],
) -> Vec<FacilityStats> {
    let labels = ring_labels(rings_m);
    let p: Vec<f64> = (0..facilities.len())
        .map(|f| poisson_sf(observed.within[f].round() as u64, expected.within[f]))
        .collect();
    let cutoff = crate::analysis::stats::bh_cutoff(&p, 0.05);
    facilities
        .iter()
        .enumerate()
        .map(|(f, fac)| FacilityStats {
            index: f as u32,
            id: fac.id.clone(),
            kind: fac.kind.clone(),
            x: fac.x,
            y: fac.y,
            count: observed.within[f].round() as u64,
            expected: expected.within[f],
            ratio: ratio(observed.within[f], expected.within[f]),
            p_value: p[f],
            significant_fdr05: cutoff.is_some_and(|c| p[f] <= c),
            rings: labels
                .iter()
                .enumerate()
                .map(|(k, (label, inner, outer))| RingStat {
                    label: label.clone(),
                    inner_m: *inner,
                    outer_m: *outer,
                    count: observed.rings[f][k].round() as u64,
                    expected: expected.rings[f][k],
                    ratio: ratio(observed.rings[f][k], expected.rings[f][k]),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Both index modes (linear scan, R-tree) equal a brute-force scan.
    #[test]
    fn linear_and_tree_modes_equal_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut pt = || [rng.random::<f64>() * 5000.0, rng.random::<f64>() * 5000.0];
        let pts: Vec<[f64; 2]> = (0..3000).map(|_| pt()).collect();
        for nf in [1, 7, LINEAR_SCAN_MAX, LINEAR_SCAN_MAX + 1, 200] {
            let fac: Vec<[f64; 2]> = (0..nf).map(|_| pt()).collect();
            let idx = FacilityIndex::new(&fac);
            let near = idx.nearest_many(&pts);
            let counts = count_near(&idx, nf, &pts, None, 250.0, &[100.0, 300.0]);
            let mut within = vec![0.0; nf];
            let mut rings = vec![vec![0.0; 2]; nf];
            for (p, got) in pts.iter().zip(&near) {
                let d: Vec<f64> = fac
                    .iter()
                    .map(|f| (f[0] - p[0]).hypot(f[1] - p[1]))
                    .collect();
                let best = d.iter().copied().fold(f64::INFINITY, f64::min);
                assert!((got.1 - best).abs() < 1e-9 && (d[got.0 as usize] - best).abs() < 1e-9);
                for (f, &v) in d.iter().enumerate() {
                    within[f] += f64::from(u8::from(v <= 250.0));
                    if v <= 100.0 {
                        rings[f][0] += 1.0;
                    } else if v <= 300.0 {
                        rings[f][1] += 1.0;
                    }
                }
            }
            assert_eq!(counts.within, within, "{nf} facilities");
            assert_eq!(counts.rings, rings, "{nf} facilities");
        }
    }
}
