//! Mann-Kendall monotonic trend test and Sen's slope for one time series.
//!
//! Computes exactly what `pymannkendall.original_test` (Hussain & Mahmud 2019) computes:
//!
//! - `S = Σ_{k<j} sign(x_j − x_k)` (Mann 1945; Kendall 1975),
//! - `Var(S) = (n(n−1)(2n+5) − Σ_p t_p(t_p−1)(2t_p+5)) / 18`, the sum running over groups of
//!   exactly equal values (tie correction),
//! - `Z = (S − 1)/√Var(S)` for `S > 0`, `0` for `S = 0`, `(S + 1)/√Var(S)` for `S < 0`
//!   (continuity correction),
//! - two-sided `p = 2 (1 − Φ(|Z|))`,
//! - Kendall's `τ = S / (n(n−1)/2)` (tau-a, as pymannkendall's `Tau`),
//! - Sen's slope: the median of `(x_j − x_i)/(j − i)` over all `i < j` (Sen 1968), and the
//!   intercept `median(x) − median(0..n) · slope`, as pymannkendall's `sens_slope`.
//!
//! This is the trend test of ArcGIS Emerging Hot Spot Analysis, applied to a location's Gi*
//! z-score series (`<VAR>_TREND_ZSCORE`, `<VAR>_TREND_PVALUE`). Reference tests:
//! `tests/it/ref_emerging.rs` against pymannkendall 1.4.3 and scipy's `kendalltau`.

use serde::Serialize;

use crate::analysis::stats::two_sided_p;

/// Result of the Mann-Kendall test on one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannKendall {
    /// Number of values in the series.
    pub n: usize,
    /// Mann-Kendall score `S`.
    pub s: f64,
    /// Variance of `S` under the null, with the tie correction.
    pub var_s: f64,
    /// Normal score with continuity correction (0 when `S = 0`).
    pub z: f64,
    /// Two-sided normal p-value of `z` (1 when `Var(S) = 0`, i.e. a constant series).
    pub p: f64,
    /// Kendall's tau-a, `S / (n(n−1)/2)`.
    pub tau: f64,
    /// Sen's slope: change per time step.
    pub slope: f64,
    /// Intercept of the Sen line at step 0.
    pub intercept: f64,
}

/// Errors of the trend test.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrendError {
    /// The series has fewer than two values, so no pair can be compared.
    #[error("a trend needs at least 2 values, got {n}")]
    TooShort {
        /// Length of the series given.
        n: usize,
    },
    /// A value is NaN or infinite.
    #[error("value {index} of the series is not a finite number")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
    },
}

impl TrendError {
    /// Stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            TrendError::TooShort { .. } => "trend_series_too_short",
            TrendError::NonFinite { .. } => "trend_value_not_finite",
        }
    }
}

/// Mann-Kendall test (pymannkendall `original_test`) with Sen's slope.
///
/// ```
/// use hotspots::analysis::trend::mann_kendall;
/// let mk = mann_kendall(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
/// assert_eq!(mk.s, 10.0);
/// assert_eq!(mk.var_s, 5.0 * 4.0 * 15.0 / 18.0);
/// assert_eq!(mk.slope, 1.0);
/// ```
pub fn mann_kendall(x: &[f64]) -> Result<MannKendall, TrendError> {
    let n = x.len();
    if n < 2 {
        return Err(TrendError::TooShort { n });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(TrendError::NonFinite { index });
    }
    let s = mk_score(x);
    let var_s = variance_s(x);
    let z = if var_s <= 0.0 || s == 0.0 {
        0.0
    } else if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else {
        (s + 1.0) / var_s.sqrt()
    };
    let nf = n as f64;
    let (slope, intercept) = sens_slope(x);
    Ok(MannKendall {
        n,
        s,
        var_s,
        z,
        p: two_sided_p(z),
        tau: s / (0.5 * nf * (nf - 1.0)),
        slope,
        intercept,
    })
}

/// `S = Σ_{k<j} sign(x_j − x_k)`.
fn mk_score(x: &[f64]) -> f64 {
    let mut s: i64 = 0;
    for (k, &xk) in x.iter().enumerate() {
        for &xj in &x[k + 1..] {
            s += (xj > xk) as i64 - (xj < xk) as i64;
        }
    }
    s as f64
}

/// `Var(S)` with the correction for groups of tied values.
fn variance_s(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0
}

/// Median of a non-empty slice (mean of the two middle values for even length, as numpy).
/// Selection instead of a full sort (the same order statistics, so the same value): Sen's
/// slope takes the median of `n(n−1)/2` pairwise slopes for every cell of a cube.
fn median(values: &mut [f64]) -> f64 {
    let (n, m) = (values.len(), values.len() / 2);
    let (lower, &mut mid, _) = values.select_nth_unstable_by(m, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        // the largest of the values ordered before the m-th is the (m−1)-th
        let below = lower.iter().copied().max_by(f64::total_cmp).unwrap_or(mid);
        0.5 * (below + mid)
    }
}

/// Sen's slope and intercept, as pymannkendall `sens_slope`.
fn sens_slope(x: &[f64]) -> (f64, f64) {
    let n = x.len();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            slopes.push((x[j] - x[i]) / (j - i) as f64);
        }
    }
    let slope = median(&mut slopes);
    let mut xs = x.to_vec();
    let median_index = (n - 1) as f64 / 2.0;
    (slope, median(&mut xs) - median_index * slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_with_ties() {
        // x = [1, 2, 2, 3]: pairs (1,2)+ (1,2)+ (1,3)+ (2,2)0 (2,3)+ (2,3)+ -> S = 5.
        let mk = mann_kendall(&[1.0, 2.0, 2.0, 3.0]).expect("valid");
        assert_eq!(mk.s, 5.0);
        // n(n-1)(2n+5) = 4*3*13 = 156; one tie group of 2: 2*1*9 = 18 -> 138/18.
        assert!((mk.var_s - 138.0 / 18.0).abs() < 1e-15);
        assert!((mk.z - 4.0 / (138.0f64 / 18.0).sqrt()).abs() < 1e-15);
        // slopes: 1, .5, .667, 0, .5, 1 -> median of sorted [0,.5,.5,.667,1,1] = .5833...
        assert!((mk.slope - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn selection_median_equals_sorted_median() {
        // odd and even lengths, ties, negative values
        for len in 1..40usize {
            let v: Vec<f64> = (0..len)
                .map(|i| (((i * 7919 + 13) % 11) as f64 - 5.0) * 0.25)
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let m = len / 2;
            let want = if len % 2 == 1 {
                sorted[m]
            } else {
                0.5 * (sorted[m - 1] + sorted[m])
            };
            assert_eq!(
                median(&mut v.clone()).to_bits(),
                want.to_bits(),
                "len {len}"
            );
        }
    }

    #[test]
    fn constant_series_has_no_trend_and_no_nan() {
        let mk = mann_kendall(&[3.0; 6]).expect("valid");
        assert_eq!((mk.s, mk.var_s, mk.z, mk.p), (0.0, 0.0, 0.0, 1.0));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(mann_kendall(&[1.0]), Err(TrendError::TooShort { n: 1 }));
        let err = mann_kendall(&[1.0, f64::NAN]).expect_err("nan");
        assert_eq!(err.code(), "trend_value_not_finite");
    }
}
