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
//! Envelope: `simulations` patterns of n incidents drawn from the null (reference points:
//! pixel centres of the window under CSR, baseline points by weight), facilities fixed;
//! pointwise minimum and maximum (spatstat `envelope(nsim = R, nrank = 1)`), plus the mean.

use super::math::AliasTable;
use rand::Rng;
use serde::Serialize;

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
    /// distances to facilities within `r.last()` given by `near(p)`.
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

    fn add_point(&self, p: usize, num: &mut [f64], den: &mut [f64]) {
        let kb = self.kb[p] as usize;
        den[0] += 1.0;
        den[kb + 1] -= 1.0;
        for &kd in &self.kd[self.offsets[p] as usize..self.offsets[p + 1] as usize] {
            let kd = kd as usize;
            if kd <= kb {
                num[kd] += 1.0;
                num[kb + 1] -= 1.0;
            }
        }
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

/// L̂(r_k) for a set of points of `table` (indices in `sel`), given area and n_j.
fn l_values(
    table: &PairTable,
    sel: impl Iterator<Item = usize>,
    nr: usize,
    area: f64,
    nj: usize,
) -> Vec<Option<f64>> {
    let (mut num, mut den) = (vec![0.0; nr + 1], vec![0.0; nr + 1]);
    for p in sel {
        table.add_point(p, &mut num, &mut den);
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

/// Observed L̂ for all points of `observed`, envelope from `simulations` draws of `n` points
/// from `reference` (weighted by `alias`).
pub fn l_cross<R: Rng>(
    r: &[f64],
    area_m2: f64,
    n_facilities: usize,
    observed: &PairTable,
    reference: &PairTable,
    alias: &AliasTable,
    simulations: u32,
    rng: &mut R,
) -> LCrossCurve {
    let nr = r.len();
    let n = observed.kb.len();
    let obs = l_values(observed, 0..n, nr, area_m2, n_facilities);
    let (mut lo, mut hi, mut sum, mut cnt) = (
        vec![f64::INFINITY; nr],
        vec![f64::NEG_INFINITY; nr],
        vec![0.0; nr],
        vec![0u32; nr],
    );
    let mut draws = vec![0usize; n];
    for _ in 0..simulations {
        draws.iter_mut().for_each(|d| *d = alias.sample(rng));
        let sim = l_values(reference, draws.iter().copied(), nr, area_m2, n_facilities);
        for (k, v) in sim.iter().enumerate() {
            if let Some(v) = *v {
                lo[k] = lo[k].min(v);
                hi[k] = hi[k].max(v);
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
