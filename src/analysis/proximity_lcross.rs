//! Cross-type L function between incidents (type i) and facilities (type j) with the
//! **border** edge correction, as spatstat `Lcross(X, i, j, correction = "border")`
//! (Ripley 1977; Baddeley, Rubak & Turner 2015, *Spatial Point Patterns*, §7.4 and §14.5):
//!
//! K̂_ij(r) = A · Σ_{i: bᵢ ≥ r} #{j : d_ij ≤ r} / (n_j · #{i : bᵢ ≥ r}),  L̂(r) = √(K̂/π),
//!
//! where bᵢ is the distance from incident i to the window boundary, A the window area and
//! n_j the number of facilities inside the window (spatstat's λ_j = n_j / A). The estimator
//! is evaluated exactly at each r (spatstat bins distances onto its r grid, so it differs by
//! the pairs falling between grid values). Undefined values (no incident with bᵢ ≥ r) are
//! `None`.
//!
//! Envelope: `simulations` patterns of n incidents drawn i.i.d. from the null (reference
//! points: pixel centres of the window under CSR, baseline points by weight), facilities
//! fixed; pointwise minimum and maximum (spatstat `envelope(nsim = R, nrank = 1)`), plus the
//! mean. Simulated incidents sit on reference points, so their border distances and facility
//! distances are those of the pixel centres (discretisation of at most half a pixel).

use super::facility::FacilityIndex;
use super::global::Reference;
use super::math::sample_multinomial;
use super::{ProxFacility, ProximityOptions, ProximityParams, Window, rng};
use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;

/// Per-point data: border index and facility-distance indices on the r grid.
#[derive(Debug, Clone, Default)]
pub struct PairTable {
    /// For point p: largest k with r_k ≤ bₚ (always ≥ 0 since r₀ = 0).
    kb: Vec<u32>,
    /// Offsets into `kd` (CSR layout), length = points + 1.
    offsets: Vec<u32>,
    /// For each facility within r_max of the point: smallest k with r_k ≥ d.
    kd: Vec<u32>,
}

impl PairTable {
    /// Builds the table for points with border distances `border_m` and, per point, the
    /// distances to facilities within `r.last()` given by `near(p)` (called once per point,
    /// in order).
    pub fn new<F>(points: &[[f64; 2]], border_m: &[f64], r: &[f64], mut near: F) -> Self
    where
        F: FnMut([f64; 2], &mut Vec<f64>),
    {
        let mut t = PairTable {
            kb: Vec::with_capacity(points.len()),
            offsets: vec![0],
            kd: Vec::new(),
        };
        let mut buf = Vec::new();
        for (p, &b) in points.iter().zip(border_m) {
            t.kb.push((r.partition_point(|&x| x <= b).max(1) - 1) as u32);
            buf.clear();
            near(*p, &mut buf);
            for &d in &buf {
                t.kd.push(r.partition_point(|&x| x < d) as u32);
            }
            t.offsets.push(t.kd.len() as u32);
        }
        t
    }

    /// Adds point `p` with multiplicity `m` to the difference arrays.
    fn add_point(&self, p: usize, m: f64, num: &mut [f64], den: &mut [f64]) {
        let kb = self.kb[p] as usize;
        den[0] += m;
        den[kb + 1] -= m;
        for &kd in &self.kd[self.offsets[p] as usize..self.offsets[p + 1] as usize] {
            let kd = kd as usize;
            if kd <= kb {
                num[kd] += m;
                num[kb + 1] -= m;
            }
        }
    }

    /// Collapses points with the same signature (kb, kd list) into one row whose weight is
    /// the sum of theirs (order of first appearance, so deterministic).
    pub fn collapse(&self, weights: &[f64]) -> (PairTable, Vec<f64>) {
        let mut seen: HashMap<(u32, &[u32]), usize> = HashMap::new();
        let mut out = PairTable {
            kb: Vec::new(),
            offsets: vec![0],
            kd: Vec::new(),
        };
        let mut w = Vec::new();
        for (p, (&kb, &wp)) in self.kb.iter().zip(weights).enumerate() {
            let mut kds = &self.kd[self.offsets[p] as usize..self.offsets[p + 1] as usize];
            if kds.iter().all(|&k| k > kb) {
                kds = &[];
            }
            if let Some(&t) = seen.get(&(kb, kds)) {
                w[t] += wp;
            } else {
                seen.insert((kb, kds), w.len());
                w.push(wp);
                out.kb.push(kb);
                out.kd.extend_from_slice(kds);
                out.offsets.push(out.kd.len() as u32);
            }
        }
        (out, w)
    }

    /// Number of points (rows).
    pub fn len(&self) -> usize {
        self.kb.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.kb.is_empty()
    }
}

/// L_cross curve with envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LCrossCurve {
    /// Always `"border"`.
    pub correction: &'static str,
    /// Facilities inside the window used as type j.
    pub n_facilities: usize,
    /// Simulations in the envelope (0 = no envelope).
    pub simulations: u32,
    /// One row per r.
    pub points: Vec<LCrossPoint>,
}

/// One r value of L_cross.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LCrossPoint {
    /// Distance r (m).
    pub r_m: f64,
    /// Observed L̂(r) (m); `None` where undefined.
    pub l_m: Option<f64>,
    /// L under CSR, = r (reference line; not the null under a baseline).
    pub l_csr_m: f64,
    /// Pointwise envelope minimum over the simulations.
    pub lo_m: Option<f64>,
    /// Pointwise envelope maximum over the simulations.
    pub hi_m: Option<f64>,
    /// Mean of the simulated L̂(r).
    pub mean_m: Option<f64>,
}

/// L̂(r_k) for rows of `table` with multiplicities, given area and n_j.
fn l_values(
    table: &PairTable,
    sel: impl Iterator<Item = (usize, f64)>,
    nr: usize,
    area: f64,
    nj: usize,
) -> Vec<Option<f64>> {
    let (mut num, mut den) = (vec![0.0; nr + 1], vec![0.0; nr + 1]);
    for (p, m) in sel {
        table.add_point(p, m, &mut num, &mut den);
    }
    let (mut cn, mut cd) = (0.0, 0.0);
    (0..nr)
        .map(|k| {
            cn += num[k];
            cd += den[k];
            (cd > 0.0 && nj > 0)
                .then(|| (area * cn / (nj as f64 * cd) / std::f64::consts::PI).sqrt())
        })
        .collect()
}

/// Observed L̂ for all points of `observed`; envelope from `simulations` patterns of n
/// points drawn from the reference points (`reference`, weights `ref_weights`).
///
/// A simulated L̂ depends on the draws only through how many fall on each reference
/// signature (border bin, facility-distance bins), so each simulation draws those counts
/// from the multinomial distribution (conditional binomials): exact in law, and O(#signatures)
/// instead of O(n) per simulation.
#[allow(clippy::too_many_arguments)]
pub fn l_cross<R: Rng>(
    r: &[f64],
    area_m2: f64,
    n_facilities: usize,
    observed: &PairTable,
    reference: &PairTable,
    ref_weights: &[f64],
    simulations: u32,
    rng: &mut R,
) -> LCrossCurve {
    let nr = r.len();
    let n = observed.len();
    let obs = l_values(
        observed,
        (0..n).map(|p| (p, 1.0)),
        nr,
        area_m2,
        n_facilities,
    );
    let nan = f64::NAN;
    let (mut lo, mut hi, mut sum, mut cnt) =
        (vec![nan; nr], vec![nan; nr], vec![0.0; nr], vec![0u32; nr]);
    let (types, tw) = reference.collapse(ref_weights);
    let mut counts = Vec::new();
    for _ in 0..simulations {
        sample_multinomial(rng, n as u64, &tw, &mut counts);
        let sel = counts.iter().map(|&(t, c)| (t, c as f64));
        let sim = l_values(&types, sel, nr, area_m2, n_facilities);
        for (k, v) in sim.iter().enumerate() {
            if let Some(v) = *v {
                lo[k] = if cnt[k] == 0 { v } else { lo[k].min(v) };
                hi[k] = if cnt[k] == 0 { v } else { hi[k].max(v) };
                sum[k] += v;
                cnt[k] += 1;
            }
        }
    }
    let points = (0..nr)
        .map(|k| LCrossPoint {
            r_m: r[k],
            l_m: obs[k],
            l_csr_m: r[k],
            lo_m: (cnt[k] > 0).then_some(lo[k]),
            hi_m: (cnt[k] > 0).then_some(hi[k]),
            mean_m: (cnt[k] > 0).then(|| sum[k] / cnt[k] as f64),
        })
        .collect();
    LCrossCurve {
        correction: "border",
        n_facilities,
        simulations,
        points,
    }
}

/// L_cross of the chosen units against the facilities inside the window, with envelope;
/// r grid from `opts.r_m` or 51 values from 0 to min(reach, shorter bbox side / 4).
pub fn l_cross_curve(
    win: &Window,
    facilities: &[ProxFacility],
    chosen: &[[f64; 2]],
    reference: &Reference,
    params: &ProximityParams,
    opts: &ProximityOptions,
    reach: f64,
) -> LCrossCurve {
    let [x0, y0, x1, y1] = win.bbox();
    let r = opts.r_m.clone().unwrap_or_else(|| {
        let rmax = reach.min((x1 - x0).min(y1 - y0) / 4.0);
        (0..=50).map(|k| rmax * k as f64 / 50.0).collect()
    });
    let fin: Vec<[f64; 2]> = facilities
        .iter()
        .filter(|f| win.contains(f.x, f.y))
        .map(|f| [f.x, f.y])
        .collect();
    let rmax = *r.last().unwrap_or(&0.0);
    let table = |pts: &[[f64; 2]]| {
        let border = win.boundary_distances(pts);
        if fin.is_empty() {
            return PairTable::new(pts, &border, &r, |_, _| {});
        }
        let (offsets, dists) = FacilityIndex::new(&fin).within_many(pts, rmax);
        let mut k = 0;
        // called once per point, in order
        PairTable::new(pts, &border, &r, |_, out| {
            out.extend_from_slice(&dists[offsets[k] as usize..offsets[k + 1] as usize]);
            k += 1;
        })
    };
    let observed = table(chosen);
    let sims = if fin.is_empty() {
        0
    } else {
        params.simulations
    };
    let ref_table = if sims > 0 {
        table(&reference.points)
    } else {
        PairTable::default()
    };
    l_cross(
        &r,
        win.area_m2(),
        fin.len(),
        &observed,
        &ref_table,
        &reference.weights,
        sims,
        &mut rng(params.seed, 10),
    )
}
