//! Small statistical building blocks shared by the analyses: the normal distribution,
//! two-sided p-values, ArcGIS-style confidence bins, Benjamini-Hochberg FDR, the
//! permutation pseudo p-value, and the general Getis-Ord Gi* with arbitrary weights.
//!
//! Every function here is pure and deterministic.

use serde::{Deserialize, Serialize};

/// Standard normal cumulative distribution function Φ(z).
///
/// Uses `erfc` from `libm` (a port of musl's), accurate to about 1 ulp, so tail
/// probabilities such as Φ(-8) ≈ 6.2e-16 are not lost to cancellation.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Upper tail of the standard normal, 1 - Φ(z), without cancellation.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided normal p-value of a z-score: 2 (1 - Φ(|z|)), as ArcGIS `GiPValue`.
pub fn two_sided_p(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// Which tail(s) a test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// Either tail (recommended; esda `alternative="two-sided"`).
    #[default]
    TwoSided,
    /// Larger than expected.
    Greater,
    /// Smaller than expected (esda calls it `lesser`).
    Less,
}

/// ArcGIS `Gi_Bin` without FDR: sign(z) × {3 if p < 0.01, 2 if p < 0.05, 1 if p < 0.10, else 0}.
pub fn confidence_bin(z: f64, p: f64) -> i8 {
    let level = if p < 0.01 {
        3
    } else if p < 0.05 {
        2
    } else if p < 0.10 {
        1
    } else {
        0
    };
    if z > 0.0 {
        level
    } else if z < 0.0 {
        -level
    } else {
        0
    }
}

/// Benjamini-Hochberg cutoff at level `alpha`: the largest p_(k) with p_(k) <= k·alpha/n,
/// or `None` when no p-value passes. A test is significant when `p <= cutoff`.
pub fn bh_cutoff(p_values: &[f64], alpha: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = p_values.iter().copied().filter(|p| p.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut cutoff = None;
    for (i, &p) in sorted.iter().enumerate() {
        if p <= (i as f64 + 1.0) * alpha / n {
            cutoff = Some(p);
        }
    }
    cutoff
}

/// ArcGIS-style bins with FDR (Benjamini-Hochberg at 0.10, 0.05 and 0.01, as Esri's
/// `fdrTransform`): the z-scores and p-values are unchanged, only the bins are.
pub fn fdr_bins(z: &[f64], p: &[f64]) -> Vec<i8> {
    let cut = [0.10, 0.05, 0.01].map(|a| bh_cutoff(p, a));
    z.iter()
        .zip(p)
        .map(|(&z, &p)| {
            let level = cut
                .iter()
                .rev()
                .position(|c| c.is_some_and(|c| p <= c))
                .map_or(0, |i| 3 - i as i8);
            if z > 0.0 {
                level
            } else if z < 0.0 {
                -level
            } else {
                0
            }
        })
        .collect()
}

/// Permutation pseudo p-value (M + 1) / (R + 1), M = replicates as or more extreme.
pub fn pseudo_p(more_extreme: usize, replicates: usize) -> f64 {
    (more_extreme as f64 + 1.0) / (replicates as f64 + 1.0)
}

/// Getis-Ord Gi* z-scores for arbitrary weights (self included by the caller when wanted).
///
/// `weights[i]` lists `(j, w_ij)`; with binary weights and self included this is ArcGIS
/// `GiZScore` and esda `G_Local(star=True, transform='B').Zs`:
/// `Gi* = (Σ_j w_ij x_j − X̄ Σ_j w_ij) / (S · sqrt((n Σ_j w_ij² − (Σ_j w_ij)²)/(n−1)))`,
/// `X̄ = Σx/n`, `S = sqrt(Σx²/n − X̄²)`.
///
/// Returns `None` when the values have zero variance or fewer than two observations
/// (the statistic is undefined there, and callers must say so instead of returning NaN).
/// A location whose weights make the denominator zero (it is a neighbour of every
/// observation with equal weight) gets z = 0.
pub fn gi_star(values: &[f64], weights: &[Vec<(usize, f64)>]) -> Option<Vec<f64>> {
    let n = values.len();
    if n < 2 || weights.len() != n {
        return None;
    }
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / nf;
    if !(var > 1e-300) {
        return None;
    }
    let s = var.sqrt();
    Some(
        weights
            .iter()
            .map(|row| {
                let (mut wx, mut w, mut w2) = (0.0, 0.0, 0.0);
                for &(j, wij) in row {
                    wx += wij * values[j];
                    w += wij;
                    w2 += wij * wij;
                }
                let denom_sq = (nf * w2 - w * w) / (nf - 1.0);
                if denom_sq <= 1e-12 {
                    0.0
                } else {
                    (wx - mean * w) / (s * denom_sq.sqrt())
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_tables() {
        // Values from R: pnorm(1.959963984540054) and 2*pnorm(-3).
        assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-12);
        assert!((two_sided_p(3.0) - 0.002699796063260207).abs() < 1e-15);
        // pnorm(-8) = 6.220960574271785e-16 (no cancellation in the tail)
        assert!((normal_cdf(-8.0) / 6.220960574271785e-16 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bins_follow_arcgis_cutoffs() {
        assert_eq!(confidence_bin(2.7, 0.009), 3);
        assert_eq!(confidence_bin(-2.0, 0.045), -2);
        assert_eq!(confidence_bin(1.7, 0.09), 1);
        assert_eq!(confidence_bin(1.0, 0.3), 0);
    }

    #[test]
    fn bh_matches_hand_computation() {
        // n = 5, alpha = 0.05: thresholds 0.01, 0.02, 0.03, 0.04, 0.05.
        let p = [0.001, 0.03, 0.025, 0.2, 0.04];
        // sorted 0.001 0.025 0.03 0.04 0.2 -> 0.04 <= 0.04 passes at k=4
        assert_eq!(bh_cutoff(&p, 0.05), Some(0.04));
        assert_eq!(bh_cutoff(&[0.5, 0.6], 0.05), None);
        let bins = fdr_bins(&[3.0, 2.0, 2.1, 1.0, -2.0], &p);
        // at 0.01: thresholds .002 .004 .006 .008 .01 -> only 0.001 passes
        assert_eq!(bins, vec![3, 2, 2, 0, -2]);
    }

    #[test]
    fn gi_star_brute_force_on_a_line() {
        // Five locations on a line, binary weights to self and adjacent.
        let x = [1.0, 5.0, 9.0, 2.0, 0.0];
        let w: Vec<Vec<(usize, f64)>> = (0..5usize)
            .map(|i| {
                (i.saturating_sub(1)..=(i + 1).min(4))
                    .map(|j| (j, 1.0))
                    .collect()
            })
            .collect();
        let z = gi_star(&x, &w).expect("variance");
        // Brute force via esda's form: G = Wy/Σy, E = W_i/n, V = W_i(n-W_i)/(n-1) s²/(n² x̄²)
        let n = 5.0;
        let sum: f64 = x.iter().sum();
        let mean = sum / n;
        let s2 = x.iter().map(|v| v * v).sum::<f64>() / n - mean * mean;
        for i in 0..5 {
            let wi = w[i].len() as f64;
            let g = w[i].iter().map(|&(j, _)| x[j]).sum::<f64>() / sum;
            let e = wi / n;
            let v = wi * (n - wi) / (n - 1.0) * s2 / (n * n * mean * mean);
            assert!((z[i] - (g - e) / v.sqrt()).abs() < 1e-12, "cell {i}");
        }
        assert!(gi_star(&[2.0, 2.0, 2.0], &w[..3].to_vec()).is_none());
    }
}
