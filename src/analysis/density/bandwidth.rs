//! Automatic kernel-density bandwidths.
//!
//! * [`arcgis_radius`]: the ArcGIS Pro Kernel Density default search radius ("How Kernel Density
//!   works"): `0.9 · min(SD, sqrt(1/ln 2) · Dm) · n^(-0.2)`, with `SD` the standard distance
//!   `sqrt(Σ((x−x̄)² + (y−ȳ)²)/n)` and `Dm` the median distance to the mean centre (even `n`: mean
//!   of the two middle values). A spatial variant of Silverman's rule of thumb.
//! * [`ppl`]: likelihood cross-validation as spatstat's `bw.ppl(X, shortcut=TRUE, ns=16)`:
//!   candidates `geomseq(min positive nearest-neighbour distance, diameter/2, 16)` where the
//!   diameter is that of the window's bounding box (spatstat: `diameter(Window(X))`; without a
//!   window, the points' bounding box), and the chosen sigma maximises
//!   `CV(σ) = Σᵢ log λ̂₋ᵢ(xᵢ)` with the leave-one-out density
//!   `λ̂₋ᵢ(xᵢ) = Σ_{j≠i} K_σ(xᵢ − xⱼ) / e(xᵢ)` (e = kernel mass in the window, 1 without one).
//!   Gaussian sums reach `max(8σ, 2·max nearest-neighbour distance)` as spatstat's
//!   `densitypointsEngine` does for leave-one-out; a leave-one-out density that underflows to 0
//!   makes `CV = −∞` for that σ. The first maximum wins.

use rstar::{RTree, primitives::GeomWithData};
use serde::Serialize;

use geo::MultiPolygon;

use super::edge::Window;
use super::{DensityError, Kernel, MAX_BANDWIDTH_M};

/// Number of candidate bandwidths (spatstat `ns`).
pub const PPL_CANDIDATES: usize = 16;
/// Largest point count accepted for likelihood cross-validation (its cost grows ~n² for the
/// large candidates).
pub const PPL_MAX_POINTS: usize = 5_000;
/// Gaussian truncation for the cross-validation sums, in sigmas (spatstat's cutoff).
const PPL_GAUSS_REACH: f64 = 8.0;

/// ArcGIS default search radius in metres (see module docs).
///
/// Errors: fewer than 2 points, or a zero radius (all points coincide).
pub fn arcgis_radius(coords: &[[f64; 2]]) -> Result<f64, DensityError> {
    let n = coords.len();
    if n < 2 {
        return Err(DensityError::TooFewPoints {
            found: n,
            needed: 2,
        });
    }
    let nf = n as f64;
    let mx = coords.iter().map(|c| c[0]).sum::<f64>() / nf;
    let my = coords.iter().map(|c| c[1]).sum::<f64>() / nf;
    let mut d2: Vec<f64> = coords
        .iter()
        .map(|c| (c[0] - mx).powi(2) + (c[1] - my).powi(2))
        .collect();
    let sd = (d2.iter().sum::<f64>() / nf).sqrt();
    d2.sort_by(f64::total_cmp);
    let dm = if n % 2 == 1 {
        d2[n / 2].sqrt()
    } else {
        0.5 * (d2[n / 2 - 1].sqrt() + d2[n / 2].sqrt())
    };
    let r = 0.9 * sd.min((1.0 / std::f64::consts::LN_2).sqrt() * dm) * nf.powf(-0.2);
    if r > 0.0 && r.is_finite() {
        Ok(r)
    } else {
        Err(DensityError::DegenerateBandwidth)
    }
}

/// Result of [`ppl`]: the chosen bandwidth and the whole criterion curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PplResult {
    /// The chosen bandwidth in metres.
    pub bandwidth_m: f64,
    /// Candidate bandwidths in metres (increasing).
    pub candidates_m: Vec<f64>,
    /// `CV(σ)` per candidate (`None` where it is −∞).
    pub cv: Vec<Option<f64>>,
}

/// Likelihood cross-validation bandwidth (see module docs). `window`: study area for the edge
/// correction of the leave-one-out densities; `diameter_m`: diameter of the window's bounding box
/// (or of the points' bounding box without a window).
///
/// Errors: fewer than 2 points, more than [`PPL_MAX_POINTS`], all points coincident, or no
/// candidate with a finite criterion.
pub fn ppl(
    coords: &[[f64; 2]],
    kernel: Kernel,
    window: Option<&MultiPolygon<f64>>,
    diameter_m: f64,
) -> Result<PplResult, DensityError> {
    let n = coords.len();
    if n < 2 {
        return Err(DensityError::TooFewPoints {
            found: n,
            needed: 2,
        });
    }
    if n > PPL_MAX_POINTS {
        return Err(DensityError::TooManyPointsForCv {
            found: n,
            max: PPL_MAX_POINTS,
        });
    }
    let tree: RTree<GeomWithData<[f64; 2], u32>> = RTree::bulk_load(
        coords
            .iter()
            .enumerate()
            .map(|(i, c)| GeomWithData::new(*c, i as u32))
            .collect(),
    );
    let (lo, nnd_max) = nn_range(&tree, coords);
    let lo = lo.ok_or(DensityError::DegenerateBandwidth)?;
    let hi = (diameter_m / 2.0).min(MAX_BANDWIDTH_M);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Err(DensityError::DegenerateBandwidth);
    }
    let k = (PPL_CANDIDATES - 1) as f64;
    let candidates_m: Vec<f64> = (0..PPL_CANDIDATES)
        .map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / k).exp())
        .collect();
    let mut cv = Vec::with_capacity(PPL_CANDIDATES);
    for &s in &candidates_m {
        crate::cancel::checkpoint();
        let win = window.map(|w| Window::new(w, kernel, s)).transpose()?;
        let reach = match kernel {
            Kernel::Gaussian => (PPL_GAUSS_REACH * s).max(2.0 * nnd_max),
            Kernel::Quartic => s,
        };
        cv.push(loo_log_lik(&tree, coords, kernel, s, reach, win.as_ref()));
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in cv.iter().enumerate() {
        if let Some(v) = *v
            && best.is_none_or(|(_, b)| v > b)
        {
            best = Some((i, v));
        }
    }
    let (i, _) = best.ok_or(DensityError::DegenerateBandwidth)?;
    Ok(PplResult {
        bandwidth_m: candidates_m[i],
        candidates_m,
        cv,
    })
}

/// Nearest-neighbour distances (to the nearest *other* point, 0 for duplicates) as spatstat
/// `nndist`: returns (smallest positive one, largest one).
fn nn_range(tree: &RTree<GeomWithData<[f64; 2], u32>>, coords: &[[f64; 2]]) -> (Option<f64>, f64) {
    let (mut lo, mut hi) = (None::<f64>, 0.0f64);
    for (i, c) in coords.iter().enumerate() {
        let d2 = tree
            .nearest_neighbor_iter_with_distance_2(c)
            .find(|(q, _)| q.data as usize != i)
            .map_or(0.0, |(_, d2)| d2);
        if d2 > 0.0 {
            lo = Some(lo.map_or(d2, |m| m.min(d2)));
        }
        hi = hi.max(d2);
    }
    (lo.map(f64::sqrt), hi.sqrt())
}

/// `Σᵢ log λ̂₋ᵢ(xᵢ)`, or `None` when some leave-one-out density is 0.
fn loo_log_lik(
    tree: &RTree<GeomWithData<[f64; 2], u32>>,
    coords: &[[f64; 2]],
    kernel: Kernel,
    h: f64,
    reach: f64,
    window: Option<&Window>,
) -> Option<f64> {
    let mut total = 0.0;
    for (i, c) in coords.iter().enumerate() {
        let raw: f64 = tree
            .locate_within_distance(*c, reach * reach)
            .filter(|q| q.data as usize != i)
            .map(|q| {
                kernel.value(
                    (q.geom()[0] - c[0]).powi(2) + (q.geom()[1] - c[1]).powi(2),
                    h,
                )
            })
            .sum();
        let e = window.map_or(1.0, |w| w.mass(c[0], c[1]));
        let lam = raw / e;
        if !(lam > 0.0 && lam.is_finite()) {
            return None;
        }
        total += lam.ln();
    }
    Some(total)
}
