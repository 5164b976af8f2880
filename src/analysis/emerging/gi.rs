//! Space-time Getis-Ord Gi* on a dense cube of H3 cells x time bins.
//!
//! Observation `(c, t)` has value `x[c·T + t]` (a count). Its neighbours are the cells `c'`
//! within `k` grid rings of `c` (self included) in the bins `t − time_k ..= t` (ArcGIS
//! Emerging Hot Spot Analysis: the neighbourhood time step counts *previous* steps), with the
//! separable weight `w = K_s(d_grid) · K_t(Δt)`; with the default uniform kernels this is the
//! binary space-time weight of ArcGIS. The global window is the entire cube (ArcGIS default
//! `ENTIRE_CUBE`): `X̄` and `S` are taken over all `n = cells · T` observations, and
//! `Gi* = (Σ w x − X̄ Σ w) / (S √((n Σ w² − (Σ w)²)/(n − 1)))`, the formula of
//! [`crate::analysis::stats::gi_star`]. Instead of materialising the `n` weight rows (about
//! 160 MB for a 1M-incident cube) it sums the spatial neighbours once per bin and then the
//! time window, which gives the same numbers (unit test below against `stats::gi_star`; the
//! reference test compares with a numpy brute force on a dense weight matrix).

use serde::{Deserialize, Serialize};

/// Distance-decay kernel for the spatial (grid rings) or temporal (steps back) weights.
///
/// With `d` the distance (rings or steps) and the bandwidth `h = size + 1` (so the outermost
/// ring or step still has a positive weight), `u = d / h`:
/// uniform `1`, triangular `1 − u`, quadratic (Epanechnikov) `1 − u²`, quartic `(1 − u²)²`,
/// gaussian `exp(−u²/2)`. The kernel names are those of CARTO's `GETIS_ORD_*` functions; the
/// constant factors of the textbook kernels are left out because Gi* is invariant to scaling
/// all weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// Binary weights (ArcGIS fixed distance band).
    #[default]
    Uniform,
    /// `1 − u`.
    Triangular,
    /// `1 − u²`.
    Quadratic,
    /// `(1 − u²)²`.
    Quartic,
    /// `exp(−u²/2)`.
    Gaussian,
}

impl Kernel {
    /// Weight at distance `d` for a neighbourhood of `size` rings or steps.
    pub fn weight(self, d: u32, size: u32) -> f64 {
        let u = d as f64 / (size as f64 + 1.0);
        match self {
            Kernel::Uniform => 1.0,
            Kernel::Triangular => 1.0 - u,
            Kernel::Quadratic => 1.0 - u * u,
            Kernel::Quartic => (1.0 - u * u) * (1.0 - u * u),
            Kernel::Gaussian => (-0.5 * u * u).exp(),
        }
    }
}

/// Spatial weights in compressed rows: row `c` is `entries[offsets[c]..offsets[c + 1]]`,
/// each `(neighbour cell index, weight)`, self included.
#[derive(Debug, Clone)]
pub struct SpatialWeights {
    /// Row starts, length `cells + 1`.
    pub offsets: Vec<usize>,
    /// `(neighbour, weight)` pairs.
    pub entries: Vec<(usize, f64)>,
}

/// Space-time Gi* z-scores, indexed `c·T + t`. `None` when all counts are equal (zero
/// variance: the statistic is undefined) or the cube has fewer than two observations.
pub fn space_time_gi(
    x: &[f64],
    n_bins: usize,
    spatial: &SpatialWeights,
    time_weights: &[f64],
) -> Option<Vec<f64>> {
    let n_cells = spatial.offsets.len().saturating_sub(1);
    let n = x.len();
    if n < 2 || n != n_cells * n_bins {
        return None;
    }
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / nf;
    if var.is_nan() || var <= 1e-300 {
        return None;
    }
    let s = var.sqrt();
    let mut z = vec![0.0; n];
    let mut lag = vec![0.0; n_bins];
    for c in 0..n_cells {
        let row = &spatial.entries[spatial.offsets[c]..spatial.offsets[c + 1]];
        let ws: f64 = row.iter().map(|e| e.1).sum();
        let ws2: f64 = row.iter().map(|e| e.1 * e.1).sum();
        lag.iter_mut().for_each(|v| *v = 0.0);
        for &(j, w) in row {
            for (l, v) in lag.iter_mut().zip(&x[j * n_bins..(j + 1) * n_bins]) {
                *l += w * v;
            }
        }
        for t in 0..n_bins {
            let (mut wx, mut wt, mut wt2) = (0.0, 0.0, 0.0);
            for (dt, &w) in time_weights.iter().enumerate().take(t + 1) {
                wx += w * lag[t - dt];
                wt += w;
                wt2 += w * w;
            }
            let (w_sum, w2_sum) = (ws * wt, ws2 * wt2);
            let denom_sq = (nf * w2_sum - w_sum * w_sum) / (nf - 1.0);
            z[c * n_bins + t] = if denom_sq <= 1e-12 {
                0.0
            } else {
                (wx - mean * w_sum) / (s * denom_sq.sqrt())
            };
        }
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::gi_star;

    /// A 4-cell path graph (0-1-2-3) with ring distance |i − j|, 6 bins.
    fn path_weights(k: u32, kernel: Kernel) -> SpatialWeights {
        let mut offsets = vec![0];
        let mut entries = Vec::new();
        for i in 0..4i64 {
            for j in 0..4i64 {
                let d = (i - j).unsigned_abs() as u32;
                if d <= k {
                    entries.push((j as usize, kernel.weight(d, k)));
                }
            }
            offsets.push(entries.len());
        }
        SpatialWeights { offsets, entries }
    }

    #[test]
    fn equals_general_gi_star_with_explicit_weights() {
        let t_n = 6;
        let x: Vec<f64> = (0..24).map(|i| ((i * 7 + 3) % 11) as f64).collect();
        for (k, time_k, ks, kt) in [
            (1, 1, Kernel::Uniform, Kernel::Uniform),
            (2, 2, Kernel::Triangular, Kernel::Gaussian),
            (1, 0, Kernel::Quartic, Kernel::Quadratic),
        ] {
            let sw = path_weights(k, ks);
            let tw: Vec<f64> = (0..=time_k).map(|d| kt.weight(d, time_k)).collect();
            let fast = space_time_gi(&x, t_n, &sw, &tw).expect("variance");
            // Explicit rows over observations c*T + t.
            let mut rows = Vec::new();
            for c in 0..4 {
                for t in 0..t_n {
                    let mut row = Vec::new();
                    for &(j, w) in &sw.entries[sw.offsets[c]..sw.offsets[c + 1]] {
                        for (dt, &wt) in tw.iter().enumerate().take(t + 1) {
                            row.push((j * t_n + t - dt, w * wt));
                        }
                    }
                    rows.push(row);
                }
            }
            let slow = gi_star(&x, &rows).expect("variance");
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b} (k={k}, time_k={time_k})");
            }
        }
        assert!(
            space_time_gi(&[1.0; 24], t_n, &path_weights(1, Kernel::Uniform), &[1.0]).is_none()
        );
    }
}
