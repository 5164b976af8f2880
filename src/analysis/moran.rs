//! Moran's I on the H3 grid, and the conditional-permutation engine shared with Gi*.
//!
//! * **Local Moran's I** (Anselin 1995), exactly as PySAL esda `Moran_Local(y, w,
//!   transformation='r')`: with `z = (y − ȳ)/σ` (population σ) and row-standardised weights,
//!   `I_i = (n − 1) · z_i · Σ_j w_ij z_j / Σ_k z_k²`. Quadrant labels as ArcGIS
//!   Cluster and Outlier Analysis writes them: `HH` (z_i > 0, lag > 0), `LH`, `LL`, `HL`.
//! * **Global Moran's I** (esda `Moran`): `I = (n/S0) · Σ_ij w_ij z_i z_j / Σ z_i²`,
//!   `E[I] = −1/(n−1)`, variances under normality and randomisation (Cliff & Ord 1981),
//!   `z = (I − E[I]) / √V`.
//! * **Conditional randomisation** (esda `crand`): x_i is held fixed and its |N_i| neighbour
//!   values are redrawn without replacement from the other n − 1 observations; as in esda,
//!   one table of `R × max|N_i|` draws from `0..n−1` is shared by all cells (a draw `j ≥ i`
//!   means observation `j + 1`). Pseudo p = (M + 1)/(R + 1) with esda's alternatives
//!   (`greater`, `lesser`, and esda's percentile-based `two-sided`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::h3grid::{Kernel, Neighbours};
use super::stats::Alternative;

/// The shared draw table of a conditional randomisation.
pub struct Draws {
    ids: Vec<u32>,
    width: usize,
    replicates: usize,
}

impl Draws {
    /// `replicates` rows of `width` distinct draws from `0..n−1`, seeded.
    pub fn new(n: usize, width: usize, replicates: usize, seed: u64) -> Self {
        let pool_len = n.saturating_sub(1);
        let width = width.min(pool_len);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pool: Vec<u32> = (0..pool_len as u32).collect();
        let mut ids = Vec::with_capacity(width * replicates);
        for _ in 0..replicates {
            // Partial Fisher-Yates: the first `width` slots become a uniform sample.
            for t in 0..width {
                let j = rng.random_range(t..pool_len);
                pool.swap(t, j);
            }
            ids.extend_from_slice(&pool[..width]);
        }
        Self {
            ids,
            width,
            replicates,
        }
    }

    /// Number of replicates R.
    pub fn replicates(&self) -> usize {
        self.replicates
    }

    /// Simulated `Σ_t w_t · x[draw_t]` of cell `i` (with `card = w.len()` neighbours) into `out`.
    pub fn simulate(&self, i: usize, x: &[f64], w: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let card = w.len();
        for r in 0..self.replicates {
            let row = &self.ids[r * self.width..r * self.width + card];
            let mut s = 0.0;
            for (&j, &wt) in row.iter().zip(w) {
                let j = j as usize;
                s += wt * x[if j >= i { j + 1 } else { j }];
            }
            out.push(s);
        }
    }
}

/// Pseudo p-value (M + 1)/(R + 1) of `observed` against `sims`, as esda
/// `_permutation_significance` (`two-sided`: count of replicates outside the percentile
/// interval that the observed value and its mirror image span).
pub fn permutation_p(observed: f64, sims: &[f64], alternative: Alternative) -> f64 {
    let r = sims.len();
    if r == 0 {
        return 1.0;
    }
    let m = match alternative {
        Alternative::Greater => sims.iter().filter(|&&s| s >= observed).count(),
        Alternative::Less => sims.iter().filter(|&&s| s <= observed).count(),
        Alternative::TwoSided => {
            let mut scratch = sims.to_vec();
            let pct = sims.iter().filter(|&&s| s <= observed).count() as f64 / r as f64 * 100.0;
            let p_low = pct.min(100.0 - pct);
            let low = percentile(&mut scratch, p_low);
            let high = percentile(&mut scratch, 100.0 - p_low);
            sims.iter().filter(|&&s| s <= low).count() + sims.iter().filter(|&&s| s >= high).count()
        }
    };
    ((m as f64 + 1.0) / (r as f64 + 1.0)).min(1.0)
}

/// numpy `percentile(a, q)` with the default linear interpolation, by selection in O(len)
/// (`a` is reordered).
fn percentile(a: &mut [f64], q: f64) -> f64 {
    let pos = q / 100.0 * (a.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut v_lo, right) = a.select_nth_unstable_by(lo, f64::total_cmp);
    let v_hi = right.iter().copied().min_by(f64::total_cmp).unwrap_or(v_lo);
    v_lo + (v_hi - v_lo) * frac
}

/// Mean and population standard deviation.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// ArcGIS-style cluster/outlier label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LmiLabel {
    /// High value among high values.
    #[serde(rename = "HH")]
    HighHigh,
    /// High value among low values (outlier).
    #[serde(rename = "HL")]
    HighLow,
    /// Low value among high values (outlier).
    #[serde(rename = "LH")]
    LowHigh,
    /// Low value among low values.
    #[serde(rename = "LL")]
    LowLow,
    /// Pseudo p not below the significance level.
    #[serde(rename = "not_significant")]
    NotSignificant,
}

/// Local Moran's I of every cell.
#[derive(Debug, Clone)]
pub struct LocalMoran {
    /// `I_i` (esda `Is`).
    pub i: Vec<f64>,
    /// Standardised value `z_i` (esda `z`).
    pub z: Vec<f64>,
    /// Spatial lag `Σ_j w_ij z_j` (row-standardised).
    pub lag: Vec<f64>,
    /// `(I_i − mean(sim)) / sd(sim)` (esda `z_sim`; 0 when the simulations do not vary).
    pub z_sim: Vec<f64>,
    /// Pseudo p-value with the requested alternative.
    pub p_sim: Vec<f64>,
}

impl LocalMoran {
    /// Label of cell `i` at significance level `alpha` (p < alpha).
    pub fn label(&self, i: usize, alpha: f64) -> LmiLabel {
        if self.p_sim[i] >= alpha {
            return LmiLabel::NotSignificant;
        }
        match (self.z[i] > 0.0, self.lag[i] > 0.0) {
            (true, true) => LmiLabel::HighHigh,
            (true, false) => LmiLabel::HighLow,
            (false, true) => LmiLabel::LowHigh,
            (false, false) => LmiLabel::LowLow,
        }
    }
}

/// Local Moran's I with row-standardised weights `w` (aligned with `nb.idx`), and a
/// conditional randomisation with `permutations` replicates. `None` for zero variance.
pub fn local_moran(
    y: &[f64],
    nb: &Neighbours,
    w: &[f64],
    permutations: usize,
    seed: u64,
    alternative: Alternative,
) -> Option<LocalMoran> {
    let n = y.len();
    let (mean, sd) = mean_sd(y);
    if n < 3 || sd.is_nan() || sd <= 1e-150 {
        return None;
    }
    let z: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
    let den: f64 = z.iter().map(|v| v * v).sum();
    let scale = (n - 1) as f64 / den;
    let max_card = (0..n).map(|i| nb.row(i).0.len()).max().unwrap_or(0);
    let draws = Draws::new(n, max_card, permutations, seed);
    let per = per_cell(n, |i, sims| {
        let (a, b) = (nb.offsets[i], nb.offsets[i + 1]);
        let lag: f64 = nb.idx[a..b]
            .iter()
            .zip(&w[a..b])
            .map(|(&j, &wt)| wt * z[j as usize])
            .sum();
        let ii = scale * z[i] * lag;
        draws.simulate(i, &z, &w[a..b], sims);
        sims.iter_mut().for_each(|s| *s *= scale * z[i]);
        let (m, s) = if sims.is_empty() {
            (ii, 0.0)
        } else {
            mean_sd(sims)
        };
        let z_sim = if s > 0.0 { (ii - m) / s } else { 0.0 };
        (ii, lag, z_sim, permutation_p(ii, sims, alternative))
    });
    Some(LocalMoran {
        i: per.iter().map(|t| t.0).collect(),
        z,
        lag: per.iter().map(|t| t.1).collect(),
        z_sim: per.iter().map(|t| t.2).collect(),
        p_sim: per.iter().map(|t| t.3).collect(),
    })
}

/// Maps `f` over cells `0..n`, each call with a scratch buffer; on large inputs the cells are
/// split into contiguous chunks on scoped threads. The result does not depend on the number
/// of threads (every cell reads the same shared draw table).
pub fn per_cell<T: Send>(n: usize, f: impl Fn(usize, &mut Vec<f64>) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(4));
    if threads < 2 || n < 2048 {
        let mut buf = Vec::new();
        return (0..n).map(|i| f(i, &mut buf)).collect();
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                s.spawn(move || {
                    let mut buf = Vec::new();
                    (start..(start + chunk).min(n))
                        .map(|i| f(i, &mut buf))
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker finished"))
            .collect()
    })
}

/// Global Moran's I and its analytic inference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GlobalMoran {
    /// Moran's I.
    pub i: f64,
    /// Expectation −1/(n−1).
    pub expected_i: f64,
    /// z under the normality assumption (esda `z_norm`).
    pub z_norm: f64,
    /// z under randomisation (esda `z_rand`; ArcGIS Spatial Autocorrelation).
    pub z_rand: f64,
    /// Two-sided normal p of `z_rand`.
    pub p_rand: f64,
}

/// Global Moran's I of `y` with row-standardised kernel weights (esda `Moran(y, w,
/// transformation='r')`): `w_ij = K(d_ij) / Σ_j K(d_ij)` over the k-ring, self excluded.
/// Because `K(d_ij)` is symmetric, `w_ji = K(d_ij) / rowsum_j` needs no lookup.
/// `None` for zero variance, n < 4 or no neighbours at all.
#[allow(clippy::needless_range_loop)] // CSR rows: t indexes idx and weights together
pub fn global_moran(y: &[f64], nb: &Neighbours, kernel: Kernel) -> Option<GlobalMoran> {
    let n = y.len();
    let (mean, sd) = mean_sd(y);
    if n < 4 || sd.is_nan() || sd <= 1e-150 {
        return None;
    }
    let base = nb.weights(kernel);
    let z: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let m2: f64 = z.iter().map(|v| v * v).sum();
    let m4: f64 = z.iter().map(|v| v.powi(4)).sum();
    let row_sum: Vec<f64> = (0..n)
        .map(|i| base[nb.offsets[i]..nb.offsets[i + 1]].iter().sum())
        .collect();
    let (mut s0, mut s1, mut num, mut s2) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let mut col = 0.0;
        for t in nb.offsets[i]..nb.offsets[i + 1] {
            let j = nb.idx[t] as usize;
            let (wij, wji) = (base[t] / row_sum[i], base[t] / row_sum[j]);
            s0 += wij;
            num += wij * z[i] * z[j];
            col += wji;
            s1 += (wij + wji) * (wij + wji);
        }
        let row = if row_sum[i] > 0.0 { 1.0 } else { 0.0 };
        s2 += (row + col) * (row + col);
    }
    if s0 <= 0.0 {
        return None;
    }
    s1 /= 2.0;
    let nf = n as f64;
    let i_stat = nf / s0 * num / m2;
    let ei = -1.0 / (nf - 1.0);
    let v_norm = (nf * nf * s1 - nf * s2 + 3.0 * s0 * s0) / ((nf * nf - 1.0) * s0 * s0) - ei * ei;
    let kurt = (m4 / nf) / ((m2 / nf) * (m2 / nf));
    let a = nf * ((nf * nf - 3.0 * nf + 3.0) * s1 - nf * s2 + 3.0 * s0 * s0);
    let b = kurt * ((nf * nf - nf) * s1 - 2.0 * nf * s2 + 6.0 * s0 * s0);
    let v_rand = (a - b) / ((nf - 1.0) * (nf - 2.0) * (nf - 3.0) * s0 * s0) - ei * ei;
    let zn = if v_norm > 0.0 {
        (i_stat - ei) / v_norm.sqrt()
    } else {
        0.0
    };
    let zr = if v_rand > 0.0 {
        (i_stat - ei) / v_rand.sqrt()
    } else {
        0.0
    };
    Some(GlobalMoran {
        i: i_stat,
        expected_i: ei,
        z_norm: zn,
        z_rand: zr,
        p_rand: super::stats::two_sided_p(zr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_and_in_range() {
        let d = Draws::new(10, 4, 50, 7);
        for r in 0..50 {
            let row = &d.ids[r * 4..r * 4 + 4];
            assert!(row.iter().all(|&j| j < 9));
            let mut s = row.to_vec();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 4);
        }
        let again = Draws::new(10, 4, 50, 7);
        assert_eq!(d.ids, again.ids);
    }

    #[test]
    fn per_cell_keeps_cell_order_on_threads() {
        let out = per_cell(10_007, |i, buf| {
            buf.push(i as f64);
            (i, !buf.is_empty())
        });
        assert_eq!(out.len(), 10_007);
        assert!(out.iter().enumerate().all(|(i, &(j, ok))| i == j && ok));
    }

    #[test]
    fn percentile_by_selection_equals_sorted_interpolation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let v: Vec<f64> = (0..999)
            .map(|_| f64::from(rng.random_range(0..40u32)))
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0_f64, 2.5, 11.1, 50.0, 73.3, 97.5, 100.0] {
            let pos: f64 = q / 100.0 * 998.0;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(998);
            let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
            assert_eq!(percentile(&mut v.clone(), q), want, "q = {q}");
        }
    }

    #[test]
    fn pseudo_p_counts_by_hand() {
        let sims = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        assert!((permutation_p(8.5, &sims, Alternative::Greater) - 2.0 / 10.0).abs() < 1e-15);
        assert!((permutation_p(1.5, &sims, Alternative::Less) - 2.0 / 10.0).abs() < 1e-15);
        // two-sided: 8.5 sits at the 88.9th percentile; the interval [p11.1, p88.9] is
        // [1.888.., 8.111..]: outside are 1 and 9 -> (2+1)/10.
        assert!((permutation_p(8.5, &sims, Alternative::TwoSided) - 0.3).abs() < 1e-12);
        // 5.0 at the 55.6th percentile: interval [4.56, 5.44], outside 8 of 9 -> 0.9.
        assert!((permutation_p(5.0, &sims, Alternative::TwoSided) - 0.9).abs() < 1e-12);
    }
}
