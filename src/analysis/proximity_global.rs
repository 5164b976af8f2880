//! Global tests of "more incidents near facilities than the null predicts", and the
//! histogram of distance to the nearest facility.
//!
//! The null is represented by weighted **reference points** (see `Reference`): the pixel
//! centres inside the window (weight = pixel area) under CSR, or the baseline points
//! (weight = baseline weight) under the baseline null. Let p₀ = reference weight share
//! within radius_m of any facility.
//!
//! - Share test: statistic S = #incidents within radius_m of any facility. Under the null the
//!   n incidents are i.i.d. draws from the reference, so S ~ Binomial(n, p₀) exactly; the
//!   Monte Carlo draws R values of S from that distribution (equivalent in law to simulating
//!   n points and counting, at O(√n) instead of O(n) per simulation) and reports the
//!   one-sided pseudo p = (M + 1)/(R + 1), M = #{S_sim ≥ S} (esda/spatstat convention), plus
//!   the normal z = (S − n p₀)/√(n p₀ (1 − p₀)).
//! - KS test of the distances against the reference distance distribution (`proximity_ks`).

use super::ks::{KsTest, NullCdf, ks_test};
use super::math::sample_binomial;
use rand::Rng;
use serde::Serialize;

/// Weighted reference points representing the null model.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Locations (m).
    pub points: Vec<[f64; 2]>,
    /// Weights (pixel area or baseline weight).
    pub weights: Vec<f64>,
    /// Distance (m) from each reference point to its nearest facility.
    pub dist_m: Vec<f64>,
    /// Σ weights: window area (m²) under CSR, total baseline weight under baseline.
    pub total_weight: f64,
    /// Null CDF of the distance.
    pub cdf: NullCdf,
}

impl Reference {
    /// Builds the reference (distances computed by the caller).
    pub fn new(points: Vec<[f64; 2]>, weights: Vec<f64>, dist_m: Vec<f64>) -> Self {
        let total_weight = weights.iter().sum();
        let cdf = NullCdf::new(&dist_m, &weights);
        Self {
            points,
            weights,
            dist_m,
            total_weight,
            cdf,
        }
    }
}

/// Global result for one variant (naive or deduplicated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalResult {
    /// `"naive"`, `"cell"` or `"subject"`.
    pub variant: &'static str,
    /// Number of units tested (incidents, distinct cells or distinct subjects).
    pub n: usize,
    /// Units within radius_m of any facility.
    pub within_radius: u64,
    /// within_radius / n.
    pub share_within: f64,
    /// Null share p₀ within radius_m of any facility.
    pub expected_share: f64,
    /// n · p₀.
    pub expected_within: f64,
    /// share_within / expected_share (`None` when p₀ = 0).
    pub ratio: Option<f64>,
    /// Binomial z-score of the excess (`None` when p₀ is 0 or 1).
    pub z: Option<f64>,
    /// Monte Carlo pseudo p (M+1)/(R+1), one-sided (excess); `None` when simulations = 0.
    pub p_mc: Option<f64>,
    /// Monte Carlo simulations used.
    pub simulations: u32,
    /// KS test of distance to the nearest facility against the null distribution.
    pub ks: KsTest,
}

/// Runs the share test and the KS test on distances `dist_m` to the nearest facility.
pub fn global_test<R: Rng>(
    variant: &'static str,
    dist_m: &[f64],
    radius_m: f64,
    reference: &Reference,
    simulations: u32,
    rng: &mut R,
) -> GlobalResult {
    let n = dist_m.len();
    let nf = n as f64;
    let s = dist_m.iter().filter(|&&d| d <= radius_m).count() as u64;
    let p0 = reference.cdf.share_at_most(radius_m);
    let more = (0..simulations)
        .filter(|_| sample_binomial(rng, n as u64, p0) >= s)
        .count();
    let var = nf * p0 * (1.0 - p0);
    GlobalResult {
        variant,
        n,
        within_radius: s,
        share_within: s as f64 / nf,
        expected_share: p0,
        expected_within: nf * p0,
        ratio: (p0 > 0.0).then(|| s as f64 / nf / p0),
        z: (var > 0.0).then(|| (s as f64 - nf * p0) / var.sqrt()),
        p_mc: (simulations > 0)
            .then(|| crate::analysis::stats::pseudo_p(more, simulations as usize)),
        simulations,
        ks: ks_test(&reference.cdf, dist_m),
    }
}

/// Histogram of distance to the nearest facility, with the null expectation per bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistanceHistogram {
    /// Bin width (m): radius_m / 5.
    pub bin_width_m: f64,
    /// Bins (a, b] (the first includes 0); the last bin is open-ended (`to_m` = None).
    pub bins: Vec<HistogramBin>,
}

/// One histogram bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBin {
    /// Lower edge (m), exclusive except for the first bin.
    pub from_m: f64,
    /// Upper edge (m), inclusive; `None` for the overflow bin.
    pub to_m: Option<f64>,
    /// Incidents in the bin.
    pub count: u64,
    /// Expected under the null: n · reference share in the bin.
    pub expected: f64,
}

/// Bins of width radius_m/5 up to 2·max(radius_m, last ring), then one overflow bin.
pub fn histogram(
    dist_m: &[f64],
    reference: &Reference,
    radius_m: f64,
    reach_m: f64,
) -> DistanceHistogram {
    let w = radius_m / 5.0;
    let nb = ((2.0 * reach_m.max(radius_m)) / w).ceil() as usize;
    let bin = |d: f64| ((d / w).ceil() as usize).saturating_sub(1).min(nb);
    let mut count = vec![0u64; nb + 1];
    let mut share = vec![0.0; nb + 1];
    dist_m.iter().for_each(|&d| count[bin(d)] += 1);
    for (d, wt) in reference.dist_m.iter().zip(&reference.weights) {
        share[bin(*d)] += wt / reference.total_weight;
    }
    let n = dist_m.len() as f64;
    let bins = (0..=nb)
        .map(|k| HistogramBin {
            from_m: k as f64 * w,
            to_m: (k < nb).then(|| (k + 1) as f64 * w),
            count: count[k],
            expected: n * share[k],
        })
        .collect();
    DistanceHistogram {
        bin_width_m: w,
        bins,
    }
}
